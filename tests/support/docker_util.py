"""Docker helpers shared by the tests that need a Docker engine.

`require_docker()` returns a docker-py client that has answered a ping. Without an engine it skips the
calling test, unless EVOPROMPT_REQUIRE_DOCKER=1 is set (CI with Docker): then it fails it, so a broken
engine cannot pass as a run of skipped tests. `require_sandbox_images()` also builds (idempotently) the
sandbox images a test needs.
"""

from __future__ import annotations

import os

import pytest

REQUIRE_ENV = "EVOPROMPT_REQUIRE_DOCKER"


def docker_required() -> bool:
    return os.environ.get(REQUIRE_ENV, "").strip() == "1"


def _skip_or_fail(reason: str) -> None:
    if docker_required():
        pytest.fail(f"{reason} (and {REQUIRE_ENV}=1 says Docker must be there)", pytrace=False)
    pytest.skip(reason)


def require_docker(timeout: int = 600):
    """A `docker.DockerClient` that answers, or pytest.skip / pytest.fail (EVOPROMPT_REQUIRE_DOCKER=1)."""
    try:
        import docker
    except ImportError as e:
        _skip_or_fail(f"the docker Python package is not installed ({e})")
    host = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
    except Exception as e:
        _skip_or_fail(f"no Docker engine answers at {host}: {e}")
    return client


def require_sandbox_images(names: list[str] | None = None) -> dict[str, str]:
    """Build the sandbox images `names` (default: the CPU images) unless present; {name: tag}.

    A build that cannot even start for want of tools (no debootstrap, not root) skips the test, or
    fails it under EVOPROMPT_REQUIRE_DOCKER=1; any other build failure fails it."""
    from evoprompt.evaluator import image_builder, images

    require_docker()
    try:
        return image_builder.build_images(names, log=lambda line: None)
    except images.ImageBuildError as e:
        message = str(e)
        if message.startswith(("debootstrap not found", "debootstrap needs root")):
            _skip_or_fail(f"cannot build the sandbox images here: {message}")
        pytest.fail(f"building the sandbox images failed: {message}", pytrace=False)
        raise  # unreachable: pytest.fail raises


def list_containers(client, **kwargs) -> list:
    """`client.containers.list(all=True, **kwargs)`, retried when a container goes away between the
    listing and its inspection (docker-py inspects each one: a removal in between is a NotFound)."""
    import docker.errors

    for attempt in range(5):
        try:
            return client.containers.list(all=True, **kwargs)
        except docker.errors.NotFound:
            if attempt == 4:
                raise
    return []
