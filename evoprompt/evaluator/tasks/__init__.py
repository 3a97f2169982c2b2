"""Registry of the tasks this evaluator offers."""

from __future__ import annotations

from .base import Recipe, Task
from .mnist1d import MNIST1D

# The tasks with their public data; a server builds its own with `tasks_with_data_secret`.
TASKS: dict[str, Task] = {MNIST1D.name: MNIST1D}


def tasks_with_data_secret(secret: str) -> dict[str, Task]:
    """Every task, its held-out data drawn from `secret` ("" = the public data)."""
    return {name: task.with_data_secret(secret) for name, task in TASKS.items()}


def get_task(name: str) -> Task | None:
    return TASKS.get(name)


__all__ = ["TASKS", "Recipe", "Task", "get_task", "tasks_with_data_secret"]
