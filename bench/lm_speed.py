"""How fast the offline LMs sample on this machine, float32 against bfloat16, side by side.

For each model and dtype, the hf back-end samples the search's real prompt (two torch seeds as
examples, the paper's format) in batches of 1, 4 and 8, alternating dtypes within each repeat so
that both see the same machine load. Reported: completion tokens per second (median over repeats)
and the share of samples that parse as Python and hold `class Model` (a quality check that runs no
LM-written code; whether children train is bench/lm_search.py's job, in sandboxes).
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS_DIR, print_table, write_json  # noqa: E402


def seed_prompt() -> Any:
    from evoprompt.search.prompt import Example, build_prompt
    from evoprompt.search.seeds import list_seeds

    seeds = {s.name: s.code for s in list_seeds("mnist1d", "torch")}
    return build_prompt([Example(seeds["cnn"], 5210, 0.918), Example(seeds["gru"], 5134, 0.87)], "mnist1d")


def parses(prompt: Any, output: str) -> bool:
    from evoprompt.search.prompt import program_from_output

    code = program_from_output(prompt, output)
    try:
        ast.parse(code)
    except SyntaxError:
        return False
    return "class Model" in code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="", help="comma-separated names (default: every installed model)")
    parser.add_argument("--batches", default="1,4,8")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--style", default="completion", choices=["completion", "chat"])
    parser.add_argument("--json", type=Path, default=RESULTS_DIR / "lm_speed.json")
    args = parser.parse_args(argv)
    from evoprompt.search.lm.base import Usage
    from evoprompt.search.lm.hf import HuggingFaceLM
    from evoprompt.search.lm.offline_models import MODELS, ModelFileError, materialise

    prompt = seed_prompt()
    batches = [int(b) for b in args.batches.split(",")]
    wanted = set(args.models.split(",")) if args.models else None
    results: list[dict[str, Any]] = []
    rows = []
    for model in MODELS:
        if wanted and model.name not in wanted:
            continue
        try:
            spec = f"hf:{materialise(model)}"
        except ModelFileError as exc:
            print(f"skipping {model.name}: {exc}", file=sys.stderr)
            continue
        started = time.monotonic()
        lms = {dtype: HuggingFaceLM(spec, dtype=dtype, prompt_style=args.style, max_new_tokens=args.max_tokens,
                                    batch_size=max(batches)) for dtype in ("float32", "bfloat16")}
        load_seconds = (time.monotonic() - started) / 2
        for batch in batches:
            rates: dict[str, list[float]] = {d: [] for d in lms}
            valid: dict[str, list[bool]] = {d: [] for d in lms}
            for repeat in range(args.repeats):
                for dtype, lm in lms.items():  # alternating: both dtypes see the same load
                    usage, t0 = Usage(), time.monotonic()
                    outputs = asyncio.run(lm.generate(prompt, batch, 0.8, 1000 * repeat + batch, usage))
                    rates[dtype].append(usage.completion_tokens / (time.monotonic() - t0))
                    valid[dtype].extend(parses(prompt, o) for o in outputs)
            for dtype in lms:
                entry = {"model": model.name, "dtype": dtype, "batch": batch,
                         "tokens_per_second": round(statistics.median(rates[dtype]), 2),
                         "parse_share": round(sum(valid[dtype]) / len(valid[dtype]), 3),
                         "samples": len(valid[dtype]), "load_seconds": round(load_seconds, 1)}
                results.append(entry)
                rows.append([model.name, dtype, batch, entry["tokens_per_second"], entry["parse_share"],
                             entry["samples"]])
                print(entry, flush=True)
        ratio = {b: _ratio(results, model.name, b) for b in batches}
        print(f"{model.name}: bfloat16 / float32 tokens/s by batch: {ratio}", flush=True)
    print_table(["model", "dtype", "batch", "tokens/s (median)", "parse + class Model", "samples"], rows)
    path = write_json(args.json, {"settings": vars(args) | {"json": str(args.json)}, "results": results})
    print(f"wrote {path}")
    return 0


def _ratio(results: list[dict[str, Any]], model: str, batch: int) -> float | None:
    by = {r["dtype"]: r["tokens_per_second"] for r in results if r["model"] == model and r["batch"] == batch}
    return round(by["bfloat16"] / by["float32"], 2) if by.get("float32") else None


if __name__ == "__main__":
    raise SystemExit(main())
