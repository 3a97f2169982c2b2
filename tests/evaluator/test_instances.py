"""Evaluators sharing a home never destroy each other's work, and a sandbox killed from outside is never
the candidate's verdict: the README tour's sequence (a server training while an embedded `evoprompt
evaluate` runs on the same home), two servers on one home, a server killed beside a live one, and a
container killed by someone else. Real `evoprompt serve` processes, real containers."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import uuid
from pathlib import Path

import pytest

from evoprompt.evaluator.store import ResultStore
from evoprompt.sdk import EvaluatorClient, RetryPolicy, Status
from tests.support.docker_util import require_sandbox_images
from tests.support.servers import EVOPROMPT, PROGRAMS, containers_of, free_port, serve, start_server, wait_until

pytestmark = pytest.mark.integration
SLOW_OK = ("import time\ntime.sleep({seconds})\nfrom torch import nn\n\n\nclass Model(nn.Linear):\n"
           "    def __init__(self):\n        super().__init__(40, 10)\n# {salt}\n")


@pytest.fixture(scope="module", autouse=True)
def images():
    require_sandbox_images(["torch-cpu"])


def slow_ok(seconds: float) -> str:
    return SLOW_OK.format(seconds=seconds, salt=uuid.uuid4().hex)


def running_containers(home: Path) -> set[str]:
    """Containers of this home that run a job (their box has READY), by id."""
    return {c.id for c in containers_of(home) if c.status == "running"}


def evaluate_in_background(endpoint: str, code: str, answers: list, request_id: str = "") -> threading.Thread:
    def call() -> None:
        try:
            with EvaluatorClient(endpoint, retry=RetryPolicy(retries=0)) as client:
                answers.append(client.evaluate("mnist1d", "torch", code, max_steps=5,
                                               request_id=request_id or None, timeout=300))
        except Exception as exc:  # noqa: BLE001 - its server was killed: the test looks at what came back
            answers.append(exc)

    thread = threading.Thread(target=call)
    thread.start()
    return thread


def stop(server: subprocess.Popen) -> None:
    server.send_signal(signal.SIGTERM)
    server.wait(timeout=60)


def test_an_embedded_evaluate_on_the_same_home_leaves_a_training_server_alone(tmp_path):
    """The tour: `evoprompt serve` trains; `evoprompt evaluate FILE` (embedded, same home) in another
    terminal; both answers are true and nothing wrong is stored."""
    home, port = tmp_path / "home", free_port()
    server = serve(home, port)
    answers: list = []
    try:
        caller = evaluate_in_background(f"127.0.0.1:{port}", slow_ok(8), answers)
        wait_until(lambda: bool(running_containers(home)), 60)
        busy = running_containers(home)
        embedded = subprocess.run(EVOPROMPT + ["evaluate", str(PROGRAMS.parent / "samples" / "mnist1d" /
                                                             "logistic_torch.py"),
                                               "--task", "mnist1d", "--framework", "torch", "--max-steps", "20",
                                               "--backend", "docker", "--home", str(home), "--json"],
                                  capture_output=True, text=True, timeout=300)
        assert embedded.returncode == 0, embedded.stderr
        assert json.loads(embedded.stdout)["status"] == "OK"
        assert busy <= {c.id for c in containers_of(home)}, "the embedded evaluator removed the server's container"
        caller.join(timeout=300)
    finally:
        stop(server)
    (answer,) = answers
    assert answer.status is Status.OK, answer.message
    store = ResultStore(home / "results.sqlite3")
    try:
        assert {r.status for r in store.matching(answer.code_sha256)} == {Status.OK}
    finally:
        store.close()
    assert not [p for p in (home / "work").iterdir()], "both instances gave their work folders up"


def test_two_servers_on_one_home_share_it_and_a_dead_ones_leftovers_go_not_a_live_ones(tmp_path):
    home = tmp_path / "home"
    ports = free_port(), free_port()
    first, second = (serve(home, port, "--pool-size", "0") for port in ports)
    answers: dict[int, list] = {ports[0]: [], ports[1]: []}
    third = None
    try:
        callers = [evaluate_in_background(f"127.0.0.1:{p}", slow_ok(25), answers[p]) for p in ports]
        wait_until(lambda: len(running_containers(home)) == 2, 90)
        folders = sorted(p.name for p in (home / "work").iterdir() if p.is_dir())
        assert len(folders) == 2  # one work folder each
        first.send_signal(signal.SIGKILL)  # dies with its container running
        first.wait()
        callers[0].join(timeout=60)
        leaked = running_containers(home)
        # a third server reaps the dead one's container and folder, not the live one's
        third = serve(home, free_port(), "--pool-size", "0")
        wait_until(lambda: len(running_containers(home)) == 1, 30)
        assert running_containers(home) < leaked
        callers[1].join(timeout=300)
    finally:
        for server in (second, third):
            if server is not None:
                stop(server)
    (answer,) = answers[ports[1]]
    assert answer.status is Status.OK, answer.message  # the live server's evaluation was never touched
    assert not (home / "work").exists() or not [p for p in (home / "work").iterdir()]


def test_a_container_killed_from_outside_is_an_internal_error_never_stored(tmp_path):
    server = start_server(tmp_path / "home", "docker", slots=1, pool_size=0)
    code, rid = slow_ok(10), uuid.uuid4().hex
    answers: list = []
    try:
        caller = evaluate_in_background(server.endpoint, code, answers, request_id=rid)
        wait_until(lambda: bool(running_containers(tmp_path / "home")), 60)
        for container in containers_of(tmp_path / "home"):
            if container.status == "running":
                container.kill()  # `docker kill`: somebody else's decision
        caller.join(timeout=120)
        (killed,) = answers
        assert killed.status is Status.INTERNAL_ERROR, (killed.status, killed.message)
        assert "killed from outside the evaluator" in killed.message and "signal SIGKILL" in killed.message
        store = ResultStore(tmp_path / "home" / "results.sqlite3")
        try:
            assert store.get(rid) is None and not store.matching(killed.code_sha256)
        finally:
            store.close()
        with EvaluatorClient(server.endpoint) as client:  # the retry runs again, and is true
            again = client.evaluate("mnist1d", "torch", code, max_steps=5, request_id=rid, timeout=300)
        assert again.status is Status.OK and not again.cached
    finally:
        server.stop()


def test_a_candidate_that_kills_itself_is_still_its_own_runtime_error(tmp_path):
    server = start_server(tmp_path / "home", "docker", slots=1)
    try:
        with EvaluatorClient(server.endpoint) as client:
            result = client.evaluate("mnist1d", "torch", (PROGRAMS.parent / "hostile" / "kill_self.py").read_text(),
                                     max_steps=5)
        assert result.status is Status.RUNTIME_ERROR and "SIGKILL" in result.message
    finally:
        server.stop()
