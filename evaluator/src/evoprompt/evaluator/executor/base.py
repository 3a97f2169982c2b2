"""The executor interface: where admitted evaluations run. The scheduler sees nothing else.

An executor has a capacity (its slots: evaluations run at once), runs one prepared job with a cancel
and says what happened to its sandbox, lists where it runs (nodes, for GetServerInfo) and closes.
`local` runs jobs in this machine's sandboxes (executor/local.py); `ray` hands them to the nodes of a
Ray cluster, each running them in its own local executor (fleet/).
"""

from __future__ import annotations

import abc
import threading

from evoprompt.sdk.types import NodeInfo

from ..sandbox.base import GpuShare, SandboxJob, SandboxRun


class Executor(abc.ABC):
    """Implementations must be safe to call from many threads (one per slot)."""

    kind: str  # "local" or "ray": GetServerInfo's executor
    backend: str  # what candidates run in: "docker" or "process"

    @abc.abstractmethod
    def sandbox_id(self, framework: str) -> str:
        """What a candidate of `framework` runs in (image tag, or 'process'): part of the result cache key."""

    @abc.abstractmethod
    def check(self, frameworks: list[str]) -> None:
        """Raise EvaluatorUnavailableError with a fix-it message if jobs of these frameworks cannot run."""

    @abc.abstractmethod
    def start(self) -> None:
        """Remove the sandboxes dead instances left (never a live one's) and start sandboxes ahead of need."""

    @abc.abstractmethod
    def slots(self) -> list[GpuShare | None]:
        """The capacity: one entry per evaluation run at once (its GPU share, or None)."""

    @abc.abstractmethod
    def run(self, job: SandboxJob, cancel: threading.Event) -> SandboxRun:
        """Run the job; return when it ended, was stopped, or `cancel` was set. Never raises for a
        failure of the sandbox or the cluster: that is the run's `infra_error`."""

    @abc.abstractmethod
    def nodes(self, running: int) -> list[NodeInfo]:
        """Where evaluations run, with their free slots (`running`: the jobs this server runs now)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Stop the sandboxes started ahead of need; running jobs are the scheduler's to cancel first."""
