"""What a task is: the recipe the harness follows, the data it gets, and how the server scores it."""

from __future__ import annotations

import abc
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..scoring import Score


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

    @property
    def data_id(self) -> str:
        """Which data this task instance trains and scores on; part of the result cache key."""
        return "public"

    @abc.abstractmethod
    def write_inputs(self, input_dir: Path) -> None:
        """Write the sandbox's data file: training split and unlabelled validation/test inputs."""

    @abc.abstractmethod
    def score(self, output_dir: Path, limit: int, checkpoints: list[int]) -> Score:
        """Score the predictions the sandbox wrote against held-out answers that stay on the server;
        raises BadOutput for anything malformed (`limit`: the most bytes a file may inflate to)."""

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

    def write_job(self, input_dir: Path, framework: str, code: str, steps: int, seed: int, *, threads: int,
                  gpu_memory_fraction: float | None = None) -> None:
        """Everything the harness reads: spec.json, candidate.py and the data file."""
        spec = self.spec(framework, steps, seed)
        spec["threads"] = threads
        if gpu_memory_fraction is not None:
            spec["gpu_memory_fraction"] = gpu_memory_fraction
        (input_dir / "spec.json").write_text(json.dumps(spec))
        (input_dir / "candidate.py").write_text(code, encoding="utf-8")
        self.write_inputs(input_dir)
