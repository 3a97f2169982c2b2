"""Pretrained LMs as EvoPrompting's operator, measured on MNIST-1D (torch), CPU only.

Two parts, each a set of real searches against one private evaluator (Docker sandboxes):

- `children`: what a model writes. For each model and prompt style, one round of few-shot prompts
  from the seeds, with repair prompts on: the share of samples that parse, that train OK, and that
  train OK and are novel (not a copy of a seed: copies are caught by the normalised hash); the same
  counted without the repairs (side by side, one run); tokens/s and LM seconds per child beside the
  evaluator's seconds per child.
- `compare`: the paper's comparison at equal numbers of children: EvoPrompting (evolution + prompt
  tuning), evolution without tuning, few-shot prompting from the seeds (one round), and the
  `mutation` operator; several search seeds each. Best fitness, best test accuracy below the CNN
  seed's size, valid and novel shares, LM and evaluator seconds.

Every arm's run directory stays under --out and its summary is written as soon as it finishes, so
a killed benchmark continues where it stopped (finished arms are read back, not run again).
Hours on 2 cores for the full sizes; `--quick` is the CI variant.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS_DIR, print_table, private_evaluator, write_json  # noqa: E402

CNN_PARAMS = 5210  # the torch CNN seed


def model_specs() -> dict[str, str]:
    from evoprompt.search.lm.offline_models import MODELS, ModelFileError, materialise

    specs = {}
    for model in MODELS:
        try:
            specs[model.name] = f"hf:{materialise(model)}"
        except ModelFileError as exc:
            print(f"skipping {model.name}: {exc}", file=sys.stderr)
    return specs


def run_arm(name: str, out: Path, config: Any, endpoint: str) -> dict[str, Any]:
    """One search (or its summary, when an earlier invocation finished it)."""
    from evoprompt.search.report import summarize
    from evoprompt.search.runner import run_search
    from evoprompt.search.store import CONFIG_NAME

    done = out / name / "arm.json"
    if done.is_file():
        return json.loads(done.read_text())
    run_dir = out / name / "run"
    resume = (run_dir / CONFIG_NAME).is_file()  # a killed benchmark, or a fork (fork_after_round_one)
    started = time.monotonic()
    run_search(None if resume else config, run_dir, resume=resume, evaluator=endpoint, progress=False)
    arm = {"name": name, "config": json.loads((run_dir / CONFIG_NAME).read_text()),
           "wall_seconds": round(time.monotonic() - started, 1), **measure(run_dir), "summary": summarize(run_dir)}
    done.write_text(json.dumps(arm, indent=2) + "\n")
    return arm


def measure(run_dir: Path) -> dict[str, Any]:
    """Shares of samples that parse, train OK, and train OK as a novel program; with and without repairs."""
    from evoprompt.search.store import DB_NAME, RunStore

    with RunStore.open_readonly(run_dir / DB_NAME) as store:
        children = store.candidates(kind="child")
        seeds = store.candidates(kind="seed")
    cnn = next((s for s in seeds if s.name == "cnn"), None)

    def shares(pool: list[Any]) -> dict[str, Any]:
        n = len(pool)
        parsed = [c for c in pool if c.state != "invalid"]
        ok = [c for c in pool if c.status == "OK"]
        copies = [c for c in pool if c.state == "duplicate"]
        small = [c for c in ok if c.num_params and c.num_params < CNN_PARAMS and c.test_accuracy is not None]
        return {"samples": n, "parsed": _share(len(parsed), n), "trained_ok": _share(len(ok), n),
                "novel_ok": _share(len(ok), n),  # duplicates (copies of a seed or of each other) are never evaluated
                "copies": _share(len(copies), n),
                "best_fitness": max((c.fitness for c in pool if c.fitness is not None), default=None),
                "best_test_below_cnn_size": max((c.test_accuracy for c in small), default=None)}

    rounds = sorted({c.round for c in children})
    return {"with_repairs": shares(children), "without_repairs": shares([c for c in children if c.repair_of is None]),
            # per round: where tuned and untuned LMs answer the same prompts (round 2 on), side by side
            "per_round": {r: shares([c for c in children if c.round == r]) for r in rounds},
            "cnn_seed": {"num_params": cnn.num_params, "test_accuracy": cnn.test_accuracy,
                         "fitness": cnn.fitness} if cnn else None}


def _share(k: int, n: int) -> float | None:
    return round(k / n, 3) if n else None


def fork_after_round_one(source: Path, target: Path, **changes: Any) -> None:
    """`target` becomes `source`'s run as it stood after round 1 (same prompts, samples, evaluations
    and parents), with `changes` to its settings: "evolution without tuning" then differs from
    EvoPrompting only from round 2 on, where the tuned and untuned LM answer the very same prompts
    with the very same seeds (the issue's "same prompts, same seeds" comparison), and round 1's LM
    time is not spent twice. Round 1's tuning stays on record but is never loaded (tuning off)."""
    import shutil
    import sqlite3

    from evoprompt.search.store import CONFIG_NAME, DB_NAME

    if (target / CONFIG_NAME).is_file():
        return
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("report", "round_0[2-9]", "round_[1-9]*"))
    with sqlite3.connect(target / DB_NAME) as db:
        for table in ("candidates", "prompts", "rounds", "lm_calls"):
            db.execute(f"DELETE FROM {table} WHERE round > 1")
        db.execute("DELETE FROM events WHERE round > 1")
    config = json.loads((target / CONFIG_NAME).read_text())
    (target / CONFIG_NAME).write_text(json.dumps({**config, **changes}, indent=2) + "\n")


