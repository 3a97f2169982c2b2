"""`evoprompt serve`: run the evaluator service until interrupted.

Settings come from their defaults, then the --config TOML file's [evaluator] table, then EVOPROMPT_<NAME>
variables, then these flags (one per setting; see evoprompt.evaluator.settings).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from evoprompt.sdk.errors import UserError

from ..settings import add_settings_arguments


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="run the evaluator gRPC service", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    add_settings_arguments(p)
    p.add_argument("--config", type=Path, default=None, help="TOML file with an [evaluator] table")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from evoprompt.evaluator.server import EvaluatorServer
    from evoprompt.evaluator.settings import load_settings, settings_overrides

    settings = load_settings(args.config, settings_overrides(args))  # bad settings: SettingsError, exit 2
    try:
        server = EvaluatorServer(settings).start()
    except OSError as exc:  # its home folder, its port, its TLS files
        raise UserError(f"cannot start: {exc}") from exc
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
