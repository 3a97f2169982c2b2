"""The ray executor end to end: a head and two worker nodes (real Ray), real Docker sandboxes on each.

Evaluations go through the front door (`evoprompt serve --executor ray`) with the SDK, the CLI and a
search, and must get what the local executor gives: the same scores, the same statuses for hostile
programs, nothing left behind.
"""

from __future__ import annotations

import json
import subprocess
import threading
from collections import Counter

import pytest

from evoprompt.sdk import EvaluationRequest, EvaluatorClient, Status
from evoprompt.sdk.errors import DeadlineExceededError
from tests.evaluator.test_hostile import nobody_processes
from tests.fleet.conftest import DATA_SECRET, WORKERS, job_containers, node_containers, start_front_door
from tests.support.servers import EVOPROMPT, HOSTILE, SAMPLES, start_server, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.docker, pytest.mark.fleet]

STEPS = 20
PROGRAMS = {name: (SAMPLES / "mnist1d" / f"{name}_torch.py").read_text() for name in ("cnn", "logistic")}


def twenty_four() -> list[EvaluationRequest]:
    return [EvaluationRequest("mnist1d", "torch", code, max_steps=STEPS, seed=seed)
            for seed in range(12) for code in PROGRAMS.values()]


def scores(result) -> tuple:
    return (result.status, result.val_accuracy, result.test_accuracy, result.num_params, result.num_state,
            result.best_step, result.checkpoints)


def test_24_evaluations_spread_over_the_nodes_and_score_as_the_local_executor(front_door, tmp_path):
    with front_door.client() as client:
        info = client.server_info()
        assert info.executor == "ray" and info.backend == "docker"
        assert [n.name for n in info.nodes] == WORKERS and all(n.slots == 1 for n in info.nodes), info
        on_ray = {(r.code_sha256, r.seed): r for r in client.evaluate_many(twenty_four(), timeout=1200)}
    assert len(on_ray) == 24
    assert all(r.status is Status.OK for r in on_ray.values()), [r.message for r in on_ray.values() if not r.ok]
    workers = Counter(r.worker for r in on_ray.values())
    assert set(workers) <= set(WORKERS) and len(workers) >= 2, workers

    local = start_server(tmp_path / "local", "docker", data_secret=DATA_SECRET, frameworks="torch")
    try:
        with EvaluatorClient(local.endpoint) as client:
            here = {(r.code_sha256, r.seed): r for r in client.evaluate_many(twenty_four(), timeout=1200)}
    finally:
        local.stop()
    assert {r.worker for r in here.values()} == {"local"}
    assert {k: scores(r) for k, r in on_ray.items()} == {k: scores(r) for k, r in here.items()}


def test_evaluate_cli_prints_where_it_ran(front_door):
    sample = SAMPLES / "mnist1d" / "logistic_torch.py"
    base = EVOPROMPT + ["evaluate", str(sample), "--task", "mnist1d", "--framework", "torch", "--max-steps", "7",
                        "--evaluator", front_door.endpoint]
    as_json = subprocess.run(base + ["--json"], capture_output=True, text=True, timeout=600)
    assert as_json.returncode == 0, as_json.stderr
    result = json.loads(as_json.stdout)
    assert result["status"] == "OK" and result["worker"] in WORKERS
    text = subprocess.run(base, capture_output=True, text=True, timeout=600)
    assert f"worker         {result['worker']}" in text.stdout, text.stdout


HOSTILE_PROGRAMS = ["fork_bomb_os", "memory_bomb_numpy", "fill_output", "sleep_forever", "daemon_double_fork"]


def expected_statuses(name: str) -> set[Status]:
    header = (HOSTILE / f"{name}.py").read_text().splitlines()[0]
    assert header.startswith("# expect: "), header
    return {Status[s] for s in header.split()[2].split("|")}


