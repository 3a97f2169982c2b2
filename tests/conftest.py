"""Shared fixtures: real evaluator servers on a loopback port (docker and process back-ends)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from evoprompt.evaluator.server import EvaluatorServer
from evoprompt.sdk import EvaluatorClient
from tests.support.docker_util import require_sandbox_images
from tests.support.servers import start_server


@pytest.fixture(scope="module")
def docker_server(tmp_path_factory) -> Iterator[EvaluatorServer]:
    require_sandbox_images()
    server = start_server(tmp_path_factory.mktemp("docker-home"), "docker")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def process_server(tmp_path_factory) -> Iterator[EvaluatorServer]:
    server = start_server(tmp_path_factory.mktemp("process-home"), "process")
    yield server
    server.stop()


@pytest.fixture(scope="module", params=["docker", "process"])
def any_server(request) -> EvaluatorServer:
    """The same client-side tests run against both back-ends (OSS Vizier's pattern)."""
    return request.getfixturevalue(f"{request.param}_server")


@pytest.fixture
def client(any_server) -> Iterator[EvaluatorClient]:
    with EvaluatorClient(any_server.endpoint) as c:
        yield c

