"""One evaluation job: read the spec and data, train, exchange with the server, write the outputs.

Layout of a job (protocol.py has the order of the exchanges):
  input/spec.json     framework, steps, learning rate, batch size, seed, checkpoint steps, threads, and
                      `data`, the data file's name in the data folder
  input/candidate.py  the program
  DATA/<data>         mnist1d: x_train, y_train, x_val, x_test (no validation or test labels);
                      clrs/*: {val,test}/{inputs,hints}/<probe> and {val,test}/lengths (no outputs,
                      hints past their first step zeroed); training data is sampled in the sandbox
  output/predictions.npz       steps[C], then mnist1d: val[C, n_val] predicted classes;
                               clrs/*: val/<output probe>[C, n_val, ...]
  output/test_predictions.npz  step (the server's pick), then mnist1d: test[n_test];
                               clrs/*: test/<output probe>[n_test, ...]
  output/weights.npz      params/<name> (trainable) and state/<name> (other tensors)
  output/result.json      what the harness saw: ok, or the status and message of a failure
Exit status: 0 trained, 3 the candidate failed (result.json says how), 2 the job itself is malformed.

    python -m evoprompt_harness [--data DIR] [--wait FRAMEWORK] [--max-wait SECONDS] INPUT OUTPUT

`--wait`: a warm sandbox; import FRAMEWORK's modules, then wait for the job's READY file.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .candidate import describe_exception, load_module
from .errors import CandidateError
from .exchange import BadJob, NoChoice, NoJob, await_choice, wait_for_job
from .protocol import CANDIDATE, EXIT_BAD_JOB, EXIT_CANDIDATE_FAILED, EXIT_OK, RESULT, SPEC

Choose = Callable[[list[int]], int]


def _write_json(path: Path, record: dict[str, Any]) -> None:
    path.write_text(json.dumps(record))


def _load_inputs(input_dir: Path, data_dir: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    spec = json.loads((input_dir / SPEC).read_text())
    name = str(spec.get("data", "data.npz"))
    if Path(name).name != name:
        raise ValueError(f"the data file must be a plain name, not {name!r}")
    with np.load(data_dir / name, allow_pickle=False) as npz:
        data = {k: npz[k] for k in npz.files}
    return spec, data


def _train(spec: dict[str, Any], module: Any, data: dict[str, np.ndarray], output_dir: Path,
           choose: Choose) -> dict[str, Any]:
    framework = spec["framework"]
    if framework == "torch":
        from .train_torch import train
    elif framework == "flax":
        from .train_flax import train
    elif framework == "haiku":
        from .train_clrs import train
    else:
        raise ValueError(f"unknown framework {framework!r}")
    return train(module, data, spec, output_dir, choose)


def _fail(output_dir: Path, status: str, message: str) -> int:
    _write_json(output_dir / RESULT, {"ok": False, "status": status, "message": message})
    return EXIT_CANDIDATE_FAILED


def run_job(input_dir: Path, output_dir: Path, data_dir: Path | None = None) -> int:
    """Run one job; returns the process exit status. Never raises for a candidate's failure."""
    try:
        spec, data = _load_inputs(input_dir, data_dir or input_dir)
    except Exception as exc:  # the server wrote these: failing here is the evaluator's bug
        print(f"evoprompt harness: malformed job: {exc}", file=sys.stderr)
        return EXIT_BAD_JOB
    candidate_path = input_dir / CANDIDATE
    started = time.monotonic()

    def choose(steps: list[int]) -> int:
        return await_choice(input_dir, output_dir, steps)

    try:
        module = load_module(candidate_path)
        summary = _train(spec, module, data, output_dir, choose)
    except CandidateError as exc:
        return _fail(output_dir, exc.status, exc.message)
    except NoChoice as exc:
        return _fail(output_dir, "INVALID_OUTPUT", str(exc))
    except BadJob as exc:
        print(f"evoprompt harness: {exc}", file=sys.stderr)
        return EXIT_BAD_JOB
    except MemoryError:
        return _fail(output_dir, "OOM", "MemoryError")
    except BaseException as exc:  # noqa: BLE001 - whatever the candidate raised is its runtime error
        return _fail(output_dir, "RUNTIME_ERROR", describe_exception(exc, str(candidate_path)))
    summary["ok"] = True
    summary["harness_seconds"] = time.monotonic() - started
    _write_json(output_dir / RESULT, summary)
    return EXIT_OK


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m evoprompt_harness")
    parser.add_argument("input", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--wait", metavar="FRAMEWORK", default=None)
    parser.add_argument("--max-wait", type=float, default=3600.0)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    try:
        args = _parse(sys.argv[1:] if argv is None else argv)
    except SystemExit:
        os._exit(EXIT_BAD_JOB)
    if args.wait is not None:
        from .warm import preload

        preload(args.wait)
        try:
            wait_for_job(args.input, args.max_wait)
        except NoJob as exc:
            print(f"evoprompt harness: {exc}", file=sys.stderr)
            os._exit(EXIT_BAD_JOB)
    code = run_job(args.input, args.output, args.data)
    sys.stdout.flush()
    sys.stderr.flush()
    # os._exit: a candidate's atexit hooks or lingering threads must not change the outcome.
    os._exit(code)
