"""Helpers shared by the benchmarks: a private embedded evaluator, tables, JSON output."""

from __future__ import annotations

import contextlib
import json
import platform
import statistics
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).parent / "results"


@contextlib.contextmanager
def private_evaluator(backend: str, slots: int, frameworks: Sequence[str], **settings: Any) -> Iterator[str]:
    """An embedded evaluator with a fresh result store (nothing answered from an earlier run), scoring on
    the published data so the figures compare with published ones."""
    from evoprompt.sdk.embedded import embedded_evaluator

    with tempfile.TemporaryDirectory(prefix="evoprompt-bench-") as home, \
            embedded_evaluator(frameworks=frameworks, backend=backend, slots=slots, home=home,
                               **{"public_data": True, **settings}) as endpoint:
        yield endpoint


def print_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [[str(c) for c in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    for n, row in enumerate(cells):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
        if n == 0:
            print("  ".join("-" * w for w in widths))


def write_json(path: Path, payload: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"machine": {"platform": platform.platform(), "python": platform.python_version(),
                           "when": time.strftime("%Y-%m-%dT%H:%M:%S%z")}, **payload}
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path


def median(values: Sequence[float]) -> float:
    return statistics.median(values)
