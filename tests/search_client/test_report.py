"""The run report: numbers from a synthetic run database, the Figure 2 plots, the HTML page and the CLI."""

from __future__ import annotations

import argparse
import hashlib
import html
import json
from pathlib import Path

import pytest

from evoprompt.sdk.types import EvaluationResult, Status
from evoprompt.search.cli import report_cmd
from evoprompt.search.report import pareto_front, summarize, write_report
from evoprompt.search.store import RunStore

ALPHA = 0.5
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
BEST_CODE = "class Model:\n    def forward(self, x):\n        return x if x.shape[0] < 2 else x  # a < b & c\n"


def fitness(result: EvaluationResult) -> float | None:
    return -result.num_params * result.val_error if result.ok and result.val_error < ALPHA else None


def add(store: RunStore, rnd: int, code: str, *, kind: str = "child", name: str | None = None,
        parents: tuple[int, ...] = (), state: str = "generated") -> int:
    return store.add_candidate(round=rnd, kind=kind, name=name, code=code, parents=parents, state=state,
                               code_sha256=hashlib.sha256(code.encode()).hexdigest(), request_id=None)


def evaluate(store: RunStore, cid: int, status: Status = Status.OK, *, params: int = 0, val: float = 0.0,
             test: float = 0.0) -> None:
    result = EvaluationResult(request_id=f"r{cid}", status=status, val_accuracy=val, test_accuracy=test,
                              num_params=params, message="" if status is Status.OK else "boom")
    store.record_result(cid, result, fitness(result))


def write_config(run_dir: Path) -> None:
    config = {"task": "mnist1d", "framework": "torch", "lm": "fake-lm", "rounds": 2, "prompts": 2, "samples": 2,
              "parents": 3, "shots": 2, "alpha": ALPHA, "max_steps": 100, "seed": 0, "mode": "paper"}
    (run_dir / "config.json").write_text(json.dumps(config))


def seed_run(run_dir: Path) -> tuple[RunStore, dict[str, int]]:
    """A store with three evaluated seeds: two pass the filter, one (val error 0.7) does not."""
    store = RunStore(run_dir / "run.sqlite3")
    write_config(run_dir)
    ids = {"mlp": add(store, 0, "class Model: pass  # mlp", kind="seed", name="mlp", state="generated"),
           "cnn": add(store, 0, "class Model: pass  # cnn", kind="seed", name="cnn"),
           "tiny": add(store, 0, "class Model: pass  # tiny", kind="seed", name="tiny")}
    evaluate(store, ids["mlp"], params=1000, val=0.80, test=0.79)  # fitness -200
    evaluate(store, ids["cnn"], params=5000, val=0.90, test=0.88)  # fitness -500
    evaluate(store, ids["tiny"], params=50, val=0.30, test=0.31)  # filtered: fitness NULL
    return store, ids


def build_run(run_dir: Path) -> dict[str, int]:
    """Two rounds of children: OK, COMPILE_ERROR, RUNTIME_ERROR, duplicate, filtered and pending ones."""
    store, ids = seed_run(run_dir)
    s_mlp, s_cnn, s_tiny = ids["mlp"], ids["cnn"], ids["tiny"]
    store.start_round(1, (s_mlp, s_cnn, s_tiny))
    ids["c1"] = add(store, 1, "class Model: pass  # c1", parents=(s_mlp,))
    evaluate(store, ids["c1"], params=800, val=0.85, test=0.84)  # fitness -120
    ids["c2"] = add(store, 1, "class Model(", parents=(s_cnn,))
    evaluate(store, ids["c2"], Status.COMPILE_ERROR)
    ids["c3"] = add(store, 1, "class Model: pass  # mlp", parents=(s_mlp,), state="duplicate")
    ids["c4"] = add(store, 1, "class Model: pass  # c4", parents=(s_mlp, s_cnn))
    evaluate(store, ids["c4"], params=3000, val=0.95, test=0.94)  # fitness -150
    store.event("lm_error", "connection reset", round=1)
    store.finish_evaluation(1, (ids["c1"], ids["c4"], s_mlp))
    store.finish_round(1, [0.9, 0.5, 0.3], None)

    store.start_round(2, (ids["c1"], ids["c4"], s_mlp))
    ids["c5"] = add(store, 2, BEST_CODE, parents=(ids["c1"], ids["c4"]))
    evaluate(store, ids["c5"], params=600, val=0.90, test=0.89)  # fitness -60: the best
    ids["c6"] = add(store, 2, "class Model: pass  # c6", parents=(ids["c1"],))
    evaluate(store, ids["c6"], Status.RUNTIME_ERROR)
    ids["c7"] = add(store, 2, "class Model: pass  # c7", parents=(ids["c4"],))
    evaluate(store, ids["c7"], params=100, val=0.20, test=0.21)  # OK but filtered
    ids["c8"] = add(store, 2, "class Model: pass  # c8", parents=(ids["c5"],))  # generated, not yet evaluated
    store.event("lm_error", "timeout", round=2)
    store.event("evaluator_error", "UNAVAILABLE", round=2)
    store.finish_evaluation(2, (ids["c5"], ids["c1"], ids["c4"]))
    store.close()
    return ids


