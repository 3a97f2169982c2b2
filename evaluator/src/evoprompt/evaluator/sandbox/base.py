"""The sandbox interface: one sandbox's life, and nothing more.

A back-end starts a sandbox waiting on a box (a job folder only it mounts, `input/` read-only and
`output/` writable inside), tells whether it lives, waits for its exit, kills it, reads what happened
to it and destroys it. It never interprets outputs (scoring is the server's, outcome.py) and never
decides when to stop a sandbox: the one job loop (lifecycle.py) does, for every back-end, and the warm
pool (pool.py) starts sandboxes ahead of need through the same calls.
"""

from __future__ import annotations

import abc
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..protocol import INPUT_DIR, OUTPUT_DIR

HARNESS_MAX_WAIT = 4 * 3600.0  # a waiting harness gives up after this: the pool recycles it far earlier


@dataclass(frozen=True)
class Limits:
    """Resource limits of one evaluation."""

    memory_bytes: int = 4 * 1024**3
    cpus: float = 1.0
    pids: int = 256
    output_bytes: int = 256 * 1024**2
    tmpfs_bytes: int = 256 * 1024**2
    log_tail_bytes: int = 8 * 1024


@dataclass(frozen=True)
class GpuShare:
    """One GPU, shared by `share_of` slots: the sandbox sees this device alone and 1/share_of of it."""

    device_id: str
    share_of: int = 1

    @property
    def memory_fraction(self) -> float:
        return round(0.95 / self.share_of, 3)


def gpu_env(gpu: GpuShare | None) -> dict[str, str]:
    """Environment giving the frameworks their share of the slot's GPU (or hiding all GPUs)."""
    if gpu is None:
        return {"CUDA_VISIBLE_DEVICES": "", "JAX_PLATFORMS": "cpu"}
    return {
        "XLA_PYTHON_CLIENT_PREALLOCATE": "false",
        "XLA_PYTHON_CLIENT_MEM_FRACTION": str(gpu.memory_fraction),
    }


class Exchange(Protocol):
    """The server's side of a job's mid-run exchange (evaluator/exchange.py)."""

    def poll(self, input_dir: Path, output_dir: Path) -> None: ...

    def reset(self) -> None:
        """Forget what was exchanged: the job runs again from the start (elsewhere)."""


@dataclass(frozen=True)
class SandboxJob:
    job_id: str
    framework: str
    job_dir: Path
    timeout: float
    limits: Limits
    gpu: GpuShare | None = None
    data_dir: Path | None = None  # the data files: `data_name` is linked into input/ once the sandbox is BUILT
    data_name: str = ""  # this job's data file in data_dir ("": its data, if any, is in input/ already)
    exchange: Exchange | None = None

    @property
    def input_dir(self) -> Path:
        return self.job_dir / INPUT_DIR

    @property
    def output_dir(self) -> Path:
        return self.job_dir / OUTPUT_DIR


@dataclass
class SandboxRun:
    """What happened to the sandboxed process (not whether the candidate was any good)."""

    exit_code: int | None = None
    oom_killed: bool = False
    timed_out: bool = False
    cancelled: bool = False
    output_exceeded: bool = False
    stderr_tail: str = ""
    wall_seconds: float = 0.0
    cpu_seconds: float = 0.0  # CPU time of everything in the sandbox since its job arrived, as the host saw it
    infra_error: str | None = None  # the back-end itself failed; the candidate is not to blame
    worker: str = "local"  # where it ran: this machine, or the Ray node (fleet/)

    @property
    def stopped(self) -> bool:
        """The evaluator itself stopped the sandbox (cancel, wall-clock limit, output cap)."""
        return self.cancelled or self.timed_out or self.output_exceeded


@dataclass
class TailBuffer:
    """Keeps the last `limit` bytes of a stream: memory stays flat however much is written."""

    limit: int
    _chunks: deque[bytes] = field(default_factory=deque)
    _size: int = 0
    total: int = 0

    def write(self, data: bytes) -> None:
        self.total += len(data)
        self._chunks.append(data[-self.limit :])
        self._size += len(self._chunks[-1])
        while self._size - len(self._chunks[0]) >= self.limit:
            self._size -= len(self._chunks.popleft())

    def text(self) -> str:
        data = b"".join(self._chunks)[-self.limit :]
        prefix = f"[... {self.total - len(data):,} earlier bytes dropped]\n" if self.total > len(data) else ""
        return prefix + data.decode("utf-8", errors="replace")


