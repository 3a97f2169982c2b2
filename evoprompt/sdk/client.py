"""`EvaluatorClient`: the blocking client. Every call retries UNAVAILABLE and RESOURCE_EXHAUSTED with
backoff; that is safe because every evaluation carries a request_id, which the server never runs
twice. `timeout` arguments are per-call deadlines in seconds (None: wait as long as it takes).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from typing import Any, TypeVar

import grpc

from ._policy import RetryPolicy, absolute, auth_metadata, channel_options, normalize_target, remaining
from .errors import EvaluatorError, EvaluatorUnavailableError, from_rpc_error
from .proto import evaluator_pb2 as pb
from .proto import evaluator_pb2_grpc as pb_grpc
from .types import EvaluationRequest, EvaluationResult, ServerInfo, TaskInfo

T = TypeVar("T")
MAX_BATCH = 1024


def new_request_id() -> str:
    return uuid.uuid4().hex


def with_request_ids(requests: Iterable[EvaluationRequest]) -> list[EvaluationRequest]:
    """Give every request an id (so retries are idempotent); refuse duplicates in one call."""
    out = [r if r.request_id else replace(r, request_id=new_request_id()) for r in requests]
    ids = [r.request_id for r in out]
    if len(set(ids)) != len(ids):
        raise ValueError("request_ids must be unique within one evaluate_many call")
    return out


class EvaluatorClient:
    def __init__(
        self,
        target: str | Sequence[str],
        *,
        timeout: float | None = 30.0,
        retry: RetryPolicy | None = None,
        metadata: Sequence[tuple[str, str]] = (),
        token: str | None = None,
        tls: bool = False,
        root_certificates: bytes | None = None,
    ) -> None:
        """`target`: "host:port", "a:p,b:p" (round-robin) or a gRPC URI such as dns:///name:port.
        `timeout`: deadline of the quick calls (list_tasks, server_info, cancel). `token`: the
        server's bearer token. `tls` / `root_certificates` (PEM bytes of the CA; None: the system's):
        talk TLS."""
        self.target = normalize_target(target)
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self._metadata = auth_metadata(metadata, token)
        if tls or root_certificates is not None:
            credentials = grpc.ssl_channel_credentials(root_certificates=root_certificates)
            self._channel = grpc.secure_channel(self.target, credentials, options=channel_options())
        else:
            self._channel = grpc.insecure_channel(self.target, options=channel_options())
        self._stub = pb_grpc.EvaluatorStub(self._channel)

    # -- plumbing ------------------------------------------------------------------------------
    def _call(self, fn: Callable[..., T], request: Any, timeout: float | None) -> T:
        deadline = absolute(timeout)
        attempt = 0
        while True:
            try:
                return fn(request, timeout=remaining(deadline), metadata=self._metadata)
            except grpc.RpcError as err:
                pause = self.retry.should_retry(err.code(), attempt, deadline)
                if pause is None:
                    raise from_rpc_error(err) from None
                attempt += 1
                time.sleep(pause)

    # -- API -----------------------------------------------------------------------------------
    def wait_ready(self, timeout: float = 10.0) -> None:
        """Block until the channel connects; raises EvaluatorUnavailableError after `timeout`."""
        try:
            grpc.channel_ready_future(self._channel).result(timeout=timeout)
        except grpc.FutureTimeoutError:
            raise EvaluatorUnavailableError(
                grpc.StatusCode.UNAVAILABLE, f"no evaluator answered at {self.target} within {timeout:g} s"
            ) from None

    def list_tasks(self) -> list[TaskInfo]:
        resp = self._call(self._stub.ListTasks, pb.ListTasksRequest(), self.timeout)
        return [TaskInfo.from_proto(t) for t in resp.tasks]

    def server_info(self) -> ServerInfo:
        return ServerInfo.from_proto(self._call(self._stub.GetServerInfo, pb.GetServerInfoRequest(), self.timeout))

    def cancel(self, request_id: str) -> bool:
        """Stop a queued or running evaluation; True when one was found."""
        return self._call(self._stub.Cancel, pb.CancelRequest(request_id=request_id), self.timeout).cancelled

    def evaluate(
        self,
        task: str,
        framework: str,
        code: str,
        *,
        max_steps: int = 0,
        seed: int = 0,
        request_id: str = "",
        timeout_seconds: float = 0.0,
        timeout: float | None = None,
    ) -> EvaluationResult:
        """Evaluate one candidate and wait for its result. `timeout_seconds` lowers the server's
        wall-clock limit of the run; `timeout` is this call's deadline (when it passes, the server
        stops the evaluation)."""
        request = EvaluationRequest(task, framework, code, max_steps, seed, request_id, timeout_seconds)
        return self.evaluate_request(request, timeout=timeout)

    def evaluate_request(self, request: EvaluationRequest, *, timeout: float | None = None) -> EvaluationResult:
        (request,) = with_request_ids([request])
        return EvaluationResult.from_proto(self._call(self._stub.Evaluate, request.to_proto(), timeout))

    def evaluate_many(
        self, requests: Iterable[EvaluationRequest], *, timeout: float | None = None, batch_size: int | None = None
    ) -> Iterator[EvaluationResult]:
        """Evaluate many candidates over EvaluateBatch streams; yields results as they finish.

        Batches are cut to fit the server's queue. A stream that breaks is re-sent for the
        requests still unanswered, under the same request_ids, so nothing runs twice. Invalid
        items come back with status REJECTED. Stopping the iteration cancels what is unfinished.
        """
        todo = with_request_ids(requests)
        size = batch_size or max(1, min(MAX_BATCH, self.server_info().queue_capacity)) if todo else 1
        deadline = absolute(timeout)
        for start in range(0, len(todo), size):
            yield from self._batch(todo[start:start + size], deadline)

    def _batch(self, chunk: list[EvaluationRequest], deadline: float | None) -> Iterator[EvaluationResult]:
        pending = {r.request_id: r for r in chunk}
        attempt = 0
        while pending:
            message = pb.EvaluateBatchRequest(requests=[r.to_proto() for r in pending.values()])
            stream = self._stub.EvaluateBatch(message, timeout=remaining(deadline), metadata=self._metadata)
            try:
                for msg in stream:
                    result = EvaluationResult.from_proto(msg)
                    if pending.pop(result.request_id, None) is not None:
                        attempt = 0
                        yield result
            except grpc.RpcError as err:
                pause = self.retry.should_retry(err.code(), attempt, deadline)
                if pause is None:
                    raise from_rpc_error(err) from None
                attempt += 1
                time.sleep(pause)
                continue
            finally:
                stream.cancel()  # no-op when finished; stops the server's work when we were abandoned
            if pending:
                raise EvaluatorError(grpc.StatusCode.INTERNAL,
                                     f"the server ended the batch without answering {sorted(pending)}")

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> EvaluatorClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
