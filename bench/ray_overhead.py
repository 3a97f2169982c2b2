"""What the ray executor adds to one evaluation, against the local executor, side by side in one run.

Both are `evoprompt serve` processes with one slot and a warm pool, on the same Docker engine and the
same published data: the local executor runs its slot itself; the ray executor's front door hands each
evaluation to a Ray cluster (a head and one worker node of one CPU) on this machine. Evaluations run
one at a time, alternating between the two, each with a fresh seed (nothing is answered from the
cache). Overhead is the caller's latency minus the time the sandbox ran (`wall_seconds`).

Ray binds the machine's interface address by default, so the script runs itself inside a network
namespace with only lo (tools/loopback-netns; root, or user namespaces).

    python bench/ray_overhead.py [--steps 200,2000] [--repeats 5]

Prints a table (medians), writes JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path

from _common import RESULTS_DIR, median, print_table, write_json

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main(argv: list[str] | None = None) -> int:
    from tests.support.ray_cluster import RayCluster, only_loopback, serve, serve_on_ray

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", default="200,2000", help="comma-separated training budgets")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--settle", type=float, default=5.0, help="seconds between evaluations")
    parser.add_argument("--json", type=Path, default=RESULTS_DIR / "ray_overhead.json")
    args = parser.parse_args(argv)
    if not only_loopback():  # run again inside a loopback-only network namespace
        os.execv(str(REPO / "tools" / "loopback-netns"),
                 [str(REPO / "tools" / "loopback-netns"), sys.executable, str(Path(__file__).resolve()),
                  *(argv if argv is not None else sys.argv[1:])])
    from evoprompt.search.seeds import list_seeds

    code = next(s for s in list_seeds("mnist1d", "torch") if s.name == "cnn").code
    budgets = [int(s) for s in args.steps.split(",")]
    common = ["--public-data", "--frameworks", "torch", "--cpus", "1"]
    samples: dict[str, dict[int, list[tuple[float, float]]]] = {"local": {}, "ray": {}}
    with tempfile.TemporaryDirectory(prefix="evoprompt-bench-") as tmp, contextlib.ExitStack() as stack:
        root = Path(tmp)
        cluster = RayCluster(root / "nodes").start(["node-1"])
        stack.callback(cluster.stop)
        servers = {
            "local": serve(root / "local", "--backend", "docker", "--slots", "1", *common),
            "ray": serve_on_ray(cluster, root / "front-door", *common),
        }
        for served in servers.values():
            stack.callback(served.stop)
        clients = {name: stack.enter_context(served.client()) for name, served in servers.items()}
        seed = 1000
        for client in clients.values():  # data written, pools warm, Ray's workers started
            first = client.evaluate("mnist1d", "torch", code, max_steps=budgets[0], seed=seed)
            assert first.ok, first.message
        time.sleep(args.settle)
        for _ in range(args.repeats):
            for steps in budgets:
                for name, client in clients.items():
                    seed += 1
                    started = time.perf_counter()
                    result = client.evaluate("mnist1d", "torch", code, max_steps=steps, seed=seed)
                    took = time.perf_counter() - started
                    assert result.ok and not result.cached, result.message
                    samples[name].setdefault(steps, []).append((took, took - result.wall_seconds))
                    # a warm pool refills after each job (seconds of CPU): let it finish, for both alike
                    time.sleep(args.settle)

    rows, summary = [], {}
    for steps in budgets:
        local = median([t for t, _ in samples["local"][steps]])
        for name in ("local", "ray"):
            latency = median([t for t, _ in samples[name][steps]])
            overhead = median([o for _, o in samples[name][steps]])
            summary.setdefault(str(steps), {})[name] = {"median_seconds": latency, "median_overhead_seconds": overhead,
                                                        "ratio_to_local": latency / local}
            rows.append([steps, name, f"{latency:.2f}", f"{overhead:.2f}", f"{latency / local:.2f}x"])
    print(f"per-evaluation latency, CNN, one at a time, {args.repeats} repeats alternating (medians)")
    print_table(["steps", "executor", "latency s", "overhead s", "ratio"], rows)
    path = write_json(args.json, {"repeats": args.repeats, "steps": budgets, "summary": summary,
                                  "samples": {k: {str(s): v for s, v in d.items()} for k, d in samples.items()}})
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
