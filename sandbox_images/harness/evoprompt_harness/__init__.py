"""In-sandbox harness: imports a candidate program, trains it with the task's fixed recipe, and
writes predictions at checkpoints plus the trained weights for the (trusted) server to score.

It runs inside the sandbox next to untrusted code, so nothing it writes is trusted by the server:
the server recomputes accuracy from predictions against labels the sandbox never sees, and counts
parameters from the weights file itself. Only numpy and the framework are imported here.
"""

from .job import run_job

__all__ = ["run_job"]
