"""A real OpenAI-compatible LM server for tests: `transformers serve` on a free loopback port, pinned to
one local model folder, and the packaged SmolLM2 folder it serves.

`transformers serve MODEL` loads MODEL before it starts listening, so once GET /v1/models answers the
model is in memory. A pinned server answers only for its model, under the name it was started with (here
the folder's path; any other name is HTTP 400 "Server is pinned to ..."), so requests name it as the
spec's #MODEL. Endpoints (transformers 5.24): POST /v1/chat/completions, /v1/completions, /v1/responses,
/v1/systemone, /v1/audio/transcriptions, /load_model, /reset; GET /v1/models, /health. Both completion
endpoints ignore `n` (one choice per request) and report `usage` (prompt and completion tokens); they
sample only when the model's generation config does (SmolLM2's converted folder does not: greedy).

The server is started through the `serve` command of the transformers CLI app, not its `transformers`
entry point, which first asks PyPI for a newer version; nothing here leaves 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.docker_util import docker_required
from tests.support.servers import free_port

# the CLI's typer app without its update check (`transformers.cli.transformers.main` runs one first)
_SERVE = "import sys; from transformers.cli.transformers import app; sys.argv[0] = 'transformers'; app()"
_OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HUB_DISABLE_UPDATE_CHECK": "1",
                "HF_HUB_DISABLE_TELEMETRY": "1", "DO_NOT_TRACK": "1", "TOKENIZERS_PARALLELISM": "false"}
LOG_TAIL_CHARS = 4000


@dataclass(frozen=True)
class LMServer:
    """A running server: its OpenAI base URL, the model name it answers for, its process and log."""

    base_url: str
    model: str
    pid: int
    log_path: Path

    @property
    def spec(self) -> str:
        """The `openai:` LM spec that reaches this server's model."""
        return f"openai:{self.base_url}#{self.model}"

    def log_tail(self, chars: int = LOG_TAIL_CHARS) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError as exc:
            return f"(no log: {exc})"
        return text[-chars:]


def _skip_or_fail(reason: str) -> None:
    """Skip, or fail when EVOPROMPT_REQUIRE_DOCKER=1 (CI, where `make setup` installed everything)."""
    if docker_required():
        pytest.fail(f"{reason} (and EVOPROMPT_REQUIRE_DOCKER=1 says it must be there)", pytrace=False)
    pytest.skip(reason)


def smollm2_folder() -> str:
    """The packaged SmolLM2-135M-Instruct as a plain safetensors folder (converted from its GGUF file on
    first use, ~45 s); skips without the package, fails instead under EVOPROMPT_REQUIRE_DOCKER=1."""
    from evoprompt.search.lm.offline_models import MODELS, ModelFileError, materialise
    from evoprompt.search.lm.weights import resolve_weights

    try:
        gguf = materialise(MODELS[0])
    except ModelFileError as exc:
        _skip_or_fail(f"SmolLM2 is not installed (make setup installs it, models/smollm2.txt): {exc}")
        raise  # unreachable: both raise
    return resolve_weights(str(gguf))


def require_serving() -> None:
    """`transformers serve` needs transformers' serving extra (fastapi, uvicorn, openai)."""
    from transformers.utils.import_utils import is_serve_available

    if not is_serve_available():
        _skip_or_fail("transformers' serving extra is not installed (pip install 'transformers[serving]')")


def _wait_until_listening(server: LMServer, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    with httpx.Client(timeout=2.0, trust_env=False) as client:
        while time.monotonic() < deadline:
            code = proc.poll()
            if code is not None:
                raise AssertionError(f"transformers serve exited with {code} before listening; its log:\n"
                                     f"{server.log_tail()}")
            try:
                response = client.get(f"{server.base_url}/models")
            except httpx.TransportError as exc:
                last = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code == 200:
                    ids = [m.get("id") for m in response.json().get("data", [])]
                    if server.model in ids:
                        return
                    last = f"/v1/models lists {ids}, not {server.model!r}"
                else:
                    last = f"/v1/models answered HTTP {response.status_code}"
            time.sleep(0.5)
    raise AssertionError(f"transformers serve did not answer within {timeout:.0f} s ({last}); its log:\n"
                         f"{server.log_tail()}")


def _stop(proc: subprocess.Popen, grace: float = 15.0) -> None:
    """SIGTERM to this process (uvicorn shuts down cleanly), SIGKILL after `grace` seconds."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=grace)


class _PortTaken(AssertionError):
    """The server could not bind its port: another process took it after free_port() chose it."""


def _start(model: str, log_dir: Path, startup_timeout: float, extra_args: tuple[str, ...]
           ) -> tuple[LMServer, subprocess.Popen]:
    port = free_port()
    args = [sys.executable, "-c", _SERVE, "serve", model, "--host", "127.0.0.1", "--port", str(port),
            "--device", "cpu", "--dtype", "auto", "--log-level", "error", "--default-seed", "0", *extra_args]
    log_path = log_dir / f"transformers-serve-{port}.log"
    env = {**os.environ, **_OFFLINE_ENV}
    with log_path.open("wb") as log:
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                                cwd=log_dir)
    server = LMServer(base_url=f"http://127.0.0.1:{port}/v1", model=model, pid=proc.pid, log_path=log_path)
    try:
        _wait_until_listening(server, proc, startup_timeout)
    except AssertionError as exc:
        _stop(proc)
        if "address already in use" in server.log_tail().lower():
            raise _PortTaken(str(exc)) from None
        raise
    except BaseException:
        _stop(proc)
        raise
    return server, proc


@contextlib.contextmanager
def transformers_serve(model: str, *, log_dir: Path | None = None, startup_timeout: float = 240.0,
                       extra_args: tuple[str, ...] = ()) -> Iterator[LMServer]:
    """`transformers serve MODEL` on 127.0.0.1 (a free port, CPU, offline), listening with MODEL loaded
    when this yields; stopped (by its pid) on exit. Its output goes to a log file in `log_dir`."""
    require_serving()
    log_dir = Path(log_dir) if log_dir is not None else Path(tempfile.mkdtemp(prefix="transformers-serve-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    for attempt in range(3):
        try:
            server, proc = _start(model, log_dir, startup_timeout, extra_args)
            break
        except _PortTaken:
            if attempt == 2:
                raise
    try:
        yield server
    finally:
        _stop(proc)
