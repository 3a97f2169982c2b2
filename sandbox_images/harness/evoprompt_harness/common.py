"""Pieces both trainers share: batching order, checkpoint schedule, output files."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .errors import CandidateError

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


def write_predictions(output_dir: Path, steps: list[int], val: list[np.ndarray], test: list[np.ndarray]) -> None:
    np.savez(
        output_dir / "predictions.npz",
        steps=np.asarray(steps, dtype=np.int64),
        val=np.stack(val).astype(np.int64),
        test=np.stack(test).astype(np.int64),
    )


def write_weights(output_dir: Path, params: dict[str, np.ndarray], state: dict[str, np.ndarray]) -> None:
    arrays = {f"params/{k}": np.asarray(v) for k, v in params.items()}
    arrays.update({f"state/{k}": np.asarray(v) for k, v in state.items()})
    np.savez(output_dir / "weights.npz", **arrays)


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
