"""Pareto arithmetic against fronts worked by hand."""

from __future__ import annotations

import math

import pytest

from evoprompt.search.pareto import crowding_distance, dominates, hypervolume, non_dominated_sort, size_error


def test_dominance_is_strict_and_equal_points_share_a_front():
    assert dominates((1, 0.2), (2, 0.2)) and dominates((1, 0.2), (1, 0.3))
    assert not dominates((1, 0.2), (1, 0.2)) and not dominates((1, 0.3), (2, 0.2))
    assert non_dominated_sort([(1, 0.2), (1, 0.2)]) == [[0, 1]]


def test_non_dominated_sort_of_a_hand_worked_set():
    points = [(1, 0.9), (2, 0.5), (3, 0.2), (2, 0.6), (3, 0.6), (4, 0.9), (5, 0.1)]
    # front 1: (1,.9) (2,.5) (3,.2) (5,.1); front 2: (2,.6); front 3: (3,.6); front 4: (4,.9)
    assert non_dominated_sort(points) == [[0, 1, 2, 6], [3], [4], [5]]
    assert non_dominated_sort([]) == []


def test_crowding_distance_keeps_the_extremes_and_measures_the_middle():
    points = [(0, 1.0), (1, 0.5), (3, 0.25), (4, 0.0)]
    d = crowding_distance(points, [0, 1, 2, 3])
    assert d[0] == d[3] == math.inf
    assert d[1] == pytest.approx((3 - 0) / 4 + (1.0 - 0.25) / 1.0)
    assert d[2] == pytest.approx((4 - 1) / 4 + (0.5 - 0.0) / 1.0)
    assert crowding_distance(points, [1, 2]) == {1: math.inf, 2: math.inf}


def test_hypervolume_of_known_fronts():
    ref = (2.0, 1.0)
    assert hypervolume([(1, 0.5)], ref) == pytest.approx(0.5)
    assert hypervolume([(1, 0.5), (1.5, 0.2)], ref) == pytest.approx(0.65)  # 0.5 + 0.4 - 0.25 overlap
    assert hypervolume([(1, 0.5), (1.5, 0.2), (1.2, 0.6)], ref) == pytest.approx(0.65)  # a dominated point adds 0
    assert hypervolume([(2, 0.5), (1, 1.0), (3, 0.1)], ref) == 0.0  # none inside the reference box
    assert hypervolume([], ref) == 0.0


def test_size_error_uses_a_log_size():
    assert size_error(1000, 0.25) == (3.0, 0.25) and size_error(0, 0.5) == (0.0, 0.5)
