"""Turn predictions into scores: validation at every checkpoint, the best one chosen, test only there."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Validation:
    """Validation accuracy per checkpoint; the best checkpoint (earliest on ties) is the one reported."""

    steps: tuple[int, ...]
    val: tuple[float, ...]
    # the predicted classes of each checkpoint (rows as steps), which the verifier's must match
    predicted: np.ndarray | None = field(default=None, compare=False, repr=False)

    @property
    def best_step(self) -> int:
        return self.steps[int(np.argmax(self.val))]  # first maximum: the earliest checkpoint wins ties

    @property
    def best_val(self) -> float:
        return max(self.val)


@dataclass(frozen=True)
class Score:
    val_accuracy: float
    test_accuracy: float
    best_step: int
    # (step, val, test); test is known at the best checkpoint only (the test inputs are predicted there)
    checkpoints: tuple[tuple[int, float, float], ...]


def validation_of(steps: np.ndarray, val: np.ndarray, predicted: np.ndarray | None = None) -> Validation:
    return Validation(tuple(int(s) for s in steps), tuple(float(v) for v in val), predicted)


def final_score(validation: Validation, test_accuracy: float) -> Score:
    best = validation.best_step
    rows = tuple((s, v, test_accuracy if s == best else 0.0) for s, v in zip(validation.steps, validation.val,
                                                                               strict=True))
    return Score(validation.best_val, test_accuracy, best, rows)
