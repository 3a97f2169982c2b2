"""The Kubernetes manifests in deploy/ are valid and agree with the code they deploy.

Core kinds are validated offline against the Kubernetes API schemas (kubernetes-validate, strict: an
unknown field fails); the KubeRay RayCluster (a custom resource) is checked for what the fleet relies
on; the front door's command line is parsed by the real `evoprompt serve` parser.
"""

from __future__ import annotations

import argparse
import copy
import re
import shlex
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from evoprompt.evaluator.cli import serve_cmd
from evoprompt.evaluator.server import SERVICE_NAME

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = REPO / "deploy" / "kubernetes"
KUBERNETES_VERSION = "1.33.0"
CORE_API_VERSIONS = ("v1", "apps/v1")


def documents() -> list[dict]:
    docs = [d for path in sorted(MANIFESTS.glob("*.yaml")) for d in yaml.safe_load_all(path.read_text()) if d]
    assert docs, f"no manifests in {MANIFESTS}"
    return docs


def only(kind: str) -> dict:
    (doc,) = [d for d in documents() if d["kind"] == kind]
    return doc


@pytest.mark.parametrize("doc", [d for d in documents() if d["apiVersion"] in CORE_API_VERSIONS],
                         ids=lambda d: f"{d['kind']}/{d['metadata']['name']}")
def test_core_manifests_validate_against_the_kubernetes_schemas(doc):
    kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_the_validator_refuses_a_broken_manifest():
    broken = copy.deepcopy(only("Deployment"))
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["grpc"]["port"] = "fifty"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def serve_arguments() -> argparse.Namespace:
    container = only("Deployment")["spec"]["template"]["spec"]["containers"][0]
    script = " ".join(container["args"])
    command = shlex.split(script.split("exec ", 1)[1])
    assert command[:2] == ["evoprompt", "serve"], command
    parser = argparse.ArgumentParser()
    serve_cmd.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(command[1:])


def test_the_front_door_runs_the_ray_executor_with_probes_on_its_health_service():
    args = serve_arguments()
    assert args.executor == "ray" and args.ray_address == "auto" and args.host == "0.0.0.0"
    pod = only("Deployment")["spec"]["template"]
    container = pod["spec"]["containers"][0]
    assert container["livenessProbe"]["grpc"] == {"port": args.port, "service": ""}
    assert container["readinessProbe"]["grpc"] == {"port": args.port, "service": SERVICE_NAME}
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == str(args.metrics_port)
    ports = {p["name"]: p for p in only("Service")["spec"]["ports"]}
    assert {p["containerPort"] for p in container["ports"]} == {args.port, args.metrics_port}
    assert ports["grpc"]["port"] == args.port and ports["grpc"]["appProtocol"] == "grpc"


def test_the_ray_cluster_has_a_gpu_group_and_matches_the_front_door():
    cluster = only("RayCluster")
    assert cluster["apiVersion"] == "ray.io/v1"
    pinned = re.search(r"^ray==(\S+)$", (REPO / "constraints.txt").read_text(), re.M)
    assert pinned and cluster["spec"]["rayVersion"] == pinned.group(1)
    assert cluster["spec"]["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"
    groups = {g["groupName"]: g for g in cluster["spec"]["workerGroupSpecs"]}
    gpu = groups["gpu-workers"]
    limits = gpu["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert limits["nvidia.com/gpu"] == gpu["rayStartParams"]["num-gpus"] == "1"
    assert serve_arguments().ray_gpu_share >= 1
    for group in groups.values():
        env = {e["name"] for e in group["template"]["spec"]["containers"][0]["env"]}
        assert {"EVOPROMPT_NODE_NAME", "EVOPROMPT_HOME"} <= env, group["groupName"]
    script = " ".join(only("Deployment")["spec"]["template"]["spec"]["containers"][0]["args"])
    assert f"--address={cluster['metadata']['name']}-head-svc:6379" in script  # KubeRay's head service
    images = {c["image"] for d in documents() if d["kind"] in ("Deployment", "RayCluster")
              for c in _containers(d)}
    assert len(images) == 1, images


def _containers(doc: dict) -> list[dict]:
    if doc["kind"] == "Deployment":
        return doc["spec"]["template"]["spec"]["containers"]
    spec = doc["spec"]
    return [c for g in [spec["headGroupSpec"], *spec["workerGroupSpecs"]] for c in g["template"]["spec"]["containers"]]
