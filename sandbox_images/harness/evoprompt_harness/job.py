"""One evaluation job: read the spec and data, train, write outputs and a result record.

Layout of a job (the server prepares `input`, mounted read-only):
  input/spec.json     framework, steps, learning rate, batch size, seed, checkpoint steps, threads
  input/candidate.py  the program
  input/data.npz      mnist1d: x_train, y_train, x_val, x_test (no validation or test labels);
                      clrs/*: {val,test}/{inputs,hints}/<probe> and {val,test}/lengths (no outputs,
                      hints past their first step zeroed); training data is sampled in the sandbox
  output/predictions.npz  steps[C], then mnist1d: val[C, n_val], test[C, n_test], predicted classes;
                      clrs/*: val/<output probe>[C, n_val, ...], test/<output probe>[C, n_test, ...]
  output/weights.npz      params/<name> (trainable) and state/<name> (other tensors)
  output/result.json      what the harness saw: ok, or the status and message of a failure
Exit status: 0 trained, 3 the candidate failed (result.json says how), 2 the job itself is malformed.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from .candidate import describe_exception, load_module
from .errors import CandidateError
from .protocol import EXIT_BAD_JOB, EXIT_CANDIDATE_FAILED, EXIT_OK


def _write_json(path: Path, record: dict[str, Any]) -> None:
    path.write_text(json.dumps(record))


def _load_inputs(input_dir: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    spec = json.loads((input_dir / "spec.json").read_text())
    with np.load(input_dir / "data.npz", allow_pickle=False) as npz:
        data = {k: npz[k] for k in npz.files}
    return spec, data


def _train(spec: dict[str, Any], module: Any, data: dict[str, np.ndarray], output_dir: Path) -> dict[str, Any]:
    framework = spec["framework"]
    if framework == "torch":
        from .train_torch import train
    elif framework == "flax":
        from .train_flax import train
    elif framework == "haiku":
        from .train_clrs import train
    else:
        raise ValueError(f"unknown framework {framework!r}")
    return train(module, data, spec, output_dir)


def run_job(input_dir: Path, output_dir: Path) -> int:
    """Run one job; returns the process exit status. Never raises for a candidate's failure."""
    try:
        spec, data = _load_inputs(input_dir)
    except Exception as exc:  # the server wrote these: failing here is the evaluator's bug
        print(f"evoprompt harness: malformed job: {exc}", file=sys.stderr)
        return EXIT_BAD_JOB
    candidate_path = input_dir / "candidate.py"
    started = time.monotonic()
    try:
        module = load_module(candidate_path)
        summary = _train(spec, module, data, output_dir)
    except CandidateError as exc:
        _write_json(output_dir / "result.json", {"ok": False, "status": exc.status, "message": exc.message})
        return EXIT_CANDIDATE_FAILED
    except MemoryError:
        _write_json(output_dir / "result.json", {"ok": False, "status": "OOM", "message": "MemoryError"})
        return EXIT_CANDIDATE_FAILED
    except BaseException as exc:  # noqa: BLE001 - whatever the candidate raised is its runtime error
        message = describe_exception(exc, str(candidate_path))
        _write_json(output_dir / "result.json", {"ok": False, "status": "RUNTIME_ERROR", "message": message})
        return EXIT_CANDIDATE_FAILED
    summary["ok"] = True
    summary["harness_seconds"] = time.monotonic() - started
    _write_json(output_dir / "result.json", summary)
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m evoprompt_harness INPUT_DIR OUTPUT_DIR", file=sys.stderr)
        return EXIT_BAD_JOB
    code = run_job(Path(args[0]), Path(args[1]))
    sys.stdout.flush()
    sys.stderr.flush()
    # os._exit: a candidate's atexit hooks or lingering threads must not change the outcome.
    os._exit(code)
