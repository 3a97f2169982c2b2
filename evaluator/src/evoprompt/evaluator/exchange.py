"""The server's half of the job protocol's second exchange (evoprompt_harness/protocol.py).

When the sandbox says its validation predictions are written, the server scores them, picks the best
checkpoint and tells the sandbox which one to predict the test inputs at. The sandbox learns only
which of its checkpoints won. What the server read at that moment is what it reports: a candidate
rewriting its validation predictions afterwards changes nothing.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from .outputs import BadOutput
from .protocol import CHOICE, VALIDATED, write_input_file
from .scoring import Validation
from .tasks.base import Task


class CheckpointChoice:
    """Scores validation predictions once they are complete and answers with the chosen checkpoint."""

    def __init__(self, task: Task, checkpoints: list[int], limit: int) -> None:
        self.task = task
        self.checkpoints = checkpoints
        self.limit = limit
        self.validation: Validation | None = None
        self.error: BadOutput | None = None
        self._answered = False
        self._lock = threading.Lock()

    def reset(self) -> None:
        with self._lock:
            self.validation, self.error, self._answered = None, None, False

    def poll(self, input_dir: Path, output_dir: Path) -> None:
        """Answer if the sandbox is waiting for the choice; cheap when it is not (one stat)."""
        if self._answered or not os.path.lexists(output_dir / VALIDATED):
            return
        with self._lock:
            if self._answered:
                return
            try:
                self.validation = self.task.score_validation(output_dir, self.limit, self.checkpoints)
                step: int | None = self.validation.best_step
            except BadOutput as exc:
                self.error, step = exc, None
            write_input_file(input_dir, CHOICE, json.dumps({"step": step}))
            self._answered = True
