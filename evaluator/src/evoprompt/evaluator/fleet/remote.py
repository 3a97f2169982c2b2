"""The Ray side: the agent actor, and the task that carries one evaluation to whichever node Ray picks.

The task asks for one slot's resources (`num_cpus`, and `num_gpus = 1/K` for a GPU share), so Ray's
scheduler decides where each evaluation runs and packs K of them per GPU. It holds those resources
while its node's agent runs the job, and streams what the front door needs: where it runs, the
validation predictions (to be scored there), the end.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

from ..sandbox.base import GpuShare
from .agent import NodeAgent
from .messages import AgentConfig, Finished, Placed, RemoteJob, Validated

NAMESPACE = "evoprompt"
AGENT_THREADS = 32  # concurrent calls an agent serves beyond its jobs' (each holds run and validation)


class AgentMissing(RuntimeError):
    """The task landed on a node whose agent the front door has not started yet (the node just joined)."""


def agent_name(config: AgentConfig, node_id: str) -> str:
    return f"evoprompt-agent-{config.owner}-{node_id[:16]}"


def node_slots(resources: dict[str, float], config: AgentConfig) -> list[GpuShare | None]:
    """The slots a node's Ray resources hold: K per GPU with a GPU share, else one per `cpus` CPUs."""
    if config.gpu_share:
        return [GpuShare(str(g), config.gpu_share) for g in range(int(resources.get("GPU", 0)))
                for _ in range(config.gpu_share)]
    return [None] * int(resources.get("CPU", 0) // max(config.limits.cpus, 1e-9))


@functools.cache
def agent_actor() -> Any:
    import ray

    return ray.remote(NodeAgent)


def start_agent(config: AgentConfig, node_id: str, slots: list[GpuShare | None]) -> Any:
    """The node's agent (started unless it runs), pinned to the node, owned by the calling front door."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    return agent_actor().options(
        name=agent_name(config, node_id), namespace=NAMESPACE, get_if_exists=True, num_cpus=0,
        max_concurrency=AGENT_THREADS + 2 * len(slots), max_restarts=0,
        scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False),
    ).remote(config, slots)


def evaluate_on_node(job: RemoteJob, config: AgentConfig) -> Iterator[Placed | Validated | Finished]:
    """Ray task (a generator): run `job` through this node's agent, yielding Placed, Validated, Finished."""
    import ray

    node_id = ray.get_runtime_context().get_node_id()
    try:
        agent = ray.get_actor(agent_name(config, node_id), namespace=NAMESPACE)
    except ValueError:
        raise AgentMissing(f"no agent on node {node_id[:16]} yet") from None
    gpu = GpuShare(str(ray.get_gpu_ids()[0]), config.gpu_share) if config.gpu_share else None
    finished = agent.run.remote(job, gpu)
    try:
        yield Placed(ray.get(agent.node_name.remote()), agent, node_id)
        validation = ray.get(agent.validation.remote(job.job_id))
        if validation is not None:
            yield Validated(validation)
        yield ray.get(finished)
    except BaseException:  # cancelled (ray.cancel) or the front door went away: stop the sandbox too
        agent.cancel.remote(job.job_id)
        raise


@functools.cache
def evaluation_task() -> Any:
    import ray

    return ray.remote(evaluate_on_node)
