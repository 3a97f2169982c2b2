"""The `process` back-end: a subprocess with resource limits. NOT A SECURITY BOUNDARY.

For machines without Docker (a laptop, a CI job without an engine): the candidate runs as the
server's user, can read what the server can read and reach the network. Use it only for code you
would run yourself. It still enforces the wall-clock limit, memory (RLIMIT_AS), file size and the
output cap, and kills the whole process group at the end.

Interpreters are started ahead of need (pool.py) with the framework imported, each waiting on its
own job folder; one runs one job and is killed. A kill from outside cannot be told from the
candidate's own (no engine logs it): here it counts as the candidate's.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from .base import HARNESS_MAX_WAIT, Box, Sandbox, SandboxRun, TailBuffer, gpu_env

STDERR_LOG = "stderr.log"  # in the box, beside the job's folders: the harness's stderr
SCRATCH = "scratch"  # in the box: the harness's HOME and TMPDIR

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
    poll_seconds = 0.02

    ID = f"process:{sys.version_info.major}.{sys.version_info.minor}"  # this Python runs every framework

    def sandbox_id(self, framework: str) -> str:
        return self.ID

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

    # -- the pool's launcher ----------------------------------------------------------------

    def launch(self, box: Box) -> subprocess.Popen[bytes]:
        """Start a harness that imports its framework and waits for `box`'s job."""
        limits = box.limits
        scratch = box.dir / SCRATCH
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
        env.update(gpu_env(box.gpu))
        if box.gpu is not None:
            env["CUDA_VISIBLE_DEVICES"] = box.gpu.device_id
        harness = ["--wait", box.framework, "--max-wait", f"{HARNESS_MAX_WAIT:g}"]
        with open(box.dir / STDERR_LOG, "wb") as err:
            return subprocess.Popen(
                [sys.executable, "-c", _LAUNCHER, str(limits.memory_bytes), str(limits.output_bytes),
                 *harness, str(box.input_dir), str(box.output_dir)],
                cwd=scratch,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                start_new_session=True,
            )

    def alive(self, handle: Any) -> bool:
        return handle.poll() is None

    def wait(self, handle: Any, seconds: float) -> int | None:
        try:
            code = handle.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            return None
        return 128 - code if code < 0 else code  # killed by a signal: the shell's convention

    def cpu_seconds(self, handle: Any) -> float | None:
        """The harness process's CPU time and that of the children it waited for (/proc/PID/stat)."""
        try:
            fields = Path(f"/proc/{handle.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return None
        return sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")  # utime stime cutime cstime

    def kill(self, handle: Any) -> None:
        _kill_group(handle)

    def collect(self, handle: Any, box: Box, run: SandboxRun) -> None:
        run.stderr_tail = _stderr_tail(box.dir / STDERR_LOG, box.limits.log_tail_bytes)

    def destroy(self, handle: Any) -> None:
        _kill_group(handle)


def _stderr_tail(path: Path, limit: int) -> str:
    tail = TailBuffer(limit)
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            f.seek(max(0, size - limit))
            tail.total = max(0, size - limit)
            tail.write(f.read())
    except OSError:
        return ""
    return tail.text()


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """Kill the harness and everything it started (same session), then reap it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


