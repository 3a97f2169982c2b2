"""What a search run found, for people: summary numbers, the paper's Figure 2 plots and an HTML page.

Everything is read from the run directory alone (`run.sqlite3` and `config.json`), so a report can be
made of a finished run, a killed one, or one still going (the database is opened read-only and WAL
lets it be read while the search writes). Fitness is the paper's, -size * (1 - val_accuracy)
with size = num_params + num_state (loop.fitness),
higher is better, NULL for candidates that failed or were filtered out by the validation-error bound.

- `summarize(run_dir)`: one JSON-ready dict of counts, the best child, the seeds and per-round numbers.
- `write_report(run_dir)`: `report/` with `pareto.png` (Fig. 2a), `fitness.png` (Fig. 2b),
  `report.html` and `summary.json`.
"""

from __future__ import annotations

import html
import json
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evoprompt.search.pareto import REFERENCE, hypervolume, non_dominated_sort, size_error
from evoprompt.search.store import (
    CONFIG_NAME,
    DB_NAME,
    REPORT_DIR,
    Candidate,
    CandidateState,
    Evaluation,
    Event,
    LMCall,
    Round,
    RoundState,
    RunStore,
)

TOP_PARETO = 20  # Figure 2a plots the top 20 children by fitness
TOP_MODELS = 5
FINISHED_ROUND_STATES = (RoundState.DONE, RoundState.EVALUATED)


@dataclass(frozen=True)
class RunData:
    """One consistent read of a run: candidates, rounds, events and the config."""

    candidates: list[Candidate]
    rounds: list[Round]
    events: list[Event]
    config: dict[str, Any]
    lm_calls: list[LMCall]
    evaluations: list[Evaluation] = field(default_factory=list)

    @property
    def seeds(self) -> list[Candidate]:
        return [c for c in self.candidates if c.kind == "seed"]

    @property
    def children(self) -> list[Candidate]:
        return [c for c in self.candidates if c.kind == "child"]

    @property
    def by_id(self) -> dict[int, Candidate]:
        return {c.id: c for c in self.candidates}

    @property
    def last_rung(self) -> int | None:
        """A multi-fidelity run's last rung (its finalists train there); None in the paper's loop."""
        rungs = self.config.get("rungs") or ()
        return len(rungs) - 1 if rungs else None


# -- reading ------------------------------------------------------------------------------------------


