"""`AsyncEvaluatorClient`: the asyncio twin of EvaluatorClient (same methods, same retry rules, one
shared core), for callers such as the search loop that keep many evaluations in flight from one
thread."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any, TypeVar

import grpc
import grpc.aio

from ._core import ClientCore, PendingBatch, absolute, chunks, fit_batch_size, remaining, with_request_ids
from .proto import evaluator_pb2 as pb
from .types import EvaluationRequest, EvaluationResult, ServerInfo, TaskInfo

T = TypeVar("T")


class AsyncEvaluatorClient(ClientCore):
    """Coroutine calls; the constructor's arguments are `ClientCore`'s."""

    _channels = grpc.aio

    async def _call(self, fn: Callable[..., Awaitable[T]], request: Any, timeout: float | None) -> T:
        deadline = absolute(timeout)
        attempt = 0
        while True:
            try:
                return await fn(request, timeout=remaining(deadline), metadata=self._metadata)
            except grpc.aio.AioRpcError as err:
                await asyncio.sleep(self._give_up_or_pause(err, attempt, deadline))
                attempt += 1

    async def wait_ready(self, timeout: float = 10.0) -> None:
        try:
            await asyncio.wait_for(self._channel.channel_ready(), timeout)
        except TimeoutError:
            raise self._not_ready(timeout) from None

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
        size = batch_size or fit_batch_size((await self.server_info()).queue_capacity)
        deadline = absolute(timeout)
        for chunk in chunks(todo, size):
            async for result in self._batch(PendingBatch(chunk), deadline):
                yield result

    async def _batch(self, batch: PendingBatch, deadline: float | None) -> AsyncIterator[EvaluationResult]:
        while batch.pending:
            call = self._stub.EvaluateBatch(batch.message(), timeout=remaining(deadline), metadata=self._metadata)
            try:
                async for msg in call:
                    result = batch.accept(msg)
                    if result is not None:
                        yield result
            except grpc.aio.AioRpcError as err:
                await asyncio.sleep(self._give_up_or_pause(err, batch.attempt, deadline))
                batch.attempt += 1
                continue
            finally:
                call.cancel()
            batch.check_complete()

    async def close(self) -> None:
        await self._channel.close()

    async def __aenter__(self) -> AsyncEvaluatorClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

