"""A fake sandbox for fast scheduler and servicer tests: no process, outputs written directly."""

from __future__ import annotations

import json
import threading

import numpy as np

from evoprompt.evaluator.sandbox.base import Sandbox, SandboxJob, SandboxRun


class FakeSandbox(Sandbox):
    """Writes valid outputs (all predictions class 0) after `gate` opens; counts runs per code."""

    name = "fake"

    def __init__(self, auto_open: bool = True) -> None:
        self.gate = threading.Event()
        if auto_open:
            self.gate.set()
        self.runs: list[str] = []
        self.started = threading.Semaphore(0)
        self._lock = threading.Lock()

    def sandbox_id(self, framework: str) -> str:
        return f"fake-{framework}"

    def check(self, frameworks: list[str]) -> None:
        pass

    def run(self, job: SandboxJob, cancel: threading.Event) -> SandboxRun:
        code = (job.input_dir / "candidate.py").read_text()
        with self._lock:
            self.runs.append(code)
        self.started.release()
        while not self.gate.wait(0.01):
            if cancel.is_set():
                return SandboxRun(cancelled=True, wall_seconds=0.01)
        spec = json.loads((job.input_dir / "spec.json").read_text())
        data = np.load((job.data_dir or job.input_dir) / spec["data"])
        steps = spec["checkpoints"]
        out = job.output_dir
        out.mkdir(parents=True, exist_ok=True)
        np.savez(out / "predictions.npz", steps=np.array(steps),
                 val=np.zeros((len(steps), len(data["x_val"])), np.int64))
        np.savez(out / "weights.npz", **{"params/w": np.zeros(len(code))})
        (out / "validated").touch()
        if job.exchange is not None:  # the job protocol's second exchange, as the harness makes it
            job.exchange.poll(job.input_dir, out)
            step = json.loads((job.input_dir / "choice.json").read_text())["step"]
            np.savez(out / "test_predictions.npz", step=np.array(step), test=np.zeros(len(data["x_test"]), np.int64))
        return SandboxRun(exit_code=0, wall_seconds=0.01)