@pytest.fixture(scope="module")
def full_run(tmp_path_factory) -> tuple[Path, dict[str, int]]:
    run_dir = tmp_path_factory.mktemp("run")
    return run_dir, build_run(run_dir)


@pytest.fixture(scope="module")
def full_report(full_run) -> Path:
    return write_report(full_run[0])


def assert_png(path: Path, min_size: int = 5000) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > min_size, path


def test_summary_counts_best_and_seeds(full_run):
    run_dir, ids = full_run
    s = summarize(run_dir)
    assert (s["rounds"], s["candidates"], s["evaluated"], s["ok"], s["filtered_in"]) == (2, 8, 6, 4, 3)
    assert s["states"] == {"evaluated": 6, "duplicate": 1, "generated": 1}
    assert s["statuses"] == {"OK": 4, "COMPILE_ERROR": 1, "RUNTIME_ERROR": 1}
    best = s["best"]
    assert best["id"] == ids["c5"] and best["round"] == 2 and best["num_params"] == 600
    assert best["val_accuracy"] == pytest.approx(0.90) and best["test_accuracy"] == pytest.approx(0.89)
    assert best["fitness"] == pytest.approx(-60.0)
    assert set(best["ancestors"]) == {ids["c1"], ids["c4"], ids["mlp"], ids["cnn"]}
    assert s["seeds_best_fitness"] == pytest.approx(-200.0) and s["improved_on_seeds"] is True
    assert [x["name"] for x in s["seeds"]] == ["mlp", "cnn", "tiny"]
    assert s["seeds"][2]["fitness"] is None and s["seeds"][1]["num_params"] == 5000
    assert s["failures"] == {"lm_error": 2, "evaluator_error": 1}
    assert s["config"]["task"] == "mnist1d" and s["config"]["alpha"] == ALPHA
    json.dumps(s, allow_nan=False)  # JSON-ready


def test_per_round_statistics(full_run):
    r1, r2 = summarize(full_run[0])["per_round"]
    assert (r1["round"], r1["children"], r1["evaluated"], r1["ok"], r1["filtered_in"]) == (1, 4, 3, 2, 2)
    assert (r2["round"], r2["children"], r2["evaluated"], r2["ok"], r2["filtered_in"]) == (2, 4, 3, 2, 1)
    assert r1["mean_val_accuracy"] == pytest.approx(0.90) and r2["mean_val_accuracy"] == pytest.approx(0.55)
    assert r1["tune_losses"] == [0.9, 0.5, 0.3] and r2["tune_losses"] is None
    so_far = [r1["best_fitness_so_far"], r2["best_fitness_so_far"]]
    assert so_far == pytest.approx([-120.0, -60.0]) and so_far == sorted(so_far)  # monotone


def test_summary_reads_a_run_still_open_for_writing(tmp_path):
    store, _ = seed_run(tmp_path)
    try:
        s = summarize(tmp_path)
        assert s["candidates"] == 0 and s["seeds_best_fitness"] == pytest.approx(-200.0)
        add(store, 1, "class Model: pass  # later")  # the search can still write after the report read
    finally:
        store.close()
    assert summarize(tmp_path)["candidates"] == 1


def test_report_files(full_run, full_report):
    run_dir, _ = full_run
    out = run_dir / "report"
    assert full_report == out / "report.html"
    for name in ("pareto.png", "fitness.png"):
        assert_png(out / name)
    assert json.loads((out / "summary.json").read_text()) == summarize(run_dir)
    assert not (run_dir / "run.sqlite3-wal").exists()  # the report's read leaves the run directory as it was


