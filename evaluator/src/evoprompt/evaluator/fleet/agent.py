"""One agent per Ray node and front door: that front door's evaluations, run in this node's sandboxes.

The agent is the only process on its node that starts sandboxes: it owns the node's warm pool (so no
sandbox belongs to a short-lived Ray worker), keeps the data files once per node, and relays the
checkpoint exchange to the front door, which alone holds the labels. It is a local executor on its
node: it claims its own work folder in the folder of its front door's home and its node name
(`HOME/fleet/<digest>/`, instance.py) and at start removes what dead agents left there (a node lost
with sandboxes running, a front door gone), never what a live one runs: two front doors of one home
each have their own agents. Plain Python: Ray makes it an actor (remote.py).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import threading
import time
import uuid
from pathlib import Path

from evoprompt.sdk.types import NodeInfo

from ..executor.local import LocalExecutor
from ..files import directory_bytes, remove_tree
from ..instance import DATA, JOBS, POOL, Instance, remove_dead
from ..protocol import CHOICE, PREDICTIONS, SPEC, VALIDATED, open_to_sandbox, write_input_file
from ..sandbox import make_sandbox
from ..sandbox.base import GpuShare, PoolSettings, SandboxJob, SandboxRun
from ..settings import load_settings
from .messages import AgentConfig, Finished, RemoteJob
from .transfer import Entry, TreeTooLarge, pack_tree

log = logging.getLogger(__name__)
_UNSET = object()
RELAY_KEEP_SECONDS = 300.0  # an ended job's relay is kept this long for its task's last calls


def node_name(configured: str = "") -> str:
    """This node's name in `worker` and in its folder and sandboxes' labels: the configured one
    (EVOPROMPT_NODE_NAME), else the host name. It stays the same when the node comes back, so its new
    agent finds what the lost one left; several nodes on one host must each set their own (the front
    door refuses two of one name)."""
    return configured or socket.gethostname()


class RelayedChoice:
    """The node's half of the checkpoint exchange: hands the validation predictions over, writes the step
    the front door chose. Used as the job's `Exchange` by the node's sandbox back-end."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.cancel = threading.Event()
        self.created = time.monotonic()
        self.running = False  # a run() holds it (a cancel may arrive before its run, or instead of it)
        self.ended_at: float | None = None
        self._cond = threading.Condition()
        self._validation: list[Entry] | None = None
        self._step: object = _UNSET
        self._written = False

    def poll(self, input_dir: Path, output_dir: Path) -> None:
        if self._written:
            return
        if self._validation is None and os.path.lexists(output_dir / VALIDATED):
            try:
                tree = pack_tree(output_dir, self.limit, only=(PREDICTIONS, VALIDATED))
            except (TreeTooLarge, OSError):  # the watchdog stops it for its output; the front door reads nothing
                tree = []
            with self._cond:
                self._validation = tree
                self._cond.notify_all()
        with self._cond:
            step = self._step
        if step is not _UNSET:
            write_input_file(input_dir, CHOICE, json.dumps({"step": step}))
            self._written = True

    def reset(self) -> None:
        """A node never runs a job twice: the front door sends it elsewhere as a new job."""

    def wait_validated(self) -> list[Entry] | None:
        """The validation predictions once written, or None when the job ended without them."""
        with self._cond:
            self._cond.wait_for(lambda: self._validation is not None or self.ended_at is not None
                                or self.cancel.is_set())
            return self._validation

    def choose(self, step: int | None) -> None:
        with self._cond:
            self._step = step

    def stop(self) -> None:
        self.cancel.set()
        with self._cond:
            self._cond.notify_all()

    def end(self) -> None:
        with self._cond:
            self.ended_at = time.monotonic()
            self._cond.notify_all()

    def stale(self, now: float) -> bool:
        """Ended (or never run) long enough ago that no call about it can still come."""
        since = self.ended_at if self.ended_at is not None else (None if self.running else self.created)
        return since is not None and now - since > RELAY_KEEP_SECONDS


