"""Latency and throughput of the evaluator as a user sees them, warm pool on and off, side by side:

- a cache hit (the same request again: answered from the result store),
- a program that fails to compile (a syntax error: the sandbox says so at once),
- throughput, evaluations per minute of a 200-step CNN, with 1 and 2 slots, and the scaling ratio.

    python bench/warm_pool.py [--backend docker] [--repeats 5] [--throughput-jobs 16]

Prints tables (medians), writes JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import time
import uuid
from pathlib import Path

from _common import RESULTS_DIR, median, print_table, private_evaluator, write_json

BROKEN = "import torch\n\nclass Model(torch.nn.Module:\n    pass\n"


def timed_evaluate(client, code: str, steps: int):
    """(seconds, result) of one evaluation as a caller sees it."""
    started = time.perf_counter()
    result = client.evaluate("mnist1d", "torch", code, max_steps=steps)
    return time.perf_counter() - started, result


def main(argv: list[str] | None = None) -> int:
    from evoprompt.evaluator.embedded import choose_backend
    from evoprompt.sdk import EvaluationRequest, EvaluatorClient, Status
    from evoprompt.search.seeds import list_seeds

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--throughput-jobs", type=int, default=16)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--settle", type=float, default=6.0)
    parser.add_argument("--json", type=Path, default=RESULTS_DIR / "warm_pool.json")
    args = parser.parse_args(argv)
    backend = choose_backend(args.backend, ["torch"])
    code = next(s for s in list_seeds("mnist1d", "torch") if s.name == "cnn").code
    latency: dict[str, list[float]] = {}
    per_minute: dict[str, float] = {}

    for pool in (0, 1):
        label = f"pool {'on' if pool else 'off'}"
        with contextlib.ExitStack() as stack:
            client = stack.enter_context(EvaluatorClient(stack.enter_context(
                private_evaluator(backend, 1, ["torch"], pool_size=pool))))
            first = client.evaluate("mnist1d", "torch", code, max_steps=args.steps)  # data written, pool filled
            assert first.ok, first.message
            hits, broken = [], []
            for _ in range(args.repeats):
                took, hit = timed_evaluate(client, code, args.steps)
                assert hit.cached, hit.message
                hits.append(took)
                time.sleep(args.settle)
                took, failed = timed_evaluate(client, f"# {uuid.uuid4().hex}\n{BROKEN}", args.steps)
                assert failed.status is Status.COMPILE_ERROR, failed.message
                broken.append(took)
            latency[f"cache hit, {label}"] = hits
            latency[f"compile error, {label}"] = broken
        print(f"{label}: cache hit {median(hits) * 1000:.1f} ms, compile error {median(broken):.2f} s", flush=True)

    for slots in (1, 2):
        with contextlib.ExitStack() as stack:
            client = stack.enter_context(EvaluatorClient(stack.enter_context(
                private_evaluator(backend, slots, ["torch"], pool_size=1))))
            client.evaluate("mnist1d", "torch", f"# warm-up\n{code}", max_steps=10)
            time.sleep(args.settle)
            requests = [EvaluationRequest("mnist1d", "torch", f"# {uuid.uuid4().hex}\n{code}", max_steps=args.steps)
                        for _ in range(args.throughput_jobs)]
            started = time.perf_counter()
            results = list(client.evaluate_many(requests))
            elapsed = time.perf_counter() - started
            assert all(r.ok for r in results), [r.message for r in results if not r.ok]
            per_minute[f"{slots} slot(s)"] = 60 * len(results) / elapsed
        print(f"{slots} slot(s): {per_minute[f'{slots} slot(s)']:.1f} evaluations per minute", flush=True)

    print(f"\n{backend} back-end, {args.repeats} repeats (medians)")
    print_table(("what", "median", "min", "max"),
                [(k, f"{median(v) * 1000:.1f} ms", f"{min(v) * 1000:.1f} ms", f"{max(v) * 1000:.1f} ms")
                 for k, v in latency.items()])
    scaling = per_minute["2 slot(s)"] / per_minute["1 slot(s)"]
    print(f"\nthroughput, {args.throughput_jobs} x {args.steps}-step CNN, warm pool on")
    print_table(("slots", "evaluations/min", "scaling"),
                [(k, f"{v:.1f}", f"{v / per_minute['1 slot(s)']:.2f}x") for k, v in per_minute.items()])
    path = write_json(args.json, {"benchmark": "warm_pool", "backend": backend, "steps": args.steps,
                                  "latency_seconds": latency, "evaluations_per_minute": per_minute,
                                  "scaling_2_over_1": scaling})
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
