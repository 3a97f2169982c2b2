"""The `process` back-end: a subprocess with resource limits. NOT A SECURITY BOUNDARY.

For machines without Docker (a laptop, a CI job without an engine): the candidate runs as the
server's user, can read what the server can read and reach the network. Use it only for code you
would run yourself. It still enforces the wall-clock limit, memory (RLIMIT_AS), file size and the
output cap, and kills the whole process group at the end.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from .base import Sandbox, SandboxJob, SandboxRun, TailBuffer, gpu_env

POLL_SECONDS = 0.2

# Sets the rlimits, then becomes the harness. Done in the child rather than in a preexec_fn:
# running Python between fork and exec in a process with gRPC's threads crashes the child.
_LAUNCHER = """
import os, resource, sys
memory, output = int(sys.argv[1]), int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
resource.setrlimit(resource.RLIMIT_FSIZE, (output, output))
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
os.execv(sys.executable, [sys.executable, "-m", "evoprompt_harness", *sys.argv[3:]])
"""


def _harness_path() -> Path:
    from ..harness import harness_dir

    return harness_dir()


class ProcessSandbox(Sandbox):
    name = "process"

    def sandbox_id(self, framework: str) -> str:
        return f"process:{sys.version_info.major}.{sys.version_info.minor}"

    def check(self, frameworks: list[str]) -> None:
        import importlib.util

        from evoprompt.sdk.errors import EvaluatorUnavailableError

        modules = {"torch": "torch", "flax": "flax"}
        missing = [f for f in frameworks if importlib.util.find_spec(modules.get(f, f)) is None]
        if missing:
            raise EvaluatorUnavailableError(
                f"the process back-end runs candidates in this Python, which lacks {', '.join(missing)}; "
                "install the extras (pip install 'evoprompt-evaluator[torch,jax]') or use --backend docker"
            )

    def run(self, job: SandboxJob, cancel: threading.Event) -> SandboxRun:
        limits = job.limits
        scratch = job.job_dir / "scratch"
        scratch.mkdir(exist_ok=True)
        env: dict[str, str] = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "PYTHONPATH": str(_harness_path()),
            "HOME": str(scratch),
            "TMPDIR": str(scratch),
            "PYTHONDONTWRITEBYTECODE": "1",
            "OMP_NUM_THREADS": str(max(1, int(limits.cpus))),
            "XLA_FLAGS": "--xla_force_host_platform_device_count=1",
        }
        env.update(gpu_env(job.gpu))
        if job.gpu is not None:
            env["CUDA_VISIBLE_DEVICES"] = job.gpu.device_id

        stderr_path = job.job_dir / "stderr.log"
        started = time.monotonic()
        with open(stderr_path, "wb") as err:
            proc = subprocess.Popen(
                [sys.executable, "-c", _LAUNCHER, str(limits.memory_bytes), str(limits.output_bytes),
                 str(job.input_dir), str(job.output_dir)],
                cwd=scratch,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                start_new_session=True,
            )
            result = SandboxRun()
            try:
                while True:
                    try:
                        result.exit_code = proc.wait(timeout=POLL_SECONDS)
                        break
                    except subprocess.TimeoutExpired:
                        pass
                    if result.must_stop(job, cancel, started):
                        break
            finally:
                _kill_group(proc)
        result.wall_seconds = time.monotonic() - started
        tail = TailBuffer(limits.log_tail_bytes)
        size = stderr_path.stat().st_size
        with open(stderr_path, "rb") as f:
            f.seek(max(0, size - limits.log_tail_bytes))
            tail.total = max(0, size - limits.log_tail_bytes)
            tail.write(f.read())
        result.stderr_tail = tail.text()
        if result.exit_code is not None and result.exit_code < 0:  # killed by a signal: shell convention
            result.exit_code = 128 - result.exit_code
        return result


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """Kill the harness and everything it started (same session), then reap it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


