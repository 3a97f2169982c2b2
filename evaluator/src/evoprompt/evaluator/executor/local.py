"""The local executor: this machine's slots, each job in a sandbox of one back-end, warm ones from a pool."""

from __future__ import annotations

import logging
import threading

from evoprompt.sdk.types import NodeInfo

from ..instance import Instance, is_live
from ..sandbox.base import GpuShare, PoolSettings, Sandbox, SandboxJob, SandboxRun
from ..sandbox.lifecycle import run_job
from ..sandbox.pool import WarmPool
from .base import Executor

log = logging.getLogger(__name__)


class LocalExecutor(Executor):
    kind = "local"

    def __init__(self, sandbox: Sandbox, pool: PoolSettings, instance: Instance | None = None,
                 name: str = "local") -> None:
        """`pool`: the slots and the warm pool (size 0: none); `instance`: this server's claim on its work
        folder (None: a caller that owns its folders outright, as a test); `name`: the node's."""
        self.sandbox = sandbox
        self.backend = sandbox.name
        self.pool_settings = pool
        self.instance = instance
        self.name = name
        self.pool: WarmPool | None = None

    def sandbox_id(self, framework: str) -> str:
        return self.sandbox.sandbox_id(framework)

    def check(self, frameworks: list[str]) -> None:
        self.sandbox.check(frameworks)

    def start(self) -> None:
        if self.instance is not None:  # their folders are the instance owner's to remove (instance.remove_dead)
            root = self.instance.root
            reaped = self.sandbox.reap(lambda instance_id: is_live(root, instance_id))
            if reaped:
                log.warning("removed %d sandbox(es) left behind by a dead evaluator of this home", reaped)
        if self.pool_settings.size > 0:
            self.pool = WarmPool(self.sandbox, self.pool_settings)

    def slots(self) -> list[GpuShare | None]:
        return list(self.pool_settings.slots)

    def run(self, job: SandboxJob, cancel: threading.Event) -> SandboxRun:
        run = run_job(self.sandbox, self.pool, job, cancel)
        run.worker = self.name
        return run

    def warm(self) -> int:
        """Sandboxes started ahead of need and waiting for a job now."""
        return self.pool.ready() if self.pool is not None else 0

    def nodes(self, running: int) -> list[NodeInfo]:
        slots = self.slots()
        gpus = tuple(sorted({slot.device_id for slot in slots if slot is not None}))
        return [NodeInfo(self.name, len(slots), max(0, len(slots) - running), gpus, self.warm())]

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()
