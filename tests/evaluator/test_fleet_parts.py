"""The ray executor's parts that need no cluster: moving output folders, a node agent's relay of the
checkpoint exchange (with a stand-in sandbox), slot counting, and which Ray failures mean 'run it again'."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

from evoprompt.evaluator import protocol as P
from evoprompt.evaluator.executor import Executor
from evoprompt.evaluator.files import remove_tree
from evoprompt.evaluator.fleet.agent import NodeAgent
from evoprompt.evaluator.fleet.executor import _ray_failure
from evoprompt.evaluator.fleet.messages import AgentConfig, RemoteJob
from evoprompt.evaluator.fleet.remote import AgentMissing, node_slots
from evoprompt.evaluator.fleet.transfer import Entry, TreeTooLarge, pack_tree, unpack_tree
from evoprompt.evaluator.instance import JOBS
from evoprompt.evaluator.sandbox.base import GpuShare, Limits, SandboxJob, SandboxRun
from tests.support.fakes import FakeExecutor


def test_a_packed_folder_is_rebuilt_as_it_was_links_and_odd_files_included(tmp_path):
    src, dest = tmp_path / "src", tmp_path / "dest"
    (src / "sub" / "deeper").mkdir(parents=True)
    (src / "weights.npz").write_bytes(b"w" * 100)
    (src / "sub" / "deeper" / "x.txt").write_text("x")
    os.link(src / "weights.npz", src / "sub" / "again.npz")
    os.symlink("/etc/passwd", src / "predictions.npz")
    os.mkfifo(src / "pipe")
    dest.mkdir()
    unpack_tree(pack_tree(src, limit=10_000), dest)
    assert (dest / "weights.npz").read_bytes() == b"w" * 100
    assert (dest / "sub" / "deeper" / "x.txt").read_text() == "x"
    assert os.stat(dest / "sub" / "again.npz").st_ino == os.stat(dest / "weights.npz").st_ino
    assert os.readlink(dest / "predictions.npz") == "/etc/passwd"
    assert (dest / "pipe").is_fifo()


def test_packing_stops_past_the_limit_and_can_take_only_some_names(tmp_path):
    (tmp_path / "a").write_bytes(b"a" * 600)
    (tmp_path / "b").write_bytes(b"b" * 600)
    with pytest.raises(TreeTooLarge):
        pack_tree(tmp_path, limit=1000)
    assert [e.path for e in pack_tree(tmp_path, limit=1000, only=("b",))] == ["b"]


@pytest.mark.parametrize("entries", [
    [Entry("../escape", "file", b"x")],
    [Entry("/abs", "file", b"x")],
    [Entry("link", "link", b"/tmp"), Entry("link/through", "file", b"x")],  # never written through a link
    [Entry("copy", "hardlink", b"/etc/passwd")],
])
def test_unpacking_refuses_entries_outside_the_folder(tmp_path, entries):
    with pytest.raises(ValueError, match="refusing output entry"):
        unpack_tree(entries, tmp_path)
    assert not Path("/tmp/through").exists()


class ScriptedExecutor(FakeExecutor):
    """Stands in for a node's executor: writes validation predictions, waits for the choice through the
    job's exchange, then writes the test predictions and weights, as the harness does."""

    name = "scripted"

    def __init__(self) -> None:
        super().__init__()
        self.seen_spec: dict = {}

    def sandbox_id(self, framework: str) -> str:
        return f"image-of-{framework}"

    def check(self, frameworks: list[str]) -> None:
        pass

    def run(self, job: SandboxJob, cancel: threading.Event) -> SandboxRun:
        self.seen_spec = json.loads((job.input_dir / P.SPEC).read_text())
        assert (job.data_dir / "data.npz").read_bytes() == b"DATA"
        (job.output_dir).mkdir(exist_ok=True)
        (job.output_dir / P.PREDICTIONS).write_bytes(b"validation predictions")
        (job.output_dir / P.WEIGHTS).write_bytes(b"weights")
        (job.output_dir / P.VALIDATED).write_text("")
        while not (job.input_dir / P.CHOICE).exists():
            if cancel.wait(0.01):
                return SandboxRun(cancelled=True)
            job.exchange.poll(job.input_dir, job.output_dir)
        step = json.loads((job.input_dir / P.CHOICE).read_text())["step"]
        (job.output_dir / P.TEST_PREDICTIONS).write_text(f"test predictions at {step}")
        return SandboxRun(exit_code=0, wall_seconds=1.5)


def agent_with(executor: Executor, tmp_path: Path) -> NodeAgent:
    agent = NodeAgent(AgentConfig(owner_key="front-door", backend="process", pool_size=0), [None],
                      name="node-x", home=tmp_path)
    agent.executor = executor
    return agent


def remote_job(job_id: str, sandbox_id: str = "image-of-torch") -> RemoteJob:
    return RemoteJob(job_id, "torch", sandbox_id, 60.0, Limits(), {P.SPEC: b'{"data": "data.npz"}',
                                                                  P.CANDIDATE: b"code"}, "data.npz", [b"DATA"])


