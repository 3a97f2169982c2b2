"""Train every shipped MNIST-1D seed under the task's recipe and compare with the published figures.

    python bench/mnist1d_baselines.py                  # full recipe: 8000 steps (minutes)
    python bench/mnist1d_baselines.py --max-steps 200  # the short-budget variant CI runs

Prints test accuracy and num_params per seed beside the mnist1d paper's figures (Greydanus 2020:
logistic 32%, MLP 68%, CNN 94%, GRU 91%) and writes JSON. Under the full recipe it exits 1 if a CNN
seed scores below 91% test accuracy.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import RESULTS_DIR, print_table, private_evaluator, write_json  # noqa: E402

PUBLISHED = {"logistic": 0.32, "mlp": 0.68, "cnn": 0.94, "gru": 0.91}
CNN_FLOOR = 0.91
FULL_STEPS = 8000


def main(argv: list[str] | None = None) -> int:
    from evoprompt.sdk import EvaluationRequest, EvaluatorClient
    from evoprompt.seeds import list_seeds

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-steps", type=int, default=FULL_STEPS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--backend", choices=["auto", "docker", "process"], default="auto")
    parser.add_argument("--slots", type=int, default=2)
    parser.add_argument("--json", type=Path, default=RESULTS_DIR / "mnist1d_baselines.json")
    args = parser.parse_args(argv)

    seeds = [s for fw in ("torch", "flax") for s in list_seeds("mnist1d", fw)]
    requests = {uuid.uuid4().hex: s for s in seeds}
    print(f"{len(seeds)} seeds, {args.max_steps} steps each, {args.slots} slot(s)", flush=True)
    started = time.monotonic()
    with private_evaluator(args.backend, args.slots, timeout=3600.0) as endpoint, EvaluatorClient(endpoint) as client:
        results = {
            r.request_id: r
            for r in client.evaluate_many(
                EvaluationRequest("mnist1d", s.framework, s.code, max_steps=args.max_steps, seed=args.seed,
                                  request_id=rid)
                for rid, s in requests.items()
            )
        }
    elapsed = time.monotonic() - started

    rows, records = [], []
    for rid, seed in requests.items():
        r = results[rid]
        published = PUBLISHED.get(seed.name)
        rows.append((seed.framework, seed.name, r.status.name, f"{r.test_accuracy:.1%}",
                     f"{published:.0%}" if published else "-", f"{r.val_accuracy:.1%}", f"{r.num_params:,}",
                     f"{r.best_step}", f"{r.train_seconds:.0f}", f"{r.wall_seconds:.0f}"))
        records.append({"framework": seed.framework, "seed": seed.name, "published_test_accuracy": published,
                        **{k: v for k, v in r.to_dict().items() if k not in ("stderr_tail", "checkpoints")}})
    print_table(("framework", "seed", "status", "test_acc", "published", "val_acc", "params", "best_step",
                 "train_s", "wall_s"), rows)
    print(f"\ntotal wall time {elapsed:.0f} s; sandbox {next(iter(results.values())).sandbox}")
    path = write_json(args.json, {"benchmark": "mnist1d_baselines", "max_steps": args.max_steps,
                                  "slots": args.slots, "total_seconds": elapsed, "results": records})
    print(f"wrote {path}")

    failed = [r for r in records if r["status"] != "OK"]
    if failed:
        print(f"FAILED: {', '.join(f['framework'] + '/' + f['seed'] for f in failed)} did not train", file=sys.stderr)
        return 1
    if args.max_steps >= FULL_STEPS:
        weak = [r for r in records if r["seed"] == "cnn" and r["test_accuracy"] < CNN_FLOOR]
        if weak:
            print(f"FAILED: CNN below {CNN_FLOOR:.0%}: {weak}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