def test_hostile_programs_get_their_local_statuses_and_leave_nothing(cluster, tmp_path):
    before = set(nobody_processes())
    door = start_front_door(cluster, tmp_path / "door", "--memory-gb", "1", "--timeout", "25")
    try:
        with door.client() as client:
            requests = [EvaluationRequest("mnist1d", "torch", (HOSTILE / f"{n}.py").read_text(), max_steps=STEPS,
                                          request_id=n) for n in HOSTILE_PROGRAMS]
            results = {r.request_id: r for r in client.evaluate_many(requests, timeout=900)}
            health = client.server_info()
    finally:
        stderr = door.stop()
    wrong = {n: (results[n].status.name, results[n].message) for n in HOSTILE_PROGRAMS
             if results[n].status not in expected_statuses(n)}
    assert not wrong, wrong
    assert {r.worker for r in results.values()} <= set(WORKERS)
    assert health.executor == "ray" and len(health.nodes) == 2, "a node's agent did not survive its candidates"
    left = [c.name for node in WORKERS for c in node_containers(door, node)]
    assert not left, f"containers left on the nodes: {left}\n{stderr[-2000:]}"
    new = {key: name for key, name in nobody_processes().items() if key not in before}
    assert not new, f"processes of the sandbox user outlived their evaluations: {new}"


def test_search_completes_on_the_ray_backed_front_door(front_door, tmp_path):
    run_dir = tmp_path / "run"
    search = subprocess.run(
        EVOPROMPT + ["search", "--task", "mnist1d", "--framework", "torch", "--lm", "mutation", "--run-dir",
                     str(run_dir), "--rounds", "2", "--prompts", "2", "--samples", "2", "--parents", "2",
                     "--max-steps", "40", "--evaluator", front_door.endpoint, "--no-progress"],
        capture_output=True, text=True, timeout=1200)
    assert search.returncode == 0, search.stderr[-3000:]
    report = subprocess.run(EVOPROMPT + ["report", str(run_dir), "--json"], capture_output=True, text=True,
                            timeout=600)
    summary = json.loads(report.stdout)
    assert summary["rounds"] == 2 and summary["candidates"] == 2 * 2 * 2 and summary["evaluated"] > 0, summary


def test_cancel_and_a_callers_deadline_stop_the_remote_sandbox(front_door, cluster):
    sleeper = (HOSTILE / "sleep_forever.py").read_text()
    answer: list = []
    with front_door.client() as client:
        caller = threading.Thread(target=lambda: answer.append(client.evaluate(
            "mnist1d", "torch", sleeper, request_id="cancel-me", timeout_seconds=100, timeout=300)))
        caller.start()
        wait_until(lambda: job_containers(front_door, cluster), 60)
        assert client.cancel("cancel-me")
        caller.join(timeout=120)
        assert answer and answer[0].status is Status.CANCELLED, answer
        wait_until(lambda: not job_containers(front_door, cluster), 60)

        gave_up: list = []

        def give_up() -> None:  # the caller's deadline passes: nobody waits any more, so it is cancelled
            try:
                client.evaluate("mnist1d", "torch", sleeper + "\n# another\n", timeout_seconds=100, timeout=20)
            except DeadlineExceededError as exc:
                gave_up.append(exc)

        caller = threading.Thread(target=give_up)
        caller.start()
        wait_until(lambda: job_containers(front_door, cluster), 18)
        caller.join(timeout=60)
        assert gave_up
        wait_until(lambda: not job_containers(front_door, cluster), 60)
        assert all(n.free_slots == n.slots for n in client.server_info().nodes)


def test_a_fleet_without_docker_runs_the_process_back_end_on_its_nodes(cluster, tmp_path):
    door = start_front_door(cluster, tmp_path / "door", "--backend", "process")
    try:
        with door.client() as client:
            assert client.server_info().backend == "process"
            result = client.evaluate("mnist1d", "torch", PROGRAMS["logistic"], max_steps=STEPS, timeout=600)
    finally:
        door.stop()
    assert result.status is Status.OK, result.message
    assert result.sandbox.startswith("process") and result.worker in WORKERS
