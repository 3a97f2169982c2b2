"""Access control: an optional bearer token and TLS, on the server, the SDK and the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from evoprompt.evaluator.server import EvaluatorServer
from evoprompt.evaluator.settings import load_settings
from evoprompt.sdk import (
    AuthenticationError,
    EvaluationRequest,
    EvaluatorClient,
    EvaluatorUnavailableError,
    RetryPolicy,
)
from tests.support.fakes import FakeExecutor
from tests.support.servers import PROGRAMS

TOKEN = "s3cret-token"
CODE = "class Model: pass\n"
NO_RETRY = RetryPolicy(retries=0)


def start(tmp_path, **overrides):
    sandbox = FakeExecutor()
    settings = load_settings(overrides={"port": 0, "backend": "process", "home": tmp_path / "home", **overrides})
    return EvaluatorServer(settings, executor=sandbox).start(), sandbox


@pytest.fixture
def token_server(tmp_path):
    server, sandbox = start(tmp_path, token=TOKEN)
    yield server, sandbox
    server.stop()


def test_calls_without_the_token_are_refused_and_not_run(token_server):
    server, sandbox = token_server
    for token in (None, "wrong"):
        with EvaluatorClient(server.endpoint, token=token, retry=NO_RETRY) as client:
            with pytest.raises(AuthenticationError, match="bearer token"):
                client.evaluate("mnist1d", "torch", CODE)
            with pytest.raises(AuthenticationError):
                list(client.evaluate_many([EvaluationRequest("mnist1d", "torch", CODE)], batch_size=1))
            with pytest.raises(AuthenticationError):
                client.server_info()
    assert sandbox.runs == []


def test_the_right_token_gets_through_and_health_stays_open(token_server):
    server, sandbox = token_server
    with EvaluatorClient(server.endpoint, token=TOKEN) as client:
        assert client.evaluate("mnist1d", "torch", CODE).ok
        assert [r.ok for r in client.evaluate_many([EvaluationRequest("mnist1d", "torch", CODE + "#")])] == [True]
    assert len(sandbox.runs) == 2
    with grpc.insecure_channel(server.endpoint) as channel:  # load balancers probe without credentials
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", str(folder / "key.pem"),
                    "-out", str(folder / "cert.pem")], check=True, capture_output=True)
    return folder / "cert.pem", folder / "key.pem"


def test_tls_with_a_token(tmp_path, certificate):
    cert, key = certificate
    server, sandbox = start(tmp_path, tls_cert=str(cert), tls_key=str(key), token=TOKEN)
    try:
        with EvaluatorClient(server.endpoint, root_certificates=cert.read_bytes(), token=TOKEN) as client:
            assert client.evaluate("mnist1d", "torch", CODE).ok
        with EvaluatorClient(server.endpoint, retry=NO_RETRY, token=TOKEN) as plain:  # no TLS: no answer
            with pytest.raises(EvaluatorUnavailableError):
                plain.evaluate("mnist1d", "torch", CODE, timeout=5)
        # the CLI: --tls-ca and the token from the environment
        proc = subprocess.run([sys.executable, "-m", "evoprompt.sdk.cli", "evaluate", str(PROGRAMS / "bad_no_model.py"),
                               "--task", "mnist1d", "--framework", "torch", "--evaluator", server.endpoint,
                               "--tls-ca", str(cert), "--json"], capture_output=True, text=True, timeout=120,
                              env={**os.environ, "EVOPROMPT_TOKEN": TOKEN})
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["status"] == "OK"  # the fake sandbox trains anything
    finally:
        server.stop()


def test_tls_needs_both_files(tmp_path, certificate):
    with pytest.raises(ValueError, match="both"):
        load_settings(overrides={"tls_cert": str(certificate[0])})
