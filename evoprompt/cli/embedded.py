"""An evaluator server inside this process, for commands run without --evaluator.

Picks the docker back-end when an engine answers and the images are built, else the process
back-end with a warning (it is not a security boundary). The caller talks to it via the SDK,
exactly as to a remote server.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from typing import Any

log = logging.getLogger(__name__)


def choose_backend(requested: str) -> str:
    if requested != "auto":
        return requested
    from evoprompt.evaluator.errors import SandboxUnavailable
    from evoprompt.evaluator.images import FRAMEWORK_IMAGES
    from evoprompt.evaluator.sandbox.docker import DockerSandbox

    try:
        DockerSandbox(owner="probe").check(list(FRAMEWORK_IMAGES))
        return "docker"
    except SandboxUnavailable as exc:
        print(
            f"warning: {exc}\nwarning: falling back to the process back-end, which is NOT a security "
            "boundary: the candidate runs as you, with your files and network",
            file=sys.stderr,
        )
        return "process"


@contextlib.contextmanager
def embedded_evaluator(backend: str = "auto", **overrides: Any) -> Iterator[str]:
    """Start a server on a free loopback port; yields its endpoint."""
    from evoprompt.evaluator.server import EvaluatorServer
    from evoprompt.evaluator.settings import load_settings

    chosen = choose_backend(backend)
    settings = load_settings(overrides={"host": "127.0.0.1", "port": 0, "backend": chosen, **overrides})
    server = EvaluatorServer(settings).start()
    try:
        yield server.endpoint
    finally:
        server.stop()
