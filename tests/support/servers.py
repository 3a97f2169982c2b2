"""Real evaluator servers on a loopback port for tests, and the broken programs they are fed."""

from __future__ import annotations

from pathlib import Path

from evoprompt.evaluator.server import EvaluatorServer
from evoprompt.evaluator.settings import load_settings

TESTS = Path(__file__).resolve().parents[1]
PROGRAMS = TESTS / "programs"
HOSTILE = TESTS / "hostile"
SAMPLES = TESTS / "samples"
REPO = TESTS.parent


def start_server(home: Path, backend: str, **overrides) -> EvaluatorServer:
    settings = load_settings(overrides={"host": "127.0.0.1", "port": 0, "backend": backend, "home": home,
                                        "slots": 2, "timeout": 300.0, **overrides})
    return EvaluatorServer(settings).start()


def framework_of(code: str) -> str:
    return "flax" if "flax" in code else "torch"
