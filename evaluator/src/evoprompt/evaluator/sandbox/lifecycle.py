"""The life of one job, the same for every back-end: take a sandbox, hand it the job, watch it, stop it
when the evaluator decides to, read what happened, destroy it, keep what it wrote.

The back-end supplies the sandbox's own calls (sandbox/base.py); the decisions are here: the watchdog
(cancel, wall-clock limit, output cap), the order of the teardown (the sandbox is gone before its
outputs are read), and what a failure of the back-end means (an infrastructure error, never the
candidate's verdict).
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time

from ..files import directory_bytes, remove_tree
from ..protocol import BUILT, READY, write_input_file
from .base import Box, Sandbox, SandboxFailure, SandboxJob, SandboxRun, new_box
from .pool import WarmPool, destroy_box

log = logging.getLogger(__name__)

KILL_WAIT_SECONDS = 30.0  # after a kill, how long to wait for the sandbox to be gone


def run_job(sandbox: Sandbox, pool: WarmPool | None, job: SandboxJob, cancel: threading.Event) -> SandboxRun:
    """Run `job` in a sandbox of `sandbox` (a warm one from `pool` when it has one); return when it
    ended, was stopped at its timeout or output cap, or `cancel` was set. Never raises for a failure of
    the back-end: that is the returned run's `infra_error`."""
    run = SandboxRun()
    started = time.monotonic()
    box: Box | None = None
    try:
        sandbox.prepare(job.framework)  # outside the job's clock (an image built on first need)
        box = _box_for(sandbox, pool, job)
        started = time.monotonic()
        cpu_before = sandbox.cpu_seconds(box.handle) or 0.0  # a warm box's own start-up is not the job's
        _hand_over(job, box)
        _watch(sandbox, job, box, cancel, run, started, cpu_before)
        sandbox.collect(box.handle, box, run)
    except SandboxFailure as exc:
        run.infra_error = str(exc)
        log.warning("job %s: %s", job.job_id, exc)
    finally:
        run.wall_seconds = time.monotonic() - started
        if box is not None:
            _dispose(sandbox, job, box, run)
    return run


def stop_reason(job: SandboxJob, cancel: threading.Event, started: float, output_dir: os.PathLike[str]) -> str:
    """The watchdog: why the evaluator must stop the sandbox now ("cancelled", "timed_out",
    "output_exceeded"), or "" to let it run."""
    if cancel.is_set():
        return "cancelled"
    if time.monotonic() - started > job.timeout:
        return "timed_out"
    if directory_bytes(output_dir, job.limits.output_bytes) > job.limits.output_bytes:
        return "output_exceeded"
    return ""


def _box_for(sandbox: Sandbox, pool: WarmPool | None, job: SandboxJob) -> Box:
    """A warm box from the pool, or one started now for this job alone (in its job folder)."""
    if pool is not None:
        box = pool.take(job.framework, job.gpu)
        if box is not None and box.limits == job.limits:
            return box
        if box is not None:
            destroy_box(sandbox, box)
    box = new_box(job.job_dir, job.framework, job.gpu, sandbox.sandbox_id(job.framework), job.limits)
    try:
        box.handle = sandbox.launch(box)
    except BaseException:
        remove_tree(box.dir)
        raise
    return box


def _hand_over(job: SandboxJob, box: Box) -> None:
    """Give the job to the box's waiting harness: its input files moved in (same file system: renames),
    then READY, the signal to start."""
    for path in job.input_dir.iterdir():
        os.rename(path, box.input_dir / path.name)
    write_input_file(box.input_dir, READY, "")


def _watch(sandbox: Sandbox, job: SandboxJob, box: Box, cancel: threading.Event, run: SandboxRun,
           started: float, cpu_before: float) -> None:
    """Wait for the sandbox's exit, handing over its data once it is BUILT and answering the job's
    exchange; kill it when the watchdog says so."""
    released = not job.data_name
    while True:
        exit_code = sandbox.wait(box.handle, sandbox.poll_seconds)
        cpu = sandbox.cpu_seconds(box.handle)  # sampled while it runs: the last poll interval is missed
        run.cpu_seconds = max(0.0, cpu - cpu_before) if cpu is not None else run.cpu_seconds
        if exit_code is not None:
            run.exit_code = exit_code
            return
        if not released and os.path.lexists(box.output_dir / BUILT):
            _release_data(job, box)
            released = True
        if job.exchange is not None:
            job.exchange.poll(box.input_dir, box.output_dir)
        reason = stop_reason(job, cancel, started, box.output_dir)
        if reason:
            setattr(run, reason, True)
            sandbox.kill(box.handle)
            sandbox.wait(box.handle, KILL_WAIT_SECONDS)
            return


def _release_data(job: SandboxJob, box: Box) -> None:
    """Link the job's data file into the box's input folder (whole at once: a hard link, or a copy renamed
    into place). Only now, with the candidate's model built, may the sandbox see its data."""
    assert job.data_dir is not None
    source, target = job.data_dir / job.data_name, box.input_dir / job.data_name
    try:
        os.link(source, target)
    except OSError:  # another file system (or no hard links there): copy it
        partial = box.input_dir / f".{job.data_name}.partial"
        shutil.copyfile(source, partial)
        partial.chmod(0o644)
        os.replace(partial, target)


def _dispose(sandbox: Sandbox, job: SandboxJob, box: Box, run: SandboxRun) -> None:
    """Destroy the sandbox, then move what it wrote to the job's output folder (nothing writes there any
    more), then remove the box. A sandbox that cannot be destroyed keeps its outputs unread."""
    if box.handle is not None:
        try:
            sandbox.destroy(box.handle)
            box.handle = None
        except SandboxFailure as exc:  # the engine is gone: the next start of an instance reaps it
            log.warning("could not remove the sandbox of job %s: %s", job.job_id, exc)
            run.infra_error = run.infra_error or f"could not remove the sandbox: {exc}"
    if box.handle is None:
        remove_tree(job.output_dir)
        os.rename(box.output_dir, job.output_dir)
    destroy_box(sandbox, box)
