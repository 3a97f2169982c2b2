"""The warm pool with real containers: one candidate per container, ever; no job sees another's inputs or
outputs; the pool's containers are gone after the server stops and after a kill -9 and restart; a new
image tag is never served from containers of the old one."""

from __future__ import annotations

import signal
import time
import uuid

import pytest

from evoprompt.sdk import EvaluationRequest, EvaluatorClient, Status
from tests.support.docker_util import require_docker, require_sandbox_images
from tests.support.servers import containers_of, free_port, serve, start_server, wait_until

pytestmark = pytest.mark.integration

# Says which container it runs in (the container's hostname is its id), leaves a token where a
# neighbour might find it, optionally searches for a neighbour's token, then sleeps.
PROGRAM = '''
import os
import sys
import time

print("host=" + open("/etc/hostname").read().strip(), file=sys.stderr, flush=True)
TOKEN = bytes.fromhex({token_hex!r})
os.makedirs("/tmp/mine", exist_ok=True)
open("/tmp/mine/token", "wb").write(TOKEN)
open("/job/output/token.bin", "wb").write(TOKEN)
SEEK = bytes.fromhex({seek_hex!r})
if SEEK:
    time.sleep(2)  # the neighbour has written its token by now
    found = []
    for top in ("/job", "/data", "/tmp", "/proc", "/run", "/var", "/home", "/mnt", "/srv", "/root"):
        for root, dirs, files in os.walk(top, onerror=lambda e: None):
            if root == "/proc":
                dirs[:] = [d for d in dirs if d.isdigit() or d == "self"]
            for name in files:
                path = os.path.join(root, name)
                try:
                    if os.path.isfile(path) and os.path.getsize(path) < 1 << 24:
                        with open(path, "rb") as f:
                            if SEEK in f.read():
                                found.append(path)
                except OSError:
                    continue
    print("found=" + repr(found), file=sys.stderr, flush=True)
time.sleep({sleep})

from torch import nn


class Model(nn.Linear):
    def __init__(self):
        super().__init__(40, 10)
'''


def program(token: bytes, seek: bytes = b"", sleep: float = 0) -> str:
    return PROGRAM.format(token_hex=token.hex(), seek_hex=seek.hex(), sleep=sleep)


def host_of(stderr: str) -> str:
    return next(line[5:].strip() for line in stderr.splitlines() if line.startswith("host="))


@pytest.fixture(scope="module", autouse=True)
def images():
    require_sandbox_images(["torch-cpu"])


def test_one_candidate_per_container_and_no_job_sees_another(tmp_path):
    home = tmp_path / "home"
    server = start_server(home, "docker", slots=2, frameworks=("torch",), public_data=True)
    try:
        wait_until(lambda: sum(c.status == "running" for c in containers_of(home)) == 2, 60)  # warmed: one per slot
        mine, theirs = uuid.uuid4().bytes * 2, uuid.uuid4().bytes * 2
        with EvaluatorClient(server.endpoint) as client:
            results = {r.request_id: r for r in client.evaluate_many([
                EvaluationRequest("mnist1d", "torch", program(mine, sleep=6), max_steps=5, request_id="holder"),
                EvaluationRequest("mnist1d", "torch", program(theirs, seek=mine), max_steps=5, request_id="seeker"),
            ])}
            holder, seeker = results["holder"], results["seeker"]
            assert holder.status is Status.OK and seeker.status is Status.OK, (holder.message, seeker.message)
            assert "found=[]" in seeker.stderr_tail, seeker.stderr_tail  # the neighbour's token is nowhere
            more = [client.evaluate("mnist1d", "torch", program(uuid.uuid4().bytes), max_steps=5) for _ in range(4)]
        hosts = [host_of(r.stderr_tail) for r in (holder, seeker, *more)]
        assert len(set(hosts)) == 6, hosts  # six candidates, six containers
        alive = {c.id[:12] for c in containers_of(home)}
        assert not alive & set(hosts), "a container that ran a candidate was kept"
        assert alive, "the pool refills"
    finally:
        server.stop()
    assert containers_of(home) == [], "the pool's containers outlive the server"


def test_pool_containers_of_a_killed_server_are_reaped_at_restart(tmp_path):
    home, port = tmp_path / "home", free_port()
    server = serve(home, port, "--frameworks", "torch")
    try:
        wait_until(lambda: any(c.status == "running" for c in containers_of(home)), 60)
        with EvaluatorClient(f"127.0.0.1:{port}") as client:
            assert client.evaluate("mnist1d", "torch", program(b"x"), max_steps=5).ok
        wait_until(lambda: any(c.status == "running" for c in containers_of(home)), 60)  # refilled
        server.send_signal(signal.SIGKILL)
        server.wait()
        leaked = {c.id for c in containers_of(home)}
        assert leaked, "the killed server's warm container should still be there"
        server = serve(home, port, "--frameworks", "torch")
        wait_until(lambda: not leaked & {c.id for c in containers_of(home)}, 30)
        wait_until(lambda: any(c.status == "running" for c in containers_of(home)), 60)  # a fresh pool
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    assert containers_of(home) == []


def test_a_new_image_tag_is_never_served_from_containers_of_the_old_one(tmp_path):
    client_docker = require_docker()
    home = tmp_path / "home"
    server = start_server(home, "docker", slots=1, frameworks=("torch",), public_data=True)
    new_tag = f"evoprompt-sandbox/torch-cpu:pool-test-{uuid.uuid4().hex[:8]}"
    try:
        wait_until(lambda: any(c.status == "running" for c in containers_of(home)), 60)
        old_tag = server.executor.sandbox.sandbox_id("torch")
        old = {c.id for c in containers_of(home)}
        client_docker.images.get(old_tag).tag(new_tag)
        server.executor.sandbox.sandbox_id = lambda framework: new_tag  # as if the harness had changed and been rebuilt
        since = int(time.time()) - 1
        with EvaluatorClient(server.endpoint) as client:
            result = client.evaluate("mnist1d", "torch", program(b"y"), max_steps=5)
        assert result.ok and result.sandbox == new_tag
        host = host_of(result.stderr_tail)
        created = {e["id"][:12]: e["Actor"]["Attributes"]["image"] for e in client_docker.api.events(
            since=since, until=int(time.time()) + 1, decode=True,
            filters={"type": "container", "event": "create", "label": "evoprompt.managed=1"})}
        assert created[host] == new_tag
        wait_until(lambda: not old & {c.id for c in containers_of(home)}, 30)  # the old pool drained
        wait_until(lambda: any(c.labels.get("evoprompt.image") == new_tag for c in containers_of(home)), 60)
    finally:
        server.stop()
        client_docker.images.remove(new_tag)
