"""The gRPC servicer: convert messages, validate, delegate to the scheduler. Nothing else."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Iterator

import grpc

from evoprompt.sdk.errors import InvalidRequestError, QueueFullError
from evoprompt.sdk.limits import MAX_BATCH, MAX_CODE_BYTES
from evoprompt.sdk.proto import evaluator_pb2 as pb
from evoprompt.sdk.proto import evaluator_pb2_grpc as pb_grpc
from evoprompt.sdk.types import EvaluationResult, Status

from .errors import grpc_errors, grpc_stream_errors
from .metrics import Metrics
from .scheduler import Scheduler, Ticket
from .settings import EvaluatorSettings
from .tasks import Task
from .validation import ValidRequest, validate
from .version import EVALUATOR_VERSION


class EvaluatorServicer(pb_grpc.EvaluatorServicer):
    def __init__(self, scheduler: Scheduler, settings: EvaluatorSettings, tasks: dict[str, Task],
                 metrics: Metrics | None = None) -> None:
        """`tasks`: the server's own (configured_tasks: held-out data from its secret), never a default."""
        self.scheduler = scheduler
        self.settings = settings
        self.metrics = metrics
        self.tasks = tasks

    def _answer(self, result: EvaluationResult) -> pb.EvaluateResponse:
        if self.metrics is not None:
            self.metrics.observe(result)
        return result.to_proto()

    def _validate(self, request: pb.EvaluateRequest) -> ValidRequest:
        return validate(
            request_id=request.request_id,
            task=request.task,
            framework=request.framework,
            code=request.code,
            max_steps=request.max_steps,
            seed=request.seed,
            timeout_seconds=request.timeout_seconds,
            server_timeout=self.settings.timeout,
            tasks=self.tasks,
        )

    @grpc_errors
    def ListTasks(self, request: pb.ListTasksRequest, context: grpc.ServicerContext) -> pb.ListTasksResponse:
        return pb.ListTasksResponse(
            tasks=[
                pb.TaskInfo(
                    name=t.name,
                    frameworks=list(t.frameworks),
                    default_steps=t.recipe.default_steps,
                    max_steps=t.recipe.max_steps,
                    description=t.description,
                )
                for t in self.tasks.values()
            ]
        )

    def _submit(self, requests: list[ValidRequest]) -> list[Ticket]:
        try:
            return self.scheduler.submit_many(requests)
        except QueueFullError:
            if self.metrics is not None:
                self.metrics.queue_full.inc()
            raise

    @grpc_errors
    def Evaluate(self, request: pb.EvaluateRequest, context: grpc.ServicerContext) -> pb.EvaluateResponse:
        (ticket,) = self._submit([self._validate(request)])
        context.add_callback(ticket.release)  # the caller went away: maybe nobody waits any more
        return self._answer(ticket.result())

    @grpc_stream_errors
    def EvaluateBatch(
        self, request: pb.EvaluateBatchRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.EvaluateResponse]:
        if len(request.requests) > MAX_BATCH:
            raise InvalidRequestError(f"a batch holds at most {MAX_BATCH} requests, not {len(request.requests)}")
        if len(request.requests) > self.scheduler.queue_capacity:
            raise InvalidRequestError(
                f"a batch of {len(request.requests)} cannot fit in this server's queue of "
                f"{self.scheduler.queue_capacity}; send smaller batches"
            )
        valid: list[ValidRequest] = []
        rejected: list[pb.EvaluateResponse] = []
        for item in request.requests:
            try:
                valid.append(self._validate(item))
            except InvalidRequestError as exc:
                rejected.append(
                    self._answer(EvaluationResult(request_id=item.request_id, status=Status.REJECTED,
                                                  message=str(exc), task=item.task, framework=item.framework))
                )
        tickets = self._submit(valid)
        for ticket in tickets:
            context.add_callback(ticket.release)
        yield from rejected
        futures = {t.future: t for t in tickets}
        for future in concurrent.futures.as_completed(futures):
            yield self._answer(future.result())

    @grpc_errors
    def Cancel(self, request: pb.CancelRequest, context: grpc.ServicerContext) -> pb.CancelResponse:
        if not request.request_id:
            raise InvalidRequestError("request_id is required")
        found = self.scheduler.cancel(request.request_id)
        message = "cancelled" if found else f"no queued or running evaluation has request_id {request.request_id!r}"
        return pb.CancelResponse(cancelled=found, message=message)

    @grpc_errors
    def GetServerInfo(self, request: pb.GetServerInfoRequest, context: grpc.ServicerContext) -> pb.ServerInfo:
        queued, running = self.scheduler.load()
        executor = self.scheduler.executor
        images = {}
        for task in self.tasks.values():
            for fw in task.frameworks:
                images[fw] = executor.sandbox_id(fw)
        return pb.ServerInfo(
            version=EVALUATOR_VERSION,
            backend=executor.backend,
            slots=len(self.scheduler.slots),
            queue_capacity=self.scheduler.queue_capacity,
            queued=queued,
            running=running,
            gpus=list(self.settings.gpus),
            images=images,
            max_code_bytes=MAX_CODE_BYTES,
            timeout_seconds=self.settings.timeout,
            executor=executor.kind,
            nodes=[node.to_proto() for node in executor.nodes(running)],
        )
