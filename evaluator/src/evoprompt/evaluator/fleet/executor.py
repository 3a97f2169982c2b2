"""The ray executor, the front door's side: to the scheduler it is one more executor.

Each `run` becomes a Ray task asking for one slot's resources; Ray places it on a node, whose agent
runs it in a local sandbox (agent.py). The front door keeps everything trusted: it wrote the job's
inputs, it scores the validation predictions the node relays and answers with the chosen checkpoint,
and it reads the returned outputs with its own strict readers (outcome.py), so the scores are those
the local executor gives. A node lost mid-run (its raylet or agent dead) costs a re-run elsewhere,
up to MAX_ATTEMPTS times; the scheduler still answers each request once.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from evoprompt.sdk.errors import EvaluatorUnavailableError
from evoprompt.sdk.types import NodeInfo

from ..executor.base import Executor
from ..files import remove_tree
from ..protocol import CHOICE
from ..sandbox import sandbox_id_for
from ..sandbox.base import GpuShare, SandboxJob, SandboxRun
from ..settings import EvaluatorSettings
from .messages import AgentConfig, Finished, Placed, RemoteJob, Validated
from .remote import NAMESPACE, AgentMissing, evaluation_task, node_slots, start_agent
from .transfer import unpack_tree

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3  # runs of one evaluation on nodes that are lost under it, before giving up
POLL_SECONDS = 0.05  # how often a waiting run looks at its task and its cancel flag
WATCH_SECONDS = 5.0  # how often new nodes get their agent
ANSWER_GRACE_SECONDS = 120.0  # past its timeout, a placed job's node has this long to answer
INFO_TIMEOUT = 3.0
CONNECT_TIMEOUT = 5.0  # for the head's port to accept a connection


class NodeLost(Exception):
    """The node running an attempt is gone; the evaluation can run again elsewhere."""


def _ray_failure(exc: BaseException) -> str:
    """'lost' for failures of the cluster (node, worker or agent gone), 'missing' for a node without its
    agent yet, '' for anything else."""
    from ray import exceptions as rx

    lost = tuple(getattr(rx, n) for n in ("RayActorError", "WorkerCrashedError", "NodeDiedError",
                                          "ObjectLostError", "OwnerDiedError", "LocalRayletDiedError",
                                          "ActorUnavailableError", "RaySystemError", "OutOfMemoryError")
                 if hasattr(rx, n)) + (NodeLost,)
    cause = exc.cause if isinstance(exc, rx.RayTaskError) else exc
    if isinstance(cause, AgentMissing):
        return "missing"
    return "lost" if isinstance(cause, lost) or isinstance(exc, lost) else ""


def _unreachable(address: str) -> str:
    """Why the cluster's head cannot be reached ("" when it answers, or for addresses Ray resolves
    itself: `auto` without a recorded cluster, `ray://`)."""
    if address == "auto":
        recorded = Path(tempfile.gettempdir()) / "ray" / "ray_current_cluster"  # where `ray start` notes it
        address = os.environ.get("RAY_ADDRESS") or (recorded.read_text().strip() if recorded.exists() else "")
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or "://" in address:
        return ""
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT).close()
    except OSError as exc:
        return str(exc) or type(exc).__name__
    return ""


class RayExecutor(Executor):
    kind = "ray"

    def __init__(self, settings: EvaluatorSettings, owner_key: str, home_key: str = "") -> None:
        """`owner_key`: this front door's identity (its store and its instance): its agents are its own;
        `home_key`: its home's (its store's path), shared with the front doors of the same home."""
        self.settings = settings
        self.backend = settings.backend  # what the nodes run candidates in
        self.owner_key = owner_key
        self.home_key = home_key or owner_key
        self._config: AgentConfig | None = None
        self._slots: list[GpuShare | None] = []
        self._names: dict[str, str] = {}  # Ray node id -> the name its agent goes by
        self._refused: set[str] = set()  # Ray node ids refused for a name another node has
        self._ensure_lock = threading.Lock()
        self._agents: dict[str, Any] = {}  # Ray node id -> its agent
        self._data: dict[str, Any] = {}  # data file name -> ObjectRef of its bytes
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._watcher: threading.Thread | None = None
        self._initialized_ray = False
        self._placed: dict[str, Placed] = {}  # attempt id -> where it runs, while it runs

    # -- the cluster ------------------------------------------------------------------------

    def sandbox_id(self, framework: str) -> str:
        """What the nodes must run each framework in (image tags are computed from the image folders)."""
        return sandbox_id_for(self.settings.backend, framework, gpu=self.settings.ray_gpu_share > 0,
                              sandbox_base=self.settings.sandbox_base)

    def check(self, frameworks: list[str]) -> None:
        """Connect to the cluster; it must have a node that can run a slot."""
        try:
            import ray
        except ImportError:
            raise EvaluatorUnavailableError(
                "the ray executor needs Ray: pip install 'evoprompt-evaluator[ray]' (on the front door and on "
                "every node)") from None
        if not ray.is_initialized():
            unreachable = _unreachable(self.settings.ray_address)
            if unreachable:  # Ray itself would retry for minutes before saying so
                raise EvaluatorUnavailableError(
                    f"no Ray cluster answers at {self.settings.ray_address!r} ({unreachable}); start one "
                    "(`ray start --head`) or fix --ray-address")
            try:
                ray.init(address=self.settings.ray_address, namespace=NAMESPACE, logging_level=logging.WARNING,
                         log_to_driver=False)
            except Exception as exc:  # noqa: BLE001 - Ray raises many kinds; all mean the same to a user
                raise EvaluatorUnavailableError(
                    f"cannot reach the Ray cluster at {self.settings.ray_address!r} ({exc}); start one "
                    "(`ray start --head`, then `ray start --address HEAD:6379` on each node) or fix --ray-address"
                ) from None
            self._initialized_ray = True
        if not self._node_slots():
            raise EvaluatorUnavailableError(
                f"the Ray cluster has no node with {self.settings.cpus:g} CPU(s)"
                f"{' and a GPU' if self.settings.ray_gpu_share else ''} free for a sandbox; add a node "
                "(`ray start --address HEAD:6379`)")

    def _node_slots(self) -> dict[str, int]:
        import ray

        config = self._config or self._agent_config()
        return {n["NodeID"]: len(node_slots(n["Resources"], config)) for n in ray.nodes()
                if n.get("Alive") and node_slots(n["Resources"], config)}

    def _agent_config(self) -> AgentConfig:
        s = self.settings
        return AgentConfig(owner_key=self.owner_key, home_key=self.home_key, backend=s.backend, runtime=s.runtime,
                           gpu_share=s.ray_gpu_share,
                           pool_size=s.pool_size, pool_max_idle=s.pool_max_idle, frameworks=s.frameworks,
                           limits=s.limits)

    def slots(self) -> list[GpuShare | None]:
        """Evaluations handed to the cluster at once: the setting, else its slots at start (at least one)."""
        if not self._slots:
            self._slots = [None] * (self.settings.ray_in_flight or max(1, sum(self._node_slots().values())))
        return list(self._slots)

    def start(self) -> None:
        """Start an agent (with its warm pool) on every node now, and on nodes that join later; refuse two
        nodes of one name."""
        self._config = self._agent_config()
        self._ensure_agents(strict=True)
        self._watcher = threading.Thread(target=self._watch_nodes, name="evoprompt-ray-nodes", daemon=True)
        self._watcher.start()

    def _ensure_agents(self, strict: bool = False) -> None:
        """An agent on every live node that can run a slot. A node whose name another live node already
        has gets none (its evaluations would be indistinguishable, `worker` ambiguous) and is not asked
        again: logged, or with `strict` (at start) refused with the fix. One caller at a time (the
        watcher, and runs whose node was lost)."""
        import ray

        assert self._config is not None
        with self._ensure_lock:
            alive = {n["NodeID"]: n for n in ray.nodes() if n.get("Alive")}
            with self._lock:
                for node_id in [n for n in {*self._agents, *self._names} if n not in alive]:
                    self._agents.pop(node_id, None)
                    self._names.pop(node_id, None)
                wanted = {node_id: node_slots(node["Resources"], self._config) for node_id, node in alive.items()
                          if node_id not in self._agents and node_id not in self._refused}
            started = {node_id: start_agent(self._config, node_id, slots) for node_id, slots in wanted.items() if slots}
            refusals = []
            for node_id, agent in started.items():
                try:
                    name = ray.get(agent.node_name.remote(), timeout=120)
                except Exception as exc:  # noqa: BLE001 - that node's agent cannot start: the others still can
                    log.error("the agent on Ray node %s did not start: %s", node_id[:8], exc)
                    continue
                with self._lock:
                    other = next((i for i, n in self._names.items() if n == name and i != node_id), None)
                    if other is None:
                        self._agents[node_id], self._names[node_id] = agent, name
                        continue
                    self._refused.add(node_id)
                message = (f"two Ray nodes are both called {name!r} (nodes {other[:8]} and {node_id[:8]}; the "
                           "host name unless EVOPROMPT_NODE_NAME is set): give each node on a host its own "
                           "EVOPROMPT_NODE_NAME and restart it")
                refusals.append(message)
                with contextlib.suppress(Exception):
                    ray.get(agent.close.remote(), timeout=60)
                with contextlib.suppress(Exception):
                    ray.kill(agent)
                log.error("%s; the second gets no agent (evaluations Ray places there run elsewhere)", message)
            if strict and refusals:
                raise EvaluatorUnavailableError(refusals[0])

    def _watch_nodes(self) -> None:
        while not self._closed.wait(WATCH_SECONDS):
            try:
                self._ensure_agents()
            except Exception as exc:  # noqa: BLE001 - the head is briefly away: try again next round
                log.warning("could not list the Ray cluster's nodes: %s", exc)

    def nodes(self, running: int) -> list[NodeInfo]:
        import ray

        with self._lock:
            asked = [agent.info.remote() for agent in self._agents.values()]
        answered, _ = ray.wait(asked, num_returns=len(asked), timeout=INFO_TIMEOUT) if asked else ([], [])
        infos = []
        for ref in answered:  # an agent still starting, or on a node being lost, is not listed now
            try:
                infos.append(ray.get(ref))
            except Exception:  # noqa: BLE001 - its node was lost meanwhile
                continue
        return sorted(infos, key=lambda n: n.name)

    def close(self) -> None:
        """Stop every agent's warm pool, then the agents; disconnect."""
        import ray

        self._closed.set()
        with self._lock:
            agents = list(self._agents.values())
            self._agents.clear()
        closing = [agent.close.remote() for agent in agents]
        try:
            ray.get(closing, timeout=120)
        except Exception as exc:  # noqa: BLE001 - a lost node's agent: its next agent reaps
            log.warning("not every node's agent closed cleanly: %s", exc)
        for agent in agents:
            try:
                ray.kill(agent)
            except Exception:  # noqa: BLE001 - already gone
                pass
        if self._initialized_ray:
            ray.shutdown()

    # -- one job ----------------------------------------------------------------------------

    def run(self, job: SandboxJob, cancel: threading.Event) -> SandboxRun:
        files = {p.name: p.read_bytes() for p in job.input_dir.iterdir() if p.is_file()}
        data_name = job.data_name
        remote = RemoteJob(job.job_id, job.framework, self.sandbox_id(job.framework), job.timeout, job.limits,
                           files, data_name, [self._data_ref(job, data_name)])
        lost: list[str] = []
        while len(lost) < MAX_ATTEMPTS:
            try:
                # each attempt its own id on the nodes: a retry never meets what is left of the one before
                return self._attempt(job, replace(remote, job_id=f"{job.job_id}-{len(lost)}"), cancel)
            except Exception as exc:  # noqa: BLE001 - sorted below: a lost node is retried, the rest reported
                kind = _ray_failure(exc)
                cause = getattr(exc, "cause", None) or exc
                first_line = (str(cause).splitlines() or [type(cause).__name__])[0][:300]
                if not kind:
                    log.error("job %s: the Ray task failed: %s", job.job_id, exc)
                    return SandboxRun(infra_error=f"the Ray task failed: {first_line}", worker="")
                lost.append(first_line)
                log.warning("job %s: %s; running it again elsewhere", job.job_id,
                            "its node has no agent yet" if kind == "missing" else f"its node was lost ({lost[-1]})")
                self._ensure_agents()
                self._forget_attempt(job)
                if cancel.is_set():
                    return SandboxRun(cancelled=True, worker="")
        return SandboxRun(infra_error=f"lost the node under this evaluation {MAX_ATTEMPTS} times: {lost[-1]}",
                          worker="")

    def _data_ref(self, job: SandboxJob, name: str) -> Any:
        """The data file in the object store, put once per data identity and kept for the server's life."""
        import ray

        with self._lock:
            if name not in self._data:
                assert job.data_dir is not None
                self._data[name] = ray.put((job.data_dir / name).read_bytes())
            return self._data[name]

    @staticmethod
    def _forget_attempt(job: SandboxJob) -> None:
        remove_tree(job.output_dir)
        (job.input_dir / CHOICE).unlink(missing_ok=True)
        if job.exchange is not None:
            job.exchange.reset()

    def _attempt(self, job: SandboxJob, remote: RemoteJob, cancel: threading.Event) -> SandboxRun:
        import ray

        assert self._config is not None
        share = self._config.gpu_share
        stream = evaluation_task().options(
            num_cpus=job.limits.cpus, num_gpus=1 / share if share else 0, max_retries=0,
        ).remote(remote, self._config)
        try:
            return self._follow(job, remote, cancel, stream)
        except BaseException:
            # this attempt is abandoned: stop whatever still runs of it, and let a dead agent be replaced
            with contextlib.suppress(Exception):
                ray.cancel(stream)
            placed = self._placed.pop(remote.job_id, None)
            if placed is not None:
                with contextlib.suppress(Exception):
                    placed.agent.cancel.remote(remote.job_id)
                with self._lock:
                    self._agents.pop(placed.node_id, None)
                    self._names.pop(placed.node_id, None)
            raise
        finally:
            self._placed.pop(remote.job_id, None)

    def _follow(self, job: SandboxJob, remote: RemoteJob, cancel: threading.Event, stream: Any) -> SandboxRun:
        """Read the attempt's stream to its end, answering its exchange and passing on a cancel."""
        import ray

        placed: Placed | None = None
        deadline = None
        cancel_sent = False
        while True:
            ready, _ = ray.wait([stream], timeout=POLL_SECONDS)
            if ready:
                try:
                    item = ray.get(next(stream))
                except StopIteration:
                    raise NodeLost("the node's task ended without an answer") from None
                if isinstance(item, Placed):
                    placed, deadline = item, time.monotonic() + job.timeout + ANSWER_GRACE_SECONDS
                    self._placed[remote.job_id] = item
                elif isinstance(item, Validated):
                    assert placed is not None
                    placed.agent.choose.remote(remote.job_id, self._choose(job, item))
                elif isinstance(item, Finished):
                    return self._finish(job, item)
            if cancel.is_set() and not cancel_sent:
                cancel_sent = True
                if placed is None:  # still waiting in Ray's queue: nothing runs yet
                    ray.cancel(stream)
                    return SandboxRun(cancelled=True, worker="")
                placed.agent.cancel.remote(remote.job_id)
            if deadline is not None and time.monotonic() > deadline:
                assert placed is not None
                placed.agent.cancel.remote(remote.job_id)
                return SandboxRun(infra_error=f"node {placed.node} did not answer within {ANSWER_GRACE_SECONDS:g} s "
                                              "of the job's timeout; the evaluation was stopped there",
                                  worker=placed.node, cancelled=cancel_sent)

    @staticmethod
    def _choose(job: SandboxJob, item: Validated) -> int | None:
        """Score the relayed validation predictions here (the labels never leave) and say which step won."""
        remove_tree(job.output_dir)
        job.output_dir.mkdir(parents=True)
        try:
            unpack_tree(item.entries, job.output_dir)
        except (ValueError, OSError) as exc:
            log.warning("job %s: unusable validation outputs from its node: %s", job.job_id, exc)
            return None
        if job.exchange is not None:
            job.exchange.poll(job.input_dir, job.output_dir)
        choice = job.input_dir / CHOICE
        return json.loads(choice.read_text())["step"] if choice.exists() else None

    @staticmethod
    def _finish(job: SandboxJob, item: Finished) -> SandboxRun:
        remove_tree(job.output_dir)
        job.output_dir.mkdir(parents=True)
        if item.outputs:
            try:
                unpack_tree(item.outputs, job.output_dir)
            except (ValueError, OSError) as exc:  # scored as what is there: INVALID_OUTPUT
                log.warning("job %s: unusable outputs from node %s: %s", job.job_id, item.run.worker, exc)
        return item.run


