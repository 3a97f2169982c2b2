"""bench/search_budget.py's arithmetic: the arms' budgets, the steps to a hypervolume, the arm table and
the bar a child must clear against the CNN seed (the searches themselves are hours: README)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import search_budget as sb  # noqa: E402


def test_the_arms_are_sized_to_the_same_nominal_budget():
    paper, rungs, repeats, pareto = (sb.nominal_steps(sb.ARMS[n].config(0, 1)) for n in sb.BUDGET_ARMS)
    assert sb.nominal_steps(sb.ARMS["paper-long"].config(0, 1)) == (3 + 12 * 4) * 8000
    assert paper == (3 + 4 * 4) * 8000 == 152_000
    # 24 children at 500, 24 // 4 = 6 at 2,000, 6 // 4 = 1 at 8,000; 4 rounds; 3 seeds at 8,000
    assert rungs == 4 * (24 * 500 + 6 * 2000 + 1 * 8000) + 3 * 8000 == 152_000
    # 16 at 500, 4 at 2,000, 1 at 8,000 three times; 2 rounds; the seeds three times too
    assert repeats == pareto == 2 * (16 * 500 + 4 * 2000 + 3 * 8000) + 3 * 3 * 8000 == 152_000
    assert all(sb.ARMS[n].config(0, 1).parents == sb.PARENTS for n in sb.ARMS)
    # the long run is the paper search at the same seed, run on: its first rounds are the same search
    long, paper_config = sb.ARMS["paper-long"].config(0, 1), sb.ARMS["paper"].config(0, 1)
    assert long.with_changes(rounds=paper_config.rounds, run_id=paper_config.run_id) == paper_config
    assert all(sb.ARMS[n].config(0, 1).seed_programs == ("cnn", "logistic", "mlp") for n in sb.ARMS)


def test_quick_scales_every_step_count():
    config = sb.ARMS["rungs"].config(0, 16)
    assert config.max_steps == 500 and config.rungs == (31, 125, 500)


def curve(*points: tuple[int, float]) -> list[dict]:
    return [{"round": i + 1, "steps": s, "hypervolume": hv, "best_fitness": None} for i, (s, hv) in enumerate(points)]


def test_steps_to_reach_a_hypervolume():
    c = curve((1000, 1.0), (2000, 2.0), (3000, 2.5))
    assert sb.steps_to_reach(c, 2.0) == 2000
    assert sb.steps_to_reach(c, 0.5) == 1000
    assert sb.steps_to_reach(c, 2.6) is None


def test_the_arm_table_compares_each_search_with_the_paper_loop_of_its_seed():
    def search(arm, seed, steps, hv, points):
        return {"arm": arm, "seed": seed, "training_steps": steps, "hypervolume": hv, "best_fitness": -500.0,
                "wall_seconds": 10.0, "curve": curve(*points)}

    searches = [search("paper", 0, 9000, 2.0, [(3000, 1.0), (9000, 2.0)]),
                search("paper", 1, 9000, 3.0, [(9000, 3.0)]),
                search("paper", 2, 9000, 2.0, [(3000, 2.0), (9000, 2.0)]),  # its own final front after 3,000
                search("rungs", 0, 9000, 2.4, [(1500, 1.5), (3000, 2.1), (9000, 2.4)]),  # 2.0 after 3,000: 3x
                search("rungs", 1, 9000, 2.9, [(9000, 2.9)]),  # never reaches 3.0: no saving
                search("rungs", 2, 9000, 2.1, [(1500, 1.0), (6000, 2.1)])]  # 6,000 against the paper's 3,000
    header, rows, table = sb.arm_table(searches)
    assert table["rungs"]["steps_to_paper_hypervolume"] == [3000, None, 6000]
    assert table["rungs"]["paper_steps_ratio"] == [3.0, 1.0, 0.5]
    assert table["paper"]["steps_to_paper_hypervolume"] == []
    rungs_row = dict(zip(header, rows[1], strict=True))
    assert rungs_row["steps to paper's HV"] == "2/3 reached" and rungs_row["fewer steps than paper"].startswith("1.0x")
    assert rungs_row["hypervolume"] == "2.467 ± 0.404"
    assert rungs_row["trainings"] == "-"  # summaries written before the script counted them
    assert rungs_row["paper loop's steps for this HV"] == "-"  # no long run among these


def test_the_paper_loops_long_run_says_how_many_steps_it_needs_for_a_hypervolume():
    long = {"arm": "paper-long", "seed": 0, "training_steps": 40000, "hypervolume": 2.2, "best_fitness": -400.0,
            "wall_seconds": 10.0, "curve": curve((8000, 1.0), (16000, 2.0), (40000, 2.2))}
    rungs = {"arm": "rungs", "seed": 0, "training_steps": 9000, "hypervolume": 2.0, "best_fitness": -300.0,
             "wall_seconds": 10.0, "curve": curve((4000, 2.0), (9000, 2.0))}
    better = {**rungs, "arm": "rungs-repeats", "hypervolume": 2.5, "curve": curve((5000, 2.5))}
    assert sb.paper_needs(rungs, long) == {"steps": 4000, "paper_steps": 16000, "reached": True, "ratio": 4.0}
    # never reached by the long run: its whole budget is a lower bound on what the paper loop needs
    assert sb.paper_needs(better, long) == {"steps": 5000, "paper_steps": None, "reached": False, "ratio": 8.0}
    nothing = {**rungs, "hypervolume": 0.0, "curve": curve((4000, 0.0))}  # no child on the plane
    assert sb.paper_needs(nothing, long)["ratio"] is None
    header, rows, table = sb.arm_table([long, rungs, better])
    by_arm = {row[0]: dict(zip(header, row, strict=True)) for row in rows}
    assert by_arm["rungs"]["paper loop's steps for this HV"] == "4.0x (median; 1/1 reached)"
    assert by_arm["rungs-repeats"]["paper loop's steps for this HV"] == "8.0x (median; 0/1 reached)"
    assert by_arm["paper-long"]["paper loop's steps for this HV"] == "-"


def test_spent_counts_the_trainings_that_ran_and_their_seconds(tmp_path):
    from evoprompt.sdk import EvaluationResult, Status
    from evoprompt.search.store import DB_NAME, RunStore

    def result(request_id: str, steps: int, seconds: float, cached: bool = False) -> EvaluationResult:
        return EvaluationResult(request_id=request_id, status=Status.OK, num_params=10, val_accuracy=0.9,
                                test_accuracy=0.9, steps=steps, wall_seconds=seconds, cached=cached)

    with RunStore(tmp_path / DB_NAME) as store:
        seed = store.add_candidate(round=0, kind="seed", code="a", code_sha256="a", request_id="s")
        store.record_result(seed, result("s", 8000, 3.0), -1.0)
        child = store.add_candidate(round=1, kind="child", code="b", code_sha256="b", request_id="c")
        store.record_evaluation(child, 0, 0, 500, result("c-0", 500, 1.0))
        store.record_evaluation(child, 1, 0, 2000, result("c-1", 2000, 2.0))
        store.record_evaluation(child, 1, 1, 2000, result("c-2", 2000, 5.0, cached=True))  # from the cache
    assert sb.spent(tmp_path) == {"trainings": 3, "evaluator_seconds": 6.0}


def test_best_fitness_comes_from_the_front_under_alpha():
    summary = {"per_round": [{"round": 1, "training_steps_so_far": 10, "hypervolume": 1.0}], "training_steps": 10,
               "candidates": 3, "ok": 3, "duplicates": 0, "seeds_best_fitness": -400.0,
               "front": [{"id": 1, "num_params": 100, "num_state": 0, "val_error": 0.6},
                         {"id": 2, "num_params": 1000, "num_state": 200, "val_error": 0.2},
                         {"id": 3, "num_params": 5000, "num_state": 0, "val_error": 0.1}]}
    assert sb.search_numbers(summary, alpha=0.5)["best_fitness"] == pytest.approx(-240.0)


@pytest.mark.parametrize(("size", "test", "expected"), [(4000, 0.94, True), (4000, 0.93, True), (4000, 0.92, False),
                                                        (5210, 0.95, False), (None, 0.99, False)])
def test_a_child_dominates_the_cnn_when_smaller_and_at_least_as_accurate(size, test, expected):
    cnn = {"size": 5210, "test_mean": 0.93}
    assert sb.dominates({"size": size, "test_mean": test}, cnn) is expected
