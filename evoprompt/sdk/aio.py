"""`AsyncEvaluatorClient`: the asyncio twin of EvaluatorClient (same methods, same retry rules),
for callers such as the search loop that keep many evaluations in flight from one thread."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeVar

import grpc
import grpc.aio

from ._policy import RetryPolicy, absolute, auth_metadata, channel_options, normalize_target, remaining
from .client import MAX_BATCH, with_request_ids
from .errors import EvaluatorError, EvaluatorUnavailableError, from_rpc_error
from .proto import evaluator_pb2 as pb
from .proto import evaluator_pb2_grpc as pb_grpc
from .types import EvaluationRequest, EvaluationResult, ServerInfo, TaskInfo

T = TypeVar("T")


class AsyncEvaluatorClient:
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
        self.target = normalize_target(target)
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self._metadata = auth_metadata(metadata, token)
        if tls or root_certificates is not None:
            credentials = grpc.ssl_channel_credentials(root_certificates=root_certificates)
            self._channel = grpc.aio.secure_channel(self.target, credentials, options=channel_options())
        else:
            self._channel = grpc.aio.insecure_channel(self.target, options=channel_options())
        self._stub = pb_grpc.EvaluatorStub(self._channel)

    async def _call(self, fn: Callable[..., Awaitable[T]], request: Any, timeout: float | None) -> T:
        deadline = absolute(timeout)
        attempt = 0
        while True:
            try:
                return await fn(request, timeout=remaining(deadline), metadata=self._metadata)
            except grpc.aio.AioRpcError as err:
                pause = self.retry.should_retry(err.code(), attempt, deadline)
                if pause is None:
                    raise from_rpc_error(err) from None
                attempt += 1
                await asyncio.sleep(pause)

    async def wait_ready(self, timeout: float = 10.0) -> None:
        try:
            await asyncio.wait_for(self._channel.channel_ready(), timeout)
        except TimeoutError:
            raise EvaluatorUnavailableError(
                grpc.StatusCode.UNAVAILABLE, f"no evaluator answered at {self.target} within {timeout:g} s"
            ) from None

    async def list_tasks(self) -> list[TaskInfo]:
        resp = await self._call(self._stub.ListTasks, pb.ListTasksRequest(), self.timeout)
        return [TaskInfo.from_proto(t) for t in resp.tasks]

    async def server_info(self) -> ServerInfo:
        resp = await self._call(self._stub.GetServerInfo, pb.GetServerInfoRequest(), self.timeout)
        return ServerInfo.from_proto(resp)

    async def cancel(self, request_id: str) -> bool:
        resp = await self._call(self._stub.Cancel, pb.CancelRequest(request_id=request_id), self.timeout)
        return resp.cancelled

    async def evaluate(
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
        request = EvaluationRequest(task, framework, code, max_steps, seed, request_id, timeout_seconds)
        return await self.evaluate_request(request, timeout=timeout)

    async def evaluate_request(self, request: EvaluationRequest, *, timeout: float | None = None) -> EvaluationResult:
        (request,) = with_request_ids([request])
        return EvaluationResult.from_proto(await self._call(self._stub.Evaluate, request.to_proto(), timeout))

    async def evaluate_many(
        self, requests: Iterable[EvaluationRequest], *, timeout: float | None = None, batch_size: int | None = None
    ) -> AsyncIterator[EvaluationResult]:
        """As EvaluatorClient.evaluate_many: results in completion order, broken streams resumed."""
        todo = with_request_ids(requests)
        if not todo:
            return
        size = batch_size or max(1, min(MAX_BATCH, (await self.server_info()).queue_capacity))
        deadline = absolute(timeout)
        for start in range(0, len(todo), size):
            async for result in self._batch(todo[start:start + size], deadline):
                yield result

    async def _batch(self, chunk: list[EvaluationRequest], deadline: float | None) -> AsyncIterator[EvaluationResult]:
        pending = {r.request_id: r for r in chunk}
        attempt = 0
        while pending:
            message = pb.EvaluateBatchRequest(requests=[r.to_proto() for r in pending.values()])
            call = self._stub.EvaluateBatch(message, timeout=remaining(deadline), metadata=self._metadata)
            try:
                async for msg in call:
                    result = EvaluationResult.from_proto(msg)
                    if pending.pop(result.request_id, None) is not None:
                        attempt = 0
                        yield result
            except grpc.aio.AioRpcError as err:
                pause = self.retry.should_retry(err.code(), attempt, deadline)
                if pause is None:
                    raise from_rpc_error(err) from None
                attempt += 1
                await asyncio.sleep(pause)
                continue
            finally:
                call.cancel()
            if pending:
                raise EvaluatorError(grpc.StatusCode.INTERNAL,
                                     f"the server ended the batch without answering {sorted(pending)}")

    async def close(self) -> None:
        await self._channel.close()

    async def __aenter__(self) -> AsyncEvaluatorClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
