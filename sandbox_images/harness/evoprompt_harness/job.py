"""One evaluation job: read the spec, build the candidate's model, get the data, train, exchange with the
server, write the outputs; or, for a verification job, check and run an exported model (verify.py).

Layout of a training job (protocol.py has the order of the exchanges):
  input/spec.json     framework, steps, learning rate, batch size, seed, checkpoint steps, threads, and
                      `data`, the data file's name
  input/candidate.py  the program
  input/<data>        linked in by the server once output/built exists, never before:
                      mnist1d: x_train, y_train, x_val (no validation labels, no test inputs);
                      clrs/*: {val,test}/{inputs,hints}/<probe> and {val,test}/lengths (no outputs,
                      hints past their first step zeroed); training data is sampled in the sandbox
  output/built                 the candidate is imported and its model built
  output/predictions.npz       steps[C], then mnist1d: val[C, n_val] predicted classes;
                               clrs/*: val/<output probe>[C, n_val, ...]
  output/program.json (torch), output/program.jaxexport (flax), output/tensors.npz
                               the chosen checkpoint's model, exported for the verifier
  output/test_predictions.npz  haiku (CLRS, not verified): step (the server's pick), then
                               test/<output probe>[n_test, ...] at that step
  output/weights.npz      haiku: params/<name> (trainable) and state/<name> (other tensors)
  output/result.json      what the harness saw: ok, or the status and message of a failure
Exit status: 0 trained, 3 the candidate failed (result.json says how), 2 the job itself is malformed.

    python -m evoprompt_harness [--wait FRAMEWORK] [--max-wait SECONDS] INPUT OUTPUT

`--wait`: a warm sandbox; import FRAMEWORK's modules, then wait for the job's READY file.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from .candidate import describe_exception, load_module
from .errors import CandidateError
from .exchange import BadJob, NoChoice, NoJob, await_choice, wait_for_job
from .protocol import (
    BUILT,
    CANDIDATE,
    EXIT_BAD_JOB,
    EXIT_CANDIDATE_FAILED,
    EXIT_OK,
    POLL_SECONDS,
    RESULT,
    ROLE_TRAIN,
    ROLE_VERIFY,
    SPEC,
)


def write_json(path: Path, record: dict[str, Any]) -> None:
    path.write_text(json.dumps(record))


def _read_spec(input_dir: Path) -> dict[str, Any]:
    spec = json.loads((input_dir / SPEC).read_text())
    name = str(spec.get("data", "data.npz"))
    if Path(name).name != name:
        raise ValueError(f"the data file must be a plain name, not {name!r}")
    spec["data"] = name
    return spec


def await_data(spec: dict[str, Any], input_dir: Path, output_dir: Path) -> dict[str, np.ndarray]:
    """Say the model is built; read the data file once the server has linked it in."""
    (output_dir / BUILT).write_text("")
    path = input_dir / spec["data"]
    while not path.exists():
        time.sleep(POLL_SECONDS)
    with np.load(path, allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def _trainer(framework: str) -> ModuleType:
    """The framework's recipe: `build(module, spec)` the candidate's model, then `train(built, data, ...)`."""
    if framework == "torch":
        from . import train_torch as trainer
    elif framework == "flax":
        from . import train_flax as trainer
    elif framework == "haiku":
        from . import train_clrs as trainer
    else:
        raise ValueError(f"unknown framework {framework!r}")
    return trainer


def write_failure(output_dir: Path, status: str, message: str) -> int:
    write_json(output_dir / RESULT, {"ok": False, "status": status, "message": message})
    return EXIT_CANDIDATE_FAILED


def run_job(input_dir: Path, output_dir: Path) -> int:
    """Run one job; returns the process exit status. Never raises for a candidate's failure."""
    try:
        spec = _read_spec(input_dir)
        if spec.get("role", ROLE_TRAIN) == ROLE_VERIFY:
            from .verify import run_verification

            return run_verification(spec, input_dir, output_dir)
        trainer = _trainer(spec["framework"])
    except Exception as exc:  # the server wrote these: failing here is the evaluator's bug
        print(f"evoprompt harness: malformed job: {exc}", file=sys.stderr)
        return EXIT_BAD_JOB
    candidate_path = input_dir / CANDIDATE
    started = time.monotonic()

    def choose(steps: list[int]) -> int:
        return await_choice(input_dir, output_dir, steps)

    try:
        module = load_module(candidate_path)
        built = trainer.build(module, spec)
        data = await_data(spec, input_dir, output_dir)
        summary = trainer.train(built, data, spec, output_dir, choose)
    except CandidateError as exc:
        return write_failure(output_dir, exc.status, exc.message)
    except NoChoice as exc:
        return write_failure(output_dir, "INVALID_OUTPUT", str(exc))
    except BadJob as exc:
        print(f"evoprompt harness: {exc}", file=sys.stderr)
        return EXIT_BAD_JOB
    except MemoryError:
        return write_failure(output_dir, "OOM", "MemoryError")
    except BaseException as exc:  # noqa: BLE001 - whatever the candidate raised is its runtime error
        return write_failure(output_dir, "RUNTIME_ERROR", describe_exception(exc, str(candidate_path)))
    summary["ok"] = True
    summary["harness_seconds"] = time.monotonic() - started
    write_json(output_dir / RESULT, summary)
    return EXIT_OK


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m evoprompt_harness")
    parser.add_argument("input", type=Path)
    parser.add_argument("output", type=Path)
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
    code = run_job(args.input, args.output)
    sys.stdout.flush()
    sys.stderr.flush()
    # os._exit: a candidate's atexit hooks or lingering threads must not change the outcome.
    os._exit(code)
