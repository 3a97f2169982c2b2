"""The warm pool's bookkeeping with a fake launcher: refilled per slot and framework in use, every box
served once at most, and never one that waited too long, died, or runs an image no longer asked for."""

from __future__ import annotations

import threading
import time

from evoprompt.evaluator.sandbox.base import GpuShare, Limits, PoolSettings
from evoprompt.evaluator.sandbox.pool import WarmPool
from tests.support.servers import wait_until


class FakeLauncher:
    def __init__(self) -> None:
        self.image = "img:1"
        self.launched: list[str] = []
        self.destroyed: list[str] = []
        self.dead: set[str] = set()
        self._lock = threading.Lock()

    def sandbox_id(self, framework: str) -> str:
        return f"{framework}@{self.image}"

    def launch(self, box):
        with self._lock:
            self.launched.append(box.dir.name)
        return box.dir.name

    def alive(self, handle) -> bool:
        return handle not in self.dead

    def destroy(self, handle) -> None:
        with self._lock:
            self.destroyed.append(handle)


def pool(tmp_path, launcher, **kw) -> WarmPool:
    kw.setdefault("size", 1)  # one box per slot and framework keeps the counting below plain
    settings = PoolSettings(root=tmp_path / "pool", limits=Limits(),
                            slots=kw.pop("slots", (None, None)), **kw)
    return WarmPool(launcher, settings)


def test_one_box_per_slot_and_framework_in_use_each_served_once(tmp_path):
    launcher = FakeLauncher()
    p = pool(tmp_path, launcher, frameworks=("torch",))
    try:
        wait_until(lambda: p.ready() == 2, 10)  # two slots: two torch boxes, nothing for unused frameworks
        assert len(launcher.launched) == 2
        assert p.take("flax", None) is None  # not warm yet; from now on flax is in use
        wait_until(lambda: p.ready() == 4, 10)
        served = [p.take("torch", None) for _ in range(6)]
        names = [b.dir.name for b in served if b is not None]
        assert len(names) == len(set(names)) >= 2  # refilled in between, but never the same box twice
        assert all(b is None or (b.input_dir.is_dir() and b.output_dir.stat().st_mode & 0o777 == 0o777)
                   for b in served)
    finally:
        p.close()
    # every waiting box destroyed with its folder; the taken ones are their jobs' to destroy
    assert {d.name for d in (tmp_path / "pool").iterdir()} == set(names)
    assert set(launcher.destroyed) == set(launcher.launched) - set(names)  # every waiting box destroyed


def test_boxes_of_an_old_image_are_never_served_and_are_replaced(tmp_path):
    launcher = FakeLauncher()
    p = pool(tmp_path, launcher, frameworks=("torch",), slots=(None,))
    try:
        wait_until(lambda: p.ready() == 1, 10)
        old = set(launcher.launched)
        launcher.image = "img:2"
        box = p.take("torch", None)
        assert box is None or box.dir.name not in old
        assert box is None or box.sandbox_id == "torch@img:2"
        wait_until(lambda: old <= set(launcher.destroyed), 10)
        wait_until(lambda: p.ready() == 1, 10)
        assert p.take("torch", None).sandbox_id == "torch@img:2"
    finally:
        p.close()


def test_a_box_that_waited_too_long_or_died_is_not_served(tmp_path):
    launcher = FakeLauncher()
    p = pool(tmp_path, launcher, frameworks=("torch",), slots=(None,), max_idle=0.5)
    try:
        wait_until(lambda: launcher.launched, 10)
        first = launcher.launched[0]
        wait_until(lambda: first in launcher.destroyed, 10)  # recycled after 0.5 s of waiting
        wait_until(lambda: p.ready() == 1, 10)
        launcher.dead.update(launcher.launched)
        box = p.take("torch", None)
        assert box is None or box.handle not in launcher.dead
    finally:
        p.close()


def test_gpu_slots_get_boxes_of_their_own_device(tmp_path):
    launcher = FakeLauncher()
    a, b = GpuShare("0", 2), GpuShare("1", 1)
    p = pool(tmp_path, launcher, frameworks=("torch",), slots=(a, a, b))
    try:
        wait_until(lambda: p.ready() == 3, 10)
        taken = [p.take("torch", a), p.take("torch", a), p.take("torch", b)]
        assert [t.gpu for t in taken] == [a, a, b]
    finally:
        p.close()


def test_take_waits_for_a_box_being_started_rather_than_start_its_own(tmp_path):
    launcher = FakeLauncher()
    slow = threading.Event()
    real_launch = launcher.launch

    def slow_launch(box):
        slow.wait(5)
        return real_launch(box)

    launcher.launch = slow_launch
    p = pool(tmp_path, launcher, frameworks=("torch",), slots=(None,))
    try:
        time.sleep(0.2)  # the refiller is inside launch now
        threading.Timer(0.5, slow.set).start()
        box = p.take("torch", None)
        assert box is not None and box.dir.name == launcher.launched[0]
    finally:
        p.close()