def _read_config(run_dir: Path) -> dict[str, Any]:
    """config.json is informative only: a missing or broken one must not stop the report."""
    try:
        data = json.loads((run_dir / CONFIG_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {"value": data}


def load_run(run_dir: Path) -> RunData:
    """Read the whole run once; raises FileNotFoundError when there is no run database."""
    with RunStore.open_readonly(Path(run_dir) / DB_NAME) as store:
        snap = store.snapshot()
    return RunData(snap.candidates, snap.rounds, snap.events, _read_config(Path(run_dir)), snap.lm_calls,
                   snap.evaluations)


# -- numbers ------------------------------------------------------------------------------------------


def _best(cands: Iterable[Candidate]) -> Candidate | None:
    """Highest fitness; the earlier candidate wins a tie, as it was found first."""
    scored = [c for c in cands if c.fitness is not None]
    return max(scored, key=lambda c: (c.fitness, -c.id)) if scored else None


def _ranked(cands: Iterable[Candidate]) -> list[Candidate]:
    return sorted((c for c in cands if c.fitness is not None), key=lambda c: (-c.fitness, c.id))  # type: ignore


def _has_result(c: Candidate) -> bool:
    return c.status is not None


def _is_ok(c: Candidate) -> bool:
    return c.status == "OK"


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def ancestors(cid: int, by_id: dict[int, Candidate]) -> list[int]:
    """Every ancestor id, nearest first (breadth-first over parents), each once."""
    seen: set[int] = {cid}
    order: list[int] = []
    frontier = list(by_id[cid].parents) if cid in by_id else []
    while frontier:
        nxt: list[int] = []
        for pid in frontier:
            if pid in seen:
                continue
            seen.add(pid)
            order.append(pid)
            nxt.extend(by_id[pid].parents if pid in by_id else ())
        frontier = nxt
    return order


def candidate_info(c: Candidate, evaluations: Sequence[Evaluation] = ()) -> dict[str, Any]:
    """A candidate's row; in a multi-fidelity run also the rung it reached, the half-width of the 95%
    interval of its validation accuracy there, and each of its rung evaluations."""
    info = {"id": c.id, "round": c.round, "kind": c.kind, "name": c.name, "state": c.state, "status": c.status,
            "num_params": c.num_params, "val_accuracy": c.val_accuracy, "test_accuracy": c.test_accuracy,
            "fitness": c.fitness, "parents": list(c.parents)}
    if c.rung is not None:
        info |= {"rung": c.rung, "val_ci95": c.val_ci,
                 "rungs": [{"rung": e.rung, "repeat": e.repeat, "steps": e.steps, "status": e.status,
                            "val_accuracy": e.val_accuracy} for e in evaluations if e.candidate_id == c.id]}
    return info


def _round_numbers(data: RunData) -> list[int]:
    return sorted({r.round for r in data.rounds} | {c.round for c in data.children})


def _steps_by_round(data: RunData) -> Counter[int]:
    """Steps the evaluator trained for each round's candidates (seeds are round 0; cached answers cost none)."""
    by_id = data.by_id
    steps: Counter[int] = Counter()
    for c in data.candidates:
        if c.rung is None:
            steps[c.round] += c.trained_steps
    for e in data.evaluations:
        steps[by_id[e.candidate_id].round] += e.trained_steps
    return steps


def _per_round(data: RunData) -> list[dict[str, Any]]:
    """Per-round counts; best_fitness_so_far is over children of this and earlier rounds (monotone), and
    training_steps_so_far counts the seeds' and every earlier round's steps too: what a budget curve needs."""
    rows_by_round = {r.round: r for r in data.rounds}
    best_so_far: float | None = None
    steps, spent = _steps_by_round(data), _evaluator_seconds(data)
    out = []
    for rnd in _round_numbers(data):
        kids = [c for c in data.children if c.round == rnd]
        best = _best(kids)
        if best is not None and (best_so_far is None or best.fitness > best_so_far):  # type: ignore[operator]
            best_so_far = best.fitness
        row = rows_by_round.get(rnd)
        out.append({
            "round": rnd,
            "state": row.state if row else None,
            "children": len(kids),
            "evaluated": sum(map(_has_result, kids)),
            "ok": sum(map(_is_ok, kids)),
            "filtered_in": sum(c.fitness is not None for c in kids),
            "best_fitness": best.fitness if best else None,
            "best_fitness_so_far": best_so_far,
            "mean_val_accuracy": _mean([c.val_accuracy for c in kids if _is_ok(c) and c.val_accuracy is not None]),
            "tune_losses": row.tune_losses if row else None,
            "tune_seconds": row.tune_seconds if row else None,
            "training_steps_so_far": sum(n for r, n in steps.items() if r <= rnd),
            "hypervolume": hypervolume([size_error(c.size, 1.0 - c.val_accuracy)  # type: ignore[arg-type]
                                        for c in data.children if c.round <= rnd and _on_the_plane(c, data.last_rung)]),
            "lm": _lm_costs([call for call in data.lm_calls if call.round == rnd], kids, spent),
        })
    return out


def _evaluator_seconds(data: RunData) -> dict[int, float]:
    """The evaluator's seconds for each candidate: its one evaluation, or in a multi-fidelity run every
    rung and repeat it trained at (cached answers cost none)."""
    seconds = {c.id: c.evaluator_seconds for c in data.candidates if c.rung is None}
    for e in data.evaluations:
        seconds[e.candidate_id] = seconds.get(e.candidate_id, 0.0) + e.evaluator_seconds
    return seconds


def _lm_costs(calls: list[LMCall], children: list[Candidate], evaluator_seconds: dict[int, float]
              ) -> dict[str, Any]:
    """The LM's cost beside the evaluator's: tokens, seconds, and seconds per child of each."""
    seconds = sum(c.seconds for c in calls)
    completion = sum(c.completion_tokens for c in calls)
    spent = [evaluator_seconds.get(c.id, 0.0) for c in children]
    evaluator, evaluated = sum(spent), sum(s > 0 for s in spent)
    return {
        "calls": len(calls),
        "samples": sum(c.samples for c in calls),
        "prompt_tokens": sum(c.prompt_tokens for c in calls),
        "completion_tokens": completion,
        "seconds": round(seconds, 3),
        "completion_tokens_per_second": round(completion / seconds, 2) if seconds > 0 else None,
        "seconds_per_child": round(seconds / len(children), 3) if children else None,
        "evaluator_seconds": round(evaluator, 3),
        "evaluator_seconds_per_child": round(evaluator / evaluated, 3) if evaluated else None,
    }


def _repairs(children: list[Candidate]) -> dict[str, int]:
    repairs = [c for c in children if c.repair_of is not None]
    return {"attempted": len(repairs), "ok": sum(map(_is_ok, repairs)),
            "filtered_in": sum(c.fitness is not None for c in repairs)}


def summarize_data(data: RunData) -> dict[str, Any]:
    """summarize() on an already-read run, so the report's page, plots and JSON agree."""
    children, by_id = data.children, data.by_id
    best = _best(children)
    best_seed = _best(data.seeds)
    best_info = None
    if best is not None:
        best_info = {**candidate_info(best, data.evaluations), "ancestors": ancestors(best.id, by_id)}
    return {
        "rounds": sum(r.state in FINISHED_ROUND_STATES for r in data.rounds),
        "rounds_started": len(data.rounds),
        "candidates": len(children),
        "evaluated": sum(map(_has_result, children)),
        "ok": sum(map(_is_ok, children)),
        "filtered_in": sum(c.fitness is not None for c in children),
        "states": dict(Counter(c.state for c in children)),
        "statuses": dict(Counter(c.status for c in children if c.status is not None)),
        "best": best_info,
        "seeds_best_fitness": best_seed.fitness if best_seed else None,
        "improved_on_seeds": (best is not None and best_seed is not None
                              and best.fitness > best_seed.fitness),  # type: ignore[operator]
        "seeds": [{"id": s.id, "name": s.name, "status": s.status, "num_params": s.num_params,
                   "val_accuracy": s.val_accuracy, "test_accuracy": s.test_accuracy, "fitness": s.fitness}
                  for s in data.seeds],
        "per_round": _per_round(data),
        "failures": dict(Counter(e.kind for e in data.events)),
        # near-duplicates skipped (same normalised program as an earlier candidate): no evaluation spent
        "duplicates": sum(c.state == CandidateState.DUPLICATE for c in children),
        "repairs": _repairs(children),
        "lm": _lm_costs(data.lm_calls, children, _evaluator_seconds(data)),
        # steps the evaluator trained for this run (cached answers cost none): what a budget is measured in
        "training_steps": sum(_steps_by_round(data).values()),
        "rungs": _rung_counts(data),
        "front": _front(children, data.last_rung),
        "hypervolume_reference": {"log10_size": REFERENCE[0], "val_error": REFERENCE[1]},
        "config": data.config,
    }


def _on_the_plane(c: Candidate, last_rung: int | None) -> bool:
    """A child with a size and a validation error at the full budget: a point of the (size, error) plane,
    whatever the alpha filter said (as in the paper's loop). In a multi-fidelity run only a finalist (the
    last rung) is: lower rungs are cheaper guesses."""
    return (_is_ok(c) and c.num_params is not None and c.size > 0 and c.val_accuracy is not None
            and (c.rung is None or c.rung == last_rung))


def _rung_counts(data: RunData) -> list[dict[str, Any]]:
    """Per rung of a multi-fidelity run: its steps, and how many children trained there (and OK)."""
    seeds = {c.id for c in data.seeds}
    rows: dict[int, dict[str, Any]] = {}
    for e in data.evaluations:
        if e.candidate_id in seeds or e.repeat != 0:
            continue
        row = rows.setdefault(e.rung, {"rung": e.rung, "steps": e.steps, "children": 0, "ok": 0})
        row["children"] += 1
        row["ok"] += e.ok
    return [rows[r] for r in sorted(rows)]


def _front(children: list[Candidate], last_rung: int | None) -> list[dict[str, Any]]:
    """The non-dominated children on (size = num_params + num_state, validation error), smallest first."""
    plane = [c for c in children if _on_the_plane(c, last_rung)]
    points = [(float(c.size), 1.0 - float(c.val_accuracy)) for c in plane]  # type: ignore[arg-type]
    first = non_dominated_sort(points)[0] if points else []
    return [{"id": plane[i].id, "num_params": plane[i].num_params, "num_state": plane[i].num_state,
             "val_error": round(points[i][1], 6)}
            for i in sorted(first, key=lambda i: (points[i], plane[i].id))]


def summarize(run_dir: Path) -> dict[str, Any]:
    """The run's numbers as one JSON-ready object (what `evoprompt report --json` prints)."""
    return summarize_data(load_run(Path(run_dir)))


# -- plots --------------------------------------------------------------------------------------------


def pareto_front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """(num_params, error) points no other point beats in both; sorted by size, error decreasing."""
    front: list[tuple[float, float]] = []
    for x, y in sorted(points):
        if not front or y < front[-1][1]:
            front.append((x, y))
    return front


def _plottable(c: Candidate) -> bool:
    """Log-x needs a positive size; a point needs a test accuracy."""
    return c.num_params is not None and c.num_params > 0 and c.test_accuracy is not None


def _xy(cands: list[Candidate]) -> tuple[list[float], list[float]]:
    return [float(c.num_params) for c in cands], [1.0 - float(c.test_accuracy) for c in cands]  # type: ignore


def _plot_pareto(data: RunData, path: Path) -> None:
    """Figure 2a: test error against model size, top children and seeds, with the children's front."""
    import matplotlib.pyplot as plt

    top = [c for c in _ranked(data.children) if _plottable(c)][:TOP_PARETO]
    seeds = [s for s in data.seeds if _is_ok(s) and _plottable(s)]
    fig, ax = plt.subplots(figsize=(6.4, 4.8), dpi=100)
    try:
        if top:
            xs, ys = _xy(top)
            ax.scatter(xs, ys, marker="o", color="tab:blue", label=f"top {len(top)} children", zorder=3)
            front = pareto_front(list(zip(xs, ys, strict=True)))
            fx, fy = zip(*front, strict=True)
            ax.step(fx, fy, where="post", color="tab:blue", alpha=0.6, label="children's Pareto front")
        if seeds:
            xs, ys = _xy(seeds)
            ax.scatter(xs, ys, marker="*", s=140, color="tab:orange", label="seeds", zorder=4)
            for s, x, y in zip(seeds, xs, ys, strict=True):
                ax.annotate(s.name or f"#{s.id}", (x, y), textcoords="offset points", xytext=(5, 5), fontsize=8)
        if not top and not seeds:
            ax.text(0.5, 0.5, "no evaluated models yet", transform=ax.transAxes, ha="center", va="center")
            ax.set_xlim(1, 1e6)
        ax.set_xscale("log")
        ax.set_xlabel("number of parameters")
        ax.set_ylabel("test error (1 - test accuracy)")
        ax.set_title("Test error vs. model size")
        ax.grid(True, which="both", alpha=0.3)
        if top or seeds:
            ax.legend(loc="best", fontsize=8)
        fig.tight_layout()
        fig.savefig(path, format="png")
    finally:
        plt.close(fig)


def _fitness_curve(children: list[Candidate]) -> list[float | None]:
    """Best fitness after each child, in generation order (candidate id); None until one passes."""
    best: float | None = None
    curve = []
    for c in sorted(children, key=lambda c: c.id):
        if c.fitness is not None and (best is None or c.fitness > best):
            best = c.fitness
        curve.append(best)
    return curve


def _plot_fitness(data: RunData, path: Path, seeds_best: float | None) -> None:
    """Figure 2b: best fitness so far against children generated, against the seeds' best."""
    import matplotlib.pyplot as plt

    children = sorted(data.children, key=lambda c: c.id)
    curve = _fitness_curve(children)
    fig, ax = plt.subplots(figsize=(6.4, 4.8), dpi=100)
    try:
        xs = list(range(1, len(children) + 1))
        scored = [(x, c.fitness) for x, c in zip(xs, children, strict=True) if c.fitness is not None]
        if scored:
            sx, sy = zip(*scored, strict=True)
            ax.scatter(sx, sy, s=10, color="grey", alpha=0.4, label="each child")
            ax.step(xs, [math.nan if v is None else v for v in curve], where="post", color="tab:blue",
                    label="best so far")
        if seeds_best is not None:
            ax.axhline(seeds_best, color="tab:orange", linestyle="--", label="best seed")
        if not scored:
            msg = "no children yet" if not children else "no child passed the filter yet"
            ax.text(0.5, 0.5, msg, transform=ax.transAxes, ha="center", va="center")
        ax.set_xlim(0, max(len(children), 1) + 0.5)
        ax.set_xlabel("children generated")
        ax.set_ylabel("fitness  (-num_params x val error)")
        ax.set_title("Best fitness so far")
        ax.grid(True, alpha=0.3)
        if scored or seeds_best is not None:
            ax.legend(loc="best", fontsize=8)
        fig.tight_layout()
        fig.savefig(path, format="png")
    finally:
        plt.close(fig)


# -- HTML ---------------------------------------------------------------------------------------------

CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f3f3f3; } td.l, th.l { text-align: left; }
pre { background: #f7f7f7; border: 1px solid #ddd; padding: 0.8em; overflow-x: auto; font-size: 0.85em; }
img { max-width: 49%; } .model { border-top: 2px solid #888; margin-top: 2em; } .muted { color: #777; }
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value: Any, digits: int = 4) -> str:
    """Numbers for people: fixed decimals for floats, thousands separators for ints, '-' for missing."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.{digits}f}" if abs(value) < 1e4 else f"{value:,.1f}"
    return str(value)


def _table(headers: list[str], rows: list[list[Any]], left: int = 0) -> str:
    """An HTML table; the first `left` columns are text (left-aligned), the rest numbers."""
    def cell(tag: str, i: int, v: Any) -> str:
        return f"<{tag}{' class=l' if i < left else ''}>{_e(_fmt(v))}</{tag}>"
    head = "".join(cell("th", i, h) for i, h in enumerate(headers))
    body = "".join("<tr>" + "".join(cell("td", i, v) for i, v in enumerate(r)) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _losses_text(losses: list[float] | None) -> str:
    if not losses:
        return "-"
    return f"{_fmt(losses[0])} → {_fmt(losses[-1])} ({len(losses)} epochs)"


def _label(c: Candidate) -> str:
    who = f"seed “{c.name}”" if c.kind == "seed" else f"child, round {c.round}"
    metrics = (f"{_fmt(c.num_params)} params, val {_fmt(c.val_accuracy)}, test {_fmt(c.test_accuracy)}, "
               f"fitness {_fmt(c.fitness)}") if c.status == "OK" else f"{c.state}, {c.status or 'no result'}"
    return f"#{c.id} {who}: {metrics}"


def _lineage_html(cid: int, by_id: dict[int, Candidate], seen: set[int]) -> str:
    """Nested list of a candidate's parents back to the seeds; an ancestor shared twice is shown once."""
    c = by_id.get(cid)
    if c is None:
        return f"<li>#{cid} (not in this run)</li>"
    if cid in seen:
        return f"<li>{_e(_label(c))} <span class=muted>(shown above)</span></li>"
    seen.add(cid)
    inner = "".join(_lineage_html(p, by_id, seen) for p in c.parents)
    return f"<li>{_e(_label(c))}{f'<ul>{inner}</ul>' if inner else ''}</li>"


def _model_html(rank: int, c: Candidate, by_id: dict[int, Candidate]) -> str:
    metrics = _table(["num_params", "val_accuracy", "test_accuracy", "fitness", "round", "temperature"],
                     [[c.num_params, c.val_accuracy, c.test_accuracy, c.fitness, c.round, c.temperature]])
    return (f"<div class=model id=model-{c.id}><h3>{rank}. candidate #{c.id}</h3>{metrics}"
            f"<h4>Lineage</h4><ul class=lineage>{_lineage_html(c.id, by_id, set())}</ul>"
            f"<h4>Code</h4><pre><code>{_e(c.code)}</code></pre></div>")


def _summary_html(s: dict[str, Any]) -> str:
    best = s["best"]
    rows = [["rounds finished", s["rounds"]], ["children generated", s["candidates"]],
            ["children evaluated", s["evaluated"]], ["children OK", s["ok"]],
            ["children filtered in", s["filtered_in"]], ["best child fitness", best["fitness"] if best else None],
            ["best child", f"#{best['id']} (round {best['round']})" if best else None],
            ["best seed fitness", s["seeds_best_fitness"]], ["improved on the seeds", s["improved_on_seeds"]],
            ["duplicates skipped", s["duplicates"]],
            ["repairs (OK)", f"{s['repairs']['attempted']} ({s['repairs']['ok']})"],
            ["LM seconds per child", s["lm"]["seconds_per_child"]],
            ["evaluator seconds per child", s["lm"]["evaluator_seconds_per_child"]],
            ["LM tokens (prompt / completion)", f"{s['lm']['prompt_tokens']} / {s['lm']['completion_tokens']}"]]
    return _table(["", "value"], rows, left=1)


def _per_round_html(per_round: list[dict[str, Any]]) -> str:
    if not per_round:
        return "<p class=muted>no rounds yet</p>"
    headers = ["round", "state", "children", "evaluated", "ok", "filtered in", "best fitness", "best so far",
               "mean val acc (OK)", "prompt-tuning loss", "LM s", "evaluator s"]
    rows = [[r["round"], r["state"], r["children"], r["evaluated"], r["ok"], r["filtered_in"], r["best_fitness"],
             r["best_fitness_so_far"], r["mean_val_accuracy"], _losses_text(r["tune_losses"]), r["lm"]["seconds"],
             r["lm"]["evaluator_seconds"]] for r in per_round]
    return _table(headers, rows, left=2)


def _seeds_html(seeds: list[dict[str, Any]]) -> str:
    if not seeds:
        return "<p class=muted>no seeds</p>"
    rows = [[f"#{s['id']} {s['name'] or ''}", s["status"], s["num_params"], s["val_accuracy"], s["test_accuracy"],
             s["fitness"]] for s in seeds]
    return _table(["seed", "status", "num_params", "val_accuracy", "test_accuracy", "fitness"], rows, left=2)


def _dict_html(d: dict[str, Any], empty: str, key: str, value: str) -> str:
    if not d:
        return f"<p class=muted>{_e(empty)}</p>"
    return _table([key, value], [[k, v if isinstance(v, int | float | str) else json.dumps(v)]
                                 for k, v in d.items()], left=1)


def _models_html(data: RunData) -> str:
    if not data.children:
        return "<p class=muted>no children yet</p>"
    top = _ranked(data.children)[:TOP_MODELS]
    if not top:
        return "<p class=muted>no child passed the filter yet</p>"
    by_id = data.by_id
    return "".join(_model_html(i, c, by_id) for i, c in enumerate(top, 1))


def render_html(data: RunData, summary: dict[str, Any]) -> str:
    cfg = data.config
    title = "EvoPrompting run: " + " / ".join(
        str(cfg.get(k, "?")) if not isinstance(cfg.get(k), dict) else json.dumps(cfg[k])
        for k in ("task", "framework", "lm"))
    status = "" if data.children else "<p><strong>no children yet</strong></p>"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title><style>{CSS}</style></head>
<body><h1>{_e(title)}</h1>{status}
<h2>Summary</h2>{_summary_html(summary)}
<h2>Figures</h2>
<p><img src="pareto.png" alt="test error against number of parameters">
<img src="fitness.png" alt="best fitness so far against children generated"></p>
<h2>Per round</h2>{_per_round_html(summary["per_round"])}
<h2>Seeds</h2>{_seeds_html(summary["seeds"])}
<h2>Failures</h2>{_dict_html(summary["failures"], "no failure events", "event", "count")}
<h2>Configuration</h2>{_dict_html(cfg, "no config.json", "setting", "value")}
<h2>Best {TOP_MODELS} models</h2>{_models_html(data)}
</body></html>
"""


def write_report(run_dir: Path) -> Path:
    """Write report/ (two PNGs, report.html, summary.json) from one read of the run; return report.html."""
    import matplotlib

    matplotlib.use("Agg")  # files only, never a display
    run_dir = Path(run_dir)
    data = load_run(run_dir)
    summary = summarize_data(data)
    out = run_dir / REPORT_DIR
    out.mkdir(parents=True, exist_ok=True)
    _plot_pareto(data, out / "pareto.png")
    _plot_fitness(data, out / "fitness.png", summary["seeds_best_fitness"])
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    page = out / "report.html"
    page.write_text(render_html(data, summary), encoding="utf-8")
    return page
