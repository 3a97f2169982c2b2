"""SDK against scripted fake servers on loopback: retries, deadlines, batch resume, round-robin."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent import futures

import grpc
import pytest

from evoprompt.sdk import (
    AsyncEvaluatorClient,
    DeadlineExceededError,
    EvaluationRequest,
    EvaluationResult,
    EvaluatorClient,
    InvalidRequestError,
    QueueFullError,
    RetryPolicy,
    Status,
)
from evoprompt.sdk._core import normalize_target
from evoprompt.sdk.proto import evaluator_pb2 as pb
from evoprompt.sdk.proto import evaluator_pb2_grpc as pb_grpc

FAST = RetryPolicy(retries=4, initial_backoff=0.01, max_backoff=0.05)


class ScriptedServicer(pb_grpc.EvaluatorServicer):
    """Fails the first `fail_first` calls with `fail_code`, then answers; records every request."""

    def __init__(self, name: str = "a", fail_first: int = 0, fail_code=grpc.StatusCode.UNAVAILABLE,
                 break_batch_after: int | None = None, delay: float = 0.0) -> None:
        self.name = name
        self.fail_first = fail_first
        self.fail_code = fail_code
        self.break_batch_after = break_batch_after
        self.delay = delay
        self.calls: list[tuple[str, str]] = []  # (rpc, request_id)
        self.lock = threading.Lock()

    def _maybe_fail(self, context) -> None:
        with self.lock:
            if self.fail_first > 0:
                self.fail_first -= 1
                context.abort(self.fail_code, "scripted failure")

    def _answer(self, req: pb.EvaluateRequest) -> pb.EvaluateResponse:
        if req.task != "mnist1d":
            return pb.EvaluateResponse(request_id=req.request_id, status=pb.REJECTED, message="unknown task")
        return pb.EvaluateResponse(request_id=req.request_id, status=pb.OK, val_accuracy=0.5, num_params=len(req.code),
                                   sandbox=self.name, checkpoints=[pb.Checkpoint(step=1, val_accuracy=0.5)])

    def Evaluate(self, request, context):
        self.calls.append(("Evaluate", request.request_id))
        self._maybe_fail(context)
        if request.task == "bad":
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "unknown task 'bad'")
        time.sleep(self.delay)
        return self._answer(request)

    def EvaluateBatch(self, request, context):
        for r in request.requests:
            self.calls.append(("EvaluateBatch", r.request_id))
        self._maybe_fail(context)
        for i, r in enumerate(request.requests):
            if self.break_batch_after is not None and i == self.break_batch_after:
                self.break_batch_after = None
                context.abort(grpc.StatusCode.UNAVAILABLE, "stream broke")
            yield self._answer(r)

    def GetServerInfo(self, request, context):
        self._maybe_fail(context)
        return pb.ServerInfo(version="test", backend=self.name, queue_capacity=3, images={"torch": "img"})

    def Cancel(self, request, context):
        return pb.CancelResponse(cancelled=request.request_id == "running")

    def ListTasks(self, request, context):
        return pb.ListTasksResponse(tasks=[pb.TaskInfo(name="mnist1d", frameworks=["torch", "flax"], max_steps=8000)])


@pytest.fixture
def serve():
    servers = []

    def start(servicer: ScriptedServicer) -> str:
        server = grpc.server(futures.ThreadPoolExecutor(8))
        pb_grpc.add_EvaluatorServicer_to_server(servicer, server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        servers.append(server)
        return f"127.0.0.1:{port}"

    yield start
    for s in servers:
        s.stop(0)


def test_status_mirrors_proto_enum():
    assert {s.name: s.value for s in Status} == dict(pb.Status.items())


def test_result_round_trips_and_dict_keys_are_proto_field_names():
    r = EvaluationResult(request_id="x", status=Status.OK, num_params=7, checkpoints=())
    assert EvaluationResult.from_proto(r.to_proto()) == r
    assert set(r.to_dict()) == {f.name for f in pb.EvaluateResponse.DESCRIPTOR.fields}
    assert r.to_dict()["status"] == "OK"


def test_targets():
    assert normalize_target("127.0.0.1:1") == "127.0.0.1:1"
    assert normalize_target(["127.0.0.1:1", "127.0.0.1:2"]) == "ipv4:127.0.0.1:1,127.0.0.1:2"
    assert normalize_target("[::1]:1,[::1]:2") == "ipv6:[::1]:1,[::1]:2"
    assert normalize_target("dns:///evaluators:50051") == "dns:///evaluators:50051"
    with pytest.raises(ValueError, match="dns:///"):
        normalize_target("a:1,b:2")


def test_unavailable_is_retried_with_the_same_request_id(serve):
    fake = ScriptedServicer(fail_first=2)
    with EvaluatorClient(serve(fake), retry=FAST) as client:
        result = client.evaluate("mnist1d", "torch", "code", request_id="r1")
    assert result.ok and result.request_id == "r1" and result.num_params == 4
    assert fake.calls == [("Evaluate", "r1")] * 3


def test_client_assigns_one_request_id_across_retries(serve):
    fake = ScriptedServicer(fail_first=1, fail_code=grpc.StatusCode.RESOURCE_EXHAUSTED)
    with EvaluatorClient(serve(fake), retry=FAST) as client:
        result = client.evaluate("mnist1d", "torch", "code")
    ids = {rid for _, rid in fake.calls}
    assert len(fake.calls) == 2 and ids == {result.request_id} and len(result.request_id) == 32


def test_retries_run_out_into_a_typed_error(serve):
    fake = ScriptedServicer(fail_first=100, fail_code=grpc.StatusCode.RESOURCE_EXHAUSTED)
    with EvaluatorClient(serve(fake), retry=FAST) as client, pytest.raises(QueueFullError, match="scripted"):
        client.evaluate("mnist1d", "torch", "code")
    assert len(fake.calls) == FAST.retries + 1


def test_invalid_argument_is_not_retried(serve):
    fake = ScriptedServicer()
    with EvaluatorClient(serve(fake), retry=FAST) as client, pytest.raises(InvalidRequestError, match="unknown task"):
        client.evaluate("bad", "torch", "code")
    assert len(fake.calls) == 1


def test_per_call_deadline(serve):
    fake = ScriptedServicer(delay=2.0)
    with EvaluatorClient(serve(fake), retry=FAST) as client:
        started = time.monotonic()
        with pytest.raises(DeadlineExceededError):
            client.evaluate("mnist1d", "torch", "code", timeout=0.3)
        assert time.monotonic() - started < 1.5


def test_no_server_gives_unavailable_after_retries():
    from evoprompt.sdk import EvaluatorUnavailableError

    with EvaluatorClient("127.0.0.1:1", retry=FAST) as client:
        with pytest.raises(EvaluatorUnavailableError):
            client.server_info()
        with pytest.raises(EvaluatorUnavailableError, match="within"):
            client.wait_ready(timeout=0.2)


def test_evaluate_many_cuts_batches_to_queue_and_resumes_broken_stream(serve):
    fake = ScriptedServicer(break_batch_after=1)
    reqs = [EvaluationRequest("mnist1d", "torch", "x" * i, request_id=f"r{i}") for i in range(7)]
    reqs.append(EvaluationRequest("nope", "torch", "y", request_id="bad"))
    with EvaluatorClient(serve(fake), retry=FAST) as client:
        results = list(client.evaluate_many(reqs))
    assert sorted(r.request_id for r in results) == sorted(r.request_id for r in reqs)
    assert {r.request_id: r.status for r in results}["bad"] is Status.REJECTED
    batch_calls = [rid for rpc, rid in fake.calls if rpc == "EvaluateBatch"]
    # queue_capacity 3: batches of 3,3,2; the first broke after one answer and was re-sent for the other two
    assert batch_calls == ["r0", "r1", "r2", "r1", "r2", "r3", "r4", "r5", "r6", "bad"]


def test_duplicate_request_ids_in_one_call_are_refused(serve):
    with EvaluatorClient(serve(ScriptedServicer()), retry=FAST) as client, pytest.raises(ValueError, match="unique"):
        list(client.evaluate_many([EvaluationRequest("mnist1d", "torch", "a", request_id="same")] * 2))


def test_round_robin_over_several_endpoints(serve):
    a, b = ScriptedServicer("a"), ScriptedServicer("b")
    target = [serve(a), serve(b)]
    with EvaluatorClient(target, retry=FAST) as client:
        client.wait_ready()
        seen = {client.evaluate("mnist1d", "torch", "c").sandbox for _ in range(10)}
    assert seen == {"a", "b"}
    assert len(a.calls) >= 3 and len(b.calls) >= 3


def test_small_calls(serve):
    with EvaluatorClient(serve(ScriptedServicer()), retry=FAST) as client:
        assert client.server_info().images == {"torch": "img"}
        assert client.list_tasks()[0].frameworks == ("torch", "flax")
        assert client.cancel("running") and not client.cancel("other")


def test_async_client(serve):
    fake = ScriptedServicer(fail_first=1, break_batch_after=2)
    target = serve(fake)

    async def main():
        async with AsyncEvaluatorClient(target, retry=FAST) as client:
            one = await client.evaluate("mnist1d", "torch", "abc", request_id="solo")
            many = [r async for r in client.evaluate_many(
                EvaluationRequest("mnist1d", "torch", "x" * i) for i in range(5))]
            with pytest.raises(InvalidRequestError):
                await client.evaluate("bad", "torch", "x")
            info = await client.server_info()
            return one, many, info

    one, many, info = asyncio.run(main())
    assert one.ok and one.num_params == 3
    assert len(many) == 5 and len({r.request_id for r in many}) == 5 and all(r.ok for r in many)
    assert info.backend == "a"


def test_the_sdk_imports_only_grpc_and_protobuf():
    import subprocess
    import sys

    code = ("import sys, evoprompt.sdk; heavy = {'torch', 'numpy', 'docker', 'jax', 'httpx', 'transformers'}; "
            "print(sorted(heavy & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"
