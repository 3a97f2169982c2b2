"""Train every shipped MNIST-1D seed under the task's recipe and compare with the published figures.

    python bench/mnist1d_baselines.py                  # full recipe: 8000 steps (minutes)
    python bench/mnist1d_baselines.py --max-steps 200  # the short-budget variant CI runs

Prints mean test accuracy (over --seeds training seeds) and num_params of every seed program
beside the mnist1d paper's figures (Greydanus 2020: logistic 32%, MLP 68%, CNN 94%, GRU 91%) and
writes JSON. Under the full recipe it exits 1 if a CNN's mean test accuracy is below 91%.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from pathlib import Path

from _common import RESULTS_DIR, print_table, private_evaluator, write_json

PUBLISHED = {"logistic": 0.32, "mlp": 0.68, "cnn": 0.94, "gru": 0.91}
CNN_FLOOR = 0.91
FULL_STEPS = 8000


def main(argv: list[str] | None = None) -> int:
    from evoprompt.sdk import EvaluationRequest, EvaluatorClient
    from evoprompt.search.seeds import list_seeds

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-steps", type=int, default=FULL_STEPS)
    parser.add_argument("--seeds", type=int, default=3, help="training seeds per model (0..N-1); mean reported")
    parser.add_argument("--backend", choices=["auto", "docker", "process"], default="auto")
    parser.add_argument("--slots", type=int, default=2)
    parser.add_argument("--json", type=Path, default=RESULTS_DIR / "mnist1d_baselines.json")
    args = parser.parse_args(argv)

    seeds = [s for fw in ("torch", "flax") for s in list_seeds("mnist1d", fw)]
    requests = {uuid.uuid4().hex: (s, n) for s in seeds for n in range(args.seeds)}
    print(f"{len(seeds)} seed programs x {args.seeds} training seeds, {args.max_steps} steps each, "
          f"{args.slots} slot(s)", flush=True)
    started = time.monotonic()
    with private_evaluator(args.backend, args.slots, ["torch", "flax"], timeout=3600.0) as endpoint, \
            EvaluatorClient(endpoint) as client:
        results = {
            r.request_id: r
            for r in client.evaluate_many(
                EvaluationRequest("mnist1d", s.framework, s.code, max_steps=args.max_steps, seed=n, request_id=rid)
                for rid, (s, n) in requests.items()
            )
        }
    elapsed = time.monotonic() - started

    records = []
    for rid, (seed, n) in requests.items():
        r = results[rid]
        records.append({"framework": seed.framework, "seed": seed.name, "training_seed": n,
                        "published_test_accuracy": PUBLISHED.get(seed.name),
                        **{k: v for k, v in r.to_dict().items() if k not in ("stderr_tail", "checkpoints", "seed")}})
    rows, summary = [], []
    for seed in seeds:
        mine = [r for r in records if r["framework"] == seed.framework and r["seed"] == seed.name]
        ok = [r for r in mine if r["status"] == "OK"]
        test = [r["test_accuracy"] for r in ok] or [0.0]
        published = PUBLISHED.get(seed.name)
        entry = {"framework": seed.framework, "seed": seed.name, "runs": len(mine), "ok": len(ok),
                 "mean_test_accuracy": statistics.mean(test), "min_test_accuracy": min(test),
                 "max_test_accuracy": max(test), "published_test_accuracy": published,
                 "num_params": mine[0]["num_params"],
                 "median_train_seconds": statistics.median(r["train_seconds"] for r in mine)}
        summary.append(entry)
        rows.append((seed.framework, seed.name, f"{len(ok)}/{len(mine)}", f"{entry['mean_test_accuracy']:.1%}",
                     f"{min(test):.1%}-{max(test):.1%}", f"{published:.0%}" if published else "-",
                     f"{entry['num_params']:,}", f"{entry['median_train_seconds']:.0f}"))
    print_table(("framework", "model", "ok", "test_acc_mean", "test_acc_range", "published", "params",
                 "train_s_median"), rows)
    print(f"\ntotal wall time {elapsed:.0f} s; sandbox {next(iter(results.values())).sandbox}")
    path = write_json(args.json, {"benchmark": "mnist1d_baselines", "max_steps": args.max_steps,
                                  "slots": args.slots, "total_seconds": elapsed, "summary": summary,
                                  "results": records})
    print(f"wrote {path}")

    failed = [r for r in records if r["status"] != "OK"]
    if failed:
        print(f"FAILED: {', '.join(f['framework'] + '/' + f['seed'] for f in failed)} did not train", file=sys.stderr)
        return 1
    if args.max_steps >= FULL_STEPS:
        weak = [r for r in summary if r["seed"] == "cnn" and r["mean_test_accuracy"] < CNN_FLOOR]
        if weak:
            print(f"FAILED: CNN below {CNN_FLOOR:.0%}: {weak}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
