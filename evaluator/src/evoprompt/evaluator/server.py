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
from .executor import Executor, make_executor
from .instance import Instance, remove_dead
from .metrics import Metrics
from .scheduler import Scheduler
from .servicer import EvaluatorServicer
from .settings import EvaluatorSettings, SettingsError
from .store import ResultStore
from .tasks import Task, configured_tasks

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
            ("grpc.so_reuseport", 0),  # a second server on a port in use fails to start instead of sharing it
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
    if not path.exists():  # written aside, then linked: two servers starting at once agree on one secret
        partial = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(16) + "\n")
        with contextlib.suppress(FileExistsError):
            os.link(partial, path)
        partial.unlink()
    secret = path.read_text().strip()
    if not secret:
        raise SettingsError(f"{path} is empty: delete it (a new secret is made) or write a secret into it")
    return secret


class EvaluatorServer:
    """One evaluator instance: it claims its own work folder in the home (instance.py), so servers and
    embedded evaluators sharing a home share its result store and never touch each other's work."""

    def __init__(self, settings: EvaluatorSettings, executor: Executor | None = None) -> None:
        """`executor`: where jobs run (default: the one the settings choose, made at start)."""
        self.settings = settings
        self.executor = executor
        self.instance: Instance | None = None
        self.port: int | None = None
        self._server: grpc.Server | None = None
        self._scheduler: Scheduler | None = None
        self._store: ResultStore | None = None
        self._health: health.HealthServicer | None = None
        self._metrics: Metrics | None = None
        self.metrics_port: int | None = None
        self.tasks: dict[str, Task] = {}
        self._executor_started = False

    @property
    def endpoint(self) -> str:
        if self.port is None:
            raise RuntimeError("the server is not started")
        host = self.settings.host
        return f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"

    @property
    def work_dir(self) -> Path:
        """This instance's own work folder (jobs, warm pool, data files)."""
        if self.instance is None:
            raise RuntimeError("the server is not started")
        return self.instance.dir

    def start(self) -> EvaluatorServer:
        """Claim a work folder, check the executor, reap what dead instances left, open the store, listen."""
        try:
            return self._start()
        except BaseException:
            self.stop(grace=0)
            raise

    def _start(self) -> EvaluatorServer:
        s = self.settings
        self.tasks = configured_tasks(held_out_data_secret(s), s.clrs_eval_samples, s.clrs_test_length)
        log.info("held-out data: %s", ", ".join(f"{n} {t.data_id}" for n, t in self.tasks.items()))
        self.instance = Instance(s.work_dir)
        executor = self.executor = self.executor or make_executor(s, self.instance)
        self._executor_started = True  # closed on any failure from here on (closing an unstarted one is safe)
        if executor.backend == "process":
            log.warning("the process back-end is NOT a security boundary: candidates run as this user, "
                        "with its files and network; use it only for code you would run yourself")
        if s.frameworks:  # prepared now (built when missing); others on first need
            executor.check(list(s.frameworks))
        else:
            frameworks = sorted({fw for t in self.tasks.values() for fw in t.frameworks})
            executor.check([] if s.build_images else frameworks)
        executor.start()  # dead instances' sandboxes first, then their folders: nothing writes there
        remove_dead(self.instance.root, keep=self.instance.id)
        self._store = ResultStore(s.store_path)
        self._scheduler = Scheduler(executor, self._store, queue_capacity=s.queue_capacity,
                                    work_dir=self.instance.dir, limits=s.limits)
        slots = self._scheduler.slots
        server = create_grpc_server(max_workers=2 * (s.queue_capacity + len(slots)) + 32, token=s.token)
        self._metrics = Metrics(self._scheduler.load)
        if s.metrics_port:
            self.metrics_port = self._metrics.serve(s.host, s.metrics_port)
        servicer = EvaluatorServicer(self._scheduler, s, self.tasks, self._metrics)
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
        self._server = server
        if not self.port:
            raise OSError(f"cannot listen on {s.host}:{s.port}")
        server.start()
        log.info("evaluator listening on %s (backend %s, executor %s, %d slot(s), work folder %s)", self.endpoint,
                 executor.backend, executor.kind, len(slots), self.instance.dir)
        return self

    @property
    def slots(self) -> int:
        """Evaluations run at once: this machine's slots, or how many are handed to the Ray cluster."""
        return len(self._scheduler.slots) if self._scheduler is not None else 0

    def stop(self, grace: float = 5.0) -> None:
        """Stop accepting calls, cancel running work (containers stopped), close the store, give up the
        work folder. Safe to call on a server that failed to start, and more than once."""
        if self._health is not None:
            self._health.enter_graceful_shutdown()
        if self._scheduler is not None:
            self._scheduler.close()
            self._scheduler = None
        if self._server is not None:
            self._server.stop(grace).wait()
            self._server = None
        if self.executor is not None and self._executor_started:
            self._executor_started = False
            self.executor.close()
        if self._store is not None:
            self._store.close()
            self._store = None
        if self._metrics is not None:
            self._metrics.close()
            self._metrics = None
        if self.instance is not None:
            self.instance.release()

    def wait(self) -> None:
        assert self._server is not None
        self._server.wait_for_termination()

    def __enter__(self) -> EvaluatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
