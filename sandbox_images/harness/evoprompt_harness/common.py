"""Pieces the trainers share: batching order, checkpoints, output files.

The trainers call these through the module (`common.write_weights(...)`), so a candidate that patches
them at import time is seen doing so: it runs in this process, and the server trusts none of it."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .errors import CandidateError
from .protocol import PREDICTIONS, TEST_PREDICTIONS, WEIGHTS

NUM_CLASSES = 10


def batch_indices(n: int, batch_size: int, steps: int, seed: int) -> Iterator[np.ndarray]:
    """Yield `steps` batches: a fresh seeded permutation every epoch, as ordinary SGD training does."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    pos = 0
    for _ in range(steps):
        if pos + batch_size > n:
            order, pos = rng.permutation(n), 0
        yield order[pos : pos + batch_size]
        pos += batch_size


def check_logits_shape(shape: tuple[int, ...], batch: int, call: str) -> None:
    if tuple(shape) != (batch, NUM_CLASSES):
        raise CandidateError(
            "INVALID_OUTPUT",
            f"{call} must return logits of shape (batch, {NUM_CLASSES}); for a batch of {batch} inputs "
            f"of shape ({batch}, 40) it returned shape {tuple(shape)}",
        )


def check_loss(loss: float, step: int) -> None:
    if not math.isfinite(loss):
        raise CandidateError(
            "RUNTIME_ERROR",
            f"the training loss became {loss} at step {step}; lower the initial scale of the weights "
            "or add normalisation",
        )


class Checkpoints:
    """Validation predictions and a parameter snapshot at each checkpoint. Only the server, which alone
    holds the validation labels, can tell which checkpoint is best, so every snapshot is kept until it
    has chosen; the test inputs are then predicted once, from the chosen snapshot."""

    def __init__(self, steps: list[int]) -> None:
        self.planned = set(steps)
        self.steps: list[int] = []
        self.val: dict[str, list[np.ndarray]] = {}
        self.snapshots: dict[int, Any] = {}

    def __contains__(self, step: int) -> bool:
        return step in self.planned

    def add(self, step: int, val: dict[str, np.ndarray], snapshot: Any) -> None:
        self.steps.append(step)
        for name, array in val.items():
            self.val.setdefault(name, []).append(np.asarray(array))
        self.snapshots[step] = snapshot

    def write_validation(self, output_dir: Path) -> None:
        write_validation(output_dir, self.steps, self.val)


def write_validation(output_dir: Path, steps: list[int], val: dict[str, list[np.ndarray]]) -> None:
    arrays = {name: np.stack(per_step) for name, per_step in val.items()}
    np.savez(output_dir / PREDICTIONS, steps=np.asarray(steps, dtype=np.int64), **arrays)


def write_test_predictions(output_dir: Path, step: int, arrays: dict[str, np.ndarray]) -> None:
    np.savez(output_dir / TEST_PREDICTIONS, step=np.asarray(step, dtype=np.int64),
             **{name: np.asarray(a) for name, a in arrays.items()})


def write_weights(output_dir: Path, params: dict[str, np.ndarray], state: dict[str, np.ndarray]) -> None:
    arrays = {f"params/{k}": np.asarray(v) for k, v in params.items()}
    arrays.update({f"state/{k}": np.asarray(v) for k, v in state.items()})
    np.savez(output_dir / WEIGHTS, **arrays)


def flatten_tree(tree: Any, prefix: str = "") -> dict[str, np.ndarray]:
    """Nested dicts of arrays -> {'a/b/kernel': array}."""
    flat: dict[str, np.ndarray] = {}
    for key, value in tree.items():
        name = f"{prefix}/{key}" if prefix else str(key)
        if hasattr(value, "items"):
            flat.update(flatten_tree(value, name))
        else:
            flat[name] = np.asarray(value)
    return flat
