"""A real Ray cluster on this machine for the fleet tests: a head and worker nodes, each a `ray start
--block` process group of its own, every one bound to 127.0.0.1.

Ray binds the machine's interface address unless told otherwise, and probes the internet for its own
address, so these tests run only inside a network namespace whose one interface is `lo`
(tools/loopback-netns, which `make test` uses); there nothing can leave the machine.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
REQUIRE = "EVOPROMPT_REQUIRE_FLEET"  # set by tools/loopback-netns: a fleet test that cannot run fails
EVOPROMPT = [sys.executable, "-m", "evoprompt.sdk.cli"]


def only_loopback() -> bool:
    return [name for _, name in socket.if_nameindex()] == ["lo"]


def require_loopback_only_namespace() -> None:
    """Skip (fail under EVOPROMPT_REQUIRE_FLEET=1) unless this process's only network interface is lo."""
    if not only_loopback():
        names = [name for _, name in socket.if_nameindex()]
        why = (f"the fleet tests start Ray, which must not bind this machine's interfaces ({', '.join(names)}); "
               "run them with `make test-fleet` (a network namespace with only lo)")
        if os.environ.get(REQUIRE) == "1":
            pytest.fail(why)
        pytest.skip(why)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RayCluster:
    """Head (no CPUs: nothing runs there) plus named worker nodes of `cpus` CPUs each."""

    def __init__(self, home: Path, cpus: int = 1) -> None:
        self.home = home  # the nodes' EVOPROMPT_HOME: where their agents keep job folders
        self.cpus = cpus
        self.port = free_port()
        # Ray's socket paths must stay short: a temp dir of its own under /tmp, not pytest's
        self.temp_dir = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))
        self.address = f"127.0.0.1:{self.port}"
        self.nodes: dict[str, subprocess.Popen] = {}
        self._head: subprocess.Popen | None = None

    def _ray_start(self, args: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen:
        cmd = [str(BIN / "ray"), "start", "--block", "--node-ip-address", "127.0.0.1", "--disable-usage-stats",
               "--object-store-memory", str(256 * 1024**2), *args]
        with open(log, "ab") as out:
            return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                    env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0", **env})

    def start(self, workers: list[str]) -> RayCluster:
        self._head = self._ray_start(["--head", "--port", str(self.port), "--num-cpus", "0",
                                      "--include-dashboard=false", "--temp-dir", str(self.temp_dir)],
                                     self.temp_dir / "head.log", {})
        self._wait_for_nodes(1)
        for name in workers:
            self.start_worker(name)
        return self

    def start_worker(self, name: str) -> None:
        self.nodes[name] = self._ray_start(["--address", self.address, "--num-cpus", str(self.cpus)],
                                           self.temp_dir / f"{name}.log",
                                           {"EVOPROMPT_NODE_NAME": name, "EVOPROMPT_HOME": str(self.home)})
        self._wait_for_nodes(1 + sum(p.poll() is None for p in self.nodes.values()))

    def _wait_for_nodes(self, count: int, limit: float = 120.0) -> None:
        """Until `ray status` counts `count` nodes alive."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            out = subprocess.run([str(BIN / "ray"), "status", "--address", self.address], capture_output=True,
                                 text=True, env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}).stdout
            if _alive_nodes(out) >= count:
                return
            time.sleep(1.0)
        raise AssertionError(f"the Ray cluster did not reach {count} node(s) in {limit:g} s; logs in {self.temp_dir}")

    def raylet_pid(self, name: str) -> int:
        proc = self.nodes[name]
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    stat = Path(f"/proc/{entry}/stat").read_text()
                except OSError:
                    continue
                comm, rest = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :].split()
                if comm == "raylet" and int(rest[1]) == proc.pid:
                    return int(entry)
        raise AssertionError(f"no raylet under node {name}'s ray start ({proc.pid})")

    def kill_raylet(self, name: str) -> None:
        """The node's raylet dies at once (SIGKILL); its `ray start --block` then ends the rest of it."""
        os.kill(self.raylet_pid(name), signal.SIGKILL)
        self.nodes[name].wait(timeout=60)

    def stop(self) -> None:
        """End every process group this cluster started: SIGTERM to all at once, SIGKILL to what is left."""
        procs = [p for p in [*self.nodes.values(), self._head] if p is not None]
        for proc in procs:
            _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + 5  # Ray needs no grace: nothing of it outlives its group
        for proc in procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for proc in procs:  # the leaders may be gone with a worker or two of their group still there
            _signal_group(proc, signal.SIGKILL)
            proc.wait()


def _alive_nodes(status: str) -> int:
    """Nodes listed under 'Active:' in `ray status` output."""
    lines = status.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == "Active:")
    except StopIteration:
        return 0
    count = 0
    for line in lines[start + 1 :]:
        if not line.strip().startswith("1 node_"):
            break
        count += 1
    return count


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


@dataclass
class Served:
    """An `evoprompt serve` process of its own (a front door, or a local server to compare with)."""

    proc: subprocess.Popen
    home: Path
    endpoint: str

    def client(self):
        from evoprompt.sdk import EvaluatorClient

        return EvaluatorClient(self.endpoint)

    def stop(self) -> str:
        """SIGTERM, as an operator stops it; returns what it wrote on stderr."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=180)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        return self.proc.stderr.read() if self.proc.stderr else ""


def serve(home: Path, *args: str, env: dict[str, str] | None = None) -> Served:
    """`evoprompt serve ARGS` on a free loopback port, listening when this returns."""
    port = free_port()
    proc = subprocess.Popen(EVOPROMPT + ["serve", "--port", str(port), "--home", str(home), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0", **(env or {})})
    line = proc.stdout.readline() if proc.stdout else ""
    if "listening on" not in line:
        proc.kill()
        raise AssertionError(line + (proc.stderr.read() if proc.stderr else ""))
    return Served(proc, home, f"127.0.0.1:{port}")


def serve_on_ray(cluster: RayCluster, home: Path, *args: str, env: dict[str, str] | None = None) -> Served:
    """A front door on `cluster`: `evoprompt serve --executor ray`."""
    return serve(home, "--executor", "ray", "--ray-address", cluster.address, *args, env=env)