class NodeAgent:
    def __init__(self, config: AgentConfig, slots: list[GpuShare | None], name: str | None = None,
                 home: Path | None = None) -> None:
        """`slots`: what this node can run at once (one entry per slot, its GPU share or None); `name` and
        `home` default to the node's settings (EVOPROMPT_NODE_NAME, EVOPROMPT_HOME)."""
        self.config = config
        settings = load_settings()  # this node's: its name, home and image settings
        name = name or node_name(settings.node_name)
        home = home or settings.home
        self.name = name
        self.slots = slots
        owner_key = f"{config.home_key or config.owner_key}|{self.name}"
        root = home / "fleet" / hashlib.sha256(owner_key.encode()).hexdigest()[:16]
        self.instance = Instance(root)
        self.work = self.instance.dir
        self.data_dir = self.work / DATA
        sandbox = make_sandbox(config.backend, owner_key=owner_key, instance=self.instance.id, runtime=config.runtime,
                               gpu=config.gpu_share > 0, image_settings=settings.image_settings)
        self.executor = LocalExecutor(sandbox, PoolSettings(
            root=self.work / POOL, slots=tuple(slots), limits=config.limits,
            size=config.pool_size, max_idle=config.pool_max_idle, frameworks=config.frameworks),
            self.instance, name=self.name)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._relays: dict[str, RelayedChoice] = {}
        self._lock = threading.Lock()
        self._data_lock = threading.Lock()
        self._prepare_lock = threading.Lock()
        self._ready = False
        self.problem = ""
        self._prepare()

    def _prepare(self) -> str:
        """Reap what dead agents left and start the warm pool, once the node's engine answers; until
        then every job is refused with the reason (asked again at each job)."""
        with self._prepare_lock:
            if self._ready:
                return ""
            try:
                self.executor.start()  # dead agents' sandboxes first, then their folders: nothing writes there
                remove_dead(self.instance.root, keep=self.instance.id)
            except Exception as exc:  # noqa: BLE001 - no engine yet: the agent stays up and says so
                if str(exc) != self.problem:
                    log.error("node %s cannot run sandboxes: %s", self.name, exc)
                self.problem = str(exc)
                return self.problem
            self._ready, self.problem = True, ""
            return ""

    def node_name(self) -> str:
        return self.name

    # -- one job ----------------------------------------------------------------------------

    def _relay(self, job_id: str, limit: int = 0) -> RelayedChoice:
        with self._lock:
            now = time.monotonic()
            for key in [k for k, r in self._relays.items() if r.stale(now)]:
                del self._relays[key]
            relay = self._relays.get(job_id)
            if relay is None:
                relay = self._relays[job_id] = RelayedChoice(limit)
            if limit:
                relay.limit = limit
            return relay

    def run(self, job: RemoteJob, gpu: GpuShare | None) -> Finished:
        """Run one job in this node's sandbox; returns when it ended (its outputs packed when worth it)."""
        relay = self._relay(job.job_id, job.limits.output_bytes)
        relay.running = True
        job_dir = self.work / JOBS / job.job_id
        try:
            problem = self._prepare() or self._refusal(job)
            if problem:
                return Finished(SandboxRun(infra_error=f"on node {self.name}: {problem}", worker=self.name), None)
            sj = SandboxJob(job.job_id, job.framework, job_dir, job.timeout, job.limits, gpu,
                            data_dir=self.data_dir, data_name=job.data_name, exchange=relay)
            self._write_inputs(job, sj, gpu)
            run = self.executor.run(sj, relay.cancel)
            run.worker = self.name
            if run.infra_error:
                run.infra_error = f"on node {self.name}: {run.infra_error}"
            return Finished(run, self._outputs(sj, run))
        except Exception as exc:  # never a traceback to the front door: a status with the reason
            log.exception("node %s: job %s failed in the agent", self.name, job.job_id)
            return Finished(SandboxRun(infra_error=f"on node {self.name}: the agent failed: {exc!r}",
                                       worker=self.name), None)
        finally:
            relay.end()
            remove_tree(job_dir)

    def _refusal(self, job: RemoteJob) -> str:
        mine = self.executor.sandbox_id(job.framework)
        if mine != job.sandbox_id:
            return (f"this node runs {job.framework} in {mine}, the front door expects {job.sandbox_id}; install "
                    "the same evoprompt-evaluator on both and run `evoprompt images build` on the node")
        names = [*job.files, job.data_name]
        if any("/" in n or n.startswith(".") or not n for n in names):
            return f"refusing a job whose file names are not plain names: {names}"
        return ""

    def _write_inputs(self, job: RemoteJob, sj: SandboxJob, gpu: GpuShare | None) -> None:
        sj.input_dir.mkdir(parents=True)
        for name, data in job.files.items():
            (sj.input_dir / name).write_bytes(data)
        if gpu is not None:  # the front door could not know the share's device: the node does
            spec_path = sj.input_dir / SPEC
            spec = json.loads(spec_path.read_text())
            spec["gpu_memory_fraction"] = gpu.memory_fraction
            spec_path.write_text(json.dumps(spec))
        open_to_sandbox(sj.job_dir)
        self._ensure_data(job)

    def _ensure_data(self, job: RemoteJob) -> None:
        """The job's data file, written once per node (fetched from the front door's object only then)."""
        path = self.data_dir / job.data_name
        with self._data_lock:
            if path.exists():
                return
            (item,) = job.data
            if not isinstance(item, bytes):
                import ray

                item = ray.get(item)
            partial = self.data_dir / f".{uuid.uuid4().hex}.partial"
            partial.write_bytes(item)
            partial.chmod(0o644)
            os.replace(partial, path)

    @staticmethod
    def _outputs(sj: SandboxJob, run: SandboxRun) -> list[Entry] | None:
        if run.cancelled or run.timed_out or run.output_exceeded or run.infra_error:
            return None
        limit = sj.limits.output_bytes
        try:
            if directory_bytes(sj.output_dir, limit) > limit:
                raise TreeTooLarge(f"more than {limit} bytes")
            return pack_tree(sj.output_dir, limit)
        except TreeTooLarge:
            run.output_exceeded = True
            return None
        except OSError as exc:  # the folder itself is unreadable: nothing to score
            log.warning("job %s: cannot read its outputs: %s", sj.job_id, exc)
            return []

    def validation(self, job_id: str) -> list[Entry] | None:
        return self._relay(job_id).wait_validated()

    def choose(self, job_id: str, step: int | None) -> None:
        self._relay(job_id).choose(step)

    def cancel(self, job_id: str) -> None:
        self._relay(job_id).stop()

    # -- the node as a whole ----------------------------------------------------------------

    def info(self) -> NodeInfo:
        with self._lock:
            running = sum(1 for r in self._relays.values() if r.running and r.ended_at is None)
        (node,) = self.executor.nodes(running)
        return node

    def close(self) -> None:
        """Stop the node's warm pool (its waiting sandboxes removed); running jobs are cancelled."""
        with self._lock:
            relays = list(self._relays.values())
        for relay in relays:
            relay.stop()
        self.executor.close()
        self.instance.release()
