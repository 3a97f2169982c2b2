"""Scheduler contract: dedup, cache, idempotent request ids, bounded queue, cancellation."""

from __future__ import annotations

import pytest

from evoprompt.evaluator.sandbox.base import Limits
from evoprompt.evaluator.scheduler import Scheduler
from evoprompt.evaluator.store import ResultStore
from evoprompt.evaluator.tasks import configured_tasks
from evoprompt.evaluator.validation import validate
from evoprompt.sdk.errors import QueueFullError
from evoprompt.sdk.types import Status
from tests.support.fakes import FakeExecutor

PUBLIC_TASKS = configured_tasks("")


def request(code: str = "class Model: pass", rid: str = "", **kw):
    args = {"request_id": rid, "task": "mnist1d", "framework": "torch", "code": code, "max_steps": 10,
            "seed": 0, "timeout_seconds": 0.0, "server_timeout": 60.0, "tasks": PUBLIC_TASKS}
    args.update(kw)
    return validate(**args)


@pytest.fixture
def make_scheduler(tmp_path):
    made = []

    def make(executor=None, slots=1, capacity=8):
        sandbox = executor or FakeExecutor(slots=[None] * slots)
        s = Scheduler(sandbox, ResultStore(tmp_path / "r.sqlite3"),
                      queue_capacity=capacity, work_dir=tmp_path / "work", limits=Limits())
        made.append(s)
        return s, sandbox

    yield make
    for s in made:
        s.close()


def test_result_is_scored_by_server_and_stored(make_scheduler, tmp_path):
    scheduler, sandbox = make_scheduler()
    res = scheduler.submit(request(rid="a")).result(10)
    assert res.status is Status.OK and res.num_params == len("class Model: pass")
    assert 0 < res.val_accuracy < 0.2  # all-zero predictions: about one class in ten
    assert not res.cached
    assert scheduler.store.get("a") == res
    assert not any((tmp_path / "work" / "jobs").iterdir())  # job folders removed


def test_identical_work_runs_once(make_scheduler):
    scheduler, sandbox = make_scheduler()
    first = scheduler.submit(request(rid="a")).result(10)
    again = scheduler.submit(request(rid="b")).result(10)
    retry = scheduler.submit(request(rid="a")).result(10)
    assert len(sandbox.runs) == 1
    assert again.cached and again.request_id == "b" and again.val_accuracy == first.val_accuracy
    assert retry == first


def test_concurrent_duplicates_join_in_flight_work(make_scheduler):
    scheduler, sandbox = make_scheduler(FakeExecutor(auto_open=False))
    tickets = scheduler.submit_many([request(rid="a"), request(rid="b"), request(rid="a")])
    sandbox.gate.set()
    results = [t.result(10) for t in tickets]
    assert len(sandbox.runs) == 1
    assert [r.request_id for r in results] == ["a", "b", "a"]
    assert [r.cached for r in results] == [False, True, False]


def test_full_queue_is_refused_whole(make_scheduler):
    scheduler, sandbox = make_scheduler(FakeExecutor(auto_open=False), capacity=2)
    running = scheduler.submit(request("a = 1"))
    assert sandbox.started.acquire(timeout=5)
    scheduler.submit_many([request("b = 1"), request("c = 1")])
    with pytest.raises(QueueFullError, match="queue is full"):
        scheduler.submit(request("d = 1"))
    sandbox.gate.set()
    assert running.result(10).status is Status.OK


def test_cancel_queued_and_running(make_scheduler):
    scheduler, sandbox = make_scheduler(FakeExecutor(auto_open=False))
    running = scheduler.submit(request("a = 1", rid="run"))
    assert sandbox.started.acquire(timeout=5)
    queued = scheduler.submit(request("b = 1", rid="wait"))
    assert scheduler.cancel("wait") and scheduler.cancel("run")
    assert not scheduler.cancel("unknown")
    assert queued.result(10).status is Status.CANCELLED
    assert running.result(10).status is Status.CANCELLED
    # Cancelled work is not stored: a retry of the same request_id runs again.
    sandbox.gate.set()
    assert scheduler.submit(request("a = 1", rid="run")).result(10).status is Status.OK


def test_work_nobody_waits_for_is_cancelled(make_scheduler):
    scheduler, sandbox = make_scheduler(FakeExecutor(auto_open=False))
    first = scheduler.submit(request(rid="x"))
    joined = scheduler.submit(request(rid="y"))
    assert sandbox.started.acquire(timeout=5)
    first.release()
    assert not joined.future.done()  # someone still waits
    joined.release()
    assert first.result(10).status is Status.CANCELLED