def test_report_html(full_run, full_report):
    _, ids = full_run
    page = full_report.read_text()
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "mnist1d" in page and "torch" in page and "fake-lm" in page
    assert 'src="pareto.png"' in page and 'src="fitness.png"' in page
    assert html.escape(BEST_CODE) in page and BEST_CODE not in page  # escaped, never raw
    best = page.split(f"id=model-{ids['c5']}>", 1)[1].split("class=model", 1)[0]
    lineage = best.split("<h4>Lineage</h4>", 1)[1].split("<h4>Code</h4>", 1)[0]
    for cid in (ids["c5"], ids["c1"], ids["c4"], ids["mlp"], ids["cnn"]):
        assert f"#{cid} " in lineage
    assert "seed “mlp”" in lineage and "seed “cnn”" in lineage
    assert page.count("class=model ") == 3  # only children that passed the filter are ranked
    assert "0.9000 → 0.3000 (3 epochs)" in page  # the round's prompt-tuning losses


def test_empty_run(tmp_path):
    store, _ = seed_run(tmp_path)
    store.close()
    s = summarize(tmp_path)
    assert (s["rounds"], s["candidates"], s["evaluated"], s["best"], s["per_round"]) == (0, 0, 0, None, [])
    page = write_report(tmp_path)
    assert "no children yet" in page.read_text()
    for name in ("pareto.png", "fitness.png"):
        assert_png(page.parent / name, min_size=1000)


def test_run_with_no_seeds_and_no_config(tmp_path):
    RunStore(tmp_path / "run.sqlite3").close()
    s = summarize(tmp_path)
    assert s["seeds"] == [] and s["seeds_best_fitness"] is None and s["config"] == {}
    page = write_report(tmp_path)
    assert "no children yet" in page.read_text()
    assert_png(page.parent / "pareto.png", min_size=1000)


def test_run_where_every_child_failed(tmp_path):
    store, ids = seed_run(tmp_path)
    store.start_round(1, (ids["mlp"],))
    evaluate(store, add(store, 1, "class Model(", parents=(ids["mlp"],)), Status.COMPILE_ERROR)
    evaluate(store, add(store, 1, "while True: pass", parents=(ids["mlp"],)), Status.TIMEOUT)
    store.finish_evaluation(1, (ids["mlp"],))
    store.finish_round(1, None, None)
    store.close()
    s = summarize(tmp_path)
    assert (s["rounds"], s["candidates"], s["evaluated"], s["ok"], s["best"]) == (1, 2, 2, 0, None)
    assert s["per_round"][0]["best_fitness_so_far"] is None and s["per_round"][0]["mean_val_accuracy"] is None
    page = write_report(tmp_path)
    assert "no child passed the filter yet" in page.read_text()
    assert_png(page.parent / "fitness.png", min_size=1000)


def test_pareto_front():
    points = [(100.0, 0.5), (200.0, 0.6), (300.0, 0.3), (50.0, 0.9), (300.0, 0.2), (400.0, 0.25)]
    assert pareto_front(points) == [(50.0, 0.9), (100.0, 0.5), (300.0, 0.2)]


def test_cli_json_prints_one_object(full_run, capsys):
    run_dir, ids = full_run
    assert report_cmd.run(argparse.Namespace(dir=run_dir, json=True)) == 0
    out = capsys.readouterr().out
    data = json.loads(out)  # exactly one JSON document
    assert out.count("\n") == 1
    assert {"rounds", "candidates", "evaluated", "best", "seeds_best_fitness"} <= set(data)
    assert data["best"]["id"] == ids["c5"] and data["candidates"] == 8


def test_cli_prints_the_report_path(tmp_path, capsys):
    seed_run(tmp_path)[0].close()
    assert report_cmd.run(argparse.Namespace(dir=tmp_path, json=False)) == 0
    assert Path(capsys.readouterr().out.strip()) == tmp_path / "report" / "report.html"


