"""The evaluator end to end: a real server on loopback, real sandboxes (Docker containers and the
process back-end), real training. Step budgets are reduced; the full recipe lives in bench/."""

from __future__ import annotations

import json
import threading
import uuid

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from evoprompt.sdk import EvaluationRequest, EvaluatorClient, InvalidRequestError, Status
from evoprompt.search.seeds import list_seeds
from tests.support.servers import PROGRAMS, framework_of, job_containers

pytestmark = pytest.mark.integration
STEPS = 100  # enough for the CNN to beat chance (about 0.58 at 100 steps, 0.77 at 200)

SEEDS = [s for fw in ("torch", "flax") for s in list_seeds("mnist1d", fw)]


def true_num_params(framework: str, code: str) -> int:
    """The seed's parameter count, from its own framework (the evaluator must report this)."""
    namespace: dict = {}
    exec(compile(code, f"{framework}-seed.py", "exec"), namespace)
    if framework == "torch":
        return sum(p.numel() for p in namespace["Model"]().parameters())
    import jax

    params = namespace["Model"]().init(jax.random.PRNGKey(0), jax.numpy.zeros((2, 40)))["params"]
    return sum(leaf.size for leaf in jax.tree_util.tree_leaves(params))


def test_every_seed_trains_and_the_verifier_agrees(client):
    """Every seed of both frameworks: the verifier (a second sandbox, no candidate code) rebuilds the
    exported model, predicts what the training sandbox predicted (else VERIFICATION_FAILED), counts
    the seed's true parameters and alone reports test and check accuracy."""
    requests = [EvaluationRequest("mnist1d", s.framework, s.code, max_steps=STEPS, seed=1, request_id=uuid.uuid4().hex)
                for s in SEEDS]
    results = {r.request_id: r for r in client.evaluate_many(requests)}
    assert len(results) == len(SEEDS) == 9
    for seed, req in zip(SEEDS, requests, strict=True):
        res = results[req.request_id]
        assert res.status is Status.OK, f"{seed.framework}/{seed.name}: {res.message}\n{res.stderr_tail}"
        assert res.steps == STEPS and 0 < res.best_step <= STEPS and len(res.checkpoints) >= 2
        assert res.val_accuracy == max(c.val_accuracy for c in res.checkpoints)
        assert res.test_accuracy == next(c.test_accuracy for c in res.checkpoints if c.step == res.best_step)
        assert res.num_params > 0 and 0.0 <= res.test_accuracy <= 1.0
        assert res.verified and res.verify_seconds > 0 and 0.0 < res.check_accuracy <= 1.0
        assert res.num_params == true_num_params(seed.framework, seed.code), f"{seed.framework}/{seed.name}"
        assert res.num_state <= 2, f"{seed.framework}/{seed.name}: num_state {res.num_state}"  # an epsilon or two
        assert res.cpu_seconds > 0
    # better than chance (10 classes) after a short budget, for the models that learn quickly
    cnn = next(results[r.request_id] for s, r in zip(SEEDS, requests, strict=True) if s.name == "cnn")
    assert cnn.val_accuracy > 0.3


def test_torch_cnn_parameters_are_counted_by_the_server(client):

    seed = next(s for s in list_seeds("mnist1d", "torch") if s.name == "cnn")
    namespace: dict = {}
    exec(compile(seed.code, "cnn.py", "exec"), namespace)
    expected = sum(p.numel() for p in namespace["Model"]().parameters())
    assert expected == 5210
    res = client.evaluate("mnist1d", "torch", seed.code, max_steps=50)
    assert res.ok, res.message
    assert res.num_params == 5210 and res.num_state == 0


