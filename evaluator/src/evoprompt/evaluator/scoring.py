"""Turn predictions into scores: a score per checkpoint, best by validation, test at that checkpoint."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .outputs import Predictions


@dataclass(frozen=True)
class Score:
    val_accuracy: float
    test_accuracy: float
    best_step: int
    checkpoints: tuple[tuple[int, float, float], ...]  # (step, val, test)


def best_by_validation(steps: np.ndarray, val: np.ndarray, test: np.ndarray) -> Score:
    """Per-checkpoint validation and test scores -> the best checkpoint by validation, test there."""
    best = int(np.argmax(val))  # first maximum: the earliest checkpoint wins ties
    rows = tuple((int(s), float(v), float(t)) for s, v, t in zip(steps, val, test, strict=True))
    return Score(float(val[best]), float(test[best]), int(steps[best]), rows)


def score_classification(pred: Predictions, y_val: np.ndarray, y_test: np.ndarray) -> Score:
    val_acc = (pred.val == y_val[None, :]).mean(axis=1)
    test_acc = (pred.test == y_test[None, :]).mean(axis=1)
    return best_by_validation(pred.steps, val_acc, test_acc)
