"""Registry of the tasks this evaluator offers."""

from __future__ import annotations

from .base import Recipe, Task
from .mnist1d import MNIST1D

TASKS: dict[str, Task] = {MNIST1D.name: MNIST1D}


def get_task(name: str) -> Task | None:
    return TASKS.get(name)


__all__ = ["TASKS", "Recipe", "Task", "get_task"]
