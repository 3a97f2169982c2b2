"""Train the standard triplet seed on six CLRS-30 algorithms and compare with Ibarz et al. (2022).

    python bench/clrs_baselines.py                          # the paper's budget: 2000 steps, CLRS sizes
    python bench/clrs_baselines.py --max-steps 300 --eval-samples 32 --test-length 32   # a CPU afternoon

Prints the out-of-distribution test score (dm-clrs' `evaluate`, at the best validation checkpoint)
of dm-clrs' Triplet-GMPNN with the shipped `standard` get_triplet_msgs, beside the single-task
Triplet-GMPNN figures of Ibarz et al. 2022 (Table 1: OOD micro-F1, mean of 10 seeds, 10,000 steps of
Adam, 64-node tests), with each evaluation's wall time, and writes JSON. Not run in CI: on a CPU the
paper's budget takes hours per algorithm (a 64-node test pass of the long algorithms is thousands of
message-passing steps over 64^3 triplets).
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from pathlib import Path

from _common import RESULTS_DIR, print_table, private_evaluator, write_json

ALGORITHMS = ("bfs", "dfs", "articulation_points", "graham_scan", "mst_kruskal", "insertion_sort")
# Ibarz et al. 2022, Table 1, Triplet-GMPNN (single task), OOD micro-F1 in %: mean and std
PUBLISHED = {
    "bfs": (99.73, 0.04),
    "dfs": (47.79, 4.19),
    "articulation_points": (88.32, 2.01),
    "graham_scan": (93.62, 0.91),
    "mst_kruskal": (89.80, 0.77),
    "insertion_sort": (78.14, 4.64),
}
PAPER_STEPS = 2000  # EvoPrompting's budget per candidate


def main(argv: list[str] | None = None) -> int:
    from evoprompt.sdk import EvaluationRequest, EvaluatorClient
    from evoprompt.search.seeds import list_seeds

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-steps", type=int, default=PAPER_STEPS)
    parser.add_argument("--algorithms", default=",".join(ALGORITHMS), help="comma-separated CLRS-30 names")
    parser.add_argument("--eval-samples", type=int, default=0, help="validation/test samples (0: dm-clrs run.py's)")
    parser.add_argument("--test-length", type=int, default=64, help="nodes of the OOD test graphs (CLRS-30: 64)")
    parser.add_argument("--backend", choices=["auto", "docker", "process"], default="auto")
    parser.add_argument("--slots", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=6 * 3600.0, help="wall-clock limit of one evaluation")
    parser.add_argument("--memory-gb", type=float, default=8.0,
                        help="memory of one sandbox (dm-clrs' model at 16 training nodes takes more than 4 GB)")
    parser.add_argument("--json", type=Path, default=RESULTS_DIR / "clrs_baselines.json")
    args = parser.parse_args(argv)

    algorithms = [a.strip() for a in args.algorithms.split(",") if a.strip()]
    standard = next(s for s in list_seeds("clrs/bfs", "haiku") if s.name == "standard")
    requests = {uuid.uuid4().hex: a for a in algorithms}
    print(f"standard triplet seed on {len(algorithms)} algorithms, {args.max_steps} steps, "
          f"{args.eval_samples or 'run.py'} eval samples, test at {args.test_length} nodes, {args.slots} slot(s)",
          flush=True)
    started = time.monotonic()
    with private_evaluator(args.backend, args.slots, ["haiku"], timeout=args.timeout, memory_gb=args.memory_gb,
                           clrs_eval_samples=args.eval_samples, clrs_test_length=args.test_length) as endpoint, \
            EvaluatorClient(endpoint) as client:
        results = {
            r.request_id: r
            for r in client.evaluate_many(
                EvaluationRequest(f"clrs/{a}", "haiku", standard.code, max_steps=args.max_steps, seed=0,
                                  request_id=rid, timeout_seconds=args.timeout)
                for rid, a in requests.items()
            )
        }
    elapsed = time.monotonic() - started

    records, rows = [], []
    for rid, algorithm in requests.items():
        r = results[rid]
        published = PUBLISHED.get(algorithm)
        records.append({"algorithm": algorithm, "published_ood_f1": published[0] / 100 if published else None,
                        "published_std": published[1] / 100 if published else None,
                        **{k: v for k, v in r.to_dict().items() if k != "stderr_tail"}})
        rows.append((algorithm, r.status.name, f"{r.val_accuracy:.1%}", f"{r.test_accuracy:.1%}",
                     f"{published[0]:.1f}% ± {published[1]:.1f}" if published else "-", r.best_step,
                     f"{r.num_params:,}", f"{r.wall_seconds:.0f}"))
    print_table(("algorithm", "status", "val", "test_ood", "Ibarz_2022", "best_step", "params", "wall_s"), rows)
    print(f"\ntotal wall time {elapsed:.0f} s; sandbox {next(iter(results.values())).sandbox}")
    path = write_json(args.json, {"benchmark": "clrs_baselines", "max_steps": args.max_steps,
                                  "eval_samples": args.eval_samples, "test_length": args.test_length,
                                  "slots": args.slots, "total_seconds": elapsed, "results": records})
    print(f"wrote {path}")
    failed = [r["algorithm"] for r in records if r["status"] != "OK"]
    if failed:
        print(f"FAILED: {', '.join(failed)} did not train", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
