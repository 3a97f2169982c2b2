"""The tasks this evaluator offers. There is no global table: each server builds its own with
`configured_tasks` (its held-out data drawn from its own secret) and passes it wherever tasks are needed."""

from __future__ import annotations

from .base import Recipe, Task
from .clrs import clrs_tasks
from .mnist1d import MNIST1D


def configured_tasks(
    data_secret: str, clrs_eval_samples: int = 0, clrs_test_length: int = 64
) -> dict[str, Task]:
    """Every task of this server: MNIST-1D's held-out data drawn from `data_secret` ("" = the public
    data); the CLRS tasks (where dm-clrs is installed) with `clrs_eval_samples` validation and test
    samples each (0 = dm-clrs run.py's) and test graphs of `clrs_test_length` nodes."""
    return {
        MNIST1D.name: MNIST1D.with_data_secret(data_secret),
        **clrs_tasks(clrs_eval_samples, clrs_test_length),
    }


__all__ = ["Recipe", "Task", "configured_tasks"]
