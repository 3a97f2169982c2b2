"""Real evaluator servers on a loopback port for tests, and the broken programs they are fed."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

from evoprompt.evaluator.instance import POOL
from evoprompt.evaluator.protocol import INPUT_DIR, READY
from evoprompt.evaluator.sandbox import make_sandbox
from evoprompt.evaluator.server import EvaluatorServer
from evoprompt.evaluator.settings import load_settings
from tests.support.docker_util import list_containers

TESTS = Path(__file__).resolve().parents[1]
PROGRAMS = TESTS / "programs"
HOSTILE = TESTS / "hostile"
SAMPLES = TESTS / "samples"
REPO = TESTS.parent
EVOPROMPT = [sys.executable, "-m", "evoprompt.sdk.cli"]


def start_server(home: Path, backend: str, **overrides) -> EvaluatorServer:
    settings = load_settings(overrides={"host": "127.0.0.1", "port": 0, "backend": backend, "home": home,
                                        "slots": 2, "timeout": 300.0, **overrides})
    return EvaluatorServer(settings).start()


def framework_of(code: str) -> str:
    return "flax" if "flax" in code else "torch"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(home: Path, port: int, *args: str) -> subprocess.Popen:
    """`evoprompt serve` (docker, one slot) in a process of its own, listening when this returns."""
    proc = subprocess.Popen(EVOPROMPT + ["serve", "--port", str(port), "--backend", "docker", "--slots", "1",
                                         "--home", str(home), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    assert "listening on" in line, line + proc.stderr.read()
    return proc


def containers_of(home: Path) -> list:
    """The containers of the server whose home this is (its owner label), running or not."""
    sandbox = make_sandbox("docker", owner_key=str((home / "results.sqlite3").resolve()))
    return list_containers(sandbox.client, filters={"label": f"evoprompt.owner={sandbox.owner}"})


def wait_until(predicate, limit: float) -> float:
    start = time.monotonic()
    while time.monotonic() - start < limit:
        if predicate():
            return time.monotonic() - start
        time.sleep(0.2)
    raise AssertionError(f"not within {limit} s")


def job_containers(server: EvaluatorServer) -> list:
    """Containers of this in-process server that were given a job, in any state (docker back-end only);
    the warm pool's, waiting for theirs (a box in work/pool without READY), are not among them."""
    sandbox = getattr(server.executor, "sandbox", None)
    if sandbox is None or sandbox.name != "docker":
        return []
    waiting = {p.name for p in (server.work_dir / POOL).glob("*") if not (p / INPUT_DIR / READY).exists()}
    ours = list_containers(sandbox.client, filters={"label": f"evoprompt.owner={sandbox.owner}"})
    return [c for c in ours if not (c.status == "running" and c.labels.get("evoprompt.job") in waiting)]
