"""Decide an evaluation's status and scores from what the sandbox did and wrote.

Order matters: what the host observed (engine failure, cancellation, timeout, output overflow,
OOM kill) outranks anything the sandbox claims; a clean exit is then checked against the files,
which the server scores itself. The harness's result.json only supplies messages for failures.
"""

from __future__ import annotations

import signal
from dataclasses import replace

from evoprompt.sdk.types import Checkpoint, EvaluationResult, Status

from .exchange import CheckpointChoice
from .files import directory_bytes
from .outputs import BadOutput, WeightCounts, count_weights, read_result_record
from .protocol import EXIT_CANDIDATE_FAILED
from .sandbox.base import SandboxJob, SandboxRun
from .scoring import final_score
from .status_policy import claimed_status
from .validation import ValidRequest

_MIB = 1024**2


def base_result(req: ValidRequest, sandbox_id: str) -> EvaluationResult:
    return EvaluationResult(
        request_id=req.request_id,
        status=Status.STATUS_UNSPECIFIED,
        code_sha256=req.code_sha256,
        task=req.task.name,
        framework=req.framework,
        steps=req.steps,
        seed=req.seed,
        sandbox=sandbox_id,
    )


def decide(req: ValidRequest, job: SandboxJob, run: SandboxRun, sandbox_id: str,
           choice: CheckpointChoice) -> EvaluationResult:
    """`choice`: what the server read of the validation predictions during the run (the exchange)."""
    result = replace(base_result(req, sandbox_id), wall_seconds=run.wall_seconds, stderr_tail=run.stderr_tail,
                     worker=run.worker, cpu_seconds=run.cpu_seconds)
    limits = job.limits

    def fail(status: Status, message: str) -> EvaluationResult:
        return replace(result, status=status, message=message)

    observed = host_verdict(result, job, run, "sandbox")
    if observed is not None:
        return observed
    if choice.error is not None:
        return bad_output(result, choice.error)
    if run.exit_code == EXIT_CANDIDATE_FAILED:
        claimed, message = claimed_failure(job, "the candidate failed (no details were written)")
        if claimed == "OOM":
            message = f"ran out of memory (limit {limits.memory_bytes / 1024**3:g} GiB): {message}"
        return fail(claimed_status(claimed), message[:4000])
    if run.exit_code != 0:
        return fail(Status.RUNTIME_ERROR, f"the sandbox process {_describe_exit(run.exit_code)}")
    return _score(req, job, result, choice)


def claimed_failure(job: SandboxJob, default: str) -> tuple[str, str]:
    """The status name and message a sandbox that exited EXIT_CANDIDATE_FAILED wrote in its result
    record (untrusted: claimed_status maps the name to what may be claimed)."""
    record = read_result_record(job.output_dir) or {}
    return str(record.get("status", "")), str(record.get("message", "")) or default


def host_verdict(result: EvaluationResult, job: SandboxJob, run: SandboxRun, what: str) -> EvaluationResult | None:
    """What the host observed of a sandbox (`what`: which one), when that decides the outcome alone."""
    limits = job.limits

    def fail(status: Status, message: str) -> EvaluationResult:
        return replace(result, status=status, message=message)

    if run.infra_error:
        return fail(Status.INTERNAL_ERROR, f"the evaluator could not run the {what}: {run.infra_error}")
    if run.cancelled:
        return fail(Status.CANCELLED,
                    f"cancelled after {run.wall_seconds:.1f} s (by a client, or its caller went away)")
    if run.timed_out:
        return fail(
            Status.TIMEOUT,
            f"the {what} was killed after the wall-clock limit of {job.timeout:g} s; make the model cheaper or "
            "lower max_steps",
        )
    # checked again after the exit: writes in the watcher's last interval count too
    if run.output_exceeded or directory_bytes(job.output_dir, limits.output_bytes) > limits.output_bytes:
        return fail(Status.OUTPUT_LIMIT, f"the {what} wrote more than {limits.output_bytes // _MIB} MiB of output "
                    "(every file or folder counts at least 4 KiB)")
    if run.oom_killed:
        return fail(
            Status.OOM, f"the {what} was killed for using more than its memory limit of "
                        f"{limits.memory_bytes / 1024**3:g} GiB"
        )
    return None


def bad_output(result: EvaluationResult, exc: BadOutput) -> EvaluationResult:
    """A sandbox's output the server cannot read: too large, or malformed."""
    status = Status.OUTPUT_LIMIT if exc.too_large else Status.INVALID_OUTPUT
    return replace(result, status=status, message=f"{exc}; the sandbox must write its outputs through the harness")


def _score(req: ValidRequest, job: SandboxJob, result: EvaluationResult, choice: CheckpointChoice) -> EvaluationResult:
    limit = job.limits.output_bytes
    if choice.validation is None:
        return replace(result, status=Status.INVALID_OUTPUT,
                       message="the sandbox wrote no predictions.npz: it exited before handing in its validation "
                               "predictions; the sandbox must write its outputs through the harness")
    record = read_result_record(job.output_dir) or {}
    train_seconds = record.get("train_seconds", 0.0)
    if not isinstance(train_seconds, int | float) or not 0 <= train_seconds <= result.wall_seconds:
        train_seconds = 0.0
    if req.task.verifies(req.framework):  # scored once the verifier has rebuilt the model (verification.py)
        score = final_score(choice.validation, 0.0)
        counts = WeightCounts(0, 0)
    else:
        try:
            score = final_score(choice.validation,
                                req.task.score_test(job.output_dir, limit, choice.validation.best_step))
            counts = count_weights(job.output_dir, limit)
        except BadOutput as exc:
            return bad_output(result, exc)
    return replace(
        result,
        status=Status.OK,
        val_accuracy=score.val_accuracy,
        test_accuracy=score.test_accuracy,
        best_step=score.best_step,
        num_params=counts.num_params,
        num_state=counts.num_state,
        train_seconds=float(train_seconds),
        checkpoints=tuple(Checkpoint(step=s, val_accuracy=v, test_accuracy=t) for s, v, t in score.checkpoints),
        message=f"trained {req.steps} steps; best validation accuracy at step {score.best_step}",
    )


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "ended without an exit status"
    if code > 128:
        try:
            name = signal.Signals(code - 128).name
        except ValueError:
            name = f"signal {code - 128}"
        return f"was killed by {name} (exit status {code})"
    return f"exited with status {code} before writing its results"
