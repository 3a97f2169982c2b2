"""Queue, slots, de-duplication and cancellation of evaluations.

- N worker threads, one per slot; a slot may own a GPU share. A bounded queue feeds them; a
  submission that does not fit raises QueueFullError (RESOURCE_EXHAUSTED for remote callers).
- Idempotency: a request_id that has a stored result gets it back, one in flight is joined; work
  identical to a stored cacheable result (same code, task, framework, steps, seed and sandbox) is
  answered from the store with cached=true; identical work in flight is joined. Nothing runs twice.
- Cancellation: `cancel(request_id)` stops queued or running work; a caller that goes away
  releases its ticket, and work nobody waits for any more is cancelled (its container stopped).
- CANCELLED and INTERNAL_ERROR outcomes are not stored, so a retry of that request_id runs again.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from pathlib import Path

from evoprompt.sdk.errors import QueueFullError
from evoprompt.sdk.types import EvaluationResult, Status

from .exchange import CheckpointChoice
from .executor import Executor
from .files import remove_tree
from .instance import DATA, JOBS
from .outcome import bad_output, base_result, decide
from .outputs import BadOutput
from .protocol import open_to_sandbox
from .sandbox.base import GpuShare, Limits, SandboxJob
from .scoring import Validation
from .status_policy import is_stored
from .store import ResultStore
from .validation import ValidRequest
from .verification import verification_job, verified

log = logging.getLogger(__name__)


@dataclass
class _Waiter:
    request_id: str
    future: Future[EvaluationResult]
    joined: bool  # attached to someone else's identical work: its answer is marked cached


@dataclass(eq=False)  # identity semantics: jobs live in sets
class _Job:
    req: ValidRequest
    key: str
    sandbox_id: str
    job_id: str = field(default_factory=lambda: uuid.uuid4().hex[:16])
    waiters: list[_Waiter] = field(default_factory=list)
    holders: int = 0  # callers currently waiting; 0 after they all left means: cancel
    cancel: threading.Event = field(default_factory=threading.Event)
    running: bool = False


@dataclass
class Ticket:
    """A caller's claim on one request's result."""

    request_id: str
    future: Future[EvaluationResult]
    _scheduler: Scheduler | None = None
    _job: _Job | None = None
    _released: bool = False

    def result(self, timeout: float | None = None) -> EvaluationResult:
        return self.future.result(timeout)

    def release(self) -> None:
        """The caller stopped waiting (finished, cancelled or disconnected)."""
        if not self._released and self._scheduler is not None and self._job is not None:
            self._released = True
            self._scheduler._release(self._job)


class Scheduler:
    def __init__(self, executor: Executor, store: ResultStore, *, queue_capacity: int, work_dir: Path,
                 limits: Limits) -> None:
        """One worker per slot of `executor`; job folders and data files under `work_dir` (the server's
        own: instance.py)."""
        self.executor = executor
        self.store = store
        self.queue_capacity = queue_capacity
        self.work_dir = work_dir
        self.limits = limits
        self.slots = executor.slots()
        self.data_dir = work_dir / DATA
        self._lock = threading.Condition()
        self._queue: deque[_Job] = deque()
        self._by_request: dict[str, _Job] = {}
        self._by_key: dict[str, _Job] = {}
        self._running: set[_Job] = set()
        self._closed = False
        self._threads = [
            threading.Thread(target=self._worker, args=(slot,), name=f"evoprompt-slot-{i}", daemon=True)
            for i, slot in enumerate(self.slots)
        ]
        for thread in self._threads:
            thread.start()

    # -- submission -------------------------------------------------------------------------

    def submit(self, req: ValidRequest) -> Ticket:
        return self.submit_many([req])[0]

    def submit_many(self, reqs: list[ValidRequest]) -> list[Ticket]:
        """Admit all or none: raises QueueFullError if the new work does not fit in the queue."""
        with self._lock:
            if self._closed:
                raise QueueFullError("the evaluator is shutting down; retry against another server")
            batch_requests: dict[str, _Job] = {}
            batch_keys: dict[str, _Job] = {}
            plans = [self._plan(req, batch_requests, batch_keys) for req in reqs]
            new_jobs = {id(job): job for kind, job, _ in plans if kind == "new"}
            if len(self._queue) + len(new_jobs) > self.queue_capacity:
                raise QueueFullError(
                    f"the evaluator's queue is full ({len(self._queue)} of {self.queue_capacity} waiting, "
                    f"{len(new_jobs)} more asked for); retry with backoff or add evaluator capacity"
                )
            tickets = []
            for kind, job, ticket in plans:
                if kind in ("new", "join"):
                    assert job is not None
                    if kind == "new" and id(job) in new_jobs:
                        del new_jobs[id(job)]
                        self._queue.append(job)
                        self._by_key[job.key] = job
                    self._by_request.setdefault(ticket.request_id, job)
                    job.holders += 1
                    ticket._scheduler, ticket._job = self, job
                tickets.append(ticket)
            self._lock.notify_all()
            return tickets

    def _plan(
        self, req: ValidRequest, batch_requests: dict[str, _Job], batch_keys: dict[str, _Job]
    ) -> tuple[str, _Job | None, Ticket]:
        """Where this request's answer comes from: the store, work in flight, or a new job.

        `batch_requests` and `batch_keys` hold what earlier requests of the same batch planned, so
        duplicates inside one batch are joined too.
        """
        rid = req.request_id
        stored = self.store.get(rid)
        if stored is not None:
            return "stored", None, _done(rid, stored)
        job = self._by_request.get(rid) or batch_requests.get(rid)
        if job is not None:  # a retry of a request in flight: share its future
            waiter = next(w for w in job.waiters if w.request_id == rid)
            return "join", job, Ticket(rid, waiter.future)
        sandbox_id = self.executor.sandbox_id(req.framework)
        key = req.cache_key(sandbox_id)
        cached = self.store.get_cached(key)
        if cached is not None:
            hit = replace(cached, request_id=rid, cached=True, stderr_tail="")
            return "stored", None, _done(rid, self.store.put(key, hit))
        future: Future[EvaluationResult] = Future()
        job = self._by_key.get(key) or batch_keys.get(key)
        if job is not None and not job.cancel.is_set():
            job.waiters.append(_Waiter(rid, future, joined=True))
            batch_requests[rid] = job
            return "join", job, Ticket(rid, future)
        job = _Job(req=req, key=key, sandbox_id=sandbox_id)
        job.waiters.append(_Waiter(rid, future, joined=False))
        batch_requests[rid] = batch_keys[key] = job
        return "new", job, Ticket(rid, future)

    # -- cancellation -----------------------------------------------------------------------

    def cancel(self, request_id: str) -> bool:
        """Cancel queued or running work of this request_id (and of requests joined to it)."""
        with self._lock:
            job = self._by_request.get(request_id)
            if job is None:
                return False
            self._cancel_locked(job)
            return True

    def _release(self, job: _Job) -> None:
        with self._lock:
            job.holders -= 1
            if job.holders <= 0 and not all(w.future.done() for w in job.waiters):
                log.info("nobody waits for job %s any more: cancelling it", job.job_id)
                self._cancel_locked(job)

    def _cancel_locked(self, job: _Job) -> None:
        job.cancel.set()
        if not job.running and job in self._queue:
            self._queue.remove(job)
            self._finish_locked(job, replace(base_result(job.req, job.sandbox_id), status=Status.CANCELLED,
                                             message="cancelled while waiting in the queue"))

    # -- workers ----------------------------------------------------------------------------

    def _worker(self, slot: GpuShare | None) -> None:
        while True:
            with self._lock:
                while not self._queue and not self._closed:
                    self._lock.wait()
                if self._closed:
                    return
                job = self._queue.popleft()
                job.running = True
                self._running.add(job)
            try:
                result = self._execute(job, slot)
            except BaseException as exc:  # never lose a slot or leave a caller waiting
                log.exception("job %s: unexpected failure", job.job_id)
                result = replace(base_result(job.req, job.sandbox_id), status=Status.INTERNAL_ERROR,
                                 message=f"the evaluator failed while running this job: {exc!r}")
            with self._lock:
                self._running.discard(job)
                self._finish_locked(job, result)

    def _execute(self, job: _Job, slot: GpuShare | None) -> EvaluationResult:
        """Run one job in the sandbox; never raises, never loses the job."""
        job_dir = self.work_dir / JOBS / job.job_id
        req = job.req
        choice = CheckpointChoice(req.task, req.task.recipe.checkpoints(req.steps), self.limits.output_bytes)
        sandbox_job = SandboxJob(job.job_id, req.framework, job_dir, req.timeout, self.limits, slot,
                                 data_dir=self.data_dir, data_name=req.task.data_name, exchange=choice)
        try:
            self._prepare(job, sandbox_job)
            run = self.executor.run(sandbox_job, job.cancel)
            result = decide(req, sandbox_job, run, job.sandbox_id, choice)
            if result.status is Status.OK and req.task.verifies(req.framework):
                assert choice.validation is not None
                result = self._verify(job, sandbox_job, result, choice.validation)
            return result
        except Exception as exc:
            log.exception("job %s failed inside the evaluator", job.job_id)
            return replace(base_result(job.req, job.sandbox_id), status=Status.INTERNAL_ERROR,
                           message=f"the evaluator failed while running this job: {exc}")
        finally:
            remove_tree(job_dir)

    def _verify(self, job: _Job, training: SandboxJob, result: EvaluationResult,
                validation: Validation) -> EvaluationResult:
        """Run the verifier on the training sandbox's exported model, in the same slot."""
        try:
            verify_job = verification_job(training, job.req, self.data_dir)
        except BadOutput as exc:  # the training sandbox's output, unusable as any other would be
            return replace(bad_output(result, exc), num_params=0, num_state=0)
        try:
            return verified(result, job.req, verify_job, self.executor.run(verify_job, job.cancel), validation)
        finally:
            remove_tree(verify_job.job_dir)

    def _prepare(self, job: _Job, sj: SandboxJob) -> None:
        sj.input_dir.mkdir(parents=True)
        req = job.req
        req.task.write_job(sj.input_dir, self.data_dir, req.framework, req.code, req.steps, req.seed,
                           threads=max(1, int(self.limits.cpus)),
                           gpu_memory_fraction=sj.gpu.memory_fraction if sj.gpu is not None else None)
        open_to_sandbox(sj.job_dir)

    def _finish_locked(self, job: _Job, result: EvaluationResult) -> None:
        """Store the result under every request_id that waited for it and wake the waiters."""
        for waiter in job.waiters:
            mine = replace(result, request_id=waiter.request_id, cached=waiter.joined)
            if is_stored(mine.status):
                mine = self.store.put(job.key, mine)
            self._by_request.pop(waiter.request_id, None)
            if not waiter.future.done():
                waiter.future.set_result(mine)
        if self._by_key.get(job.key) is job:
            del self._by_key[job.key]

    # -- introspection and shutdown ---------------------------------------------------------

    def load(self) -> tuple[int, int]:
        with self._lock:
            return len(self._queue), len(self._running)

    def close(self) -> None:
        """Cancel everything queued or running and stop the workers (the executor is its owner's to close)."""
        with self._lock:
            self._closed = True
            for job in list(self._queue) + list(self._running):
                self._cancel_locked(job)
            self._lock.notify_all()
        for thread in self._threads:
            thread.join(timeout=60)


def _done(request_id: str, result: EvaluationResult) -> Ticket:
    future: Future[EvaluationResult] = Future()
    future.set_result(result)
    return Ticket(request_id, future)
