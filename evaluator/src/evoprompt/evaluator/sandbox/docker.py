"""The `docker` back-end: one fresh, locked-down container per evaluation (DESIGN section 4).

No network, read-only root, the candidate as nobody with no capabilities, no-new-privileges,
pids/memory/CPU limits, tini as PID 1 (root with three capabilities, out of the candidate's reach),
size-capped tmpfs scratch, code and data mounted read-only, output folder size-watched from the host,
wall-clock limit enforced from the host, logs capped by Docker's json-file rotation. Containers carry
labels (owner: the home; instance: the server that started them) so a server reaps the ones a dead
instance leaked, never a live one's. A container killed by anyone but the evaluator (`docker kill`,
`docker rm -f`, another program on the engine) is an infrastructure failure, not the candidate's.

Containers are started ahead of need (pool.py): each one, with every limit above, imports its
framework and waits for the job folder only it mounts; it runs one job and is removed.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from evoprompt.sdk.errors import EvaluatorUnavailableError

from ..images import FRAMEWORK_GPU_IMAGES, FRAMEWORK_IMAGES, ImageBuildError, ImageSettings, image_tag
from .base import HARNESS_MAX_WAIT, Box, Sandbox, SandboxFailure, SandboxRun, TailBuffer, gpu_env

log = logging.getLogger(__name__)

POLL_SECONDS = 0.1  # the exit, the watchdog and the job's exchange are checked this often
SANDBOX_UID = 65534  # nobody:nogroup runs the harness and the candidate
# PID 1 (tini) runs as root with only the three capabilities it needs to start the harness as nobody
# with an empty bounding set. A candidate cannot ptrace or signal a process of another uid, so it cannot
# stop or steer the init that reaps it (as it could when tini ran as nobody too).
INIT_CAPS = ["SETUID", "SETGID", "SETPCAP"]
DROP_TO_SANDBOX_USER = [
    "setpriv", f"--reuid={SANDBOX_UID}", f"--regid={SANDBOX_UID}", "--clear-groups",
    "--inh-caps=-all", "--bounding-set=-all", "--",
]
LABEL_MANAGED = "evoprompt.managed"
LABEL_OWNER = "evoprompt.owner"
LABEL_INSTANCE = "evoprompt.instance"
LABEL_JOB = "evoprompt.job"
LABEL_IMAGE = "evoprompt.image"


def container_spec(box: Box, image: str, owner: str, runtime: str | None = None,
                   instance: str = "") -> dict[str, Any]:
    """Keyword arguments for `containers.create`: the whole security policy in one pure function. The
    container mounts its box alone and waits there for its job; its data arrives in the box's input
    folder only once the candidate's model is built (sandbox/lifecycle.py)."""
    from docker.types import DeviceRequest, LogConfig, Ulimit

    limits = box.limits
    env = {
        "HOME": "/tmp",
        "TMPDIR": "/tmp",
        "OMP_NUM_THREADS": str(max(1, int(limits.cpus))),
        **gpu_env(box.gpu),
    }
    volumes = {
        str(box.input_dir): {"bind": "/job/input", "mode": "ro"},
        str(box.output_dir): {"bind": "/job/output", "mode": "rw"},
    }
    harness = ["python", "-m", "evoprompt_harness", "--wait", box.framework, "--max-wait", f"{HARNESS_MAX_WAIT:g}"]
    spec: dict[str, Any] = {
        "image": image,
        "command": [*DROP_TO_SANDBOX_USER, *harness, "/job/input", "/job/output"],
        "name": f"evoprompt-{box.dir.name}",
        "user": "0:0",
        "working_dir": "/tmp",
        "environment": env,
        "labels": {LABEL_MANAGED: "1", LABEL_OWNER: owner, LABEL_INSTANCE: instance, LABEL_JOB: box.dir.name,
                   LABEL_IMAGE: image},
        "network_mode": "none",
        "read_only": True,
        "cap_drop": ["ALL"],
        "cap_add": INIT_CAPS,
        "security_opt": ["no-new-privileges"],
        "pids_limit": limits.pids,
        "mem_limit": limits.memory_bytes,
        "memswap_limit": limits.memory_bytes,
        "nano_cpus": int(limits.cpus * 1e9),
        "init": True,
        "ipc_mode": "private",
        "tmpfs": {
            "/tmp": f"rw,nosuid,nodev,size={limits.tmpfs_bytes},mode=1777",
            "/dev/shm": f"rw,nosuid,nodev,noexec,size={64 * 1024**2}",
        },
        "volumes": volumes,
        "ulimits": [
            Ulimit(name="fsize", soft=limits.output_bytes, hard=limits.output_bytes),
            Ulimit(name="core", soft=0, hard=0),
            Ulimit(name="nofile", soft=1024, hard=1024),
        ],
        "log_config": LogConfig(type="json-file", config={"max-size": "1m", "max-file": "1"}),
        "stdin_open": False,
        "detach": True,
    }
    if box.gpu is not None:
        spec["device_requests"] = [DeviceRequest(device_ids=[box.gpu.device_id], capabilities=[["gpu"]])]
    if runtime:
        spec["runtime"] = runtime
    return spec


