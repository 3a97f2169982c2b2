"""The sandbox interface: run one prepared job to completion, a timeout, or a cancellation.

A back-end gets a job whose `input/` the server wrote, hands it to a sandbox started for it (a warm
one from its pool, or one started now) running the harness (evoprompt_harness), answers the job's
checkpoint exchange while it runs, leaves what the sandbox wrote in the job's `output/`, and reports
what happened to the process. It never interprets outputs: scoring is the server's (see outcome.py).
"""

from __future__ import annotations

import abc
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from evoprompt.sdk.types import NodeInfo


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
    data_dir: Path | None = None  # the data files, mounted read-only (None: the data is in input/)
    exchange: Exchange | None = None

    @property
    def input_dir(self) -> Path:
        return self.job_dir / "input"

    @property
    def output_dir(self) -> Path:
        return self.job_dir / "output"


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
    infra_error: str | None = None  # the back-end itself failed; the candidate is not to blame
    worker: str = "local"  # where it ran: this machine, or the Ray node (fleet/)

    def must_stop(self, job: SandboxJob, cancel: threading.Event, started: float, output_dir: Path) -> bool:
        """One watchdog check while the sandbox runs (`output_dir`: where it writes): cancelled, past its
        wall-clock limit, or over its output cap. Records why and says whether the back-end must kill
        it now."""
        from ..outputs import directory_bytes

        if cancel.is_set():
            self.cancelled = True
        elif time.monotonic() - started > job.timeout:
            self.timed_out = True
        elif directory_bytes(output_dir, job.limits.output_bytes) > job.limits.output_bytes:
            self.output_exceeded = True
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


def open_to_sandbox(job: SandboxJob) -> None:
    """Let the sandbox's user (another uid) read the job's folder and its input files."""
    for path in [job.job_dir, job.input_dir, *job.input_dir.iterdir()]:
        path.chmod(0o755 if path.is_dir() else 0o644)


class Sandbox(abc.ABC):
    """A way to run jobs in isolation. Implementations must be safe to call from many threads."""

    name: str
    executor = "local"  # where its sandboxes run: this machine, or a Ray cluster's nodes (fleet/)

    @abc.abstractmethod
    def sandbox_id(self, framework: str) -> str:
        """What the candidate runs in (image tag, or 'process'): part of the result cache key."""

    @abc.abstractmethod
    def check(self, frameworks: list[str]) -> None:
        """Raise EvaluatorUnavailableError with a fix-it message if jobs of these frameworks cannot run."""

    @abc.abstractmethod
    def run(self, job: SandboxJob, cancel: threading.Event) -> SandboxRun:
        """Run the job; return when it ended, was killed at its timeout, or `cancel` was set."""

    def reap(self) -> int:
        """Remove what earlier runs of this server leaked (containers, processes); returns a count."""
        return 0

    def start_pool(self, settings: PoolSettings) -> None:  # noqa: B027 - optional: back-ends may keep no pool
        """Keep sandboxes started ahead of need (back-ends without a pool ignore this)."""

    def close(self) -> None:  # noqa: B027 - optional, as start_pool
        """Remove the sandboxes started ahead of need; running jobs are the scheduler's to cancel."""

    def warm(self) -> int:
        """Sandboxes started ahead of need and waiting for a job now."""
        return 0

    def nodes(self, slots: list[GpuShare | None], running: int) -> list[NodeInfo]:
        """Where evaluations run, for GetServerInfo: this machine, as the one node "local"."""
        gpus = tuple(sorted({slot.device_id for slot in slots if slot is not None}))
        return [NodeInfo("local", len(slots), max(0, len(slots) - running), gpus, self.warm())]


@dataclass(frozen=True)
class PoolSettings:
    """Warm pool of one server: `size` started sandboxes per slot and framework in use (0: none; each
    job's sandbox is started when the job is), recycled after `max_idle` seconds of waiting."""

    root: Path  # one folder per sandbox, mounted into that sandbox alone
    data_dir: Path
    slots: tuple[GpuShare | None, ...]
    limits: Limits
    size: int = 1
    max_idle: float = 600.0
    frameworks: tuple[str, ...] = ()  # warmed from the start; others from their first job on
