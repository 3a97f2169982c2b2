"""`evoprompt search`: run EvoPrompting (an LM as the mutation and crossover operator of an
evolutionary architecture search), then write the run's report.

Defaults are the paper's (T=10 rounds, m=10 prompts, n=16 samples, p=10 parents, k=2 shots,
alpha=0.5). A killed run continues with --resume and the same --run-dir.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    from evoprompt.search.config import add_config_flags

    p = sub.add_parser("search", help="run an EvoPrompting search", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", help="task, e.g. mnist1d")
    p.add_argument("--framework", help="framework, e.g. torch or flax")
    p.add_argument("--lm", help="hf:MODEL_PATH_OR_ID, openai:BASE_URL#MODEL, or mutation")
    p.add_argument("--run-dir", type=Path, required=True, help="folder of the run (database, soft prompts, report)")
    add_config_flags(p)
    p.add_argument("--evaluator", default=None, help="HOST:PORT of an evaluator or a fleet (default: embedded)")
    p.add_argument("--backend", choices=["auto", "docker", "process"], default="auto",
                   help="sandbox of the embedded evaluator")
    p.add_argument("--slots", type=int, default=2, help="evaluations at once in the embedded evaluator")
    p.add_argument("--resume", action="store_true", help="continue the run in --run-dir")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from evoprompt.sdk.errors import UserError
    from evoprompt.search.config import config_from_args
    from evoprompt.search.report import summarize, write_report
    from evoprompt.search.runner import run_search

    # bad flags, run directory or LM, no evaluator, no seed that evaluates: a UserError, exit 2
    config = None
    if not args.resume:
        missing = [f"--{n}" for n in ("task", "framework", "lm") if not getattr(args, n)]
        if missing:
            raise UserError(f"a new search needs {', '.join(missing)}")
        config = config_from_args(args, task=args.task, framework=args.framework, lm=args.lm)
    run_search(config, args.run_dir, resume=args.resume, evaluator=args.evaluator,
               backend=args.backend, slots=args.slots, progress=not args.no_progress)
    report = write_report(args.run_dir)
    summary = summarize(args.run_dir)
    best = summary.get("best") or {}
    print(f"{summary['candidates']} children, {summary['evaluated']} evaluated; best fitness "
          f"{best.get('fitness', 'none')} (seeds' best {summary.get('seeds_best_fitness')})")
    print(f"report: {report}")
    return 0
