"""What the evaluator costs on top of training: one CNN evaluation through the evaluator (docker and
process back-ends, warm pool on and off) against the same training run bare in this process,
interleaved, side by side, at several step budgets.

    python bench/overhead.py [--steps 500,2000,8000] [--repeats 3]

The bare run calls the harness's `run_job` directly on the same inputs (same recipe, same torch
thread count, the same exchange of the chosen checkpoint, answered in this process; no sandbox, no
gRPC, no store). Each evaluator run gets a unique comment in its code so the result store cannot
answer it; the machine settles between runs so a pool's refill is not timed as the next run's cost.
Prints medians and their ratios per step budget; writes JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import threading
import time
import uuid
from pathlib import Path

from _common import RESULTS_DIR, median, print_table, private_evaluator, write_json


def bare_run(code: str, steps: int, seed: int) -> float:
    """Wall time of the harness's job in this process, inputs prepared beforehand."""
    from evoprompt.evaluator.exchange import CheckpointChoice
    from evoprompt.evaluator.harness import import_harness
    from evoprompt.evaluator.protocol import INPUT_DIR, OUTPUT_DIR
    from evoprompt.evaluator.tasks import configured_tasks

    run_job = import_harness().run_job
    task = configured_tasks("")["mnist1d"]  # the published data: what this bench compares with
    with tempfile.TemporaryDirectory() as tmp:
        inp, out, data = Path(tmp) / INPUT_DIR, Path(tmp) / OUTPUT_DIR, Path(tmp) / "data"
        inp.mkdir()
        out.mkdir()
        task.write_job(inp, data, "torch", code, steps, seed, threads=1)  # what one evaluator slot gets (--cpus 1)
        (inp / task.data_name).symlink_to(data / task.data_name)  # the server links it in once the model is built
        choice = CheckpointChoice(task, task.recipe.checkpoints(steps), 1 << 30)
        done = threading.Event()

        def answer() -> None:
            while not done.wait(0.005):
                choice.poll(inp, out)

        answering = threading.Thread(target=answer, daemon=True)
        answering.start()
        started = time.perf_counter()
        exit_code = run_job(inp, out)
        elapsed = time.perf_counter() - started
        done.set()
        answering.join()
    if exit_code != 0:
        raise RuntimeError(f"the bare run failed with exit code {exit_code}")
    return elapsed


def main(argv: list[str] | None = None) -> int:
    from evoprompt.evaluator.embedded import choose_backend
    from evoprompt.sdk import EvaluatorClient
    from evoprompt.search.seeds import list_seeds

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", default="500,2000,8000", help="comma-separated step budgets")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--settle", type=float, default=6.0, help="seconds of quiet before each timed run")
    parser.add_argument("--json", type=Path, default=RESULTS_DIR / "overhead.json")
    args = parser.parse_args(argv)
    budgets = [int(s) for s in args.steps.split(",")]

    code = next(s for s in list_seeds("mnist1d", "torch") if s.name == "cnn").code
    backends = ["process"] + (["docker"] if choose_backend("auto", ["torch"]) == "docker" else [])
    modes = [(b, pool) for b in backends for pool in (0, 1)]
    name = {m: f"{m[0]} pool {'on' if m[1] else 'off'}" for m in modes}
    times: dict[int, dict[str, list[float]]] = {n: {"bare": [], **{name[m]: [] for m in modes}} for n in budgets}
    bare_run(code, 10, 0)  # warm-up: imports and data generation are not what we measure

    with contextlib.ExitStack() as stack:
        clients = {m: stack.enter_context(EvaluatorClient(stack.enter_context(
            private_evaluator(m[0], 1, ["torch"], pool_size=m[1])))) for m in modes}
        for c in clients.values():  # first use: the held-out data is written, the pools fill
            c.evaluate("mnist1d", "torch", f"# {uuid.uuid4().hex}\n{code}", max_steps=10)
        for steps in budgets:
            for rep in range(args.repeats):
                time.sleep(args.settle)
                times[steps]["bare"].append(bare_run(code, steps, 0))
                for m, client in clients.items():
                    time.sleep(args.settle)
                    started = time.perf_counter()
                    r = client.evaluate("mnist1d", "torch", f"# {uuid.uuid4().hex}\n{code}", max_steps=steps)
                    times[steps][name[m]].append(time.perf_counter() - started)
                    if not r.ok:
                        raise RuntimeError(f"{name[m]}: {r.status.name}: {r.message}")
                print(f"{steps} steps, repeat {rep + 1}/{args.repeats}: "
                      + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in times[steps].items()), flush=True)

    ratios: dict[int, dict[str, float]] = {}
    for steps in budgets:
        base = median(times[steps]["bare"])
        ratios[steps] = {k: median(v) / base for k, v in times[steps].items()}
        rows = [(mode, f"{median(v):.2f}", f"{min(v):.2f}", f"{max(v):.2f}", f"{median(v) / base:.3f}x",
                 f"{median(v) - base:+.2f}") for mode, v in times[steps].items()]
        print(f"\nCNN, {steps} steps, {args.repeats} interleaved repeats (seconds)")
        print_table(("mode", "median", "min", "max", "ratio", "overhead_s"), rows)
    path = write_json(args.json, {"benchmark": "overhead", "steps": budgets, "repeats": args.repeats,
                                  "seconds": times, "median_ratio": ratios})
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
