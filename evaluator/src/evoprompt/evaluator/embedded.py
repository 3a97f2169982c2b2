"""An evaluator server inside the caller's process (registered as the SDK's `evoprompt.embedded`
entry point), for `evoprompt evaluate` without --evaluator and for search runs.

Settings are explicit: only the arguments and the evaluator's defaults, never the caller's
EVOPROMPT_* environment (that configures standalone servers), except the images' settings
(sandbox_base, build_dir, debian_mirror): the images are the machine's, built by `evoprompt images
build` with those settings, and an embedded server must ask for the same tags. Only the sandboxes of the frameworks
asked for are checked or built. `auto` picks the docker back-end when an engine answers and those
images are there or can be built, else the process back-end with a warning (not a security boundary).
The caller talks to the server through the SDK, exactly as to a remote one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from evoprompt.sdk.errors import EvaluatorUnavailableError

from .images import ImageSettings
from .server import EvaluatorServer
from .settings import EvaluatorSettings, validate_settings

log = logging.getLogger(__name__)


def machine_image_settings() -> ImageSettings:
    """The images' settings as `evoprompt images build` on this machine reads them."""
    from .settings import setting_field_from_environment

    return ImageSettings(*(setting_field_from_environment(n) for n in ("sandbox_base", "build_dir", "debian_mirror")))


def choose_backend(requested: str, frameworks: Sequence[str], image_settings: ImageSettings | None = None) -> str:
    """`docker` or `process` for `requested` (auto, docker or process).

    auto falls back to the process back-end only when no Docker engine answers. With an engine, a
    sandbox image that cannot be built is an error whose message says how to fix it (ImageBuildError):
    silently running LM-written code unsandboxed on a machine that has Docker is what a user would
    least expect."""
    if requested != "auto":
        return requested
    from .sandbox.docker import DockerSandbox

    try:
        DockerSandbox(owner="probe", build_missing=True, image_settings=image_settings).check(list(frameworks))
        return "docker"
    except EvaluatorUnavailableError as exc:
        print(
            f"warning: {str(exc).splitlines()[0]}\nwarning: falling back to the process back-end, which is NOT a "
            "security boundary: the candidate runs as you, with your files and network",
            file=sys.stderr,
        )
        return "process"


@contextlib.contextmanager
def embedded_evaluator(
    *,
    frameworks: Sequence[str],
    backend: str = "auto",
    slots: int = 1,
    home: Path | str | None = None,
    timeout: float | None = None,
    **settings: Any,
) -> Iterator[str]:
    """Start a server on a free loopback port for `frameworks`; yields its endpoint."""
    images = machine_image_settings()
    values: dict[str, Any] = {"host": "127.0.0.1", "port": 0, "slots": slots, "frameworks": tuple(frameworks),
                              "backend": choose_backend(backend, frameworks, images),
                              "sandbox_base": images.sandbox_base, "build_dir": images.build_dir,
                              "debian_mirror": images.debian_mirror, **settings}
    if home is not None:
        values["home"] = Path(home).expanduser().resolve()
    if timeout:
        values["timeout"] = float(timeout)
    config = validate_settings(dataclasses.replace(EvaluatorSettings(), **values))
    server = EvaluatorServer(config).start()
    try:
        yield server.endpoint
    finally:
        server.stop()
