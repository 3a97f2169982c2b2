"""Two-objective Pareto arithmetic for the search: size and validation error, both minimised.

- `non_dominated_sort(points)`: fronts of indices, the first non-dominated (NSGA-II's fast sort).
- `crowding_distance(points, front)`: how isolated each point of one front is (NSGA-II); the two
  extremes of a front are infinitely far, so they are kept first.
- `hypervolume(points, reference)`: the area the points dominate up to `reference` (larger is
  better); a point not better than the reference in both objectives adds nothing.

A point is (size, error). One dominates another when it is no worse in both and better in one; equal
points do not dominate each other, so duplicates share a front.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

Point = tuple[float, float]

#: the report's reference point: 10^6 parameters (about 200x the CNN seed) and an error of 1.0;
#: sizes are taken on a log10 scale, so that halving a small model counts as much as halving a big one
REFERENCE: Point = (6.0, 1.0)


def dominates(a: Point, b: Point) -> bool:
    return a[0] <= b[0] and a[1] <= b[1] and a != b


def non_dominated_sort(points: Sequence[Point]) -> list[list[int]]:
    """The fronts, each a sorted list of indices into `points`; every index appears exactly once."""
    dominated_by: list[list[int]] = [[] for _ in points]  # i dominates these
    count = [0] * len(points)  # how many points dominate i
    for i, p in enumerate(points):
        for j in range(i + 1, len(points)):
            q = points[j]
            if dominates(p, q):
                dominated_by[i].append(j)
                count[j] += 1
            elif dominates(q, p):
                dominated_by[j].append(i)
                count[i] += 1
    fronts: list[list[int]] = []
    current = [i for i, c in enumerate(count) if c == 0]
    while current:
        fronts.append(sorted(current))
        following: list[int] = []
        for i in current:
            for j in dominated_by[i]:
                count[j] -= 1
                if count[j] == 0:
                    following.append(j)
        current = following
    return fronts


def crowding_distance(points: Sequence[Point], front: Sequence[int]) -> dict[int, float]:
    """Each index of `front`: the sum over both objectives of the normalised gap between its neighbours."""
    distance = {i: 0.0 for i in front}
    if len(front) <= 2:
        return {i: math.inf for i in front}
    for axis in (0, 1):
        ordered = sorted(front, key=lambda i: (points[i][axis], i))
        low, high = points[ordered[0]][axis], points[ordered[-1]][axis]
        distance[ordered[0]] = distance[ordered[-1]] = math.inf
        if high == low:
            continue
        for before, mid, after in zip(ordered, ordered[1:], ordered[2:], strict=False):
            distance[mid] += (points[after][axis] - points[before][axis]) / (high - low)
    return distance


def hypervolume(points: Sequence[Point], reference: Point = REFERENCE) -> float:
    """The area dominated by `points` and bounded by `reference` (both objectives minimised)."""
    inside = sorted({p for p in points if p[0] < reference[0] and p[1] < reference[1]})
    area, best_error = 0.0, reference[1]
    for i, (size, error) in enumerate(inside):
        if error >= best_error:
            continue  # dominated by a smaller point already counted
        next_size = next((s for s, e in inside[i + 1:] if e < error), reference[0])
        area += (next_size - size) * (reference[1] - error)
        best_error = error
    return area


def size_error(num_params: int, val_error: float) -> Point:
    """A candidate's point for the report's hypervolume: (log10 size, validation error)."""
    return (math.log10(max(num_params, 1)), val_error)
