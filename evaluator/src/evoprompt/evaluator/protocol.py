"""The job protocol as the server sees it: every name of a job folder, and how the server writes into one.

The names come from the harness's own protocol module (evoprompt_harness/protocol.py, imported from
the very files the sandbox images carry, harness.py), so the two sides cannot disagree and no other
module spells a file name of a job. Read that module for the order of the exchanges.
"""

from __future__ import annotations

import os
from pathlib import Path

from .harness import harness_protocol

_P = harness_protocol()

INPUT_DIR: str = _P.INPUT_DIR  # the server writes, the sandbox only reads
OUTPUT_DIR: str = _P.OUTPUT_DIR  # the sandbox writes, the server reads with strict checks
SPEC: str = _P.SPEC
CANDIDATE: str = _P.CANDIDATE
READY: str = _P.READY
BUILT: str = _P.BUILT
CHOICE: str = _P.CHOICE
VALIDATED: str = _P.VALIDATED
PREDICTIONS: str = _P.PREDICTIONS
TEST_PREDICTIONS: str = _P.TEST_PREDICTIONS
WEIGHTS: str = _P.WEIGHTS
RESULT: str = _P.RESULT
PROGRAM_TORCH: str = _P.PROGRAM_TORCH
PROGRAM_JAX: str = _P.PROGRAM_JAX
TENSORS: str = _P.TENSORS
VERIFIED: str = _P.VERIFIED
ROLE_VERIFY: str = _P.ROLE_VERIFY

EXIT_OK: int = _P.EXIT_OK
EXIT_BAD_JOB: int = _P.EXIT_BAD_JOB  # the job folder was malformed or vanished: the evaluator's fault
EXIT_CANDIDATE_FAILED: int = _P.EXIT_CANDIDATE_FAILED


def write_input_file(input_dir: Path, name: str, text: str) -> None:
    """A file of the job's input folder, appearing whole (written aside, then renamed), readable by the
    sandbox's user."""
    partial = input_dir / f".{name}.partial"
    partial.write_text(text)
    partial.chmod(0o644)
    os.replace(partial, input_dir / name)


def open_to_sandbox(job_dir: Path) -> None:
    """Let the sandbox's user (another uid) read the job's folder, its input folder and its input files."""
    input_dir = job_dir / INPUT_DIR
    for path in [job_dir, input_dir, *input_dir.iterdir()]:
        path.chmod(0o755 if path.is_dir() else 0o644)