def test_cli_missing_dir_or_database(tmp_path, capsys):
    assert report_cmd.run(argparse.Namespace(dir=tmp_path / "nope", json=True)) == 2
    err = capsys.readouterr()
    assert err.out == "" and "no such run directory" in err.err and err.err.count("\n") == 1
    assert report_cmd.run(argparse.Namespace(dir=tmp_path, json=False)) == 2
    assert "no run.sqlite3" in capsys.readouterr().err


def test_cli_parser():
    parser = argparse.ArgumentParser()
    report_cmd.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["report", "some/run", "--json"])
    assert args.dir == Path("some/run") and args.json and args.run is report_cmd.run


def test_the_lm_ledger_repairs_and_duplicates_are_reported(tmp_path):
    store, ids = seed_run(tmp_path)
    store.start_round(1, (ids["mlp"], ids["cnn"]))
    broken = add(store, 1, "class Model: pass  # broken", parents=(ids["mlp"],))
    evaluate(store, broken, Status.RUNTIME_ERROR)
    mended = store.add_candidate(round=1, kind="child", code="class Model: pass  # mended", code_sha256="m",
                                 request_id="repair-1", parents=(ids["mlp"],), repair_of=broken)
    evaluate(store, mended, params=500, val=0.9, test=0.88)
    assert store.add_candidate(round=1, kind="child", code="again", code_sha256="m2", request_id="repair-1",
                               repair_of=broken) == mended  # a repair stored before a kill is not stored twice
    add(store, 1, "class Model: pass  # copy", parents=(ids["mlp"],), state="duplicate")
    store.record_lm_call(round=1, prompt_index=0, repair_of=None, samples=2, prompt_tokens=600,
                         completion_tokens=300, seconds=30.0)
    store.record_lm_call(round=1, prompt_index=None, repair_of=broken, samples=1, prompt_tokens=400,
                         completion_tokens=100, seconds=10.0)
    store.close()
    summary = summarize(tmp_path)
    lm = summary["lm"]
    assert (lm["calls"], lm["prompt_tokens"], lm["completion_tokens"], lm["seconds"]) == (2, 1000, 400, 40.0)
    assert lm["completion_tokens_per_second"] == 10.0 and lm["seconds_per_child"] == pytest.approx(40 / 3, abs=1e-3)
    assert summary["repairs"] == {"attempted": 1, "ok": 1, "filtered_in": 1}
    assert summary["duplicates"] == 1
    assert summary["per_round"][0]["lm"]["completion_tokens"] == 400
    page = write_report(tmp_path).read_text()
    assert "LM seconds per child" in page and "repairs (OK)" in page


def test_a_run_database_of_an_older_version_gains_the_new_columns(tmp_path):
    import sqlite3

    db = tmp_path / "run.sqlite3"
    with sqlite3.connect(db) as conn:  # the schema before repairs, duplicates' links and the ledger
        conn.execute("CREATE TABLE candidates (id INTEGER PRIMARY KEY, round INTEGER NOT NULL, prompt_index INTEGER,"
                     " sample_index INTEGER, kind TEXT NOT NULL, name TEXT, code TEXT NOT NULL, code_sha256 TEXT NOT"
                     " NULL, parents TEXT NOT NULL DEFAULT '[]', lm_output TEXT, temperature REAL, request_id TEXT"
                     " UNIQUE, state TEXT NOT NULL, status TEXT, val_accuracy REAL, test_accuracy REAL, num_params"
                     " INTEGER, fitness REAL, result TEXT, message TEXT, created REAL NOT NULL, evaluated REAL,"
                     " submissions INTEGER NOT NULL DEFAULT 0, UNIQUE (round, prompt_index, sample_index))")
        conn.execute("CREATE TABLE rounds (round INTEGER PRIMARY KEY, parents_in TEXT NOT NULL, parents_out TEXT,"
                     " tune_losses TEXT, soft_prompt TEXT, state TEXT NOT NULL, started REAL NOT NULL, finished REAL)")
        conn.execute("INSERT INTO candidates (round, kind, code, code_sha256, state, created)"
                     " VALUES (0, 'seed', 'x', 'h', 'generated', 0)")
        conn.execute("INSERT INTO rounds (round, parents_in, state, started) VALUES (1, '[1]', 'started', 0)")
    with RunStore.open_readonly(db) as old:  # a report reads it as it is
        assert old.candidates()[0].repair_of is None and old.snapshot().lm_calls == []
    with RunStore(db) as store:  # a resumed search adds the columns and tables
        store.finish_round(1, None, None, 12.5)
        assert store.round(1).tune_seconds == 12.5
        assert store.candidates()[0].structure is None and store.known_structures() == {"h": 1}