def children_part(args: argparse.Namespace, specs: dict[str, str], endpoint: str) -> list[dict[str, Any]]:
    from evoprompt.search.config import SearchConfig

    header = ["model", "style", "samples", "parse", "train OK", "copies", "OK w/o repair", "samples w/o",
              "tok/s", "LM s/child", "eval s/child"]
    arms, rows = [], []
    for model, spec in specs.items():
        for style in args.styles.split(","):
            config = SearchConfig(task="mnist1d", framework="torch", lm=spec, mode="few-shot", rounds=1,
                                  prompts=args.prompts, samples=args.samples, parents=4, max_steps=args.max_steps,
                                  seed=args.children_seed, prompt_style=style, repairs=args.repairs,
                                  lm_dtype=args.dtype, lm_max_tokens=args.max_tokens)
            suffix = f"-seed{args.children_seed}" if args.children_seed else ""
            arm = run_arm(f"children-{model}-{style}{suffix}", args.out, config, endpoint)
            arms.append(arm)
            shares, lm = arm["with_repairs"], arm["summary"]["lm"]
            print(f"{model} {style}: {shares}", flush=True)
            rows.append([model, style, shares["samples"], shares["parsed"], shares["trained_ok"], shares["copies"],
                         arm["without_repairs"]["trained_ok"], arm["without_repairs"]["samples"],
                         lm["completion_tokens_per_second"], lm["seconds_per_child"],
                         lm["evaluator_seconds_per_child"]])
    print_table(header, rows)
    return arms


ARMS = {
    # name: (operator, mode, tuning)
    "evoprompting": ("qwen", "evoprompting", "on"),
    "evolution-no-tuning": ("qwen", "evoprompting", "off"),
    "few-shot": ("qwen", "few-shot", "off"),
    "mutation": ("mutation", "evoprompting", "off"),
}


