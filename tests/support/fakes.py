"""A fake executor for fast scheduler and servicer tests: no sandbox, outputs written directly."""

from __future__ import annotations

import json
import threading

import numpy as np

from evoprompt.evaluator.executor import Executor
from evoprompt.evaluator.protocol import (
    CANDIDATE,
    CHOICE,
    PREDICTIONS,
    PROGRAM_JAX,
    PROGRAM_TORCH,
    ROLE_VERIFY,
    SPEC,
    TENSORS,
    TEST_PREDICTIONS,
    VALIDATED,
    VERIFIED,
    WEIGHTS,
)
from evoprompt.evaluator.sandbox.base import GpuShare, SandboxJob, SandboxRun
from evoprompt.sdk.ast_retry import retry_ast
from evoprompt.sdk.types import NodeInfo

#: A candidate holding this text "crashes before training" in the fake (a repairable child).
FAKE_SHAPE_ERROR = "FAKE_SHAPE_ERROR"


def _arrays(path) -> dict[str, np.ndarray]:
    """Every array of an .npz (numpy parses their headers with ast: see evoprompt.sdk.ast_retry)."""
    def read() -> dict[str, np.ndarray]:
        with np.load(path) as npz:
            return {k: npz[k] for k in npz.files}

    return retry_ast(read)


class FakeExecutor(Executor):
    """Writes valid outputs (all predictions class 0) after `gate` opens; counts runs per code.
    A candidate containing FAKE_SHAPE_ERROR exits 1 at once, as a shape mismatch would."""

    kind = "local"
    backend = "fake"

    def __init__(self, auto_open: bool = True, slots: list[GpuShare | None] | None = None) -> None:
        self._slots = slots or [None]
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

    def start(self) -> None:
        pass

    def slots(self) -> list[GpuShare | None]:
        return list(self._slots)

    def nodes(self, running: int) -> list[NodeInfo]:
        return [NodeInfo("local", len(self._slots), len(self._slots) - running, (), 0)]

    def close(self) -> None:
        pass

    def run(self, job: SandboxJob, cancel: threading.Event) -> SandboxRun:
        spec = json.loads((job.input_dir / SPEC).read_text())
        if spec.get("role") == ROLE_VERIFY:
            return self._verify(job, spec)
        code = (job.input_dir / CANDIDATE).read_text()
        with self._lock:
            self.runs.append(code)
        self.started.release()
        while not self.gate.wait(0.01):
            if cancel.is_set():
                return SandboxRun(cancelled=True, wall_seconds=0.01)
        if FAKE_SHAPE_ERROR in code:
            return SandboxRun(exit_code=1, wall_seconds=0.01, stderr_tail=(
                "RuntimeError: mat1 and mat2 shapes cannot be multiplied (2x40 and 480x10)\n"))
        data = _arrays((job.data_dir or job.input_dir) / spec["data"])
        steps = spec["checkpoints"]
        out = job.output_dir
        out.mkdir(parents=True, exist_ok=True)
        np.savez(out / PREDICTIONS, steps=np.array(steps),
                 val=np.zeros((len(steps), len(data["x_val"])), np.int64))
        np.savez(out / WEIGHTS, **{"params/w": np.zeros(len(code))})
        (out / VALIDATED).touch()
        if job.exchange is not None:  # the job protocol's second exchange, as the harness makes it
            job.exchange.poll(job.input_dir, out)
            step = json.loads((job.input_dir / CHOICE).read_text())["step"]
            if "x_test" in data:
                np.savez(out / TEST_PREDICTIONS, step=np.array(step), test=np.zeros(len(data["x_test"]), np.int64))
            else:  # a verified task: the "exported model" is one parameter per byte of code
                (out / (PROGRAM_JAX if spec["framework"] == "flax" else PROGRAM_TORCH)).write_text("{}")
                np.savez(out / TENSORS, **{"params/w": np.zeros(len(code), np.float32)})
        return SandboxRun(exit_code=0, wall_seconds=0.01)

    def _verify(self, job: SandboxJob, spec: dict) -> SandboxRun:
        """The verifier's part: logits whose top class is 0, and the exported parameters counted."""
        data = _arrays((job.data_dir or job.input_dir) / spec["data"])
        tensors = _arrays(job.input_dir / TENSORS)
        logits = {split: np.eye(10, dtype=np.float32)[np.zeros(len(data[f"x_{split}"]), np.int64)]
                  for split in ("val", "test", "check")}
        job.output_dir.mkdir(parents=True, exist_ok=True)
        np.savez(job.output_dir / VERIFIED, num_params=np.int64(sum(t.size for t in tensors.values())),
                 num_state=np.int64(0), **logits)
        return SandboxRun(exit_code=0, wall_seconds=0.01)
