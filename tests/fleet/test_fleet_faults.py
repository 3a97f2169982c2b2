"""A worker node lost in the middle of a run (its raylet killed): every request is answered exactly once
(run again on the node that is left), the store holds each once, and what the lost node left behind is
removed when its agent next starts."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from evoprompt.sdk import EvaluationRequest, Status
from tests.fleet.conftest import WORKERS, node_containers, start_front_door
from tests.support.servers import SAMPLES, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.docker, pytest.mark.fleet]

CNN = (SAMPLES / "mnist1d" / "cnn_torch.py").read_text()
STEPS = 1500  # seconds of training each, so that the node dies with work on it


def busy(door, node: str) -> bool:
    with door.client() as client:
        return any(n.name == node and n.free_slots == 0 for n in client.server_info().nodes)


def test_a_node_lost_mid_run_costs_a_rerun_not_an_answer(cluster, tmp_path):
    home = tmp_path / "door"
    door = start_front_door(cluster, home)
    requests = [EvaluationRequest("mnist1d", "torch", CNN, max_steps=STEPS, seed=s, request_id=f"lost-{s}")
                for s in range(6)]
    answers: list = []
    errors: list[BaseException] = []

    def evaluate() -> None:
        try:
            with door.client() as client:
                answers.extend(client.evaluate_many(requests, timeout=1200))
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            errors.append(exc)

    caller = threading.Thread(target=evaluate)
    caller.start()
    try:
        wait_until(lambda: busy(door, "node-2") and busy(door, "node-1"), 300)
        cluster.kill_raylet("node-2")
        caller.join(timeout=1200)
        assert not caller.is_alive() and not errors, errors
    finally:
        stderr = door.stop()
    ids = sorted(r.request_id for r in answers)
    assert ids == sorted(r.request_id for r in requests), ids  # each answered, once
    assert all(r.status is Status.OK for r in answers), [(r.request_id, r.message) for r in answers if not r.ok]
    assert "running it again elsewhere" in stderr, stderr[-3000:]
    with sqlite3.connect(home / "results.sqlite3") as db:
        stored = sorted(row[0] for row in db.execute("SELECT request_id FROM results"))
    assert stored == ids

    left = {c.id for c in node_containers(door, "node-2")}
    assert left, "the lost node left no container behind: the test did not kill it mid-run"
    cluster.start_worker("node-2")
    again = start_front_door(cluster, home)  # same home: the same front door, so the same agents' labels
    try:
        wait_until(lambda: not left & {c.id for c in node_containers(again, "node-2")}, 120)
    finally:
        again.stop()
    assert not [c.name for node in WORKERS for c in node_containers(again, node)]
