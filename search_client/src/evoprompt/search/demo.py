"""`make demo`: a short EvoPrompting search on MNIST-1D, then its report.

The LM, in this order: EVOPROMPT_LM; a small code model from the Hugging Face hub when the hub
answers; a verified local model from `make models`; else the `mutation` operator. The demo prints
which it took and why. Evaluation
runs in an embedded evaluator: Docker sandboxes when an engine answers and the images are built,
else the process back-end with a warning. About 10 minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

DEFAULT_LM = "hf:Qwen/Qwen2.5-Coder-0.5B-Instruct"
DEMO_LM_TOKENS = 384


def hub_unreachable(spec: str) -> str | None:
    """Why an `hf:` hub model cannot be had now, or None. Decided once, without the hub client's
    retries (about 45 s of them on an offline machine): a model in the local cache or folder is fine,
    HF_HUB_OFFLINE says no, else one short connection attempt to the hub says."""
    name = spec.removeprefix("hf:")
    if not spec.startswith("hf:") or Path(name).expanduser().exists():
        return None
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return "the hf extra is not installed (pip install 'evoprompt-search[hf]')"
    if isinstance(try_to_load_from_cache(name, "config.json"), str):
        return None
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        return f"{name} is not in the local Hugging Face cache and HF_HUB_OFFLINE is set"
    endpoint = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    try:
        socket.create_connection((endpoint.hostname or "", endpoint.port or 443), timeout=3).close()
    except OSError as exc:
        return f"{name} is not cached and the Hugging Face hub ({endpoint.hostname}) is not reachable: {exc}"
    return None


def choose_lm(environ: dict[str, str] | None = None) -> tuple[str, str]:
    """(spec, why): EVOPROMPT_LM, else the hub's model when the hub answers, else a verified local
    model (`make models`), else the mutation operator."""
    environ = dict(os.environ) if environ is None else environ
    if environ.get("EVOPROMPT_LM"):
        return environ["EVOPROMPT_LM"], "EVOPROMPT_LM is set"
    unreachable = hub_unreachable(DEFAULT_LM)
    if unreachable is None:
        return DEFAULT_LM, "the Hugging Face hub answers"
    from evoprompt.search.lm.offline_models import preferred_spec

    local = preferred_spec()
    if local:
        return local, f"{unreachable}; using the verified local model from `make models`"
    return "mutation", (f"{unreachable}, and no local model is installed (`make models` installs two); "
                        "using the `mutation` operator (no LM)")


def load_lm(spec: str, why: str = ""):  # -> LanguageModel
    from evoprompt.search.lm import LMConfigError, make_lm

    print(f"demo: LM {spec}: {why}" if why else f"demo: LM {spec}", file=sys.stderr, flush=True)
    try:
        reason = hub_unreachable(spec)  # decided at once, without the hub client's retries
        if reason:
            raise LMConfigError(reason)
        from evoprompt.search.config import SearchConfig

        # the demo's LM settings (384 new tokens: a small model's program fits), as a search would pass them
        options = SearchConfig(task="mnist1d", framework="torch", lm=spec, lm_max_tokens=DEMO_LM_TOKENS).lm_options()
        return make_lm(spec, **options)
    except LMConfigError as exc:
        print(f"demo: cannot use the LM {spec!r}: {exc}\n"
              "demo: falling back to the `mutation` operator (no LM); set EVOPROMPT_LM to hf:LOCAL_PATH or "
              "openai:BASE_URL#MODEL to use a language model", file=sys.stderr, flush=True)
        return make_lm("mutation")


# the demo's budget: the search's settings, smaller (about ten minutes on 2 cores)
DEMO_BUDGET = {"rounds": 3, "prompts": 4, "samples": 4, "parents": 4, "max_steps": 500}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from evoprompt.search.config import add_config_flags

    parser.add_argument("--run-dir", type=Path, default=None, help="default: runs/demo-<time>")
    parser.add_argument("--framework", default="torch", choices=["torch", "flax"])
    add_config_flags(parser, only=tuple(DEMO_BUDGET), defaults=DEMO_BUDGET)
    parser.add_argument("--backend", choices=["auto", "docker", "process"], default="auto")
    parser.add_argument("--slots", type=int, default=2)
    parser.add_argument("--no-progress", action="store_true")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    return run_demo(parser.parse_args(argv))


def run_demo(args: argparse.Namespace) -> int:
    from evoprompt.sdk.errors import UserError
    from evoprompt.search.config import config_from_args
    from evoprompt.search.report import summarize, write_report
    from evoprompt.search.runner import run_search

    run_dir = args.run_dir or Path("runs") / time.strftime("demo-%Y%m%d-%H%M%S")
    lm = load_lm(*choose_lm())
    prompts, samples = args.prompts, args.samples
    if lm.spec.startswith("hf:") and str(getattr(lm, "device", "cpu")) == "cpu":
        # a 0.5B model samples ~2-7 tokens/s on 2 cores (README, "Real LMs on a CPU"): a demo of
        # 48 samples would take an hour, so a CPU demo samples 2 x 2 per round
        prompts, samples = min(prompts, 2), min(samples, 2)
        print(f"demo: the LM runs on the CPU: {prompts} prompts x {samples} samples per round "
              "(about a minute of sampling per sample)", file=sys.stderr, flush=True)
    config = config_from_args(args, task="mnist1d", framework=args.framework, lm=lm.spec, prompts=prompts,
                              samples=samples, lm_max_tokens=DEMO_LM_TOKENS)
    print(f"EvoPrompting on MNIST-1D ({args.framework}): {args.rounds} rounds x {prompts} prompts x "
          f"{samples} samples, {args.max_steps} training steps each, LM {lm.spec}; run dir {run_dir}",
          flush=True)
    started = time.monotonic()
    try:
        run_search(config, run_dir, lm=lm, backend=args.backend, slots=args.slots, progress=not args.no_progress)
    except UserError as exc:  # no evaluator, no seed that evaluates, ...: said, exit 1; anything else is a bug
        print(f"demo: the search stopped: {exc}", file=sys.stderr)
        return 1
    report = write_report(run_dir)
    summary = summarize(run_dir)
    print()
    print(f"{'seed':<12} {'status':<14} {'val_acc':>8} {'params':>8} {'fitness':>10}")
    for seed in summary["seeds"]:
        fit = "-" if seed["fitness"] is None else f"{seed['fitness']:.0f}"
        print(f"{seed['name']:<12} {seed['status'] or '-':<14} {seed['val_accuracy'] or 0:>8.3f} "
              f"{seed['num_params'] or 0:>8} {fit:>10}")
    best = summary["best"]
    print(f"\n{summary['candidates']} children, {summary['evaluated']} evaluated, {summary['ok']} OK, "
          f"{summary['filtered_in']} kept (val error < alpha)")
    if best:
        print(f"best child: {best['num_params']} params, val {best['val_accuracy']:.3f}, test "
              f"{best['test_accuracy']:.3f}, fitness {best['fitness']:.0f} "
              f"(seeds' best {summary['seeds_best_fitness']:.0f})")
    print(f"\nfinished in {time.monotonic() - started:.0f} s; report: {report}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
