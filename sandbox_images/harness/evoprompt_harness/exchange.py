"""The sandbox's half of the job protocol (see protocol.py): wait for a job, ask which checkpoint won."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from .protocol import CHOICE, POLL_SECONDS, READY, VALIDATED


class NoJob(Exception):
    """A warm harness waited in vain: its server went away or never assigned it a job."""


class NoChoice(Exception):
    """The server could not read the validation predictions, so it names no checkpoint."""


class BadJob(Exception):
    """What the server wrote breaks the protocol: the evaluator's bug, never the candidate's."""


def wait_for_job(input_dir: Path, max_wait: float) -> None:
    """Return once the server has written the job; raise NoJob if it gave up on this sandbox."""
    parent = os.getppid()
    deadline = time.monotonic() + max_wait
    ready = input_dir / READY
    while not ready.exists():
        # a harness of the process back-end whose server died is re-parented: nobody will come
        if os.getppid() != parent or time.monotonic() > deadline:
            raise NoJob(f"no job arrived in {input_dir}")
        time.sleep(POLL_SECONDS)


def await_choice(input_dir: Path, output_dir: Path, steps: list[int]) -> int:
    """Say the validation predictions are written; wait for the server's pick among `steps`."""
    (output_dir / VALIDATED).write_text("")
    path = input_dir / CHOICE
    while not path.exists():
        time.sleep(POLL_SECONDS)
    step = json.loads(path.read_text())["step"]
    if step is None:
        raise NoChoice("the server could not read the validation predictions")
    if step not in steps:
        raise BadJob(f"the server chose step {step}, not a checkpoint of this job ({steps})")
    return int(step)