class DockerSandbox(Sandbox):
    name = "docker"
    poll_seconds = 0.1

    def __init__(self, owner: str, runtime: str | None = None, client: Any = None, gpu: bool = False,
                 build_missing: bool = False, instance: str = "", image_settings: ImageSettings | None = None) -> None:
        """`owner`: the home's label; `instance`: the server's (instance.py), on every container it starts.
        `build_missing`: build a missing image on first need instead of failing with the command that
        builds it; `image_settings`: what the images are built from and where (the evaluator's settings)."""
        self.owner = owner
        self.image_settings = image_settings or ImageSettings()
        self.instance = instance
        self.images = FRAMEWORK_GPU_IMAGES if gpu else FRAMEWORK_IMAGES
        self.runtime = runtime
        self.build_missing = build_missing
        self._client = client
        self._build_lock = threading.Lock()
        self._cpu_files: dict[str, Path | None] = {}  # container id -> its cgroup's CPU counter

    @property
    def client(self) -> Any:
        if self._client is None:
            import docker

            try:
                self._client = docker.from_env(timeout=60)
                self._client.ping()
            except Exception as exc:
                self._client = None
                raise EvaluatorUnavailableError(
                    f"no Docker engine answers ({exc}); start dockerd, or use --backend process "
                    "(not a security boundary)"
                ) from None
        return self._client

    def sandbox_id(self, framework: str) -> str:
        return image_tag(self.images[framework], sandbox_base=self.image_settings.sandbox_base)  # as sandbox_id_for

    def check(self, frameworks: list[str]) -> None:
        """The engine answers, and each framework's image is there (built now when build_missing)."""
        _ = self.client
        for framework in frameworks:
            self._ensure_image(framework)

    def prepare(self, framework: str) -> None:
        if self.build_missing:
            with self._engine(framework):
                self._ensure_image(framework)

    def _not_built(self, framework: str, why: str = "") -> str:
        return (f"the sandbox image {self.sandbox_id(framework)} is not built{why}; run `make images` (or "
                f"`evoprompt images build {self.images[framework]}`) and retry")

    def _ensure_image(self, framework: str) -> None:
        from ..images import image_present

        tag = self.sandbox_id(framework)
        if image_present(self.client, tag):
            return
        if not self.build_missing:
            raise EvaluatorUnavailableError(self._not_built(framework))
        from ..image_builder import build_image

        with self._build_lock:  # one build at a time; the others find the image when it is done
            if not image_present(self.client, tag):
                log.warning("building the sandbox image %s on first need (minutes, once)", tag)
                build_image(self.images[framework], log=log.info, **self.image_settings.as_kwargs())

    @contextlib.contextmanager
    def _engine(self, framework: str = "") -> Iterator[None]:
        """Turn the engine's failures into SandboxFailure with a message a person can act on."""
        import docker.errors
        import requests

        try:
            yield
        except (EvaluatorUnavailableError, ImageBuildError) as exc:
            raise SandboxFailure(str(exc)) from None
        except docker.errors.ImageNotFound:
            raise SandboxFailure(self._not_built(framework, " (its harness or requirements changed since it "
                                                 "was)")) from None
        except docker.errors.NotFound as exc:
            raise SandboxFailure(f"the sandbox's container was removed by something other than the evaluator "
                                 f"({exc.explanation or exc}); the evaluation did not finish: retry it") from None
        except docker.errors.DockerException as exc:
            raise SandboxFailure(f"the Docker engine failed: {exc}") from None
        except requests.exceptions.RequestException as exc:  # dockerd stopped or restarted under us
            raise SandboxFailure(f"lost the Docker engine while the sandbox ran ({exc}); the evaluation did not "
                                 "finish: retry it once dockerd answers again") from None

    # -- one sandbox's life -----------------------------------------------------------------

    def launch(self, box: Box) -> Any:
        """Create and start a container that waits on `box`."""
        with self._engine(box.framework):
            container = self.client.containers.create(**container_spec(
                box, box.sandbox_id, self.owner, self.runtime, self.instance))
            try:
                container.start()
            except BaseException:
                _remove(container)
                raise
        return container

    def alive(self, handle: Any) -> bool:
        try:
            handle.reload()
        except Exception:  # noqa: BLE001 - gone, or the engine is: either way not usable
            return False
        return handle.status == "running"

    def cpu_seconds(self, handle: Any) -> float | None:
        """The container's CPU time from its cgroup (v2: cpu.stat; v1: cpuacct.usage): the host's count,
        whatever the processes inside say. The cgroup is found once, through the container's first process."""
        if handle.id not in self._cpu_files:
            self._cpu_files[handle.id] = _cgroup_cpu_file(handle)
        path = self._cpu_files[handle.id]
        return _read_cpu_file(path) if path is not None else None

    def wait(self, handle: Any, seconds: float) -> int | None:
        with self._engine():
            return _wait(handle, seconds)

    def kill(self, handle: Any) -> None:
        with self._engine():
            _kill(handle)

    def collect(self, handle: Any, box: Box, run: SandboxRun) -> None:
        with self._engine():
            handle.reload()
            state = handle.attrs["State"]
            run.oom_killed = bool(state.get("OOMKilled"))
            if run.exit_code is None and not run.stopped:
                run.exit_code = int(state.get("ExitCode", -1))
            run.stderr_tail = _log_tail(handle, box.limits.log_tail_bytes)
            if not run.stopped and run.exit_code != 0 and not run.oom_killed:
                sent = self._killed_from_outside(handle, box)
                if sent:
                    run.infra_error = (
                        f"the sandbox was killed from outside the evaluator (signal {sent}: `docker kill`, "
                        "`docker stop`, `docker rm -f` or another program using the Docker engine); the "
                        "candidate is not to blame and nothing was stored: retry it")

    def _killed_from_outside(self, handle: Any, box: Box) -> str:
        """The signal of a `kill` the engine logged for this container, "" when there was none. The
        evaluator kills a container only when it stopped it itself (`run.stopped`), so any logged kill of
        a container that was not stopped came from elsewhere; a candidate killing its own processes
        leaves no such entry."""
        now = self.client.info().get("SystemTime", "")  # the engine's clock: `until` must not be its future
        until = datetime.datetime.fromisoformat(now).timestamp() if now else time.time()
        events = self.client.api.events(since=int(box.created_at) - 60, until=f"{until:.9f}",
                                         filters={"container": handle.id, "event": "kill"}, decode=True)
        try:
            for event in events:
                sent = str(event.get("Actor", {}).get("Attributes", {}).get("signal", "?"))
                return signal.Signals(int(sent)).name if sent.isdigit() else sent
        finally:
            with contextlib.suppress(Exception):
                events.close()
        return ""

    def destroy(self, handle: Any) -> None:
        self._cpu_files.pop(handle.id, None)
        with self._engine():
            _remove(handle)

    def reap(self, live: Callable[[str], bool]) -> int:
        """Remove the containers of this owner whose instance is dead (or that carry none: an earlier
        version's): leftovers of a server that died mid-evaluation."""
        with self._engine():
            containers = self.client.containers.list(  # another instance may remove one while this lists
                all=True, filters={"label": [f"{LABEL_MANAGED}=1", f"{LABEL_OWNER}={self.owner}"]}, ignore_removed=True)
            dead = [c for c in containers if c.labels.get(LABEL_INSTANCE) != self.instance
                    and not live(c.labels.get(LABEL_INSTANCE, ""))]
            for container in dead:
                _remove(container)
        return len(dead)


