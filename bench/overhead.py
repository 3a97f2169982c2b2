"""What the evaluator costs on top of training: one CNN evaluation through the evaluator (docker and
process back-ends) against the same training run bare in this process, interleaved, side by side.

    python bench/overhead.py [--max-steps 2000] [--repeats 5]

The bare run calls the harness's `run_job` directly on the same inputs (same recipe, same torch
thread count, no sandbox, no gRPC, no scoring). Each evaluator run gets a unique comment in its
code so the result store cannot answer it. Prints medians and their ratios; writes JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import time
import uuid
from pathlib import Path

from _common import RESULTS_DIR, median, print_table, private_evaluator, write_json


def bare_run(code: str, steps: int, seed: int) -> float:
    """Wall time of the harness's training run in this process, inputs prepared beforehand."""
    from evoprompt.evaluator.harness import import_harness
    from evoprompt.evaluator.tasks import get_task

    run_job = import_harness().run_job

    task = get_task("mnist1d")
    with tempfile.TemporaryDirectory() as tmp:
        inp, out = Path(tmp) / "input", Path(tmp) / "output"
        inp.mkdir()
        out.mkdir()
        task.write_job(inp, "torch", code, steps, seed, threads=1)  # what one evaluator slot gets (--cpus 1)
        started = time.perf_counter()
        code_ = run_job(inp, out)
        elapsed = time.perf_counter() - started
    if code_ != 0:
        raise RuntimeError(f"the bare run failed with exit code {code_}")
    return elapsed


def main(argv: list[str] | None = None) -> int:
    from evoprompt.evaluator.embedded import choose_backend
    from evoprompt.sdk import EvaluatorClient
    from evoprompt.search.seeds import list_seeds

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-steps", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path, default=RESULTS_DIR / "overhead.json")
    args = parser.parse_args(argv)

    code = next(s for s in list_seeds("mnist1d", "torch") if s.name == "cnn").code
    backends = ["process"] + (["docker"] if choose_backend("auto", ["torch"]) == "docker" else [])
    times: dict[str, list[float]] = {"bare": [], **{b: [] for b in backends}}
    bare_run(code, 10, 0)  # warm-up: imports and data generation are not what we measure

    with contextlib.ExitStack() as stack:
        clients = {b: stack.enter_context(EvaluatorClient(stack.enter_context(private_evaluator(b, 1, ["torch"]))))
                   for b in backends}
        for rep in range(args.repeats):
            times["bare"].append(bare_run(code, args.max_steps, 0))
            for b, client in clients.items():
                started = time.perf_counter()
                r = client.evaluate("mnist1d", "torch", f"# {uuid.uuid4().hex}\n{code}", max_steps=args.max_steps)
                times[b].append(time.perf_counter() - started)
                if not r.ok:
                    raise RuntimeError(f"{b}: {r.status.name}: {r.message}")
            print(f"repeat {rep + 1}/{args.repeats}: " + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in times.items()),
                  flush=True)

    base = median(times["bare"])
    rows = [(mode, f"{median(v):.2f}", f"{min(v):.2f}", f"{max(v):.2f}", f"{median(v) / base:.2f}x",
             f"{median(v) - base:+.2f}") for mode, v in times.items()]
    print(f"\nCNN, {args.max_steps} steps, {args.repeats} interleaved repeats (seconds)")
    print_table(("mode", "median", "min", "max", "ratio", "overhead_s"), rows)
    path = write_json(args.json, {"benchmark": "overhead", "max_steps": args.max_steps, "repeats": args.repeats,
                                  "seconds": times, "median_ratio": {k: median(v) / base for k, v in times.items()}})
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