@pytest.mark.parametrize("path", sorted(PROGRAMS.glob("bad_*.py")), ids=lambda p: p.stem)
def test_broken_programs_get_a_clear_status(client, path):
    code = path.read_text()
    expected_status, expected_text = code.splitlines()[0].removeprefix("# expect: ").split(" ", 1)
    res = client.evaluate("mnist1d", framework_of(code), code, max_steps=20)
    assert res.status.name == expected_status, f"{res.status.name}: {res.message}\n{res.stderr_tail}"
    assert expected_text in res.message
    assert "Traceback" not in res.message and len(res.message) < 4000


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"task": "imagenet"}, "unknown task 'imagenet'"),
        ({"framework": "tensorflow"}, "no framework 'tensorflow'"),
        ({"code": ""}, "empty"),
        ({"code": "#" * (64 * 1024 + 1)}, "64 KiB"),
        ({"max_steps": 8001}, "exceeds the maximum"),
        ({"max_steps": -1}, "max_steps"),
    ],
    ids=["unknown-task", "unknown-framework", "empty", "too-large", "too-many-steps", "negative-steps"],
)
def test_bad_requests_are_refused_with_a_message(client, kwargs, fragment):
    args = {"task": "mnist1d", "framework": "torch", "code": list_seeds("mnist1d", "torch")[0].code, **kwargs}
    with pytest.raises(InvalidRequestError) as err:
        client.evaluate(args.pop("task"), args.pop("framework"), args.pop("code"), **args)
    assert err.value.status_code is grpc.StatusCode.INVALID_ARGUMENT  # what came over the wire
    assert fragment in err.value.message
    # in a batch the same item comes back REJECTED with the same message; the stream survives
    good = EvaluationRequest("mnist1d", "torch", list_seeds("mnist1d", "torch")[0].code, max_steps=10)
    bad = EvaluationRequest(**{"task": "mnist1d", "framework": "torch", "code": good.code, **kwargs})
    results = {r.status for r in client.evaluate_many([bad, good])}
    assert results == {Status.REJECTED, Status.OK}


