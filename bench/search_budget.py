"""Does the search spend its training budget well? The paper's loop beside multi-fidelity rungs,
repeated seeds and Pareto selection, each arm held to the same total training steps (MNIST-1D, torch,
the `mutation` operator).

Arms (sizes below are the defaults; `nominal_steps` prints each arm's budget before it runs):

- `paper`: the paper's loop, every child at the full recipe (8,000 steps), one training run each.
- `rungs`: `--rungs 500,2000,8000 --eta 4`, more children per round for the same steps.
- `rungs-repeats`: rungs + `--repeats 3 --select-on lcb` (the seeds too train 3 times at the last rung,
  so fewer rounds fit the budget).
- `rungs-repeats-pareto`: the same with `--selection pareto`.
- `paper-long`: not an arm at the budget, the paper's loop run on to 12 rounds (its first 4 are the
  `paper` search): how many steps the paper's loop needs to reach the hypervolume another arm reached.

Every search starts from the CNN, logistic and MLP seeds (`--seed-programs`: the GRU trains ~5x slower
per step, and this already takes hours). Every search gets a fresh embedded evaluator (no arm is
answered from another's cache), its run directory under --out, and its summary written as soon as it
ends (`search.json`): a killed benchmark continues where it stopped, finished searches are read back.
Per search: the hypervolume of its children's front (`evoprompt report --json`'s, reference (6, 1.0) on
(log10 size, val error)) round by round against the training steps spent so far, the best fitness, the
steps, the wall time. Then the best three distinct children of each arm at the budget (over its search
seeds, by fitness) and the torch CNN seed are trained again at the full recipe with 3 fresh seeds (each
run logged to `reeval.jsonl` as it ends); a child *dominates the CNN* when it is smaller (num_params +
num_state) and its mean test accuracy is at least the CNN's.

    python bench/search_budget.py [--seeds 0,1,2] [--arms paper,rungs,...] [--out runs/bench-budget]
                                  [--slots 2] [--backend docker] [--quick]

Hours on 2 cores; `--quick` shrinks every step count 16x (a smoke test of the script, not a result).
Prints tables, writes bench/results/search_budget.json (after every search, so partial results survive).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS_DIR, print_table, private_evaluator, write_json  # noqa: E402

FULL_STEPS = 8000  # the MNIST-1D recipe
REEVAL_SEEDS = (1000, 1001, 1002)  # training seeds no search used
TOP_CHILDREN = 3


@dataclass(frozen=True)
class Arm:
    """One way to search: a SearchConfig's sizes and the settings beyond the paper."""

    name: str
    rounds: int
    prompts: int
    samples: int
    settings: dict[str, Any] = field(default_factory=dict)

    def config(self, seed: int, scale: int) -> Any:
        from evoprompt.search.config import SearchConfig

        extra = dict(self.settings)
        if "rungs" in extra:
            extra["rungs"] = tuple(s // scale for s in extra["rungs"])
        return SearchConfig(task="mnist1d", framework="torch", lm="mutation", rounds=self.rounds,
                            prompts=self.prompts, samples=self.samples, parents=PARENTS,
                            max_steps=FULL_STEPS // scale, seed=seed, seed_programs=SEED_PROGRAMS,
                            run_id=f"budget-{self.name}-seed{seed}",
                            **extra)


RUNGS = (500, 2000, FULL_STEPS)
PARENTS = 2  # few enough that selection binds: the paper loop keeps the better half of a round's 4
# The torch GRU seed trains ~5x slower per step than the CNN (README, MNIST-1D baselines) and, a parent
# in round 1, slows its descendants the same way: without it the benchmark fits in a session on 2 cores
SEED_PROGRAMS = ("cnn", "logistic", "mlp")
LONG_ARM = "paper-long"
ARMS = {arm.name: arm for arm in (
    # 4 children a round at 8,000 steps: 32k steps a round, 4 rounds; the 3 seeds cost 24k more
    Arm("paper", rounds=4, prompts=2, samples=2),
    # 24 children at 500, 6 at 2,000, 1 at 8,000: 32k a round, 4 rounds
    Arm("rungs", rounds=4, prompts=6, samples=4, settings={"rungs": RUNGS, "eta": 4}),
    # 16 at 500, 4 at 2,000, 1 at 8,000 x 3: 40k a round; the seeds x 3 cost 72k, so 2 rounds fit
    Arm("rungs-repeats", rounds=2, prompts=4, samples=4,
        settings={"rungs": RUNGS, "eta": 4, "repeats": 3, "select_on": "lcb"}),
    Arm("rungs-repeats-pareto", rounds=2, prompts=4, samples=4,
        settings={"rungs": RUNGS, "eta": 4, "repeats": 3, "select_on": "lcb", "selection": "pareto"}),
    # not an arm at the budget but the paper loop run on (12 rounds, 408k): the same search as `paper`
    # for its first 4 rounds, then how many steps it needs to reach what the other arms reached
    Arm(LONG_ARM, rounds=12, prompts=2, samples=2),
)}
BUDGET_ARMS = tuple(name for name in ARMS if name != LONG_ARM)


def nominal_steps(config: Any) -> int:
    """The steps a search of `config` trains when every child builds, none is a duplicate and nothing is
    cached: what the arms' sizes were chosen to equalise."""
    from evoprompt.search.seeds import list_seeds

    seeds = len(config.seed_programs) or len(list_seeds(config.task, config.framework))
    children = config.prompts * config.samples
    if not config.rungs:
        return (seeds + config.rounds * children) * config.max_steps * config.repeats
    per_round, entered = 0, children
    for i, steps in enumerate(config.rungs):
        last = i == len(config.rungs) - 1
        per_round += entered * steps * (config.repeats if last else 1)
        entered = max(1, entered // config.eta)
    return seeds * config.rungs[-1] * config.repeats + config.rounds * per_round


# -- one search ---------------------------------------------------------------------------------------


def run_one(arm: Arm, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    """One search of `arm` (or its summary, when an earlier invocation finished it)."""
    from evoprompt.search.config import SearchConfig
    from evoprompt.search.report import summarize
    from evoprompt.search.runner import run_search
    from evoprompt.search.store import CONFIG_NAME

    folder = args.out / f"{arm.name}-seed{seed}"
    done = folder / "search.json"
    run_dir = folder / "run"
    config = arm.config(seed, args.scale)
    stored = SearchConfig.load(run_dir) if (run_dir / CONFIG_NAME).is_file() else None
    if stored is not None and stored != config:
        raise SystemExit(f"{run_dir} holds another search than the arm {arm.name!r} now runs (the script's sizes "
                         "changed since): use another --out")
    if done.is_file():
        result = json.loads(done.read_text())
        if result.get("scale") != args.scale:
            raise SystemExit(f"{done} was run at scale 1/{result.get('scale')}, not 1/{args.scale}: use another --out")
        if stored is not None:  # the run directory is the record: read again (the script may count more now)
            result.update(search_numbers(summarize(run_dir), config.alpha), **spent(run_dir))
            write_atomically(done, result)
        return result
    with private_evaluator(args.backend, args.slots, ["torch"], **args.evaluator) as endpoint:
        started = time.monotonic()
        run_search(None if stored else config, run_dir, resume=stored is not None, evaluator=endpoint,
                   slots=args.concurrency, progress=False)
        wall = time.monotonic() - started
    summary = summarize(run_dir)
    result = {"arm": arm.name, "seed": seed, "scale": args.scale, "wall_seconds": round(wall, 1),
              "resumed": stored is not None, "nominal_steps": nominal_steps(config),
              **search_numbers(summary, config.alpha), **spent(run_dir)}
    write_atomically(done, result)
    return result


def write_atomically(path: Path, payload: Any) -> None:
    """A kill mid-write leaves the old file or none, never half of one (resume reads these back)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=2) + "\n")
    os.replace(tmp, path)


def search_numbers(summary: dict[str, Any], alpha: float) -> dict[str, Any]:
    """What the tables need from one search's `evoprompt report --json`. The best fitness is recomputed
    from the front's mean validation errors, so an arm ranking on a lower confidence bound is compared on
    the same scale as the others (the fittest child under the alpha bound is always on the front)."""
    curve = [{"round": r["round"], "steps": r["training_steps_so_far"], "hypervolume": r["hypervolume"]}
             for r in summary["per_round"]]
    scores = [-(f["num_params"] + f["num_state"]) * f["val_error"] for f in summary["front"] if f["val_error"] < alpha]
    return {"training_steps": summary["training_steps"], "hypervolume": curve[-1]["hypervolume"] if curve else 0.0,
            "best_fitness": max(scores) if scores else None, "children": summary["candidates"], "ok": summary["ok"],
            "duplicates": summary["duplicates"], "curve": curve, "front": summary["front"],
            "seeds_best_fitness": summary["seeds_best_fitness"]}


def spent(run_dir: Path) -> dict[str, Any]:
    """The sandbox runs a search paid for (seeds, every rung and repeat; cached answers and failures that
    never reached a sandbox excluded) and their evaluator seconds: on a small machine each run also pays
    for starting its sandboxes, so the steps alone understate what many short rungs cost in wall time."""
    from evoprompt.search.store import DB_NAME, RunStore

    with RunStore.open_readonly(run_dir / DB_NAME) as store:
        snapshot = store.snapshot()
    runs = [c.evaluator_seconds for c in snapshot.candidates if c.rung is None]
    runs += [e.evaluator_seconds for e in snapshot.evaluations]
    ran = [seconds for seconds in runs if seconds > 0]
    return {"trainings": len(ran), "evaluator_seconds": round(sum(ran), 1)}


def steps_to_reach(curve: list[dict[str, Any]], target: float) -> int | None:
    """The training steps after which a search's hypervolume first reached `target` (None: never)."""
    return next((point["steps"] for point in curve if point["hypervolume"] >= target - 1e-12), None)


# -- tables ------------------------------------------------------------------------------------------


def _mean_sd(values: list[float | None], digits: int = 3) -> str:
    vals = [v for v in values if v is not None]
    if not vals:
        return "-"
    spread = statistics.stdev(vals) if len(vals) > 1 else 0.0
    return f"{statistics.fmean(vals):,.{digits}f} ± {spread:,.{digits}f}"


def paper_needs(search: dict[str, Any], long: dict[str, Any]) -> dict[str, Any]:
    """How many steps the paper loop (its long run, same search seed) needs to reach the hypervolume
    `search` ended with, against the steps `search` itself needed for it. Where the long run never gets
    there, its whole budget stands in for its steps: the ratio is then a lower bound."""
    target = search["hypervolume"]
    if target <= 0:  # no child on the plane: nothing to reach
        return {"steps": None, "paper_steps": None, "reached": False, "ratio": None}
    mine = steps_to_reach(search["curve"], target) or search["training_steps"]
    theirs = steps_to_reach(long["curve"], target)
    paper_steps = theirs if theirs is not None else long["training_steps"]
    return {"steps": mine, "paper_steps": theirs, "reached": theirs is not None,
            "ratio": paper_steps / mine if mine else None}


def arm_table(searches: list[dict[str, Any]]) -> tuple[list[str], list[list[Any]], dict[str, Any]]:
    """Per arm, over its search seeds: hypervolume, best fitness, steps, trainings and times; the steps each search
    took to reach the paper loop's final hypervolume at the same budget (same search seed) beside the steps
    the paper loop itself took to first reach it (a search that never reached it counts at most 1x: the
    paper's steps over its own); and, where the paper loop's long run is there, how many times the steps of
    a search the paper loop needs to reach that search's own final hypervolume."""
    paper = {s["seed"]: s for s in searches if s["arm"] == "paper"}
    long = {s["seed"]: s for s in searches if s["arm"] == LONG_ARM}
    header = ["arm", "searches", "hypervolume", "best fitness", "training steps", "trainings", "evaluator s",
              "wall s", "steps to paper's HV", "fewer steps than paper", "paper loop's steps for this HV"]
    rows, table = [], {}
    for name in dict.fromkeys(s["arm"] for s in searches):
        mine = [s for s in searches if s["arm"] == name]
        reach, ratios = [], []
        for s in mine:
            target = paper.get(s["seed"])
            if target is None or name in ("paper", LONG_ARM):
                continue
            steps = steps_to_reach(s["curve"], target["hypervolume"])
            reach.append(steps)
            paper_steps = steps_to_reach(target["curve"], target["hypervolume"]) or target["training_steps"]
            ratios.append(paper_steps / steps if steps else min(1.0, paper_steps / s["training_steps"]))
        needs = [paper_needs(s, long[s["seed"]]) for s in mine if s["seed"] in long and name != LONG_ARM]
        # the long run is the paper search run on: its first rounds must be that very search
        same = {s["seed"]: s["curve"][:len(paper[s["seed"]]["curve"])] == paper[s["seed"]]["curve"]
                for s in mine if name == LONG_ARM and s["seed"] in paper}
        table[name] = {
            "searches": len(mine),
            "hypervolume": [s["hypervolume"] for s in mine],
            "best_fitness": [s["best_fitness"] for s in mine],
            "training_steps": [s["training_steps"] for s in mine],
            "trainings": [s.get("trainings") for s in mine],
            "evaluator_seconds": [s.get("evaluator_seconds") for s in mine],
            "wall_seconds": [s["wall_seconds"] for s in mine],
            "steps_to_paper_hypervolume": reach,
            "paper_steps_ratio": ratios,
            "paper_loop_needs": needs,
            **({"repeats_the_paper_search": same} if same else {}),
        }
        reached = f"{sum(r is not None for r in reach)}/{len(reach)} reached" if reach else "-"
        need_ratios = [n["ratio"] for n in needs if n["ratio"] is not None]
        needed = (f"{statistics.median(need_ratios):.1f}x (median; {sum(n['reached'] for n in needs)}/{len(needs)} "
                  "reached)" if need_ratios else "-")
        rows.append([name, len(mine), _mean_sd([s["hypervolume"] for s in mine]),
                     _mean_sd([s["best_fitness"] for s in mine], 0),
                     _mean_sd([s["training_steps"] for s in mine], 0), _mean_sd([s.get("trainings") for s in mine], 0),
                     _mean_sd([s.get("evaluator_seconds") for s in mine], 0),
                     _mean_sd([s["wall_seconds"] for s in mine], 0),
                     reached, f"{statistics.median(ratios):.1f}x (median)" if ratios else "-", needed])
        if not all(same.values()):
            print(f"warning: {LONG_ARM} differs from the paper search in its first rounds for search seeds "
                  f"{[seed for seed, ok in same.items() if not ok]} (did an evaluation depend on the load?)")
    return header, rows, table


# -- the full recipe, again ------------------------------------------------------------------------


def finalists(searches: list[dict[str, Any]], args: argparse.Namespace) -> list[dict[str, Any]]:
    """Each arm's best `TOP_CHILDREN` distinct children over its searches (by fitness), then the CNN seed
    (the paper loop's long run is a yardstick for steps, not an arm at the budget)."""
    from evoprompt.search.seeds import list_seeds
    from evoprompt.search.store import DB_NAME, RunStore

    picked: list[dict[str, Any]] = []
    for name in dict.fromkeys(s["arm"] for s in searches if s["arm"] != LONG_ARM):
        pool = []
        for s in (s for s in searches if s["arm"] == name):
            with RunStore.open_readonly(args.out / f"{name}-seed{s['seed']}" / "run" / DB_NAME) as store:
                pool += [(c, s["seed"]) for c in store.candidates(kind="child", scored=True)]
        seen: set[str] = set()
        for c, seed in sorted(pool, key=lambda cs: -(cs[0].fitness or 0.0)):
            key = c.structure or c.code
            if key in seen:
                continue
            seen.add(key)
            picked.append({"arm": name, "search_seed": seed, "id": c.id, "code": c.code, "search_size": c.size,
                           "search_val_accuracy": c.val_accuracy, "search_fitness": c.fitness})
            if len(seen) == TOP_CHILDREN:
                break
    cnn = next(s for s in list_seeds("mnist1d", "torch") if s.name == "cnn")
    picked.append({"arm": "seed", "search_seed": None, "id": None, "name": "cnn", "code": cnn.code})
    return picked


def reevaluate(picked: list[dict[str, Any]], args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every pick trained at the full recipe with each of REEVAL_SEEDS, on one fresh evaluator. Each run's
    outcome is appended to `reeval.jsonl` as it finishes, keyed by the program's hash and the seed, so a
    killed benchmark (or one given more search seeds) trains only what is missing; an evaluator error is
    an outcome, not the end of the others."""
    from evoprompt.sdk import EvaluatorClient, EvaluatorError

    steps = FULL_STEPS // args.scale
    log = args.out / "reeval.jsonl"
    done = {(r["sha256"], r["seed"]): r for r in _read_jsonl(log) if r.get("steps") == steps}
    jobs = [(hashlib.sha256(p["code"].encode()).hexdigest(), p["code"], seed) for p in picked
            for seed in REEVAL_SEEDS]
    todo = list({(sha, seed): (sha, code, seed) for sha, code, seed in jobs if (sha, seed) not in done}.values())
    if todo:
        lock = threading.Lock()
        with private_evaluator(args.backend, args.slots, ["torch"], **args.evaluator) as endpoint, \
                EvaluatorClient(endpoint) as client:
            client.wait_ready(120)

            def run(job: tuple[str, str, int]) -> None:
                sha, code, seed = job
                try:
                    r = client.evaluate("mnist1d", "torch", code, max_steps=steps, seed=seed)
                    row = {"status": r.status.name, "size": r.num_params + r.num_state, "test": r.test_accuracy,
                           "verified": r.verified}
                except EvaluatorError as exc:
                    row = {"status": f"error: {exc}", "size": None, "test": None, "verified": False}
                row = {"sha256": sha, "seed": seed, "steps": steps, **row}
                with lock:
                    done[(sha, seed)] = row
                    with log.open("a") as f:
                        f.write(json.dumps(row) + "\n")

            with ThreadPoolExecutor(max_workers=2 * args.concurrency) as pool:
                list(pool.map(run, todo))
    rows = []
    for pick, start in zip(picked, range(0, len(jobs), len(REEVAL_SEEDS)), strict=True):
        mine = [done[(sha, seed)] for sha, _, seed in jobs[start:start + len(REEVAL_SEEDS)]]
        ok = [r for r in mine if r["status"] == "OK"]
        tests = [r["test"] for r in ok]
        rows.append({**{k: v for k, v in pick.items() if k != "code"},
                     "statuses": [r["status"] for r in mine], "size": ok[0]["size"] if ok else None,
                     "test_accuracy": tests, "test_mean": statistics.fmean(tests) if tests else None,
                     "test_sd": statistics.stdev(tests) if len(tests) > 1 else None,
                     "verified": all(r["verified"] for r in ok) if ok else None})
    cnn = rows[-1]
    for row in rows[:-1]:
        row["dominates_cnn"] = dominates(row, cnn)
    return rows


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The complete lines of a log that a kill may have cut mid-line."""
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue
    return rows


def dominates(child: dict[str, Any], seed: dict[str, Any]) -> bool:
    """The issue's bar: smaller (num_params + num_state) and a mean test accuracy at least the seed's."""
    known = all(r.get(k) is not None for r in (child, seed) for k in ("size", "test_mean"))
    return known and child["size"] < seed["size"] and child["test_mean"] >= seed["test_mean"]


def reeval_table(rows: list[dict[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    header = ["arm", "child (search seed)", "size", "search val", "test, 3 seeds", "dominates CNN"]
    out = []
    for r in rows:
        who = r.get("name") or f"#{r['id']} (seed {r['search_seed']})"
        test = (f"{r['test_mean']:.3f} ± {r['test_sd']:.3f}" if r["test_sd"] is not None
                else (f"{r['test_mean']:.3f}" if r["test_mean"] is not None else "/".join(r["statuses"])))
        val = f"{r['search_val_accuracy']:.3f}" if r.get("search_val_accuracy") is not None else "-"
        out.append([r["arm"], who, r["size"] if r["size"] is not None else "-", val, test,
                    "" if r["arm"] == "seed" else ("yes" if r["dominates_cnn"] else "no")])
    return header, out


# -- main ----------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="0,1,2", help="search seeds (each arm runs every one)")
    parser.add_argument("--arms", default=",".join(ARMS), help=f"from {', '.join(ARMS)}")
    parser.add_argument("--out", type=Path, default=None,
                        help="run directories (resumable; default runs/bench-budget, or runs/bench-budget-quick)")
    parser.add_argument("--json", type=Path, default=RESULTS_DIR / "search_budget.json")
    parser.add_argument("--backend", default="docker", choices=["docker", "process"])
    parser.add_argument("--slots", type=int, default=2)
    parser.add_argument("--gpus", default="", help="GPU ids for the evaluator (process back-end), e.g. 0")
    parser.add_argument("--slots-per-gpu", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="every step count / 16: a smoke test, not a result")
    parser.add_argument("--no-reeval", action="store_true", help="searches only")
    args = parser.parse_args(argv)
    args.scale = 16 if args.quick else 1
    args.out = args.out or Path("runs/bench-budget-quick" if args.quick else "runs/bench-budget")
    args.evaluator, args.concurrency = {}, args.slots  # concurrency: the evaluator's training slots
    if args.gpus:
        # RLIMIT_AS of a GPU slot: CUDA reserves far more address space than it uses (bench/gpu_slots.py)
        args.evaluator = {"gpus": tuple(args.gpus.split(",")), "slots_per_gpu": args.slots_per_gpu,
                          "memory_gb": 4096.0}
        args.concurrency = args.slots_per_gpu * len(args.evaluator["gpus"])
    args.out.mkdir(parents=True, exist_ok=True)
    arms = [ARMS[name] for name in args.arms.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    print_table(["arm", "rounds", "children/round", "nominal steps"],
                [[a.name, a.rounds, a.prompts * a.samples, f"{nominal_steps(a.config(0, args.scale)):,}"]
                 for a in arms])
    payload: dict[str, Any] = {"settings": {"seeds": seeds, "arms": {a.name: vars(a) for a in arms},
                                            "scale": args.scale, "backend": args.backend, "slots": args.slots,
                                            "gpus": args.gpus, "slots_per_gpu": args.slots_per_gpu,
                                            "reeval_seeds": REEVAL_SEEDS, "seed_programs": SEED_PROGRAMS,
                                            "full_steps": FULL_STEPS // args.scale}}
    searches: list[dict[str, Any]] = []
    for seed in seeds:  # seed by seed, so a cut-off run still compares every arm
        for arm in arms:
            s = run_one(arm, seed, args)
            searches.append(s)
            print(f"{arm.name} seed {seed}: hypervolume {s['hypervolume']:.3f}, best fitness {s['best_fitness']}, "
                  f"{s['training_steps']:,} steps, {s['wall_seconds']:.0f} s", flush=True)
            payload["searches"] = searches
            write_json(args.json, payload)
    header, rows, payload["arms"] = arm_table(searches)
    print_table(header, rows)
    write_json(args.json, payload)
    if not args.no_reeval:
        rows_r = reevaluate(finalists(searches, args), args)
        payload["reeval"] = rows_r
        print_table(*reeval_table(rows_r))
        write_json(args.json, payload)
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
