"""MNIST-1D (Greydanus 2020) with the paper's recipe; data made locally by the `mnist1d` package.

The generator is public, so with its public seed (42) a candidate could replay it and know every
validation and test label. A server therefore draws its data from a secret seed unless told to use the
public one (`--public-data`, to compare with published figures); the distribution is the same.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path

import numpy as np

from ..outputs import read_test, read_validation
from ..scoring import Validation, validation_of
from .base import Recipe, Task

NUM_VALIDATION = 500  # held out from the 4000 training examples (DESIGN section 3)
PUBLIC_SEED = 42  # mnist1d's default


def seed_from_secret(secret: str) -> int:
    """numpy's legacy seeding takes 32 bits: too many to replay within one evaluation's time limit."""
    return int.from_bytes(hashlib.sha256(f"evoprompt-mnist1d:{secret}".encode()).digest()[:4], "big")


class Mnist1dData:
    """One dataset, generated on first use; generation reseeds numpy's global RNG, hence the lock."""

    _lock = threading.Lock()

    def __init__(self, seed: int) -> None:
        self.seed = seed

    @cached_property
    def arrays(self) -> dict[str, np.ndarray]:
        raw = _make(self.seed, self._lock)
        x = raw["x"].astype(np.float32)
        y = raw["y"].astype(np.int64)
        check = _make(check_seed(self.seed), self._lock)
        return {
            "x_check": check["x_test"].astype(np.float32),
            "y_check": check["y_test"].astype(np.int64),
            "x_train": x[NUM_VALIDATION:],
            "y_train": y[NUM_VALIDATION:],
            "x_val": x[:NUM_VALIDATION],
            "y_val": y[:NUM_VALIDATION],
            "x_test": raw["x_test"].astype(np.float32),
            "y_test": raw["y_test"].astype(np.int64),
        }


def check_seed(seed: int) -> int:
    """The secret check set's seed: another draw of the same generator, derived from the data seed (so
    from the server's secret; with --public-data it is public too)."""
    return int.from_bytes(hashlib.sha256(f"evoprompt-mnist1d-check:{seed}".encode()).digest()[:4], "big")


def _make(seed: int, lock: threading.Lock) -> dict[str, np.ndarray]:
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.seed = seed
    with lock:  # generation reseeds numpy's global RNG
        return make_dataset(args)


_DATASETS: dict[int, Mnist1dData] = {}
_DATASETS_LOCK = threading.Lock()


def dataset(seed: int) -> Mnist1dData:
    """The process-wide dataset of one seed (servers with the same seed share it)."""
    with _DATASETS_LOCK:
        return _DATASETS.setdefault(seed, Mnist1dData(seed))


@dataclass(frozen=True)
class Mnist1dTask(Task):
    data_seed: int = PUBLIC_SEED

    @property
    def data_id(self) -> str:
        # the public seed is named; a secret one only by a digest that does not reveal it
        if self.data_seed == PUBLIC_SEED:
            return "public"
        return hashlib.sha256(f"mnist1d:{self.data_seed}".encode()).hexdigest()[:16]

    def with_data_secret(self, secret: str) -> Mnist1dTask:
        return replace(self, data_seed=seed_from_secret(secret)) if secret else replace(self, data_seed=PUBLIC_SEED)

    def write_data(self, path: Path) -> None:
        """The training sandbox's data: the training split and the validation inputs (no test inputs:
        those go to the verifier alone)."""
        a = dataset(self.data_seed).arrays
        with open(path, "wb") as f:
            np.savez(f, x_train=a["x_train"], y_train=a["y_train"], x_val=a["x_val"])

    def write_verify_data(self, path: Path) -> None:
        a = dataset(self.data_seed).arrays
        with open(path, "wb") as f:
            np.savez(f, x_val=a["x_val"], x_test=a["x_test"], x_check=a["x_check"])

    def verify_labels(self) -> dict[str, np.ndarray]:
        a = dataset(self.data_seed).arrays
        return {"val": a["y_val"], "test": a["y_test"], "check": a["y_check"]}

    def score_validation(self, output_dir: Path, limit: int, checkpoints: list[int]) -> Validation:
        y_val = dataset(self.data_seed).arrays["y_val"]
        steps, pred = read_validation(output_dir, limit, checkpoints, {"val": y_val.shape}, classes=True)
        return validation_of(steps, (pred["val"] == y_val[None, :]).mean(axis=1), pred["val"])

    def score_test(self, output_dir: Path, limit: int, step: int) -> float:
        y_test = dataset(self.data_seed).arrays["y_test"]
        pred = read_test(output_dir, limit, step, {"test": y_test.shape}, classes=True)
        return float((pred["test"] == y_test).mean())


MNIST1D = Mnist1dTask(
    name="mnist1d",
    description="MNIST-1D classification (40-long signals, 10 classes); 3500 train / 500 val / 1000 test",
    frameworks=("flax", "torch"),
    verified_frameworks=("flax", "torch"),
    recipe=Recipe(default_steps=8000, max_steps=8000, lr=0.01, weight_decay=0.01, batch_size=128, num_checkpoints=16),
)
