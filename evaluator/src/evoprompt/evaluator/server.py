"""Build and run the evaluator's gRPC server: servicer, health, reflection, one documented function.

`EvaluatorServer` works the same embedded (port 0 on loopback, for `evoprompt evaluate` and the
search client) and standalone (`evoprompt serve`): clients always talk to it through the SDK.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from concurrent import futures
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from evoprompt.sdk.limits import MAX_MESSAGE_BYTES
from evoprompt.sdk.proto import evaluator_pb2 as pb
from evoprompt.sdk.proto import evaluator_pb2_grpc as pb_grpc

from .auth import BearerTokenInterceptor
from .metrics import Metrics
from .outputs import remove_tree
from .sandbox import Sandbox, make_sandbox
from .scheduler import Scheduler
from .servicer import EvaluatorServicer
from .settings import EvaluatorSettings
from .store import ResultStore
from .tasks import TASKS, configured_tasks

log = logging.getLogger(__name__)
SERVICE_NAME = pb.DESCRIPTOR.services_by_name["Evaluator"].full_name


def create_grpc_server(max_workers: int, token: str = "") -> grpc.Server:
    """Thread pool, message size, concurrency cap (overflow gets RESOURCE_EXHAUSTED) and auth in one place."""
    return grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="evoprompt-rpc"),
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.keepalive_time_ms", 60_000),
            ("grpc.http2.max_pings_without_data", 0),
            ("grpc.keepalive_permit_without_calls", 1),
        ],
        maximum_concurrent_rpcs=max_workers,
        interceptors=[BearerTokenInterceptor(token)] if token else [],
    )


def held_out_data_secret(settings: EvaluatorSettings) -> str:
    """The secret the held-out data is drawn from: "" for public data, else the configured one, else the
    home's own (made once, 0600), so a restarted server scores on the same data and keeps its cache."""
    if settings.public_data:
        return ""
    if settings.data_secret:
        return settings.data_secret
    path = settings.data_secret_path
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(16) + "\n")
    secret = path.read_text().strip()
    if not secret:
        raise ValueError(f"{path} is empty: delete it (a new secret is made) or write a secret into it")
    return secret


def _make_executor(settings: EvaluatorSettings) -> Sandbox:
    """This machine's sandbox back-end, or (executor ray) the Ray cluster whose nodes run their own."""
    owner_key = str(settings.store_path.resolve())
    if settings.executor == "ray":
        from .fleet.executor import RayExecutor

        return RayExecutor(settings, owner_key)
    return make_sandbox(settings.backend, owner_key=owner_key, runtime=settings.runtime, gpu=bool(settings.gpus),
                        build_images=settings.build_images)


class EvaluatorServer:
    def __init__(self, settings: EvaluatorSettings, sandbox: Sandbox | None = None) -> None:
        self.settings = settings
        self.sandbox = sandbox or _make_executor(settings)
        self.port: int | None = None
        self._server: grpc.Server | None = None
        self._scheduler: Scheduler | None = None
        self._store: ResultStore | None = None
        self._health: health.HealthServicer | None = None
        self._metrics: Metrics | None = None
        self.metrics_port: int | None = None
        self.tasks = TASKS

    @property
    def endpoint(self) -> str:
        if self.port is None:
            raise RuntimeError("the server is not started")
        host = self.settings.host
        return f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"

    def start(self) -> EvaluatorServer:
        """Check the sandbox, reap leftovers of an earlier run, open the store, listen."""
        s = self.settings
        if self.sandbox.name == "process":
            log.warning("the process back-end is NOT a security boundary: candidates run as this user, "
                        "with its files and network; use it only for code you would run yourself")
        self.tasks = configured_tasks(held_out_data_secret(s), s.clrs_eval_samples, s.clrs_test_length)
        log.info("held-out data: %s", ", ".join(f"{n} {t.data_id}" for n, t in self.tasks.items()))
        if s.frameworks:  # prepared now (built when missing); others on first need
            self.sandbox.check(list(s.frameworks))
        else:
            frameworks = sorted({fw for t in self.tasks.values() for fw in t.frameworks})
            self.sandbox.check([] if s.build_images else frameworks)
        reaped = self.sandbox.reap()
        if reaped:
            log.warning("removed %d sandbox(es) left behind by an earlier run of this server", reaped)
        for leftover in ("jobs", "pool", "data"):  # an earlier run's (data: rewritten on first need)
            remove_tree(s.work_dir / leftover)
        s.work_dir.mkdir(parents=True, exist_ok=True)
        self._store = ResultStore(s.store_path)
        slots = s.slot_plan() if s.executor == "local" else [None] * self.sandbox.in_flight()  # type: ignore[attr-defined]
        self._scheduler = Scheduler(
            self.sandbox, self._store, slots=slots, queue_capacity=s.queue_capacity,
            work_dir=s.work_dir, limits=s.limits, pool_size=s.pool_size, pool_max_idle=s.pool_max_idle,
            frameworks=s.frameworks,
        )
        server = create_grpc_server(max_workers=2 * (s.queue_capacity + len(slots)) + 32, token=s.token)
        self._metrics = Metrics(self._scheduler.load)
        if s.metrics_port:
            self.metrics_port = self._metrics.serve(s.host, s.metrics_port)
        servicer = EvaluatorServicer(self._scheduler, s, self._metrics, self.tasks)
        pb_grpc.add_EvaluatorServicer_to_server(servicer, server)
        self._health = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        for name in ("", SERVICE_NAME):
            self._health.set(name, health_pb2.HealthCheckResponse.SERVING)
        reflection.enable_server_reflection((SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
        address = f"{s.host}:{s.port}"
        if s.tls_cert:
            credentials = grpc.ssl_server_credentials([(Path(s.tls_key).read_bytes(), Path(s.tls_cert).read_bytes())])
            self.port = server.add_secure_port(address, credentials)
        else:
            self.port = server.add_insecure_port(address)
        if not self.port:
            raise OSError(f"cannot listen on {s.host}:{s.port}")
        server.start()
        self._server = server
        log.info("evaluator listening on %s (backend %s, executor %s, %d slot(s))", self.endpoint, self.sandbox.name,
                 self.sandbox.executor, len(slots))
        return self

    @property
    def slots(self) -> int:
        """Evaluations run at once: this machine's slots, or how many are handed to the Ray cluster."""
        return len(self._scheduler.slots) if self._scheduler is not None else 0

    def stop(self, grace: float = 5.0) -> None:
        """Stop accepting calls, cancel running work (containers stopped), close the store."""
        if self._health is not None:
            self._health.enter_graceful_shutdown()
        if self._scheduler is not None:
            self._scheduler.close()
        if self._server is not None:
            self._server.stop(grace).wait()
        if self._store is not None:
            self._store.close()
        if self._metrics is not None:
            self._metrics.close()

    def wait(self) -> None:
        assert self._server is not None
        self._server.wait_for_termination()

    def __enter__(self) -> EvaluatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
