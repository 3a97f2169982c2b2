"""Which candidates a search keeps: the ranking behind parent selection and rung promotion.

- `rank(points, selection)`: best first. `fitness`: the paper's scalar (-size * val_error), higher
  first. `pareto`: NSGA-II's order on (size, val_error): non-dominated fronts first, within a front
  the more isolated (larger crowding distance) first. Ties go to the earlier candidate (lower id).
- `rank_for_promotion(points, selection, alpha)`: `rank`, those under the alpha bound first.
- `promoted(ranked, entered, eta)`: successive halving's cut (ASHA, Hyperband): the top 1/eta of the
  `entered` candidates of a rung, at least one while any succeeded; failed ones are never ranked.
- `mean_interval(values)`: a mean and the half-width of its 95% confidence interval (Student t).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from .pareto import crowding_distance, non_dominated_sort

SELECTIONS = ("fitness", "pareto")
# Student's t quantile (two-sided 95%) by degrees of freedom; beyond 30, the normal's
_T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228,
        15: 2.131, 20: 2.086, 30: 2.042}


@dataclass(frozen=True)
class Point:
    """One candidate as selection sees it."""

    id: int
    size: int  # num_params + num_state
    val_error: float
    fitness: float  # -size * val_error (or its lower confidence bound)


def rank(points: Sequence[Point], selection: str) -> list[int]:
    """The candidates' ids, best first."""
    if selection == "fitness":
        return [p.id for p in sorted(points, key=lambda p: (-p.fitness, p.id))]
    if selection != "pareto":
        raise ValueError(f"selection must be one of {', '.join(SELECTIONS)}, not {selection!r}")
    xy = [(float(p.size), p.val_error) for p in points]
    order: list[int] = []
    for front in non_dominated_sort(xy):
        crowd = crowding_distance(xy, front)
        order.extend(sorted(front, key=lambda i: (-crowd[i], points[i].id)))
    return [points[i].id for i in order]


def rank_for_promotion(points: Sequence[Point], selection: str, alpha: float) -> list[int]:
    """`rank`, with the candidates under the alpha bound (validation error < alpha) ahead of the rest: the
    filter the paper applies to parents, kept for promotion too so that a tiny model that learns little
    (the paper's fitness favours it) does not take a finalist's place; never promotes nobody."""
    passing = [p for p in points if p.val_error < alpha]
    rest = [p for p in points if p.val_error >= alpha]
    return rank(passing, selection) + rank(rest, selection)


def promoted(ranked: Sequence[int], entered: int, eta: int) -> list[int]:
    """The first max(1, entered // eta) of `ranked` (the rung's successful candidates, best first)."""
    if not ranked:
        return []
    return list(ranked[: max(1, entered // eta)])


def mean_interval(values: Sequence[float]) -> tuple[float, float]:
    """(mean, half-width of the 95% confidence interval); the half-width is 0 for one value."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, 0.0
    df = len(values) - 1
    t = next((_T95[d] for d in sorted(_T95) if d >= df), 1.96)
    return mean, t * statistics.stdev(values) / math.sqrt(len(values))
