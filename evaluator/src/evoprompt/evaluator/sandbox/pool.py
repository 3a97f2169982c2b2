"""A warm pool: sandboxes started ahead of need, each waiting for the one job it will ever run.

A back-end's `Launcher` starts a sandbox whose harness imports its framework and then waits, with no
candidate present, for its job folder to fill (evoprompt_harness/protocol.py). The pool keeps
`size` of them per slot and framework in use, refills in the background, and throws away (never
serves) one that waited longer than `max_idle`, that died, or that runs an image other than the
one its framework now asks for. A box is taken by exactly one job and destroyed after it: never
reused, never shared.
"""

from __future__ import annotations

import abc
import logging
import threading
import time
import uuid
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from .base import GpuShare, Limits, PoolSettings, Sandbox, SandboxJob

log = logging.getLogger(__name__)

PoolKey = tuple[str, GpuShare | None]  # framework, the slot's GPU share
LAUNCH_WAIT_SECONDS = 10.0  # a job waits this long for a box being started rather than start its own
RETRY_SECONDS = 10.0  # after a failed start (image missing, engine busy) before the next try


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

    @property
    def input_dir(self) -> Path:
        return self.dir / "input"

    @property
    def output_dir(self) -> Path:
        return self.dir / "output"


def new_box(root: Path, framework: str, gpu: GpuShare | None, sandbox_id: str, limits: Limits) -> Box:
    """A fresh job folder under `root`: input/ readable and output/ writable by the sandbox's user."""
    box = Box(framework, gpu, sandbox_id, limits, root / uuid.uuid4().hex[:16])
    box.input_dir.mkdir(parents=True)
    box.output_dir.mkdir()
    box.dir.chmod(0o755)
    box.input_dir.chmod(0o755)
    box.output_dir.chmod(0o777)
    return box


class Launcher(Protocol):
    """What a back-end supplies: start a waiting sandbox on a box, tell whether it lives, destroy it."""

    def sandbox_id(self, framework: str) -> str: ...

    def launch(self, box: Box, data_dir: Path) -> Any: ...

    def alive(self, handle: Any) -> bool: ...

    def destroy(self, handle: Any) -> None: ...


class WarmPool:
    def __init__(self, launcher: Launcher, settings: PoolSettings) -> None:
        self.launcher = launcher
        self.settings = settings
        self._slots = Counter(settings.slots)
        self._wanted: set[str] = set(settings.frameworks)
        self._ready: dict[PoolKey, deque[Box]] = {}
        self._launching: Counter[PoolKey] = Counter()
        self._retry_at = 0.0
        self._closed = False
        self._cond = threading.Condition()
        settings.root.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._refill_forever, name="evoprompt-warm-pool", daemon=True)
        self._thread.start()

    # -- the jobs' side ---------------------------------------------------------------------

    def take(self, framework: str, gpu: GpuShare | None) -> Box | None:
        """A started box for this framework and slot, or None (the caller starts one itself). Marks the
        framework as in use, so the pool keeps boxes of it from now on."""
        key = (framework, gpu)
        sandbox_id = self.launcher.sandbox_id(framework)
        deadline = time.monotonic() + LAUNCH_WAIT_SECONDS
        while True:
            stale: list[Box] = []
            with self._cond:
                if framework not in self._wanted:
                    self._wanted.add(framework)
                    self._cond.notify_all()
                queue = self._ready.setdefault(key, deque())
                box = None
                while queue and box is None:
                    candidate = queue.popleft()
                    if candidate.sandbox_id == sandbox_id and not self._expired(candidate):
                        box = candidate
                    else:
                        stale.append(candidate)
                launching = self._launching[key] > 0
                self._cond.notify_all()  # one fewer: refill
                if box is None and launching and time.monotonic() < deadline and not self._closed:
                    self._cond.wait(0.05)
            self._destroy(stale)
            if box is not None:
                if self.launcher.alive(box.handle):
                    return box
                log.warning("a warm sandbox of %s died while it waited; discarding it", framework)
                self._destroy([box])
                continue
            if not launching or time.monotonic() >= deadline or self._closed:
                return None

    def _expired(self, box: Box) -> bool:
        return time.monotonic() - box.born > self.settings.max_idle

    # -- the refiller -----------------------------------------------------------------------

    def _deficit(self) -> PoolKey | None:
        """A key with fewer boxes (ready or starting) than it should have; None when all are full."""
        if time.monotonic() < self._retry_at:
            return None
        for framework in sorted(self._wanted):
            for gpu, count in self._slots.items():
                key = (framework, gpu)
                have = len(self._ready.get(key, ())) + self._launching[key]
                if have < self.settings.size * count:
                    return key
        return None

    def _refill_forever(self) -> None:
        while True:
            stale: list[Box] = []
            with self._cond:
                wanted = sorted(self._wanted)
            # each framework's image tag once per round, outside the lock: it hashes the image's files
            current = {framework: self._current_id(framework) for framework in wanted}
            with self._cond:
                if self._closed:
                    return
                for queue in self._ready.values():
                    for box in list(queue):
                        if self._expired(box) or box.sandbox_id != current.get(box.framework, box.sandbox_id):
                            queue.remove(box)
                            stale.append(box)
                key = self._deficit()
                if key is not None:
                    self._launching[key] += 1
                elif not stale:
                    self._cond.wait(1.0)
            self._destroy(stale)
            if key is not None:
                box = self._start(*key)
                with self._cond:
                    self._launching[key] -= 1
                    if box is not None and not self._closed:
                        self._ready.setdefault(key, deque()).append(box)
                        box = None
                    self._cond.notify_all()
                if box is not None:  # closed while it started
                    self._destroy([box])

    def _current_id(self, framework: str) -> str:
        try:
            return self.launcher.sandbox_id(framework)
        except Exception:  # noqa: BLE001 - an unreadable image folder: keep what runs, say so
            log.exception("cannot tell the sandbox image of %s", framework)
            return ""

    def _start(self, framework: str, gpu: GpuShare | None) -> Box | None:
        try:
            box = new_box(self.settings.root, framework, gpu, self.launcher.sandbox_id(framework),
                          self.settings.limits)
            box.handle = self.launcher.launch(box, self.settings.data_dir)
            return box
        except Exception as exc:  # noqa: BLE001 - the pool is an optimisation: jobs start their own
            log.warning("could not start a warm sandbox for %s (retrying in %.0f s): %s", framework,
                        RETRY_SECONDS, exc)
            self._retry_at = time.monotonic() + RETRY_SECONDS
            return None

    def _destroy(self, boxes: list[Box]) -> None:
        for box in boxes:
            destroy_box(self.launcher, box)

    # -- introspection and shutdown ---------------------------------------------------------

    def ready(self) -> int:
        with self._cond:
            return sum(len(q) for q in self._ready.values())

    def close(self) -> None:
        """Stop refilling and destroy every waiting box."""
        with self._cond:
            self._closed = True
            boxes = [box for queue in self._ready.values() for box in queue]
            self._ready.clear()
            self._cond.notify_all()
        self._thread.join(timeout=120)
        self._destroy(boxes)


