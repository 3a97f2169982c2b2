"""Selection and promotion arithmetic: ties, fewer children than eta, failed children, Pareto order."""

from __future__ import annotations

import pytest

from evoprompt.search.selection import Point, mean_interval, promoted, rank, rank_for_promotion


def pts(*rows: tuple[int, int, float]) -> list[Point]:
    return [Point(i, size, err, -size * err) for i, size, err in rows]


def test_fitness_ranking_breaks_ties_by_the_earlier_candidate():
    points = pts((5, 100, 0.2), (3, 200, 0.1), (4, 50, 0.5), (1, 400, 0.3))  # fitness -20, -20, -25, -120
    assert rank(points, "fitness") == [3, 5, 4, 1]


def test_pareto_ranking_orders_fronts_then_crowding():
    points = pts((1, 100, 0.5), (2, 200, 0.3), (3, 300, 0.2), (4, 400, 0.1), (5, 250, 0.35), (6, 500, 0.5))
    order = rank(points, "pareto")
    # front 1: ids 1-4 (extremes 1 and 4 first, then the more isolated of 2 and 3); then 5; then 6
    assert order[:2] == [1, 4] and set(order[2:4]) == {2, 3} and order[4:] == [5, 6]
    with pytest.raises(ValueError, match="selection must be"):
        rank(points, "greedy")


def test_promotion_takes_the_top_one_over_eta_of_those_that_entered():
    assert promoted([7, 3, 9, 1, 2, 8, 4, 5], 16, 4) == [7, 3, 9, 1]  # 16 entered: 4 go on
    assert promoted([7, 3], 16, 4) == [7, 3]  # most failed: the successful ones, no more
    assert promoted([7, 3, 9], 3, 4) == [7]  # fewer children than eta: the best one still goes on
    assert promoted([], 8, 4) == []  # every child failed: nobody


@pytest.mark.parametrize("selection", ["fitness", "pareto"])
def test_promotion_ranks_children_under_the_alpha_bound_first(selection):
    # a 10-parameter model at error 0.7 has the best fitness (-7) and is on the front, but fails alpha 0.5
    points = pts((1, 10, 0.7), (2, 5000, 0.3), (3, 3000, 0.45), (4, 20, 0.9))
    order = rank_for_promotion(points, selection, 0.5)
    assert set(order[:2]) == {2, 3} and set(order[2:]) == {1, 4}
    assert order[2:] == [i for i in rank(points, selection) if i in (1, 4)]
    assert rank_for_promotion(pts((1, 10, 0.7)), selection, 0.5) == [1]  # none passes: still ranked, not dropped


def test_mean_interval_uses_student_t():
    assert mean_interval([0.9]) == (0.9, 0.0)
    mean, half = mean_interval([0.90, 0.92, 0.94])
    assert mean == pytest.approx(0.92) and half == pytest.approx(4.303 * 0.02 / 3 ** 0.5)
