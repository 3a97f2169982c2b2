"""`evoprompt evaluate FILE`: evaluate one candidate program and print its scores.

Exit status: 0 the candidate trained (status OK), 1 it was evaluated and failed, 2 the request
could not be made (bad arguments, no evaluator).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Any


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="evaluate one candidate program", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("file", type=Path, help="the candidate's Python file")
    p.add_argument("--task", required=True, help="task name, e.g. mnist1d")
    p.add_argument("--framework", required=True, help="framework, e.g. torch or flax")
    p.add_argument("--evaluator", default=None, help="HOST:PORT of a running server (default: embedded)")
    p.add_argument("--max-steps", type=int, default=0, help="training steps (default: the task's)")
    p.add_argument("--seed", type=int, default=0, help="initialisation and data-order seed")
    p.add_argument("--timeout", type=float, default=0.0, help="wall-clock limit of the evaluation, seconds")
    p.add_argument("--backend", choices=["auto", "docker", "process"], default="auto",
                   help="embedded server's sandbox (auto: docker when its images are built)")
    p.add_argument("--token", default=os.environ.get("EVOPROMPT_TOKEN"),
                   help="bearer token of the evaluator (default: EVOPROMPT_TOKEN)")
    p.add_argument("--tls-ca", type=Path, default=None, help="PEM CA certificate: talk TLS to --evaluator")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.set_defaults(run=run)


def render_table(rows: list[tuple[str, str]]) -> str:
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def result_rows(result: Any) -> list[tuple[str, str]]:
    rows = [("status", result.status.name), ("message", result.message)]
    if result.ok:
        rows += [
            ("val_accuracy", f"{result.val_accuracy:.4f}"),
            ("test_accuracy", f"{result.test_accuracy:.4f}"),
            ("num_params", f"{result.num_params:,}"),
            ("num_state", f"{result.num_state:,}"),
            ("best_step", f"{result.best_step} of {result.steps}"),
            ("train_seconds", f"{result.train_seconds:.1f}"),
        ]
    rows += [("wall_seconds", f"{result.wall_seconds:.1f}"), ("cached", str(result.cached)),
             ("sandbox", result.sandbox), ("request_id", result.request_id)]
    if not result.ok and result.stderr_tail.strip():
        rows.append(("stderr (tail)", result.stderr_tail.strip()[-1500:]))
    return rows


def run(args: argparse.Namespace) -> int:
    from evoprompt.sdk import EvaluatorClient, EvaluatorError

    try:
        code = args.file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        print(f"evoprompt evaluate: cannot read {args.file}: {exc}", file=sys.stderr)
        return 2
    try:
        with contextlib.ExitStack() as stack:
            endpoint = args.evaluator
            if endpoint is None:
                from .embedded import embedded_evaluator

                overrides = {"timeout": args.timeout} if args.timeout > 0 else {}
                endpoint = stack.enter_context(embedded_evaluator(args.backend, **overrides))
            tls = {"tls": True, "root_certificates": args.tls_ca.read_bytes()} if args.tls_ca and args.evaluator else {}
            client = stack.enter_context(EvaluatorClient(endpoint, token=args.token if args.evaluator else None,
                                                         **tls))
            result = client.evaluate(args.task, args.framework, code, max_steps=args.max_steps, seed=args.seed,
                                     timeout_seconds=args.timeout)
    except EvaluatorError as exc:
        print(f"evoprompt evaluate: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # embedded start-up failures (no sandbox, bad settings)
        print(f"evoprompt evaluate: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result.to_dict()))
    else:
        print(render_table(result_rows(result)))
    return 0 if result.ok else 1