def test_front_hypervolume_per_round_and_training_steps(full_run, tmp_path):
    import math

    run_dir, ids = full_run
    s = summarize(run_dir)
    # OK children: c1 (800, .15), c4 (3000, .05), c5 (600, .10), c7 (100, .80); c5 dominates c1
    assert [(f["id"], f["num_params"]) for f in s["front"]] == [(ids["c7"], 100), (ids["c5"], 600), (ids["c4"], 3000)]
    assert s["front"][1]["val_error"] == pytest.approx(0.10)
    lg = math.log10
    r1 = (lg(3000) - lg(800)) * 0.85 + (6 - lg(3000)) * 0.95
    r2 = (lg(600) - lg(100)) * 0.20 + (lg(3000) - lg(600)) * 0.90 + (6 - lg(3000)) * 0.95
    assert [r["hypervolume"] for r in s["per_round"]] == pytest.approx([r1, r2])
    assert s["hypervolume_reference"] == {"log10_size": 6.0, "val_error": 1.0}

    store = RunStore(tmp_path / "run.sqlite3")
    seed = add(store, 0, "class Model: pass  # s", kind="seed", name="s")
    store.record_result(seed, EvaluationResult(request_id="a", status=Status.OK, steps=100, num_params=10,
                                               val_accuracy=0.9), None)
    child = add(store, 1, "class Model: pass  # c")
    store.record_result(child, EvaluationResult(request_id="b", status=Status.OK, steps=300, num_params=10,
                                                val_accuracy=0.9, cached=True), None)  # answered from the cache
    later = add(store, 2, "class Model: pass  # d")
    store.record_result(later, EvaluationResult(request_id="c", status=Status.OK, steps=300, num_params=10,
                                                val_accuracy=0.9), None)
    store.close()
    s = summarize(tmp_path)
    assert s["training_steps"] == 400
    # per round, cumulative, the seeds' steps counted from the first round on
    assert [(r["round"], r["training_steps_so_far"]) for r in s["per_round"]] == [(1, 100), (2, 400)]


def test_training_steps_count_rungs_the_evaluator_trained_not_what_was_asked(tmp_path):
    """A rung answered from the cache, or one that failed before a sandbox (the SDK's REJECTED or
    INTERNAL_ERROR: the client asked for 500 steps, nothing trained), costs no steps."""
    store = RunStore(tmp_path / "run.sqlite3")
    child = add(store, 1, "class Model: pass  # c")
    ran = EvaluationResult(request_id="a", status=Status.OK, steps=500, num_params=10, val_accuracy=0.9)
    cached = EvaluationResult(request_id="b", status=Status.OK, steps=500, num_params=10, val_accuracy=0.9,
                              cached=True)
    refused = EvaluationResult(request_id="c", status=Status.INTERNAL_ERROR, message="evaluator unreachable")
    for repeat, result in enumerate((ran, cached, refused)):
        store.record_evaluation(child, 0, repeat, 500, result)
    assert [e.trained_steps for e in store.evaluations()] == [500, 0, 0]
    store.close()
    assert summarize(tmp_path)["training_steps"] == 500


def test_front_and_hypervolume_count_hidden_state_as_size(tmp_path):
    """A model that keeps weights in buffers (num_state) is as large as it really is on the plane."""
    import math

    store = RunStore(tmp_path / "run.sqlite3")
    small = add(store, 1, "class Model: pass  # small")
    store.record_result(small, EvaluationResult(request_id="a", status=Status.OK, steps=10, num_params=100,
                                                num_state=0, val_accuracy=0.8), -20.0)
    hiding = add(store, 1, "class Model: pass  # hiding")
    store.record_result(hiding, EvaluationResult(request_id="b", status=Status.OK, steps=10, num_params=50,
                                                 num_state=950, val_accuracy=0.8), -200.0)
    store.close()
    s = summarize(tmp_path)
    assert [(f["id"], f["num_params"], f["num_state"]) for f in s["front"]] == [(small, 100, 0)]
    assert s["per_round"][0]["hypervolume"] == pytest.approx((6 - math.log10(100)) * 0.8)
