"""A warm pool: sandboxes started ahead of need, each waiting for the one job it will ever run.

A back-end (sandbox/base.py) starts a sandbox whose harness imports its framework and then waits, with no
candidate present, for its job folder to fill (evoprompt_harness/protocol.py). The pool keeps
`size` of them per slot and framework in use, refills in the background, and throws away (never
serves) one that waited longer than `max_idle`, that died, or that runs an image other than the
one its framework now asks for. A box is taken by exactly one job and destroyed after it: never
reused, never shared.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque

from ..files import remove_tree
from .base import Box, GpuShare, PoolSettings, Sandbox, new_box

log = logging.getLogger(__name__)

PoolKey = tuple[str, GpuShare | None]  # framework, the slot's GPU share
LAUNCH_WAIT_SECONDS = 10.0  # a job waits this long for a box being started rather than start its own
RETRY_SECONDS = 10.0  # after a failed start (image missing, engine busy) before the next try


class WarmPool:
    def __init__(self, launcher: Sandbox, settings: PoolSettings) -> None:
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
            box.handle = self.launcher.launch(box)
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


def destroy_box(launcher: Sandbox, box: Box) -> None:
    """Destroy the sandbox, then its folder."""
    if box.handle is not None:
        try:
            launcher.destroy(box.handle)
        except Exception as exc:  # noqa: BLE001 - the engine is gone: a restarted server reaps it
            log.warning("could not remove a sandbox: %s", exc)
    remove_tree(box.dir)