def compare_part(args: argparse.Namespace, specs: dict[str, str], endpoint: str) -> dict[str, Any]:
    from evoprompt.search.config import SearchConfig

    qwen = next((s for name, s in specs.items() if name.startswith("qwen")), None)
    results: dict[str, list[dict[str, Any]]] = {}
    for arm_name, (operator, mode, tuning) in ARMS.items():
        lm = qwen if operator == "qwen" else "mutation"
        if lm is None:
            print(f"skipping {arm_name}: no Qwen model (make models)", file=sys.stderr)
            continue
        for seed in range(args.seeds):
            config = SearchConfig(task="mnist1d", framework="torch", lm=lm, mode=mode, rounds=args.rounds,
                                  prompts=args.prompts, samples=args.samples, parents=args.parents,
                                  max_steps=args.max_steps, seed=seed, prompt_tuning=tuning,
                                  prompt_style=args.style, repairs=args.repairs, lm_dtype=args.dtype,
                                  lm_max_tokens=args.max_tokens, tune_epochs=args.tune_epochs,
                                  tune_examples=args.tune_examples, tune_length=args.tune_length)
            name = f"compare-{arm_name}-seed{seed}"
            tuned = args.out / f"compare-evoprompting-seed{seed}"
            if arm_name == "evolution-no-tuning" and (tuned / "arm.json").is_file():
                fork_after_round_one(tuned / "run", args.out / name / "run", prompt_tuning="off")
            arm = run_arm(name, args.out, config, endpoint)
            results.setdefault(arm_name, []).append(arm)
            print(f"{arm_name} seed {seed}: best fitness {arm['with_repairs']['best_fitness']}", flush=True)
    later = ["arm", "seed", "round", "samples", "train OK", "best fitness"]
    print_table(later, [[name, a["config"]["seed"], r, v["samples"], v["trained_ok"], v["best_fitness"]]
                        for name, arms in results.items() for a in arms for r, v in a["per_round"].items()])
    header = ["arm", "seeds", "children", "train OK", "best fitness", "best test < CNN size", "LM s", "eval s",
              "tune s/round", "wall s"]
    rows, table = [], {}
    for arm_name, arms in results.items():
        agg = {
            "children": _mean([a["with_repairs"]["samples"] for a in arms]),
            "trained_ok": _mean_sd([a["with_repairs"]["trained_ok"] for a in arms]),
            "best_fitness": _mean_sd([a["with_repairs"]["best_fitness"] for a in arms]),
            "best_test_below_cnn_size": _mean_sd([a["with_repairs"]["best_test_below_cnn_size"] for a in arms]),
            "lm_seconds": _mean([a["summary"]["lm"]["seconds"] for a in arms]),
            "evaluator_seconds": _mean([a["summary"]["lm"]["evaluator_seconds"] for a in arms]),
            "tune_seconds_per_round": _mean([s for a in arms for s in _tune_seconds(a)]),
            "wall_seconds": _mean([a["wall_seconds"] for a in arms]),
        }
        table[arm_name] = agg
        rows.append([arm_name, len(arms), agg["children"], agg["trained_ok"], agg["best_fitness"],
                     agg["best_test_below_cnn_size"], agg["lm_seconds"], agg["evaluator_seconds"],
                     agg["tune_seconds_per_round"], agg["wall_seconds"]])
    print_table(header, rows)
    return {"arms": table, "runs": {k: v for k, v in results.items()}}


def _tune_seconds(arm: dict[str, Any]) -> list[float]:
    """Seconds of each tuning step the arm's LM sampled with (a fork without tuning keeps round 1's on
    record, unused)."""
    if arm["config"].get("prompt_tuning") == "off":
        return []
    return [r["tune_seconds"] for r in arm["summary"]["per_round"] if r.get("tune_seconds")]


def _mean(values: list[Any]) -> float | None:
    vals = [v for v in values if v is not None]
    return round(statistics.mean(vals), 3) if vals else None


def _mean_sd(values: list[Any]) -> str | None:
    vals = [v for v in values if v is not None]
    if not vals:
        return None
    spread = statistics.stdev(vals) if len(vals) > 1 else 0.0
    return f"{statistics.mean(vals):.3f} ± {spread:.3f} (n={len(vals)})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("part", choices=["children", "compare", "all"])
    parser.add_argument("--out", type=Path, default=Path("runs/bench-lm"), help="arms' run directories (resumable)")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--models", default="", help="comma-separated model names (default: all installed)")
    parser.add_argument("--prompts", type=int, default=4)
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--parents", type=int, default=4)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--max-steps", type=int, default=300)
    parser.add_argument("--max-tokens", type=int, default=512)
    parser.add_argument("--repairs", type=int, default=1)
    parser.add_argument("--style", default="completion", choices=["completion", "chat"], help="compare's style")
    parser.add_argument("--styles", default="completion,chat", help="children's styles, in order")
    parser.add_argument("--children-seed", type=int, default=0, help="children's search seed (its prompts and samples)")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--tune-epochs", type=int, default=3)
    parser.add_argument("--tune-examples", type=int, default=16)
    parser.add_argument("--tune-length", type=int, default=512)
    parser.add_argument("--slots", type=int, default=2)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    specs = model_specs()
    if args.models:
        specs = {k: v for k, v in specs.items() if k in args.models.split(",")}
    payload: dict[str, Any] = {"settings": {k: str(v) for k, v in vars(args).items()}}
    with private_evaluator("docker", args.slots, ["torch"]) as endpoint:
        if args.part in ("children", "all"):
            payload["children"] = children_part(args, specs, endpoint)
        if args.part in ("compare", "all"):
            payload["compare"] = compare_part(args, specs, endpoint)
    path = write_json(args.json or RESULTS_DIR / f"lm_search_{args.part}.json", payload)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