def test_the_agent_relays_validation_and_the_front_doors_choice(tmp_path):
    sandbox = ScriptedExecutor()
    agent = agent_with(sandbox, tmp_path)
    finished: list = []
    runner = threading.Thread(target=lambda: finished.append(agent.run(remote_job("j1"), GpuShare("0", 2))))
    runner.start()
    validation = agent.validation("j1")
    assert {e.path: e.data for e in validation} == {P.PREDICTIONS: b"validation predictions", P.VALIDATED: b""}
    agent.choose("j1", 7)
    runner.join(timeout=30)
    (done,) = finished
    assert done.run.exit_code == 0 and done.run.worker == "node-x"
    outputs = {e.path: e.data for e in done.outputs}
    assert outputs[P.TEST_PREDICTIONS] == b"test predictions at 7" and outputs[P.WEIGHTS] == b"weights"
    assert sandbox.seen_spec["gpu_memory_fraction"] == GpuShare("0", 2).memory_fraction
    assert not (agent.work / JOBS / "j1").exists()  # the node keeps no job folder


def test_the_agent_refuses_a_job_for_another_image_and_stops_a_cancelled_one(tmp_path):
    agent = agent_with(ScriptedExecutor(), tmp_path)
    refused = agent.run(remote_job("j2", sandbox_id="image-of-an-older-release"), None)
    assert "on node node-x" in refused.run.infra_error and "evoprompt images build" in refused.run.infra_error
    finished: list = []
    runner = threading.Thread(target=lambda: finished.append(agent.run(remote_job("j3"), None)))
    runner.start()
    agent.validation("j3")
    agent.cancel("j3")
    runner.join(timeout=30)
    assert finished[0].run.cancelled and finished[0].outputs is None


def test_node_slots_follow_the_nodes_ray_resources():
    cpu = AgentConfig("x", limits=Limits(cpus=2.0))
    assert node_slots({"CPU": 5.0}, cpu) == [None, None]
    gpu = AgentConfig("x", gpu_share=2)
    assert node_slots({"CPU": 8.0, "GPU": 2.0}, gpu) == [GpuShare("0", 2)] * 2 + [GpuShare("1", 2)] * 2
    assert node_slots({"CPU": 0.0}, AgentConfig("x")) == []


def test_lost_nodes_and_agents_are_run_again_other_failures_are_not():
    from ray import exceptions as rx

    assert _ray_failure(rx.WorkerCrashedError()) == "lost"
    assert _ray_failure(rx.RayTaskError("evaluate_on_node", "tb", rx.ActorDiedError())) == "lost"
    assert _ray_failure(rx.RayTaskError("evaluate_on_node", "tb", AgentMissing("no agent"))) == "missing"
    assert _ray_failure(rx.RayTaskError("evaluate_on_node", "tb", ValueError("a bug"))) == ""
    assert _ray_failure(ValueError("a bug")) == ""


def test_the_ray_executor_says_what_is_missing_before_ray_would_hang(tmp_path, monkeypatch):
    from evoprompt.evaluator.fleet.executor import RayExecutor
    from evoprompt.evaluator.settings import load_settings
    from evoprompt.sdk.errors import EvaluatorUnavailableError
    from tests.support.servers import free_port

    settings = load_settings(overrides={"executor": "ray", "ray_address": f"127.0.0.1:{free_port()}",
                                        "home": tmp_path})
    with pytest.raises(EvaluatorUnavailableError, match="no Ray cluster answers at '127.0.0.1:"):
        RayExecutor(settings, "owner").check([])
    monkeypatch.setitem(__import__("sys").modules, "ray", None)  # Ray not installed
    with pytest.raises(EvaluatorUnavailableError, match=r"pip install 'evoprompt-evaluator\[ray\]'"):
        RayExecutor(settings, "owner").check([])


def test_ray_settings_refuse_what_cannot_work(tmp_path):
    from evoprompt.evaluator.settings import load_settings

    with pytest.raises(ValueError, match="executor must be"):
        load_settings(overrides={"executor": "slurm", "home": tmp_path})
    with pytest.raises(ValueError, match="--ray-gpu-share"):
        load_settings(overrides={"executor": "ray", "gpus": "0,1", "home": tmp_path})


@pytest.fixture
def deep_home(tmp_path):
    """A folder this test empties itself: pytest's own clean-up (shutil.rmtree) recurses too deep for it."""
    yield tmp_path
    remove_tree(tmp_path / "src")


def test_a_deep_tree_packs_without_recursion_and_link_counts_survive(deep_home):
    src, dest = deep_home / "src" / "output", deep_home / "dest" / "output"
    src.mkdir(parents=True)
    folder = str(src)
    for _ in range(1100):  # deeper than Python's recursion limit
        folder = os.path.join(folder, "d")
        os.mkdir(folder)
    Path(folder, "leaf").write_text("x")
    (src / "predictions.npz").write_bytes(b"p")
    os.link(src / "predictions.npz", src / "d" / "second-name")
    dest.mkdir(parents=True)
    validation = pack_tree(src, limit=1000, only=("predictions.npz",))  # one of its two names
    unpack_tree(validation, dest)
    assert os.stat(dest / "predictions.npz").st_nlink == 2  # the front door's reader refuses it, as locally
    whole = pack_tree(src, limit=1000)
    assert sum(e.kind == "dir" for e in whole) == 1100 and whole[-1].path.endswith("/leaf")


def test_unpacking_refuses_a_name_twice(tmp_path):
    with pytest.raises(ValueError, match="not a new name"):
        unpack_tree([Entry("x", "link", b"/etc/passwd"), Entry("x", "file", b"owned")], tmp_path)
