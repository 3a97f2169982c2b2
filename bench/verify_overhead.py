"""What the verifier costs, and how many programs it can verify.

1. Export coverage (in this process, no sandbox): the torch and flax seeds, the sample programs and
   `--children` children of the mutation operator (from the torch seeds): of those whose `Model()`
   builds and returns logits, how many export (torch.export / jax.export), pass the verifier's checks
   and predict, rebuilt, the same classes as the model itself.
2. Latency: the torch CNN seed at 200 and 2,000 steps on one slot, with a warm pool of 1 sandbox per
   framework (the verifier usually waits for a fresh one) and of 2 (one warm for the verifier), side
   by side in one run: the caller's latency, the verifier's share (`verify_seconds`) and the ratio.

    python bench/verify_overhead.py [--backend docker] [--repeats 5] [--children 200]

Prints tables (medians), writes JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
from _common import RESULTS_DIR, median, print_table, private_evaluator, write_json

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "sandbox_images" / "harness"))


def _built_torch(code: str) -> Any | None:
    """The program's model, or None when it does not build or return (n, 10) logits (not the verifier's
    business: the training sandbox reports those)."""
    import torch

    namespace: dict = {}
    try:
        exec(compile(code, "candidate.py", "exec"), namespace)
        model = namespace["Model"]().eval()
        with torch.no_grad():
            out = model(torch.randn(3, 40))
        return model if tuple(out.shape) == (3, 10) else None
    except Exception:  # noqa: BLE001 - a child that does not build is not counted
        return None


def torch_verifies(model: Any, x: np.ndarray) -> tuple[bool, str]:
    import torch

    from evoprompt_harness.errors import CandidateError
    from evoprompt_harness.export_torch import export_torch
    from evoprompt_harness.verify_torch import load_torch

    with tempfile.TemporaryDirectory() as folder:
        try:
            export_torch(model, torch.as_tensor(x[:100]), Path(folder))
            rebuilt = load_torch(Path(folder))
        except CandidateError as exc:
            return False, f"{exc.status}: {exc.message[:160]}"
        with torch.no_grad():
            same = (rebuilt.predict(x).argmax(1) == model(torch.as_tensor(x)).numpy().argmax(1)).mean()
        return bool(same == 1.0), f"{same:.3f} of the classes agree"


def flax_verifies(code: str, x: np.ndarray) -> tuple[bool, str]:
    import jax

    from evoprompt_harness.errors import CandidateError
    from evoprompt_harness.export_flax import export_flax
    from evoprompt_harness.verify_flax import load_flax

    namespace: dict = {}
    exec(compile(code, "candidate.py", "exec"), namespace)
    model = namespace["Model"]()
    params = model.init(jax.random.PRNGKey(0), x[:2])["params"]
    with tempfile.TemporaryDirectory() as folder:
        try:
            export_flax(model, params, 100, Path(folder))
            rebuilt = load_flax(Path(folder))
        except CandidateError as exc:
            return False, f"{exc.status}: {exc.message[:160]}"
        same = (rebuilt.predict(x).argmax(1) == np.asarray(model.apply({"params": params}, x)).argmax(1)).mean()
        return bool(same == 1.0), f"{same:.3f} of the classes agree"


def coverage(children: int) -> dict[str, Any]:
    from evoprompt.search.operators.mutation import mutate
    from evoprompt.search.seeds import list_seeds

    x = np.random.default_rng(0).normal(size=(250, 40)).astype(np.float32)
    groups: dict[str, list[tuple[str, str]]] = {
        "torch seeds": [(s.name, s.code) for s in list_seeds("mnist1d", "torch")],
        "samples": [(p.stem, p.read_text()) for p in sorted((ROOT / "tests" / "samples" / "mnist1d").glob("*.py"))],
        "mutation children": [(f"child-{i}", c) for i, c in enumerate(
            mutate([s.code for s in list_seeds("mnist1d", "torch")], "mnist1d", children, seed=0))],
    }
    rows: dict[str, Any] = {}
    for group, programs in groups.items():
        built = verified = 0
        failures = []
        for name, code in programs:
            model = _built_torch(code)
            if model is None:
                continue
            built += 1
            ok, why = torch_verifies(model, x)
            verified += bool(ok)
            if not ok:
                failures.append(f"{name}: {why}")
        rows[group] = {"programs": len(programs), "built": built, "verified": verified, "failures": failures}
    flax = [(s.name, *flax_verifies(s.code, x)) for s in list_seeds("mnist1d", "flax")]
    rows["flax seeds"] = {"programs": len(flax), "built": len(flax), "verified": sum(ok for _, ok, _ in flax),
                          "failures": [f"{n}: {why}" for n, ok, why in flax if not ok]}
    return rows


def latency(backend: str, repeats: int, steps_list: list[int]) -> dict[str, Any]:
    from evoprompt.sdk import EvaluatorClient
    from evoprompt.search.seeds import list_seeds

    code = next(s for s in list_seeds("mnist1d", "torch") if s.name == "cnn").code
    out: dict[str, Any] = {}
    for pool in (1, 2):
        with contextlib.ExitStack() as stack:
            client = stack.enter_context(EvaluatorClient(stack.enter_context(
                private_evaluator(backend, 1, ["torch"], pool_size=pool))))
            first = client.evaluate("mnist1d", "torch", code, max_steps=50)  # data written, pool filled
            assert first.ok and first.verified, first.message
            for steps in steps_list:
                totals, verifies, trains = [], [], []
                for _ in range(repeats):
                    time.sleep(3.0)  # let the pool refill, as between a search's evaluations
                    started = time.perf_counter()
                    result = client.evaluate("mnist1d", "torch", f"{code}\n# {uuid.uuid4().hex}\n", max_steps=steps)
                    totals.append(time.perf_counter() - started)
                    assert result.ok and result.verified, result.message
                    verifies.append(result.verify_seconds)
                    trains.append(result.wall_seconds)
                out[f"pool {pool}, {steps} steps"] = {
                    "pool_size": pool, "steps": steps, "latency_s": totals, "verify_s": verifies, "train_s": trains,
                    "median_latency_s": median(totals), "median_verify_s": median(verifies),
                    "verify_share": median([v / t for v, t in zip(verifies, totals, strict=True)])}
                print(f"  {out[f'pool {pool}, {steps} steps']['median_verify_s']:.2f} s verify at pool {pool}, "
                      f"{steps} steps", flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    from evoprompt.evaluator.embedded import choose_backend

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--children", type=int, default=200)
    parser.add_argument("--steps", default="200,2000")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--json", type=Path, default=RESULTS_DIR / "verify_overhead.json")
    args = parser.parse_args(argv)

    rows = coverage(args.children)
    print("\nexport coverage (built: Model() returns logits; verified: exported, checked, same classes rebuilt)")
    print_table(["programs", "n", "built", "verified", "share"],
                [[g, r["programs"], r["built"], r["verified"], f"{r['verified'] / max(r['built'], 1):.1%}"]
                 for g, r in rows.items()])
    for group, r in rows.items():
        for failure in r["failures"][:10]:
            print(f"  {group}: {failure}")
    payload: dict[str, Any] = {"coverage": rows}
    write_json(args.json, payload)  # partial results first: the latency part takes minutes
    if not args.skip_latency:
        backend = choose_backend(args.backend, ["torch"])
        payload["backend"] = backend
        payload["latency"] = lat = latency(backend, args.repeats, [int(s) for s in args.steps.split(",")])
        print(f"\nverifier latency, torch CNN, {backend} back-end, one slot (medians of {args.repeats})")
        print_table(["warm pool", "steps", "caller latency s", "verifier s", "verifier share"],
                    [[r["pool_size"], r["steps"], f"{r['median_latency_s']:.2f}", f"{r['median_verify_s']:.2f}",
                      f"{r['verify_share']:.1%}"] for r in lat.values()])
        write_json(args.json, payload)
    print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
