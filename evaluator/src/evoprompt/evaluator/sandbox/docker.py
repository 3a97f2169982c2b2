"""The `docker` back-end: one fresh, locked-down container per evaluation (DESIGN section 4).

No network, read-only root, the candidate as nobody with no capabilities, no-new-privileges,
pids/memory/CPU limits, tini as PID 1 (root with three capabilities, out of the candidate's reach),
size-capped tmpfs scratch, code and data mounted read-only, output folder size-watched from the host,
wall-clock limit enforced from the host, logs capped by Docker's json-file rotation. Containers carry
labels so a restarted server reaps the ones it leaked.

Containers are started ahead of need (pool.py): each one, with every limit above, imports its
framework and waits for the job folder only it mounts; it runs one job and is removed.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

from evoprompt.sdk.errors import EvaluatorUnavailableError

from ..images import FRAMEWORK_GPU_IMAGES, FRAMEWORK_IMAGES, ImageBuildError, image_tag
from .base import SandboxJob, SandboxRun, gpu_env
from .pool import Box, PooledSandbox, destroy_box, hand_over, take_outputs

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
LABEL_JOB = "evoprompt.job"
EXIT_OOM = 137


LABEL_IMAGE = "evoprompt.image"
HARNESS_MAX_WAIT = 4 * 3600.0  # a waiting harness gives up after this: the pool recycles it far earlier


def container_spec(box: Box, image: str, owner: str, data_dir: Path | None = None,
                   runtime: str | None = None) -> dict[str, Any]:
    """Keyword arguments for `containers.create`: the whole security policy in one pure function. The
    container mounts its box alone (and the data files, read-only) and waits there for its job."""
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
    if data_dir is not None:
        volumes[str(data_dir)] = {"bind": "/data", "mode": "ro"}
        harness += ["--data", "/data"]
    spec: dict[str, Any] = {
        "image": image,
        "command": [*DROP_TO_SANDBOX_USER, *harness, "/job/input", "/job/output"],
        "name": f"evoprompt-{box.dir.name}",
        "user": "0:0",
        "working_dir": "/tmp",
        "environment": env,
        "labels": {LABEL_MANAGED: "1", LABEL_OWNER: owner, LABEL_JOB: box.dir.name, LABEL_IMAGE: image},
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


class DockerSandbox(PooledSandbox):
    name = "docker"

    def __init__(self, owner: str, runtime: str | None = None, client: Any = None, gpu: bool = False,
                 build_missing: bool = False) -> None:
        """`build_missing`: build a missing image on first need (`check`, or the first job that needs
        it) instead of failing with the command that builds it."""
        self.owner = owner
        self.images = FRAMEWORK_GPU_IMAGES if gpu else FRAMEWORK_IMAGES
        self.runtime = runtime
        self.build_missing = build_missing
        self._client = client
        self._build_lock = threading.Lock()

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
        return image_tag(self.images[framework])

    def check(self, frameworks: list[str]) -> None:
        """The engine answers, and each framework's image is there (built now when build_missing)."""
        _ = self.client
        for framework in frameworks:
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
                build_image(self.images[framework], log=log.info)

    # -- the pool's launcher ----------------------------------------------------------------

    def launch(self, box: Box, data_dir: Path | None) -> Any:
        """Create and start a container that waits on `box` (image missing: docker's ImageNotFound)."""
        container = self.client.containers.create(**container_spec(box, box.sandbox_id, self.owner, data_dir,
                                                                   self.runtime))
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

    def destroy(self, handle: Any) -> None:
        _remove(handle)

    # -- one job ----------------------------------------------------------------------------

    def run(self, job: SandboxJob, cancel: threading.Event) -> SandboxRun:
        import docker.errors
        import requests

        result = SandboxRun()
        started = time.monotonic()
        box = None
        try:
            if self.build_missing:
                self._ensure_image(job.framework)  # outside the job's clock: started is reset below
            box = self.box_for(job)
            started = time.monotonic()
            hand_over(job, box)
            container = box.handle
            self._watch(container, job, box, cancel, result, started)
            container.reload()
            state = container.attrs["State"]
            result.oom_killed = bool(state.get("OOMKilled"))
            if result.exit_code is None and not (result.timed_out or result.cancelled or result.output_exceeded):
                result.exit_code = int(state.get("ExitCode", -1))
            result.stderr_tail = _log_tail(container, job.limits.log_tail_bytes)
        except (EvaluatorUnavailableError, ImageBuildError) as exc:
            result.infra_error = str(exc)
        except docker.errors.ImageNotFound:
            result.infra_error = self._not_built(job.framework, " (its harness or requirements changed since it "
                                                 "was)")
        except docker.errors.DockerException as exc:
            result.infra_error = f"the Docker engine failed: {exc}"
            log.warning("docker failure in job %s: %s", job.job_id, exc)
        except requests.exceptions.RequestException as exc:  # dockerd stopped or restarted under us
            result.infra_error = (f"lost the Docker engine while the sandbox ran ({exc}); the evaluation did not "
                                  "finish: retry it once dockerd answers again")
            log.warning("lost the Docker engine in job %s: %s", job.job_id, exc)
        finally:
            result.wall_seconds = time.monotonic() - started
            if box is not None:
                if box.handle is not None:
                    try:
                        _remove(box.handle)  # before its outputs are read: nothing writes to them any more
                        box.handle = None
                    except Exception as exc:  # the engine is gone: the next start of the server reaps it
                        log.warning("could not remove container of job %s: %s", job.job_id, exc)
                        result.infra_error = result.infra_error or f"could not remove the sandbox: {exc}"
                if box.handle is None:
                    take_outputs(job, box)
                destroy_box(self, box)
        return result

    def _watch(self, container: Any, job: SandboxJob, box: Box, cancel: threading.Event, result: SandboxRun,
               started: float) -> None:
        """Poll until the container exits, answering the job's exchange; kill it at the timeout, on
        cancel or on output overflow."""
        while True:
            exit_code = _wait(container, POLL_SECONDS)
            if exit_code is not None:
                result.exit_code = exit_code
                return
            if job.exchange is not None:
                job.exchange.poll(box.input_dir, box.output_dir)
            if result.must_stop(job, cancel, started, box.output_dir):
                _kill(container)
                _wait(container, 30)
                return

    def reap(self) -> int:
        """Remove every container of this owner: leftovers of a server that died mid-evaluation."""
        containers = self.client.containers.list(
            all=True, filters={"label": [f"{LABEL_MANAGED}=1", f"{LABEL_OWNER}={self.owner}"]}
        )
        for container in containers:
            _remove(container)
        return len(containers)


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

    from .base import TailBuffer

    tail = TailBuffer(limit)
    try:
        tail.write(container.logs(stdout=False, stderr=True, tail=200))
    except docker.errors.APIError:
        return ""
    return tail.text()
