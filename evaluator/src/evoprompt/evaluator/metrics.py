"""Prometheus metrics of one server, on their own port (`--metrics-port`), in a private registry so
that several servers in one process (tests, embedded use) do not collide."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from evoprompt.sdk.types import EvaluationResult

_BUCKETS = (0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)


class Metrics:
    def __init__(self, load: Callable[[], tuple[int, int]]) -> None:
        self.registry = CollectorRegistry()
        self.answers = Counter("evoprompt_evaluations", "Evaluation answers by status and cache hit",
                               ["status", "cached"], registry=self.registry)
        self.wall = Histogram("evoprompt_evaluation_wall_seconds", "Sandbox wall time of evaluations that ran",
                              ["status"], buckets=_BUCKETS, registry=self.registry)
        self.queue_full = Counter("evoprompt_queue_full", "Submissions refused because the queue was full",
                                  registry=self.registry)
        queued = Gauge("evoprompt_queued", "Evaluations waiting for a slot", registry=self.registry)
        running = Gauge("evoprompt_running", "Evaluations running in a sandbox", registry=self.registry)
        queued.set_function(lambda: load()[0])
        running.set_function(lambda: load()[1])
        self._http: Any = None

    def observe(self, result: EvaluationResult) -> None:
        self.answers.labels(result.status.name, str(result.cached).lower()).inc()
        if not result.cached and result.wall_seconds > 0:
            self.wall.labels(result.status.name).observe(result.wall_seconds)

    def serve(self, host: str, port: int) -> int:
        """Expose /metrics over HTTP; returns the port (useful with port 0)."""
        self._http, _thread = start_http_server(port, addr=host, registry=self.registry)
        return int(self._http.server_port)

    def close(self) -> None:
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None
