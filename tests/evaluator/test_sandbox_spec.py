"""The docker back-end's container policy and GPU placement, checked on the specification it builds
(no GPU is needed: DESIGN section 4 and the GPU slot contract are properties of that dict)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from evoprompt.evaluator.images import image_tag
from evoprompt.evaluator.sandbox import make_sandbox
from evoprompt.evaluator.sandbox.base import GpuShare, Limits
from evoprompt.evaluator.sandbox.docker import container_spec
from evoprompt.evaluator.sandbox.pool import Box
from evoprompt.evaluator.settings import load_settings

pytest.importorskip("docker")


def job(tmp_path: Path, gpu: GpuShare | None = None) -> Box:
    return Box("torch", gpu, "img:1", Limits(memory_bytes=2 << 30, cpus=2.0, pids=64), tmp_path / "abc123")


def test_cpu_container_is_locked_down(tmp_path, monkeypatch):
    monkeypatch.setenv("EVOPROMPT_SECRET_CANARY", "canary-value")
    spec = container_spec(job(tmp_path), "img:1", owner="own", instance="inst")
    assert spec["network_mode"] == "none" and spec["read_only"] is True
    assert spec["cap_drop"] == ["ALL"] and "no-new-privileges" in spec["security_opt"]
    # init (tini) is root with only what it needs to start the harness as nobody with no capabilities
    assert spec["user"] == "0:0" and spec["init"] is True
    assert sorted(spec["cap_add"]) == ["SETGID", "SETPCAP", "SETUID"]
    drop = spec["command"][: spec["command"].index("--") + 1]
    assert drop[0] == "setpriv" and "--reuid=65534" in drop and "--regid=65534" in drop
    assert "--bounding-set=-all" in drop and "--inh-caps=-all" in drop and "--clear-groups" in drop
    # the harness imports torch, then waits for the job folder only this container mounts
    assert spec["command"][len(drop):] == ["python", "-m", "evoprompt_harness", "--wait", "torch", "--max-wait",
                                           "14400", "/job/input", "/job/output"]
    assert spec["mem_limit"] == spec["memswap_limit"] == 2 << 30
    assert spec["pids_limit"] == 64 and spec["nano_cpus"] == 2_000_000_000
    assert spec["labels"] == {"evoprompt.managed": "1", "evoprompt.owner": "own", "evoprompt.instance": "inst",
                              "evoprompt.job": "abc123", "evoprompt.image": "img:1"}
    mounts = spec["volumes"]
    assert mounts[str(tmp_path / "abc123" / "input")]["mode"] == "ro"
    # no data folder: the server links the job's data into input/ once the model is built
    assert mounts[str(tmp_path / "abc123" / "output")]["mode"] == "rw" and len(mounts) == 2
    assert not any("docker.sock" in src for src in mounts)
    assert "device_requests" not in spec
    env = spec["environment"]
    assert env["CUDA_VISIBLE_DEVICES"] == "" and "canary-value" not in json.dumps(env)
    assert not set(env) & (set(os.environ) - {"HOME", "TMPDIR", "OMP_NUM_THREADS"})


def test_gpu_slot_gets_its_device_alone_and_a_memory_share(tmp_path):
    spec = container_spec(job(tmp_path, GpuShare("1", share_of=2)), "img:1", owner="own", runtime="runsc")
    (request,) = spec["device_requests"]
    assert request["DeviceIDs"] == ["1"] and request["Capabilities"] == [["gpu"]] and request["Count"] == 0
    env = spec["environment"]
    assert env["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false"
    assert float(env["XLA_PYTHON_CLIENT_MEM_FRACTION"]) == pytest.approx(0.475)
    assert "CUDA_VISIBLE_DEVICES" not in env  # the container sees only its device, as index 0
    assert spec["runtime"] == "runsc"


def test_serve_gpus_plan_binds_each_slot_to_one_device():
    settings = load_settings(overrides={"gpus": "0,1", "slots_per_gpu": 3})
    plan = settings.slot_plan()
    assert [s.device_id for s in plan] == ["0"] * 3 + ["1"] * 3
    assert {s.memory_fraction for s in plan} == {round(0.95 / 3, 3)}


def test_gpu_server_runs_the_cuda_images():
    cpu = make_sandbox("docker", owner_key="x")
    gpu = make_sandbox("docker", owner_key="x", gpu=True)
    assert cpu.sandbox_id("torch") == image_tag("torch-cpu")
    assert gpu.sandbox_id("torch") == image_tag("torch-cuda") and gpu.sandbox_id("flax") == image_tag("jax-cuda")


def test_scheduler_hands_the_memory_fraction_to_the_harness(tmp_path):
    from evoprompt.evaluator.scheduler import Scheduler
    from evoprompt.evaluator.store import ResultStore
    from tests.support.fakes import FakeExecutor

    from .test_scheduler import request

    seen = {}

    class Recording(FakeExecutor):
        def run(self, job, cancel):
            seen.update(json.loads((job.input_dir / "spec.json").read_text()))
            return super().run(job, cancel)

    s = Scheduler(Recording(slots=[GpuShare("0", 4)]), ResultStore(tmp_path / "r.sqlite3"), queue_capacity=4,
                  work_dir=tmp_path / "w", limits=Limits())
    try:
        assert s.submit(request()).result(30).ok
    finally:
        s.close()
    assert seen["gpu_memory_fraction"] == pytest.approx(round(0.95 / 4, 3))


def test_torch_harness_applies_the_memory_fraction(monkeypatch):
    """The harness caps torch's allocator at the slot's share when a GPU is visible."""
    import importlib

    import torch

    from evoprompt.evaluator.harness import import_harness

    import_harness()
    train_torch = importlib.import_module("evoprompt_harness.train_torch")
    calls = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "set_per_process_memory_fraction", lambda f, d: calls.append((f, d)))
    device = train_torch._setup_device({"threads": 1, "gpu_memory_fraction": 0.475})
    assert calls == [(0.475, 0)] and device == torch.device("cuda", 0)


def test_a_missing_image_is_an_actionable_infrastructure_error(tmp_path):
    import threading

    import docker.errors

    from evoprompt.evaluator.sandbox.docker import DockerSandbox

    class Containers:
        def create(self, **spec):
            raise docker.errors.ImageNotFound(f"No such image: {spec['image']}")

    class Client:
        containers = Containers()

    from evoprompt.evaluator.sandbox.base import SandboxJob
    from evoprompt.evaluator.sandbox.lifecycle import run_job

    sandbox = DockerSandbox(owner="own", client=Client())
    (tmp_path / "job" / "input").mkdir(parents=True)
    run = run_job(sandbox, None, SandboxJob("abc123", "torch", tmp_path / "job", 60.0, Limits()), threading.Event())
    assert "is not built" in run.infra_error and "make images" in run.infra_error
    assert sandbox.sandbox_id("torch") in run.infra_error