def destroy_box(launcher: Launcher, box: Box) -> None:
    """Destroy the sandbox, then its folder."""
    from ..outputs import remove_tree

    if box.handle is not None:
        try:
            launcher.destroy(box.handle)
        except Exception as exc:  # noqa: BLE001 - the engine is gone: a restarted server reaps it
            log.warning("could not remove a sandbox: %s", exc)
    remove_tree(box.dir)


def hand_over(job: SandboxJob, box: Box) -> None:
    """Give the job to the box's waiting harness: its input files moved in (same file system: renames),
    then READY, the signal to start."""
    import os

    from ..exchange import write_input_file
    from ..harness import harness_protocol

    for path in job.input_dir.iterdir():
        os.rename(path, box.input_dir / path.name)
    write_input_file(box.input_dir, harness_protocol().READY, "")


def take_outputs(job: SandboxJob, box: Box) -> None:
    """Leave what the box's sandbox wrote in the job's output folder (the sandbox has stopped)."""
    import os

    from ..outputs import remove_tree

    remove_tree(job.output_dir)
    os.rename(box.output_dir, job.output_dir)


class PooledSandbox(Sandbox):
    """A back-end whose sandboxes wait for their job: a warm pool of them, or one started per job."""

    pool: WarmPool | None = None

    @abc.abstractmethod
    def launch(self, box: Box, data_dir: Path | None) -> Any:
        """Start a sandbox whose harness waits for `box`'s job; returns its handle."""

    @abc.abstractmethod
    def alive(self, handle: Any) -> bool: ...

    @abc.abstractmethod
    def destroy(self, handle: Any) -> None: ...

    def start_pool(self, settings: PoolSettings) -> None:
        if settings.size > 0:
            self.pool = WarmPool(self, settings)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()

    def warm(self) -> int:
        return self.pool.ready() if self.pool is not None else 0

    def box_for(self, job: SandboxJob) -> Box:
        """A warm box from the pool, or one started now for this job alone (in its job folder)."""
        if self.pool is not None and job.data_dir == self.pool.settings.data_dir:
            box = self.pool.take(job.framework, job.gpu)
            if box is not None and box.limits == job.limits:
                return box
            if box is not None:
                destroy_box(self, box)
        box = new_box(job.job_dir, job.framework, job.gpu, self.sandbox_id(job.framework), job.limits)
        box.handle = self.launch(box, job.data_dir)
        return box
