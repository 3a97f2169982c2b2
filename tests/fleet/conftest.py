"""A Ray cluster (a head and two worker nodes) and a front door on it, per test module.

Everything here runs inside a network namespace with only `lo` (tests/support/ray_cluster.py): the
front door is `evoprompt serve --executor ray` in a process of its own, as a fleet runs it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.docker_util import list_containers, require_docker, require_sandbox_images
from tests.support.ray_cluster import RayCluster, Served, require_loopback_only_namespace, serve_on_ray

WORKERS = ["node-1", "node-2"]
DATA_SECRET = "fleet-tests"  # the front door and the local executor it is compared with score on the same data


def start_front_door(cluster: RayCluster, home: Path, *args: str) -> Served:
    return serve_on_ray(cluster, home, "--frameworks", "torch", "--timeout", "120", *args,
                        env={"EVOPROMPT_DATA_SECRET": DATA_SECRET})


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[RayCluster]:
    require_loopback_only_namespace()
    require_sandbox_images(["torch-cpu"])
    ray_cluster = RayCluster(tmp_path_factory.mktemp("nodes-home"))
    try:
        yield ray_cluster.start(WORKERS)
    finally:
        ray_cluster.stop()


@pytest.fixture(scope="module")
def front_door(cluster, tmp_path_factory) -> Iterator[Served]:
    door = start_front_door(cluster, tmp_path_factory.mktemp("front-door"))
    yield door
    door.stop()


def node_containers(door: Served, node: str) -> list:
    """The containers a front door's agent on `node` started (its owner label), in any state."""
    from evoprompt.evaluator.sandbox import make_sandbox

    owner_key = f"{(door.home / 'results.sqlite3').resolve()}|{node}"
    owner = make_sandbox("docker", owner_key=owner_key).owner  # type: ignore[attr-defined]
    return list_containers(require_docker(), filters={"label": f"evoprompt.owner={owner}"})


def job_containers(door: Served, cluster: RayCluster) -> list:
    """Containers of this front door's agents that were given a job (running or not); the warm pools',
    still waiting for theirs (a box in the node's pool folder without READY), are not among them."""
    import hashlib

    owner_key = str((door.home / "results.sqlite3").resolve())
    found = []
    for node in WORKERS:
        pool = cluster.home / "fleet" / hashlib.sha256(f"{owner_key}|{node}".encode()).hexdigest()[:16]
        waiting = {p.name for p in pool.glob("*/pool/*") if not (p / "input" / "ready").exists()}
        found += [c for c in node_containers(door, node)
                  if not (c.status == "running" and c.labels.get("evoprompt.job") in waiting)]
    return found
