"""`evoprompt models`: the pretrained LMs installed from PyPI packages (see `make models`), each
verified and printed as the `--lm` spec that uses it.

Exit status: 0 when every listed model is ready (or --any and one is), 1 otherwise."""

from __future__ import annotations

import argparse
import json


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list the offline pretrained LMs and their --lm specs", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", action="store_true", help="one JSON object per model, one per line")
    p.add_argument("--any", action="store_true", help="succeed when at least one model is ready")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..lm.offline_models import MODELS, ModelFileError, materialise

    ready = 0
    for model in MODELS:
        try:
            spec, problem = f"hf:{materialise(model)}", None
            ready += 1
        except ModelFileError as exc:
            spec, problem = None, str(exc)
        if args.json:
            print(json.dumps({"name": model.name, "spec": spec, "problem": problem, "source": model.source,
                              "licence": model.licence}))
        elif spec:
            print(f"{model.name:<30} --lm {spec}")
        else:
            print(f"{model.name:<30} missing: {problem}")
    return 0 if ready == len(MODELS) or (args.any and ready) else 1
