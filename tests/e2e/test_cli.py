"""`evoprompt serve` and `evoprompt evaluate` as a user runs them: real processes, real output."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from evoprompt.sdk import EvaluatorClient
from evoprompt.search.seeds import list_seeds
from tests.support.servers import PROGRAMS

pytestmark = pytest.mark.integration
EVOPROMPT = [sys.executable, "-m", "evoprompt.sdk.cli"]


@pytest.fixture
def env(tmp_path):
    return {**os.environ, "EVOPROMPT_HOME": str(tmp_path / "home")}


@pytest.fixture
def seed_file(tmp_path) -> Path:
    path = tmp_path / "mlp.py"
    path.write_text(next(s for s in list_seeds("mnist1d", "torch") if s.name == "mlp").code)
    return path


def run(args, env, timeout=300):
    if args[0] == "evaluate" and "--evaluator" not in args:  # an embedded server reads no EVOPROMPT_* variable
        args = [*args, "--home", env["EVOPROMPT_HOME"]]
    return subprocess.run(EVOPROMPT + args, env=env, capture_output=True, text=True, timeout=timeout)


def test_evaluate_json_is_one_object_with_the_response_fields(seed_file, env):
    from evoprompt.sdk.proto import evaluator_pb2 as pb

    proc = run(["evaluate", str(seed_file), "--task", "mnist1d", "--framework", "torch", "--max-steps", "100",
                "--backend", "process", "--json"], env)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)  # exactly one JSON document on stdout
    assert set(data) == {f.name for f in pb.EvaluateResponse.DESCRIPTOR.fields}
    assert data["status"] == "OK" and data["num_params"] > 0 and data["steps"] == 100
    assert "NOT a security boundary" in proc.stderr  # --backend process says what it is


def test_evaluate_table_and_exit_status_for_a_failing_program(env):
    proc = run(["evaluate", str(PROGRAMS / "bad_no_model.py"), "--task", "mnist1d", "--framework", "torch",
                "--backend", "process"], env)
    assert proc.returncode == 1
    assert re.search(r"^status\s+COMPILE_ERROR$", proc.stdout, re.M)
    assert "no top-level class `Model`" in proc.stdout


def test_evaluate_reports_bad_arguments_without_a_traceback(seed_file, env, tmp_path):
    proc = run(["evaluate", str(seed_file), "--task", "nope", "--framework", "torch", "--backend", "process"], env)
    assert proc.returncode == 2 and "unknown task 'nope'" in proc.stderr and "Traceback" not in proc.stderr
    proc = run(["evaluate", str(tmp_path / "missing.py"), "--task", "mnist1d", "--framework", "torch"], env)
    assert proc.returncode == 2 and "no such file or folder" in proc.stderr and "Traceback" not in proc.stderr


def test_serve_then_evaluate_against_it_then_stop(seed_file, env):
    server = subprocess.Popen(EVOPROMPT + ["serve", "--port", "0", "--backend", "process", "--slots", "1"],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = server.stdout.readline()
        match = re.search(r"listening on (\S+)", line)
        assert match, line + server.stderr.read()
        endpoint = match.group(1)
        with EvaluatorClient(endpoint) as client:
            client.wait_ready(30)
            assert client.server_info().backend == "process"
        proc = run(["evaluate", str(seed_file), "--task", "mnist1d", "--framework", "torch", "--max-steps", "50",
                    "--evaluator", endpoint, "--json"], env)
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["status"] == "OK"
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=60) == 0


def test_serve_refuses_bad_settings(env):
    proc = run(["serve", "--port", "0", "--backend", "process", "--slots", "0"], env, timeout=60)
    assert proc.returncode == 2 and "at least 1" in proc.stderr


def test_metrics_endpoint_counts_answers(tmp_path):
    import socket
    import urllib.request

    from tests.support.servers import start_server

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = start_server(tmp_path, "process", metrics_port=port)
    try:
        with EvaluatorClient(server.endpoint) as client:
            client.evaluate("mnist1d", "torch", (PROGRAMS / "bad_no_model.py").read_text())
            client.evaluate("mnist1d", "torch", (PROGRAMS / "bad_no_model.py").read_text())
        body = urllib.request.urlopen(f"http://127.0.0.1:{server.metrics_port}/metrics", timeout=10).read().decode()
    finally:
        server.stop()
    assert 'evoprompt_evaluations_total{cached="false",status="COMPILE_ERROR"} 1.0' in body
    assert 'evoprompt_evaluations_total{cached="true",status="COMPILE_ERROR"} 1.0' in body
    assert "evoprompt_queued 0.0" in body and "evoprompt_running 0.0" in body
