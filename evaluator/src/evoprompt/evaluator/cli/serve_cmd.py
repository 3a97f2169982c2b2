"""`evoprompt serve`: run the evaluator service until interrupted."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="run the evaluator gRPC service", description=__doc__)
    p.add_argument("--host", default=None, help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="port (default 50051; 0 picks a free one)")
    p.add_argument("--backend", choices=["docker", "process"], default=None,
                   help="sandbox back-end (default docker; process is NOT a security boundary)")
    p.add_argument("--slots", type=int, default=None, help="evaluations run at once (CPU)")
    p.add_argument("--timeout", type=float, default=None, help="wall-clock limit of one evaluation, seconds")
    p.add_argument("--queue", dest="queue_capacity", type=int, default=None, help="queue capacity (default 64)")
    p.add_argument("--gpus", default=None, help="comma-separated GPU ids; each slot gets one GPU alone")
    p.add_argument("--slots-per-gpu", type=int, default=None, help="slots sharing each GPU (memory split 1/K)")
    p.add_argument("--memory-gb", type=float, default=None, help="memory limit of one sandbox (default 4)")
    p.add_argument("--cpus", type=float, default=None, help="CPUs of one sandbox (default 1)")
    p.add_argument("--pool-size", type=int, default=None,
                   help="sandboxes started ahead of need per slot and framework in use (default 1; 0: none)")
    p.add_argument("--frameworks", default=None,
                   help="comma-separated frameworks to warm and check at start (default: on first use)")
    p.add_argument("--executor", choices=["local", "ray"], default=None,
                   help="where evaluations run: this machine's slots (local, default) or a Ray cluster's nodes")
    p.add_argument("--ray-address", default=None,
                   help="the Ray cluster (ray): 'auto' (default: the cluster this machine is a node of) or HOST:PORT")
    p.add_argument("--ray-in-flight", type=int, default=None,
                   help="evaluations handed to the cluster at once (ray; default: its slots at start)")
    p.add_argument("--ray-gpu-share", type=int, default=None,
                   help="ray: each evaluation takes 1/K of a GPU on its node (default 0: CPU only)")
    p.add_argument("--runtime", default=None, help="Docker runtime for sandboxes, e.g. runsc (gVisor)")
    p.add_argument("--metrics-port", type=int, default=None, help="serve Prometheus /metrics on this port")
    p.add_argument("--token", default=None,
                   help="require this bearer token on every call (or EVOPROMPT_TOKEN; health checks stay open)")
    p.add_argument("--tls-cert", default=None, help="PEM certificate chain: serve TLS only (with --tls-key)")
    p.add_argument("--tls-key", default=None, help="PEM private key of --tls-cert")
    p.add_argument("--public-data", action="store_const", const=True, default=None,
                   help="score on MNIST-1D's published data (seed 42) to compare with published figures; "
                   "candidates can replay it, so scores are forgeable (default: a secret seed, kept in "
                   "HOME/data_secret; a fleet shares one by EVOPROMPT_DATA_SECRET)")
    p.add_argument("--home", default=None, help="folder for the result store and job files")
    p.add_argument("--config", type=Path, default=None, help="TOML file with an [evaluator] table")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from evoprompt.evaluator.server import EvaluatorServer
    from evoprompt.evaluator.settings import load_settings
    from evoprompt.sdk.errors import EvaluatorUnavailableError

    names = ["host", "port", "backend", "slots", "timeout", "queue_capacity", "gpus", "slots_per_gpu",
             "memory_gb", "cpus", "runtime", "home", "metrics_port", "token", "tls_cert", "tls_key", "public_data",
             "pool_size", "frameworks", "executor", "ray_address", "ray_in_flight", "ray_gpu_share"]
    try:
        settings = load_settings(args.config, {n: getattr(args, n) for n in names})
        server = EvaluatorServer(settings).start()
    except (ValueError, OSError, EvaluatorUnavailableError) as exc:
        print(f"evoprompt serve: {exc}", file=sys.stderr)
        return 2
    where = (f"{server.slots} slot(s)" if settings.executor == "local"
             else f"ray at {settings.ray_address}, {server.slots} in flight")
    print(f"evaluator listening on {server.endpoint} (backend {settings.backend}, {where}, "
          f"store {settings.store_path})", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    print("shutting down: cancelling running evaluations", file=sys.stderr, flush=True)
    server.stop()
    return 0
