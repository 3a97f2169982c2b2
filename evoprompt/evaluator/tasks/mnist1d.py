"""MNIST-1D (Greydanus 2020) with the paper's recipe; data made locally by the `mnist1d` package."""

from __future__ import annotations

import threading
from functools import cached_property
from pathlib import Path

import numpy as np

from .base import Recipe, Task

NUM_VALIDATION = 500  # held out from the 4000 training examples (DESIGN section 3)


class Mnist1dData:
    """The dataset, generated once per process; generation reseeds numpy's global RNG, hence the lock."""

    _lock = threading.Lock()

    @cached_property
    def arrays(self) -> dict[str, np.ndarray]:
        from mnist1d.data import get_dataset_args, make_dataset

        with self._lock:
            raw = make_dataset(get_dataset_args())
        x = raw["x"].astype(np.float32)
        y = raw["y"].astype(np.int64)
        return {
            "x_train": x[NUM_VALIDATION:],
            "y_train": y[NUM_VALIDATION:],
            "x_val": x[:NUM_VALIDATION],
            "y_val": y[:NUM_VALIDATION],
            "x_test": raw["x_test"].astype(np.float32),
            "y_test": raw["y_test"].astype(np.int64),
        }


_DATA = Mnist1dData()


class Mnist1dTask(Task):
    def write_inputs(self, input_dir: Path) -> None:
        a = _DATA.arrays
        np.savez(
            input_dir / "data.npz", x_train=a["x_train"], y_train=a["y_train"], x_val=a["x_val"], x_test=a["x_test"]
        )

    def labels(self) -> tuple[np.ndarray, np.ndarray]:
        a = _DATA.arrays
        return a["y_val"], a["y_test"]


MNIST1D = Mnist1dTask(
    name="mnist1d",
    description="MNIST-1D classification (40-long signals, 10 classes); 3500 train / 500 val / 1000 test",
    frameworks=("flax", "torch"),
    recipe=Recipe(default_steps=8000, max_steps=8000, lr=0.01, weight_decay=0.01, batch_size=128, num_checkpoints=16),
)
