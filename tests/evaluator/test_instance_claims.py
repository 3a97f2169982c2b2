"""Instance claims (instance.py), the result store's forget, `evoprompt cache`, and a Ray front door
refusing two nodes of one name: the parts of 'evaluators sharing a home' that need no container."""

from __future__ import annotations

import subprocess
import sys
import types

import pytest

from evoprompt.evaluator.instance import Instance, is_live, remove_dead
from evoprompt.evaluator.store import ResultStore
from evoprompt.sdk.types import EvaluationResult, Status
from tests.support.servers import EVOPROMPT

CLAIM_AND_HANG = """
import sys, time
from pathlib import Path
from evoprompt.evaluator.instance import Instance
instance = Instance(Path(sys.argv[1]))
(instance.dir / "job-file").write_text("work")
print(instance.id, flush=True)
time.sleep(600)
"""


def claim_in_a_process(root) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-c", CLAIM_AND_HANG, str(root)], stdout=subprocess.PIPE, text=True)
    return proc, proc.stdout.readline().strip()


def test_a_live_instance_is_never_removed_a_dead_one_is(tmp_path):
    mine = Instance(tmp_path)
    alive, alive_id = claim_in_a_process(tmp_path)
    dead, dead_id = claim_in_a_process(tmp_path)
    try:
        dead.kill()  # SIGKILL: no clean-up of its own, the kernel drops its lock
        dead.wait()
        assert is_live(tmp_path, alive_id) and is_live(tmp_path, mine.id) and not is_live(tmp_path, dead_id)
        (tmp_path / "jobs").mkdir()  # an earlier version's layout: nobody claims it
        assert remove_dead(tmp_path, keep=mine.id) == sorted([dead_id, "jobs"])
        assert (tmp_path / alive_id / "job-file").read_text() == "work" and mine.dir.is_dir()
        assert not (tmp_path / dead_id).exists() and not (tmp_path / f"{dead_id}.lock").exists()
    finally:
        alive.kill()
        alive.wait()
    mine.release()
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{alive_id}", f"{alive_id}.lock"]
    assert remove_dead(tmp_path, keep="") == [alive_id] and not list(tmp_path.iterdir())


def test_each_instance_has_its_own_folder(tmp_path):
    a, b = Instance(tmp_path), Instance(tmp_path)
    assert a.dir != b.dir and a.dir.is_dir() and b.dir.is_dir()
    b.release()
    b.release()  # twice is harmless
    assert is_live(tmp_path, a.id) and not is_live(tmp_path, b.id) and not b.dir.exists()
    a.release()


def stored(rid: str, sha: str, status: Status) -> EvaluationResult:
    return EvaluationResult(request_id=rid, status=status, code_sha256=sha, task="mnist1d", framework="torch",
                            steps=10, seed=0, sandbox="img:1")


def test_evoprompt_cache_forget_drops_a_wrongly_cached_result(tmp_path):
    home = tmp_path / "home"
    store = ResultStore(home / "results.sqlite3")
    sha, other = "ab" * 32, "cd" * 32
    store.put("key-1", stored("r1", sha, Status.RUNTIME_ERROR))  # as an older evaluator stored a kill from outside
    store.put("key-2", stored("r2", other, Status.OK))
    store.close()
    show = subprocess.run(EVOPROMPT + ["cache", "show", sha[:12], "--home", str(home)], capture_output=True, text=True)
    assert show.returncode == 0 and "r1" in show.stdout and "RUNTIME_ERROR" in show.stdout and "r2" not in show.stdout
    forget = subprocess.run(EVOPROMPT + ["cache", "forget", sha, "--status", "RUNTIME_ERROR", "--home", str(home)],
                            capture_output=True, text=True)
    assert forget.returncode == 0 and "forgot 1 result(s)" in forget.stdout, forget.stderr
    store = ResultStore(home / "results.sqlite3")
    try:
        assert store.get("r1") is None and store.get_cached("key-1") is None  # the next request runs again
        assert store.get("r2") is not None and store.get_cached("key-2") is not None
    finally:
        store.close()


@pytest.mark.parametrize("args, message", [
    (["cache", "forget", "abc"], "at least 8 hex digits"),
    (["cache", "show", "ab" * 32, "--status", "FINE"], "unknown status 'FINE'"),
    (["cache", "show", "ab" * 32], "no result store at"),
])
def test_evoprompt_cache_says_what_is_wrong(tmp_path, args, message):
    done = subprocess.run(EVOPROMPT + [*args, "--home", str(tmp_path / "nowhere")], capture_output=True, text=True)
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr


class FakeAgent:
    """A node's agent as a Ray actor handle looks to the front door."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.closed = False
        self.node_name = types.SimpleNamespace(remote=lambda: self.name)
        self.close = types.SimpleNamespace(remote=lambda: setattr(self, "closed", True))


def test_the_front_door_refuses_two_nodes_of_one_name(tmp_path, monkeypatch):
    from evoprompt.evaluator.fleet import executor as fleet_executor
    from evoprompt.evaluator.settings import load_settings
    from evoprompt.sdk.errors import EvaluatorUnavailableError

    names = {"n1" * 8: "gpu-box", "n2" * 8: "gpu-box", "n3" * 8: "cpu-box"}
    nodes = [{"NodeID": node_id, "Alive": True, "Resources": {"CPU": 2.0}} for node_id in names]
    killed = []
    fake_ray = types.SimpleNamespace(nodes=lambda: nodes, get=lambda refs, timeout=None: refs,
                                     kill=lambda agent: killed.append(agent))
    monkeypatch.setitem(sys.modules, "ray", fake_ray)
    monkeypatch.setattr(fleet_executor, "start_agent", lambda config, node_id, slots: FakeAgent(names[node_id]))
    ray_executor = fleet_executor.RayExecutor(load_settings(overrides={"executor": "ray", "home": tmp_path}),
                                              "front-door")
    ray_executor._config = ray_executor._agent_config()
    with pytest.raises(EvaluatorUnavailableError, match="both called 'gpu-box'.*EVOPROMPT_NODE_NAME"):
        ray_executor._ensure_agents(strict=True)  # at start: serve fails with the fix
    assert len(killed) == 1 and killed[0].closed and killed[0].name == "gpu-box"
    assert sorted(ray_executor._names.values()) == ["cpu-box", "gpu-box"]
    ray_executor._ensure_agents()  # the watcher's next round: the refused node is not started again
    assert len(killed) == 1
    del ray_executor._agents["n1" * 8]  # its agent was dropped after a failed attempt; the node is the same
    ray_executor._ensure_agents()
    assert "n1" * 8 in ray_executor._agents and len(killed) == 1  # not a clash with itself
