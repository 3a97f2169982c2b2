"""`EvaluatorClient`: the blocking client. Every call retries UNAVAILABLE and RESOURCE_EXHAUSTED with
backoff; that is safe because every evaluation carries a request_id, which the server never runs
twice. `timeout` arguments are per-call deadlines in seconds (None: wait as long as it takes).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

import grpc

from ._core import ClientCore, PendingBatch, absolute, chunks, fit_batch_size, remaining, with_request_ids
from .proto import evaluator_pb2 as pb
from .types import EvaluationRequest, EvaluationResult, ServerInfo, TaskInfo

T = TypeVar("T")

__all__ = ["EvaluatorClient"]


class EvaluatorClient(ClientCore):
    """Blocking calls; the constructor's arguments are `ClientCore`'s."""

    _channels = grpc

    def _call(self, fn: Callable[..., T], request: Any, timeout: float | None) -> T:
        deadline = absolute(timeout)
        attempt = 0
        while True:
            try:
                return fn(request, timeout=remaining(deadline), metadata=self._metadata)
            except grpc.RpcError as err:
                time.sleep(self._give_up_or_pause(err, attempt, deadline))
                attempt += 1

    def wait_ready(self, timeout: float = 10.0) -> None:
        """Block until the channel connects; raises EvaluatorUnavailableError after `timeout`."""
        try:
            grpc.channel_ready_future(self._channel).result(timeout=timeout)
        except grpc.FutureTimeoutError:
            raise self._not_ready(timeout) from None

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
        if not todo:
            return
        size = batch_size or fit_batch_size(self.server_info().queue_capacity)
        deadline = absolute(timeout)
        for chunk in chunks(todo, size):
            yield from self._batch(PendingBatch(chunk), deadline)

    def _batch(self, batch: PendingBatch, deadline: float | None) -> Iterator[EvaluationResult]:
        while batch.pending:
            stream = self._stub.EvaluateBatch(batch.message(), timeout=remaining(deadline), metadata=self._metadata)
            try:
                for msg in stream:
                    result = batch.accept(msg)
                    if result is not None:
                        yield result
            except grpc.RpcError as err:
                time.sleep(self._give_up_or_pause(err, batch.attempt, deadline))
                batch.attempt += 1
                continue
            finally:
                stream.cancel()  # no-op when finished; stops the server's work when we were abandoned
            batch.check_complete()

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> EvaluatorClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