@dataclass(frozen=True)
class PoolSettings:
    """Warm pool of one server: `size` started sandboxes per slot and framework in use (0: none; each
    job's sandbox is started when the job is), recycled after `max_idle` seconds of waiting."""

    root: Path  # one folder per sandbox, mounted into that sandbox alone
    slots: tuple[GpuShare | None, ...]
    limits: Limits
    size: int = 2  # a verified evaluation takes two: its training sandbox and its verifier
    max_idle: float = 600.0
    frameworks: tuple[str, ...] = ()  # warmed from the start; others from their first job on


class SandboxFailure(Exception):
    """The back-end or its engine failed (not the candidate): the job ends as an infrastructure error."""


@dataclass(eq=False)
class Box:
    """One sandbox and the job folder only it mounts (`input/` read-only inside, `output/` writable)."""

    framework: str
    gpu: GpuShare | None
    sandbox_id: str
    limits: Limits
    dir: Path
    handle: Any = None
    born: float = field(default_factory=time.monotonic)
    created_at: float = field(default_factory=time.time)  # wall clock, for the engine's event log

    @property
    def input_dir(self) -> Path:
        return self.dir / INPUT_DIR

    @property
    def output_dir(self) -> Path:
        return self.dir / OUTPUT_DIR


def new_box(root: Path, framework: str, gpu: GpuShare | None, sandbox_id: str, limits: Limits) -> Box:
    """A fresh job folder under `root`: input/ readable and output/ writable by the sandbox's user."""
    box = Box(framework, gpu, sandbox_id, limits, root / uuid.uuid4().hex[:16])
    box.input_dir.mkdir(parents=True)
    box.output_dir.mkdir()
    box.dir.chmod(0o755)
    box.input_dir.chmod(0o755)
    box.output_dir.chmod(0o777)
    return box


class Sandbox(abc.ABC):
    """One kind of sandbox (docker, process). Implementations must be safe to call from many threads.
    Every call but `check` raises only `SandboxFailure` for a failure of the back-end itself."""

    name: str
    poll_seconds: float = 0.1  # how often the job loop waits, answers the exchange and checks its watchdog

    @abc.abstractmethod
    def sandbox_id(self, framework: str) -> str:
        """What the candidate runs in (image tag, or 'process'): part of the result cache key."""

    @abc.abstractmethod
    def check(self, frameworks: list[str]) -> None:
        """Raise EvaluatorUnavailableError with a fix-it message if jobs of these frameworks cannot run."""

    def prepare(self, framework: str) -> None:  # noqa: B027 - optional: most back-ends are always ready
        """Make `framework`'s sandboxes startable, before a job's clock starts (docker: build a missing image)."""

    @abc.abstractmethod
    def launch(self, box: Box) -> Any:
        """Start a sandbox whose harness waits for `box`'s job; returns its handle."""

    @abc.abstractmethod
    def alive(self, handle: Any) -> bool:
        """Still running (a waiting sandbox that died is never handed a job)."""

    @abc.abstractmethod
    def wait(self, handle: Any, seconds: float) -> int | None:
        """The sandbox's exit status once it ended (a signal N as 128 + N), or None while it runs."""

    def cpu_seconds(self, handle: Any) -> float | None:
        """CPU seconds used so far by everything the sandbox runs, read by the host (None: unknown)."""
        return None

    @abc.abstractmethod
    def kill(self, handle: Any) -> None:
        """Stop the sandbox now (the evaluator's decision: timeout, cancel, output cap)."""

    @abc.abstractmethod
    def collect(self, handle: Any, box: Box, run: SandboxRun) -> None:
        """After the sandbox ended: fill in what the host saw (exit status when not yet known, an OOM
        kill, the stderr tail, and an `infra_error` when something other than the evaluator killed it)."""

    @abc.abstractmethod
    def destroy(self, handle: Any) -> None:
        """Remove the sandbox and everything it started; it writes nothing more to its box afterwards."""

    def reap(self, live: Callable[[str], bool]) -> int:
        """Remove the sandboxes of this owner whose instance is not `live` (leftovers of a server that
        died); never a live instance's. Returns how many."""
        return 0
