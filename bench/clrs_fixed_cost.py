"""The fixed cost of a CLRS evaluation: `clrs/<algorithm>` at 1 training step (so nearly all of it is
start-up, data and prediction), warm pool off and on, interleaved, side by side; then one longer
evaluation (default: insertion_sort at 200 steps) with the pool on.

    python bench/clrs_fixed_cost.py [--algorithms bfs,insertion_sort,dfs] [--repeats 2] [--long insertion_sort:200]

The held-out sets are the server's defaults (dm-clrs run.py's sizes, 64-node test graphs) unless
--eval-samples/--test-length say otherwise. Prints a table (medians), writes JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import time
import uuid
from pathlib import Path

from _common import RESULTS_DIR, median, print_table, private_evaluator, write_json

BROKEN = "def get_triplet_msgs(z, edge_fts, graph_fts, nb_triplet_fts:\n    pass\n"


def main(argv: list[str] | None = None) -> int:
    from evoprompt.sdk import EvaluatorClient
    from evoprompt.search.seeds import list_seeds

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--algorithms", default="bfs,insertion_sort,dfs")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--long", default="insertion_sort:200", help="ALGORITHM:STEPS, or '' for none")
    parser.add_argument("--eval-samples", type=int, default=0)
    parser.add_argument("--test-length", type=int, default=64)
    parser.add_argument("--backend", default="docker")
    parser.add_argument("--settle", type=float, default=15.0, help="seconds for a pool to refill between runs")
    parser.add_argument("--json", type=Path, default=RESULTS_DIR / "clrs_fixed_cost.json")
    args = parser.parse_args(argv)
    algorithms = [a for a in args.algorithms.split(",") if a]
    code = next(s for s in list_seeds("clrs/bfs", "haiku") if s.name == "standard").code
    data = {"clrs_eval_samples": args.eval_samples, "clrs_test_length": args.test_length, "timeout": 3600.0}
    seconds: dict[str, dict[str, list[float]]] = {a: {"pool off": [], "pool on": []} for a in algorithms}
    long_run: dict[str, object] = {}

    with contextlib.ExitStack() as stack:
        clients = {label: stack.enter_context(EvaluatorClient(stack.enter_context(
            private_evaluator(args.backend, 1, ["haiku"], pool_size=pool, **data))))
            for label, pool in (("pool off", 0), ("pool on", 1))}
        for algorithm in algorithms:  # first use: the held-out data is sampled and written, the pools fill
            for client in clients.values():
                r = client.evaluate(f"clrs/{algorithm}", "haiku", f"# {uuid.uuid4().hex}\n{BROKEN}", max_steps=1)
                assert r.status.name == "COMPILE_ERROR", r.message
        for rep in range(args.repeats):
            for algorithm in algorithms:
                for label, client in clients.items():
                    time.sleep(args.settle)
                    started = time.perf_counter()
                    r = client.evaluate(f"clrs/{algorithm}", "haiku", f"# {uuid.uuid4().hex}\n{code}", max_steps=1)
                    seconds[algorithm][label].append(time.perf_counter() - started)
                    assert r.ok, r.message
                print(f"repeat {rep + 1}: {algorithm} " + ", ".join(
                    f"{k} {v[-1]:.1f}s" for k, v in seconds[algorithm].items()), flush=True)
        if args.long:
            algorithm, steps = args.long.split(":")
            time.sleep(args.settle)
            started = time.perf_counter()
            r = clients["pool on"].evaluate(f"clrs/{algorithm}", "haiku", f"# {uuid.uuid4().hex}\n{code}",
                                            max_steps=int(steps))
            long_run = {"algorithm": algorithm, "steps": int(steps), "seconds": time.perf_counter() - started,
                        "status": r.status.name, "train_seconds": r.train_seconds, "val_accuracy": r.val_accuracy,
                        "test_accuracy": r.test_accuracy}
            print(f"{algorithm} at {steps} steps, pool on: {long_run['seconds']:.0f} s ({r.status.name}, "
                  f"training {r.train_seconds:.0f} s)", flush=True)

    print(f"\nCLRS at 1 step, {args.repeats} repeats, {args.backend} (seconds, medians)")
    rows = [(a, f"{median(v['pool off']):.1f}", f"{median(v['pool on']):.1f}",
             f"{median(v['pool off']) / median(v['pool on']):.2f}x") for a, v in seconds.items()]
    print_table(("algorithm", "pool off", "pool on", "off/on"), rows)
    path = write_json(args.json, {"benchmark": "clrs_fixed_cost", "backend": args.backend, "seconds": seconds,
                                  "held_out": data, "long_run": long_run})
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
