"""What a task is: the recipe the harness follows, the data it gets, and how the server scores it."""

from __future__ import annotations

import abc
import hashlib
import json
import os
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..protocol import CANDIDATE, ROLE_VERIFY, SPEC
from ..scoring import Score, Validation, final_score

_DATA_LOCK = threading.Lock()
DATA_VERSION = 2  # in the data files' names: what they hold changed (2: no test inputs for training sandboxes)


def _ensure_file(data_dir: Path, name: str, write: Callable[[Path], None]) -> str:
    path = data_dir / name
    with _DATA_LOCK:
        if not path.exists():
            data_dir.mkdir(parents=True, exist_ok=True)
            partial = data_dir / f".{uuid.uuid4().hex}.partial.npz"
            write(partial)
            partial.chmod(0o644)
            os.replace(partial, path)
    return name


@dataclass(frozen=True)
class Recipe:
    """Training recipe shared by every candidate of a task; a request may only lower `steps`."""

    default_steps: int
    max_steps: int
    lr: float
    weight_decay: float
    batch_size: int
    num_checkpoints: int

    def checkpoints(self, steps: int) -> list[int]:
        """Evenly spaced checkpoint steps ending at `steps` (fewer when steps is small)."""
        count = max(1, min(self.num_checkpoints, steps))
        return sorted({max(1, round(steps * (i + 1) / count)) for i in range(count)})


@dataclass(frozen=True)
class Task(abc.ABC):
    name: str
    description: str
    frameworks: tuple[str, ...]
    recipe: Recipe
    harness_options: dict[str, Any] = field(default_factory=dict)
    # frameworks whose trained models the verifier rebuilds from their export (DESIGN section 3); the
    # others are scored from the training sandbox's own test predictions and weights file
    verified_frameworks: tuple[str, ...] = ()

    def verifies(self, framework: str) -> bool:
        return framework in self.verified_frameworks

    @property
    def data_id(self) -> str:
        """Which data this task instance trains and scores on; part of the result cache key."""
        return "public"

    @property
    def data_name(self) -> str:
        """The data file's name: one file per task and data identity, shared by its jobs."""
        return self._file_name("data")

    @property
    def verify_data_name(self) -> str:
        """The verifier's data file: the inputs it predicts (validation, test, secret check set)."""
        return self._file_name("verify")

    def _file_name(self, kind: str) -> str:
        digest = hashlib.sha256(f"{self.name}|{self.data_id}|{kind}|{DATA_VERSION}".encode()).hexdigest()[:16]
        return f"{self.name.replace('/', '-')}-{kind}-{digest}.npz"

    @abc.abstractmethod
    def write_data(self, path: Path) -> None:
        """Write the training sandbox's data file: training split and unlabelled validation inputs (and
        test inputs where the task is not verified)."""

    def write_verify_data(self, path: Path) -> None:
        """Write the verifier's data file: `x_<split>` for each split of `verify_labels`."""
        raise NotImplementedError(f"{self.name} has no verifier")

    def verify_labels(self) -> dict[str, np.ndarray]:
        """The labels of what the verifier predicts, by split: val, test and check (they stay here)."""
        raise NotImplementedError(f"{self.name} has no verifier")

    def ensure_data(self, data_dir: Path) -> str:
        """Write the data file into `data_dir` unless it is there (once per data identity, atomically,
        readable by the sandbox's user); returns its name."""
        return _ensure_file(data_dir, self.data_name, self.write_data)

    def ensure_verify_data(self, data_dir: Path) -> str:
        return _ensure_file(data_dir, self.verify_data_name, self.write_verify_data)

    @abc.abstractmethod
    def score_validation(self, output_dir: Path, limit: int, checkpoints: list[int]) -> Validation:
        """Score the validation predictions of every checkpoint against answers that stay on the server;
        raises BadOutput for anything malformed (`limit`: the most bytes a file may inflate to)."""

    @abc.abstractmethod
    def score_test(self, output_dir: Path, limit: int, step: int) -> float:
        """Score the test predictions, made once at checkpoint `step`; raises BadOutput as above."""

    def score(self, output_dir: Path, limit: int, checkpoints: list[int]) -> Score:
        """Both halves at once, for outputs already complete (the exchange does them one at a time)."""
        validation = self.score_validation(output_dir, limit, checkpoints)
        return final_score(validation, self.score_test(output_dir, limit, validation.best_step))

    def verify_spec(self, framework: str) -> dict[str, Any]:
        """The verifier's spec.json."""
        return {"role": ROLE_VERIFY, "task": self.name, "framework": framework, "data": self.verify_data_name}

    def spec(self, framework: str, steps: int, seed: int) -> dict[str, Any]:
        """The harness's spec.json for one job."""
        return {
            "task": self.name,
            "framework": framework,
            "steps": steps,
            "seed": seed,
            "lr": self.recipe.lr,
            "weight_decay": self.recipe.weight_decay,
            "batch_size": self.recipe.batch_size,
            "checkpoints": self.recipe.checkpoints(steps),
            **self.harness_options,
        }

    def write_job(self, input_dir: Path, data_dir: Path, framework: str, code: str, steps: int, seed: int, *,
                  threads: int, gpu_memory_fraction: float | None = None) -> None:
        """Everything the harness reads: its spec and the candidate in `input_dir`, the data file in
        `data_dir` (written there once, shared by the task's jobs)."""
        spec = self.spec(framework, steps, seed)
        spec["data"] = self.ensure_data(data_dir)
        spec["threads"] = threads
        if gpu_memory_fraction is not None:
            spec["gpu_memory_fraction"] = gpu_memory_fraction
        (input_dir / SPEC).write_text(json.dumps(spec))
        (input_dir / CANDIDATE).write_text(code, encoding="utf-8")
