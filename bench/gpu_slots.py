"""K slots sharing one GPU: children per hour and GPU memory per slot, and the verifier beside
GPU-trained models (process back-end, `--gpus 0 --slots-per-gpu K`, the full MNIST-1D recipe).

Each K gets a fresh embedded evaluator; after a short warm-up (data written, warm interpreters
started), K distinct copies of the torch CNN seed (2 when K = 1) are evaluated at once at the full
step budget. Children per hour = evaluations / wall time. GPU memory is nvidia-smi's `memory.used`,
sampled every 0.5 s: the peak during the wave minus the reading before it, divided by K. Every result
must be verified (the verifier rebuilds the GPU-trained model from its export, on the CPU, and must
agree with the GPU's validation predictions).

    python bench/gpu_slots.py [--slots 1,4,8,16] [--steps 8000] [--budget-s 420] [--json PATH]

Prints a table, writes JSON after every K (partial results survive a cut-off run). Needs a GPU.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import subprocess
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from _common import RESULTS_DIR, print_table, private_evaluator, write_json


def gpu_memory_used_mib() -> float:
    out = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
                         capture_output=True, text=True, timeout=10, check=True).stdout
    return float(out.split()[0])


class PeakSampler:
    """The highest reading of nvidia-smi's memory.used while the `with` block runs."""

    def __enter__(self) -> PeakSampler:
        self.peak = gpu_memory_used_mib()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            with contextlib.suppress(Exception):
                self.peak = max(self.peak, gpu_memory_used_mib())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def one_k(k: int, steps: int, code: str, memory_gb: float) -> dict[str, Any]:
    from evoprompt.sdk import EvaluationRequest, EvaluatorClient

    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        endpoint = stack.enter_context(private_evaluator("process", 1, ["torch"], gpus=("0",), slots_per_gpu=k,
                                                         memory_gb=memory_gb, timeout=900.0))
        client = stack.enter_context(EvaluatorClient(endpoint))
        warm = client.evaluate("mnist1d", "torch", code, max_steps=200)  # data written, pool started
        assert warm.ok, f"{warm.status.name}: {warm.message}\n{warm.stderr_tail[-2000:]}"
        time.sleep(10.0)  # let the pool finish starting its interpreters
        idle = gpu_memory_used_mib()
        n = max(k, 2)
        requests = [EvaluationRequest("mnist1d", "torch", f"{code}\n# gpu-slots {k} {i} {uuid.uuid4().hex}\n",
                                      max_steps=steps, seed=i) for i in range(n)]
        with PeakSampler() as sampler:
            wave = time.monotonic()
            results = list(client.evaluate_many(requests, timeout=1800))
            wall = time.monotonic() - wave
    ok = [r for r in results if r.ok]
    failed = [f"{r.status.name}: {r.message[:200]}" for r in results if not r.ok]
    return {
        "slots": k, "evaluations": n, "ok": len(ok), "verified": sum(r.verified for r in ok), "failed": failed,
        "wave_seconds": wall, "children_per_hour": n / wall * 3600,
        "gpu_memory_idle_mib": idle, "gpu_memory_peak_mib": sampler.peak,
        "gpu_memory_per_slot_mib": (sampler.peak - idle) / k,
        "median_train_seconds": statistics.median(r.train_seconds for r in ok) if ok else None,
        "median_verify_seconds": statistics.median(r.verify_seconds for r in ok) if ok else None,
        "median_cpu_seconds": statistics.median(r.cpu_seconds for r in ok) if ok else None,
        "median_test_accuracy": statistics.median(r.test_accuracy for r in ok) if ok else None,
        "median_check_accuracy": statistics.median(r.check_accuracy for r in ok) if ok else None,
        "total_seconds": time.monotonic() - started,
    }


def main(argv: list[str] | None = None) -> int:
    from evoprompt.search.seeds import list_seeds

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--slots", default="1,4,8,16")
    parser.add_argument("--steps", type=int, default=8000)
    parser.add_argument("--budget-s", type=float, default=420.0, help="skip a K that would start past this")
    parser.add_argument("--memory-gb", type=float, default=4096.0,
                        help="RLIMIT_AS of a slot: CUDA reserves far more address space than it uses")
    parser.add_argument("--json", type=Path, default=RESULTS_DIR / "gpu_slots.json")
    args = parser.parse_args(argv)
    code = next(s for s in list_seeds("mnist1d", "torch") if s.name == "cnn").code
    started = time.monotonic()
    rows: list[dict[str, Any]] = []
    for k in (int(s) for s in args.slots.split(",")):
        if time.monotonic() - started > args.budget_s:
            rows.append({"slots": k, "skipped": "out of the run's time budget"})
            continue
        try:
            rows.append(one_k(k, args.steps, code, args.memory_gb))
        except Exception as exc:  # noqa: BLE001 - a K that fails is reported, the others still run
            rows.append({"slots": k, "error": f"{type(exc).__name__}: {str(exc)[:2000]}"})
        print(rows[-1], flush=True)
        write_json(args.json, {"steps": args.steps, "rows": rows})
    done = [r for r in rows if "children_per_hour" in r]
    print(f"\nK slots on one GPU, torch CNN seed, {args.steps} steps, process back-end")
    print_table(["K", "evals", "verified", "children / h", "GPU MiB / slot", "train s", "verify s", "wave s"],
                [[r["slots"], r["evaluations"], r["verified"], f"{r['children_per_hour']:.0f}",
                  f"{r['gpu_memory_per_slot_mib']:.0f}", f"{r['median_train_seconds']:.1f}",
                  f"{r['median_verify_seconds']:.2f}", f"{r['wave_seconds']:.0f}"] for r in done])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
