"""What the front door and a node's agent hand each other through Ray (all plain, picklable data)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from ..sandbox.base import Limits, SandboxRun
from .transfer import Entry


@dataclass(frozen=True)
class AgentConfig:
    """How a front door's agents run their node's sandboxes (the same on every node)."""

    owner_key: str  # the front door's identity (its result store's path and its instance): its agents are its own
    home_key: str = ""  # the front door's home (its result store's path): the agents' folder and containers'
    backend: str = "docker"
    runtime: str = ""
    gpu_share: int = 0  # 0: CPU slots; K: K slots share each GPU
    pool_size: int = 2
    pool_max_idle: float = 600.0
    frameworks: tuple[str, ...] = ()
    limits: Limits = field(default_factory=Limits)

    @property
    def owner(self) -> str:
        return hashlib.sha256(self.owner_key.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class RemoteJob:
    """One evaluation as the node gets it: the input files the front door wrote, and its data file."""

    job_id: str
    framework: str
    sandbox_id: str  # what the front door's cache key says it runs in; a node running another refuses
    timeout: float
    limits: Limits
    files: dict[str, bytes]  # input/: spec.json, candidate.py
    data_name: str
    data: list[Any]  # [ObjectRef of the data file's bytes]: nested, so a node fetches it only if it lacks it


@dataclass(frozen=True)
class Placed:
    """First message of a job's task: the node Ray put it on, and that node's agent."""

    node: str
    agent: Any
    node_id: str = ""


@dataclass(frozen=True)
class Validated:
    """The sandbox wrote its validation predictions (and nothing of the labels reached the node)."""

    entries: list[Entry]


@dataclass(frozen=True)
class Finished:
    run: SandboxRun
    outputs: list[Entry] | None  # None: nothing worth moving (timed out, cancelled, over the limit, failed)
