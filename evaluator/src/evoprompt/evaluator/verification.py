"""The verifier's half of an evaluation (DESIGN section 3): scores no candidate process can forge.

The training sandbox runs the candidate's code, so whatever it writes may be forged. What it hands in
for the chosen checkpoint is an exported program (evoprompt_harness/export_*.py). A second sandbox, the
verifier, gets that program and nothing of the candidate's code, checks and rebuilds it, counts the
tensors it holds and predicts the validation, test and secret check inputs. The server then accepts the
run only if

- the verifier's validation predictions are the training sandbox's at the chosen checkpoint, but for
  near-ties (a class whose logit is within TIE_TOLERANCE of the top one, relative to its scale:
  float summation order differs between eager training and the exported graph in batches), and
- its accuracy on the check set, which no training sandbox sees, is not far below its validation
  accuracy (a model that knows the validation inputs, rather than the task, fails here).

The test accuracy and the counts reported are the verifier's alone.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np

from evoprompt.sdk.types import EvaluationResult, Status

from .outcome import claimed_failure, host_verdict
from .outputs import BadOutput, load_npz, read_exported_model
from .protocol import EXIT_CANDIDATE_FAILED, SPEC, VERIFIED, open_to_sandbox
from .sandbox.base import SandboxJob, SandboxRun
from .scoring import Validation
from .status_policy import claimed_status
from .validation import ValidRequest

# measured on the seeds and 200 mutation children (bench/verify_overhead.py): disagreements are near-ties
# of ~1e-6 relative on a CPU; a GPU's TF32 convolutions are ~1e-3, hence the margin
TIE_TOLERANCE = 1e-3
# the check set may fall below the validation accuracy by sampling noise (4 standard deviations of the
# difference of two accuracies on 500 and 1000 inputs) plus the optimism of picking the best checkpoint
CHECK_SIGMAS = 4.0
CHECK_SELECTION_MARGIN = 0.03
VERIFIER_CLAIMS = frozenset({Status.VERIFICATION_FAILED, Status.OOM})


def verification_job(training: SandboxJob, req: ValidRequest, data_dir: Path) -> SandboxJob:
    """The verifier's job: the training sandbox's exported model, read strictly and copied into a fresh
    job folder beside the training one, with the verifier's spec; no candidate code. Raises BadOutput
    when the training sandbox handed in no well-formed export."""
    exported = read_exported_model(training.output_dir, req.framework, training.limits.output_bytes)
    job = SandboxJob(f"{training.job_id}-verify", req.framework, training.job_dir.with_name(
        f"{training.job_dir.name}-verify"), training.timeout, training.limits, training.gpu, data_dir=data_dir,
        data_name=req.task.ensure_verify_data(data_dir))
    job.input_dir.mkdir(parents=True)
    for name, data in exported.items():
        (job.input_dir / name).write_bytes(data)
    (job.input_dir / SPEC).write_text(json.dumps(req.task.verify_spec(req.framework)))
    open_to_sandbox(job.job_dir)
    return job


def refused(result: EvaluationResult, message: str) -> EvaluationResult:
    return replace(result, status=Status.VERIFICATION_FAILED, message=message, num_params=0, num_state=0)


def verified(result: EvaluationResult, req: ValidRequest, job: SandboxJob, run: SandboxRun,
             validation: Validation) -> EvaluationResult:
    """The training result (`result`, OK, scored on validation) completed by the verifier's run, or the
    status that says why it cannot be."""
    result = replace(result, verify_seconds=run.wall_seconds)
    observed = host_verdict(result, job, run, "verifier")
    if observed is not None:
        return replace(observed, num_params=0, num_state=0)
    if run.exit_code == EXIT_CANDIDATE_FAILED:
        claimed, message = claimed_failure(job, "the verifier refused the exported model")
        status = claimed_status(claimed)
        return replace(refused(result, message[:4000]), status=status if status in VERIFIER_CLAIMS
                       else Status.VERIFICATION_FAILED)
    if run.exit_code != 0:
        return refused(result, f"the verifier failed on the exported model (exit status {run.exit_code}); "
                               f"{run.stderr_tail[-300:]}".strip())
    labels = req.task.verify_labels()
    try:
        outputs = _read_verified(job.output_dir, job.limits.output_bytes, {k: len(v) for k, v in labels.items()})
    except BadOutput as exc:
        return refused(result, f"the verifier's output is unusable ({exc}): the evaluator's bug, please report it")
    assert validation.predicted is not None
    trained = validation.predicted[validation.steps.index(validation.best_step)]
    disagreements = _disagreements(outputs["val"], trained)
    if disagreements:
        return refused(result, f"the exported model does not predict what the training sandbox predicted at step "
                               f"{validation.best_step}: {disagreements} of {len(trained)} validation inputs differ "
                               "(beyond floating-point near-ties); the sandbox must export the model it trained")
    accuracy = {split: float((outputs[split].argmax(axis=1) == labels[split]).mean()) for split in labels}
    floor = check_floor(validation.best_val, len(labels["val"]), len(labels["check"]))
    result = replace(result, test_accuracy=accuracy["test"], check_accuracy=accuracy["check"],
                     num_params=int(outputs["num_params"]), num_state=int(outputs["num_state"]), verified=True,
                     checkpoints=tuple(replace(c, test_accuracy=accuracy["test"]) if c.step == validation.best_step
                                       else c for c in result.checkpoints))
    if accuracy["check"] < floor:
        return refused(result, f"accuracy on the secret check set is {accuracy['check']:.3f}, far below the "
                               f"validation accuracy {validation.best_val:.3f} (at least {floor:.3f} expected): the "
                               "model fits the validation inputs, not the task")
    return result


def check_floor(val_accuracy: float, n_val: int, n_check: int) -> float:
    """The lowest check-set accuracy consistent with `val_accuracy`."""
    p = min(max(val_accuracy, 0.0), 1.0)
    sigma = math.sqrt(max(p * (1 - p), 0.01) * (1 / n_val + 1 / n_check))
    return p - CHECK_SELECTION_MARGIN - CHECK_SIGMAS * sigma


def _disagreements(logits: np.ndarray, trained: np.ndarray) -> int:
    """Inputs whose training-time class is not (within the tie tolerance) the verifier's top class."""
    top = logits.max(axis=1)
    theirs = logits[np.arange(len(trained)), np.clip(trained, 0, logits.shape[1] - 1)]
    scale = np.maximum(1.0, np.abs(top))
    near = (top - theirs) <= TIE_TOLERANCE * scale
    valid = (trained >= 0) & (trained < logits.shape[1])
    return int((~(near & valid)).sum())


def _read_verified(output_dir: Path, limit: int, rows: dict[str, int]) -> dict[str, np.ndarray]:
    arrays = load_npz(output_dir / VERIFIED, limit)
    for split, n in rows.items():
        arr = arrays.get(split)
        if arr is None or arr.shape != (n, 10) or arr.dtype != np.float32:
            raise BadOutput(f"{VERIFIED} {split} is not float32 logits of shape ({n}, 10)")
        arrays[split] = np.nan_to_num(arr, nan=-np.inf)  # a NaN logit is never the top class
    for count in ("num_params", "num_state"):
        arr = arrays.get(count)
        if arr is None or arr.shape != () or not np.issubdtype(arr.dtype, np.integer) or int(arr) < 0:
            raise BadOutput(f"{VERIFIED} {count} is not a count")
    return arrays

