"""The gRPC server with a fake sandbox: what the wire carries (queue full, inputs the sandbox sees)."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

from evoprompt.evaluator.server import EvaluatorServer
from evoprompt.evaluator.settings import load_settings
from evoprompt.sdk import EvaluationRequest, EvaluatorClient, QueueFullError, RetryPolicy, Status
from tests.support.fakes import FakeExecutor

NO_RETRY = RetryPolicy(retries=0)


class InputRecorder(FakeExecutor):
    """Keeps a copy of what the sandbox was given."""

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.inputs: list[dict[str, np.ndarray]] = []

    def run(self, job, cancel):
        with np.load(job.data_dir / json.loads((job.input_dir / "spec.json").read_text())["data"]) as data:
            self.inputs.append({k: data[k] for k in data.files})
        return super().run(job, cancel)


@pytest.fixture
def fake_server(tmp_path):
    sandbox = InputRecorder(auto_open=False)
    settings = load_settings(overrides={"port": 0, "backend": "process", "home": tmp_path, "slots": 1,
                                        "queue_capacity": 2})
    server = EvaluatorServer(settings, executor=sandbox).start()
    yield server, sandbox
    sandbox.gate.set()
    server.stop()


def test_full_queue_answers_resource_exhausted_with_a_message(fake_server):
    server, sandbox = fake_server
    answers: list = []
    with EvaluatorClient(server.endpoint, retry=NO_RETRY) as client:
        threads = [threading.Thread(target=lambda i=i: answers.append(
            client.evaluate("mnist1d", "torch", f"# {i}\nclass Model: pass", max_steps=5))) for i in range(3)]
        threads[0].start()  # it runs, held at the gate ...
        assert sandbox.started.acquire(timeout=30)
        for t in threads[1:]:  # ... and two wait in the queue
            t.start()
        for _ in range(1200):  # the three callers may be slow to arrive on a busy machine
            if client.server_info().queued == 2:
                break
            threading.Event().wait(0.05)
        assert client.server_info().queued == 2
        with pytest.raises(QueueFullError, match="queue is full"):
            client.evaluate("mnist1d", "torch", "# 4\nclass Model: pass", max_steps=5, timeout=30)
        with pytest.raises(QueueFullError):  # a batch is admitted whole or not at all
            list(client.evaluate_many([EvaluationRequest("mnist1d", "torch", "# 5\nclass Model: pass")],
                                      batch_size=1))
        sandbox.gate.set()
        for t in threads:
            t.join(timeout=30)
    assert len(answers) == 3 and all(a.status is Status.OK for a in answers)
    assert len(sandbox.runs) == 3


def test_sandbox_never_sees_validation_or_test_labels(fake_server):
    server, sandbox = fake_server
    sandbox.gate.set()
    with EvaluatorClient(server.endpoint) as client:
        assert client.evaluate("mnist1d", "torch", "class Model: pass", max_steps=5).ok
    training, verifier = sandbox.inputs  # the training sandbox never sees the test or check inputs
    assert set(training) == {"x_train", "y_train", "x_val"}
    assert training["x_val"].shape == (500, 40)
    assert training["x_train"].shape == (3500, 40) and training["y_train"].shape == (3500,)
    assert set(verifier) == {"x_val", "x_test", "x_check"}  # the verifier holds no candidate code
    assert verifier["x_test"].shape == (1000, 40) and verifier["x_check"].shape == (1000, 40)
