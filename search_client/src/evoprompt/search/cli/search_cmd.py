"""`evoprompt search`: run EvoPrompting (an LM as the mutation and crossover operator of an
evolutionary architecture search), then write the run's report.

Defaults are the paper's (T=10 rounds, m=10 prompts, n=16 samples, p=10 parents, k=2 shots,
alpha=0.5). A killed run continues with --resume and the same --run-dir.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("search", help="run an EvoPrompting search", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", help="task, e.g. mnist1d")
    p.add_argument("--framework", help="framework, e.g. torch or flax")
    p.add_argument("--lm", help="hf:MODEL_PATH_OR_ID, openai:BASE_URL#MODEL, or mutation")
    p.add_argument("--run-dir", type=Path, required=True, help="folder of the run (database, soft prompts, report)")
    p.add_argument("--rounds", type=int, default=10, help="T, rounds of evolution")
    p.add_argument("--prompts", type=int, default=10, help="m, prompts per round")
    p.add_argument("--samples", type=int, default=16, help="n, children sampled per prompt")
    p.add_argument("--parents", type=int, default=10, help="p, parents kept per round")
    p.add_argument("--shots", type=int, default=2, help="k, in-context examples per prompt")
    p.add_argument("--alpha", type=float, default=0.5, help="children with validation error >= alpha are dropped")
    p.add_argument("--max-steps", type=int, default=0, help="training steps per evaluation (default: the task's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--mode", choices=["evoprompting", "random-parents", "few-shot"], default="evoprompting",
                   help="the algorithm, or one of the paper's ablations")
    p.add_argument("--prompt-tuning", choices=["auto", "on", "off"], default="auto",
                   help="soft-prompt tuning between rounds (auto: on for hf back-ends)")
    p.add_argument("--prompt-style", choices=["completion", "chat"], default="completion",
                   help="the paper's completion prompt (default), or the model's chat template")
    p.add_argument("--repairs", type=int, default=0,
                   help="repair prompts (with the evaluator's message) per child that never trained")
    p.add_argument("--lm-dtype", choices=["float32", "bfloat16"], default="float32", help="hf back-end weights")
    p.add_argument("--lm-threads", type=int, default=0,
                   help="hf back-end CPU threads (0: half the cores; the evaluator trains on the rest)")
    p.add_argument("--lm-max-tokens", type=int, default=512, help="new tokens per sample")
    p.add_argument("--lm-top-p", type=float, default=0.95, help="nucleus sampling (1.0: temperature alone)")
    p.add_argument("--lm-timeout", type=float, default=600.0, help="seconds per request to an openai: server")
    p.add_argument("--tune-epochs", type=int, default=5, help="prompt-tuning epochs per round")
    p.add_argument("--tune-examples", type=int, default=0,
                   help="prompt-tune on at most this many children per round, fittest first (0: all)")
    p.add_argument("--tune-length", type=int, default=0, help="tokens per prompt-tuning text (0: the context)")
    p.add_argument("--evaluator", default=None, help="HOST:PORT of an evaluator or a fleet (default: embedded)")
    p.add_argument("--backend", choices=["auto", "docker", "process"], default="auto",
                   help="sandbox of the embedded evaluator")
    p.add_argument("--slots", type=int, default=2, help="evaluations at once in the embedded evaluator")
    p.add_argument("--resume", action="store_true", help="continue the run in --run-dir")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from evoprompt.sdk.errors import UserError
    from evoprompt.search.config import SearchConfig
    from evoprompt.search.report import summarize, write_report
    from evoprompt.search.runner import run_search

    # bad flags, run directory or LM, no evaluator, no seed that evaluates: a UserError, exit 2
    config = None
    if not args.resume:
        missing = [f"--{n}" for n in ("task", "framework", "lm") if not getattr(args, n)]
        if missing:
            raise UserError(f"a new search needs {', '.join(missing)}")
        config = SearchConfig(task=args.task, framework=args.framework, lm=args.lm, rounds=args.rounds,
                              prompts=args.prompts, samples=args.samples, parents=args.parents,
                              shots=args.shots, alpha=args.alpha, max_steps=args.max_steps, seed=args.seed,
                              mode=args.mode, prompt_tuning=args.prompt_tuning, prompt_style=args.prompt_style,
                              repairs=args.repairs, lm_dtype=args.lm_dtype, lm_threads=args.lm_threads,
                              lm_max_tokens=args.lm_max_tokens, lm_timeout=args.lm_timeout,
                              lm_top_p=args.lm_top_p,
                              tune_epochs=args.tune_epochs, tune_examples=args.tune_examples,
                              tune_length=args.tune_length)
    run_search(config, args.run_dir, resume=args.resume, evaluator=args.evaluator,
               backend=args.backend, slots=args.slots, progress=not args.no_progress)
    report = write_report(args.run_dir)
    summary = summarize(args.run_dir)
    best = summary.get("best") or {}
    print(f"{summary['candidates']} children, {summary['evaluated']} evaluated; best fitness "
          f"{best.get('fitness', 'none')} (seeds' best {summary.get('seeds_best_fitness')})")
    print(f"report: {report}")
    return 0
