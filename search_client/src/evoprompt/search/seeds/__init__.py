"""Seed programs shipped with the package: the first parents of a search and the CI smoke set.

Layout: seeds/<task>/<framework>/<name>.py, each a complete candidate program (DESIGN section 2).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

SEEDS_DIR = Path(__file__).parent


@dataclass(frozen=True)
class Seed:
    task: str
    framework: str
    name: str
    code: str


def list_seeds(task: str, framework: str) -> list[Seed]:
    """Seeds of a task and framework, sorted by name; empty when there are none."""
    folder = SEEDS_DIR / task.split("/")[0] / framework
    return [
        Seed(task, framework, path.stem, path.read_text())
        for path in sorted(folder.glob("*.py"))
        if not path.name.startswith("_")
    ]
