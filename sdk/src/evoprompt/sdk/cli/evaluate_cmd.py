"""`evoprompt evaluate PATH...`: evaluate candidate programs (files, or folders of *.py) and check
that each gets the status it expects.

One file prints its scores. Several, or a folder, go over one EvaluateBatch and print a row per
file as results arrive: a CI smoke test of sample programs. A file states what it must get in a
header comment line, `# evoprompt: expect=STATUS [task=T] [framework=F] [max-steps=N]` (default
OK; the header's task, framework and steps override the command line's).

Without --evaluator, an evaluator is started in this process (needs evoprompt-evaluator).
Exit status: 0 every file got what it expects, 1 one did not, 2 the run could not be made (bad
arguments or files, no evaluator).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path
from typing import Any

from ..errors import UserError
from .access import add_access_arguments, client_for
from .expectations import Sample, find_files, load_sample


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="evaluate candidate programs (files or folders)", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="candidate files, or folders of *.py")
    p.add_argument("--task", default=None, help="task name, e.g. mnist1d (a file's header may set it)")
    p.add_argument("--framework", default=None, help="framework, e.g. torch or flax (a file's header may set it)")
    p.add_argument("--evaluator", default=None, help="HOST:PORT of a running server (default: embedded)")
    p.add_argument("--max-steps", type=int, default=0, help="training steps (default: the task's)")
    p.add_argument("--seed", type=int, default=0, help="initialisation and data-order seed")
    p.add_argument("--timeout", type=float, default=0.0, help="wall-clock limit of one evaluation, seconds")
    p.add_argument("--backend", choices=["auto", "docker", "process"], default="auto",
                   help="embedded server's sandbox (auto: docker when an engine answers)")
    p.add_argument("--home", type=Path, default=None,
                   help="embedded server's result store and job folder (default: ~/.cache/evoprompt)")
    add_access_arguments(p)
    p.add_argument("--junit-xml", type=Path, default=None, help="write a JUnit XML report (one testcase per file)")
    p.add_argument("--json", action="store_true",
                   help="one JSON object (EvaluateResponse fields) per file instead of tables")
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
             ("sandbox", result.sandbox), ("worker", result.worker or "-"), ("request_id", result.request_id)]
    if not result.ok and result.stderr_tail.strip():
        rows.append(("stderr (tail)", result.stderr_tail.strip()[-1500:]))
    return rows


def _row(sample: Sample, result: Any, width: int) -> str:
    mark = "ok  " if result.status is sample.expect else "FAIL"
    first_line = (result.message.splitlines() or [""])[0]
    score = f"val {result.val_accuracy:.3f}  params {result.num_params:,}" if result.ok else first_line[:100]
    expected = "" if result.status is sample.expect else f" (expected {sample.expect.name})"
    return f"{mark}  {sample.label:<{width}}  {result.status.name}{expected}  {score}"


def _evaluate(args: argparse.Namespace, samples: list[Sample], single: bool) -> list[tuple[Sample, Any]]:
    """Evaluate the samples; with several, print a row (or a JSON line) per file as results arrive."""
    from ..embedded import evaluator_or_embedded

    width = max(len(s.label) for s in samples)
    frameworks = sorted({s.request.framework for s in samples})
    with contextlib.ExitStack() as stack:
        try:
            endpoint = stack.enter_context(evaluator_or_embedded(
                args.evaluator, frameworks=frameworks, backend=args.backend, slots=1, home=args.home,
                timeout=args.timeout or None))
        except OSError as exc:  # the embedded server's --home folder or port
            raise UserError(f"cannot start an evaluator here: {exc}") from exc
        client = stack.enter_context(client_for(args, endpoint, remote=bool(args.evaluator)))
        if single:
            return [(samples[0], client.evaluate_request(samples[0].request))]
        by_id = {s.request.request_id: s for s in samples}
        outcomes = []
        for result in client.evaluate_many([s.request for s in samples]):
            sample = by_id[result.request_id]
            outcomes.append((sample, result))
            if args.json:
                print(json.dumps({**result.to_dict(), "path": sample.label, "expect": sample.expect.name}),
                      flush=True)
            else:
                print(_row(sample, result, width), flush=True)
        return outcomes


def run(args: argparse.Namespace) -> int:
    from .._core import with_request_ids

    # A bad file or argument, or no evaluator (UserError): `evoprompt` prints it and exits 2
    samples = [load_sample(path, label, task=args.task, framework=args.framework, max_steps=args.max_steps,
                           seed=args.seed, timeout_seconds=args.timeout)
               for path, label in find_files(args.paths)]
    requests = with_request_ids([s.request for s in samples])  # to match streamed results to files
    samples = [Sample(s.path, s.label, s.expect, r) for s, r in zip(samples, requests, strict=True)]
    single = len(samples) == 1 and not args.paths[0].is_dir()  # one file: its scores, as a table or JSON
    outcomes = _evaluate(args, samples, single)
    mismatched = [s.label for s, r in outcomes if r.status is not s.expect]
    if single:
        result = outcomes[0][1]
        print(json.dumps(result.to_dict()) if args.json else render_table(result_rows(result)))
    else:
        print(f"{len(outcomes)} file(s): {len(outcomes) - len(mismatched)} as expected, {len(mismatched)} not"
              + (f" ({', '.join(mismatched)})" if mismatched else ""), file=sys.stderr)
    if args.junit_xml:
        from .junit import write_junit

        try:
            write_junit(args.junit_xml, outcomes)
        except OSError as exc:
            raise UserError(f"cannot write --junit-xml {args.junit_xml}: {exc}") from exc
    return 1 if mismatched else 0