def test_concurrent_clients_agree_with_sequential_runs_and_repeats_are_cached(any_server):
    """Two clients × 10 requests at once; the answers equal those of a sequential pass."""
    programs = [(s.framework, s.code) for s in SEEDS if s.framework == "torch"] + [
        (framework_of(p.read_text()), p.read_text()) for p in sorted(PROGRAMS.glob("bad_*.py"))[:3]
    ]
    programs = (programs * 3)[:10]
    salt = uuid.uuid4().hex  # fresh work for this test: a comment makes the code unique
    programs = [(fw, f"# {salt}\n{code}") for fw, code in programs]
    outcomes: dict[int, list] = {}

    def run_client(n: int) -> None:
        with EvaluatorClient(any_server.endpoint) as c:
            outcomes[n] = [c.evaluate("mnist1d", fw, code, max_steps=30, seed=3) for fw, code in programs]

    threads = [threading.Thread(target=run_client, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert set(outcomes) == {0, 1} and all(len(v) == 10 for v in outcomes.values())

    with EvaluatorClient(any_server.endpoint) as c:
        sequential = [c.evaluate("mnist1d", fw, code, max_steps=30, seed=3) for fw, code in programs]

    def essence(r):
        return (r.status, r.val_accuracy, r.test_accuracy, r.num_params, r.best_step)

    for a, b, s in zip(outcomes[0], outcomes[1], sequential, strict=True):
        assert essence(a) == essence(b) == essence(s)
    assert all(r.cached for r in sequential)  # everything was computed once already
    # programs repeat inside the list (10 requests, 7 distinct programs): the repeats were cached too
    assert sum(r.cached for r in outcomes[0] + outcomes[1]) >= 20 - 7


def test_retried_request_id_never_runs_twice(client):
    code = f"# {uuid.uuid4().hex}\n" + list_seeds("mnist1d", "torch")[0].code
    first = client.evaluate("mnist1d", "torch", code, max_steps=10, request_id="fixed-" + code[2:12])
    again = client.evaluate("mnist1d", "torch", code, max_steps=10, request_id="fixed-" + code[2:12])
    assert first.ok and again == first  # the stored answer itself, not a second run


def test_health_and_reflection(any_server):
    with grpc.insecure_channel(any_server.endpoint) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", "evoprompt.evaluator.v1.Evaluator"):
            status = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status
            assert status == health_pb2.HealthCheckResponse.SERVING
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        replies = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
        names = {s.name for reply in replies for s in reply.list_services_response.service}
    assert "evoprompt.evaluator.v1.Evaluator" in names


def test_server_info_and_tasks(client, any_server):
    info = client.server_info()
    assert info.backend == any_server.executor.backend and info.slots == 2 and info.max_code_bytes == 65536
    assert set(info.images) == {"torch", "flax", "haiku"}
    tasks = client.list_tasks()
    (task,) = [t for t in tasks if t.name == "mnist1d"]
    assert task.max_steps == 8000 and set(task.frameworks) == {"torch", "flax"}
    clrs = [t for t in tasks if t.name.startswith("clrs/")]
    assert len(clrs) == 30 and all(t.frameworks == ("haiku",) and t.max_steps == 2000 for t in clrs)


def test_timeout_kills_the_evaluation(client):
    code = "import time\ntime.sleep(3600)\nclass Model: pass\n"
    res = client.evaluate("mnist1d", "torch", code, max_steps=10, timeout_seconds=3)
    assert res.status is Status.TIMEOUT and "3" in res.message
    assert res.wall_seconds < 30


def test_cancel_and_client_deadline_stop_the_evaluation(client, any_server):
    from evoprompt.sdk import DeadlineExceededError

    code = f"# {uuid.uuid4().hex}\nimport time\ntime.sleep(3600)\nclass Model: pass\n"
    rid = uuid.uuid4().hex
    answer: list = []
    t = threading.Thread(target=lambda: answer.append(client.evaluate("mnist1d", "torch", code, request_id=rid)))
    t.start()
    _wait_until(lambda: client.server_info().running >= 1)
    assert client.cancel(rid)
    t.join(timeout=30)
    assert answer and answer[0].status is Status.CANCELLED

    with pytest.raises(DeadlineExceededError):
        client.evaluate("mnist1d", "torch", code + "\n# deadline", timeout=3)
    _wait_until(lambda: client.server_info().running == 0 and client.server_info().queued == 0, limit=30)
    _wait_until(lambda: not job_containers(any_server), limit=15)


def _wait_until(predicate, limit: float = 60.0) -> None:
    import time

    end = time.monotonic() + limit
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError("condition not reached in time")


def test_no_container_outlives_its_evaluation(client, any_server):
    code = f"# {uuid.uuid4().hex}\nimport time\ntime.sleep(3600)\nclass Model: pass\n"
    res = client.evaluate("mnist1d", "torch", code, timeout_seconds=2)
    assert res.status is Status.TIMEOUT
    _wait_until(lambda: not job_containers(any_server), limit=15)


def test_memory_bomb_is_oom(docker_server):
    code = "x = []\nwhile True:\n    x.append(bytearray(64 * 1024 * 1024))\n"
    with EvaluatorClient(docker_server.endpoint) as c:
        res = c.evaluate("mnist1d", "torch", code, max_steps=10)
    assert res.status is Status.OOM and "memory limit" in res.message
    _wait_until(lambda: not job_containers(docker_server), limit=15)


def test_the_verifier_holds_no_candidate_code(docker_server):
    """The verifier's job folder holds the exported program, its tensors and the spec, never the
    candidate's file; its data holds no training inputs; the result is the verifier's."""
    executor = docker_server.executor
    seen: list[tuple[dict, list[str]]] = []
    real_run = executor.run

    def recording_run(job, cancel):
        spec = json.loads((job.input_dir / "spec.json").read_text())
        seen.append((spec, sorted(p.name for p in job.input_dir.iterdir())))
        return real_run(job, cancel)

    executor.run = recording_run
    try:
        seed = next(s for s in list_seeds("mnist1d", "torch") if s.name == "cnn")
        with EvaluatorClient(docker_server.endpoint) as c:
            res = c.evaluate("mnist1d", "torch", f"{seed.code}\n# {uuid.uuid4().hex}\n", max_steps=50)
    finally:
        del executor.run
    assert res.ok and res.verified, res.message
    (train_spec, train_files), (verify_spec, verify_files) = seen
    assert "candidate.py" in train_files and train_spec.get("role", "train") == "train"
    assert verify_spec["role"] == "verify" and "candidate.py" not in verify_files
    assert set(verify_files) <= {"spec.json", "program.json", "tensors.npz", "ready"}
    assert res.num_params == 5210 and res.num_state == 0
