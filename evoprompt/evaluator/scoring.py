"""Turn predictions into scores: accuracy per checkpoint, best by validation, test at that checkpoint."""

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


def score_classification(pred: Predictions, y_val: np.ndarray, y_test: np.ndarray) -> Score:
    val_acc = (pred.val == y_val[None, :]).mean(axis=1)
    test_acc = (pred.test == y_test[None, :]).mean(axis=1)
    best = int(np.argmax(val_acc))  # first maximum: the earliest checkpoint wins ties
    rows = tuple((int(s), float(v), float(t)) for s, v, t in zip(pred.steps, val_acc, test_acc, strict=True))
    return Score(float(val_acc[best]), float(test_acc[best]), int(pred.steps[best]), rows)
