"""`make demo`: evaluate every shipped seed program through an embedded evaluator, print a table.

Runs on a fresh machine in a few minutes (reduced step budget); uses Docker sandboxes when an
engine answers and the images are built, else the process back-end with a warning.
"""

from __future__ import annotations

import argparse
import time
import uuid

from evoprompt.cli.embedded import embedded_evaluator
from evoprompt.sdk import EvaluationRequest, EvaluatorClient
from evoprompt.seeds import list_seeds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--max-steps", type=int, default=1000, help="training steps per seed (full recipe: 8000)")
    parser.add_argument("--backend", choices=["auto", "docker", "process"], default="auto")
    parser.add_argument("--slots", type=int, default=2)
    args = parser.parse_args(argv)

    seeds = [s for fw in ("torch", "flax") for s in list_seeds("mnist1d", fw)]
    requests = [
        EvaluationRequest(task="mnist1d", framework=s.framework, code=s.code, max_steps=args.max_steps,
                          request_id=uuid.uuid4().hex)
        for s in seeds
    ]
    names = {r.request_id: s.name for r, s in zip(requests, seeds, strict=True)}
    print(f"evaluating {len(seeds)} seed programs on MNIST-1D, {args.max_steps} steps each ...", flush=True)
    started = time.monotonic()
    with embedded_evaluator(args.backend, slots=args.slots) as endpoint, EvaluatorClient(endpoint) as client:
        results = list(client.evaluate_many(requests))
    rows = []
    for res in sorted(results, key=lambda r: (r.framework, -r.test_accuracy)):
        rows.append((res.framework, names.get(res.request_id, "?"), res.status.name,
                     f"{res.val_accuracy:.3f}", f"{res.test_accuracy:.3f}",
                     f"{res.num_params:,}", f"{res.wall_seconds:.1f}", "yes" if res.cached else ""))
    header = ("framework", "seed", "status", "val_acc", "test_acc", "params", "wall_s", "cached")
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))
    print(f"\n{len(results)} evaluations in {time.monotonic() - started:.0f} s "
          f"(sandbox: {results[0].sandbox if results else '-'})")
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