def _cgroup_cpu_file(container: Any) -> Path | None:
    """The CPU counter of the container's cgroup, from its first process's /proc/PID/cgroup (None when
    it cannot be found: no counter is better than a wrong one)."""
    pid = int((container.attrs.get("State") or {}).get("Pid") or 0)
    if not pid:
        try:
            container.reload()
            pid = int(container.attrs["State"]["Pid"] or 0)
        except Exception:  # noqa: BLE001 - gone or the engine is: no counter
            return None
    try:
        lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "" and Path(f"/sys/fs/cgroup{path}/cpu.stat").exists():
            return Path(f"/sys/fs/cgroup{path}/cpu.stat")
        if "cpuacct" in controllers.split(","):
            return Path(f"/sys/fs/cgroup/{controllers}{path}/cpuacct.usage")
    return None


def _read_cpu_file(path: Path) -> float | None:
    try:
        text = path.read_text()
    except OSError:
        return None
    if path.name == "cpuacct.usage":
        return int(text) / 1e9
    for line in text.splitlines():
        if line.startswith("usage_usec "):
            return int(line.split()[1]) / 1e6
    return None


def _wait(container: Any, seconds: float) -> int | None:
    """The container's exit status, or None if it is still running after `seconds`."""
    import requests

    try:
        return int(container.wait(timeout=seconds).get("StatusCode", -1))
    except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError) as exc:
        if isinstance(exc, requests.exceptions.ConnectionError) and "timed out" not in str(exc).lower():
            raise
        return None


def _kill(container: Any) -> None:
    import docker.errors

    try:
        container.kill()
    except docker.errors.APIError:  # already gone or exited: nothing to kill
        pass


def _remove(container: Any) -> None:
    import docker.errors

    try:
        container.remove(force=True, v=True)
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError as exc:
        log.warning("could not remove container %s: %s", container.id[:12], exc)


def _log_tail(container: Any, limit: int) -> str:
    """Last bytes of stderr; Docker's log rotation already bounds what is kept on disk."""
    import docker.errors

    tail = TailBuffer(limit)
    try:
        tail.write(container.logs(stdout=False, stderr=True, tail=200))
    except docker.errors.APIError:
        return ""
    return tail.text()
