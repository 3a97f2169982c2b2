"""`evoprompt tasks` and `evoprompt info`: what a running evaluator offers, and its state."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from .access import add_access_arguments, client_for


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--evaluator", required=True, help="HOST:PORT of a running server")
    add_access_arguments(p)
    p.add_argument("--json", action="store_true", help="print JSON")


def add_tasks_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tasks", help="list an evaluator's tasks", description=__doc__)
    _common(p)
    p.set_defaults(run=run_tasks)


def add_info_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="show an evaluator's back-end, slots, queue and images", description=__doc__)
    _common(p)
    p.set_defaults(run=run_info)


def _run(args: argparse.Namespace, show) -> int:
    with client_for(args, args.evaluator) as client:  # no server, a bad address or CA file: UserError, exit 2
        show(client)
    return 0


def run_tasks(args: argparse.Namespace) -> int:
    def show(client) -> None:
        tasks = client.list_tasks()
        if args.json:
            print(json.dumps([asdict(t) for t in tasks]))
            return
        width = max((len(t.name) for t in tasks), default=4)
        for t in tasks:
            print(f"{t.name:<{width}}  {','.join(t.frameworks):<12}  steps {t.default_steps} (max {t.max_steps})")

    return _run(args, show)


def run_info(args: argparse.Namespace) -> int:
    def show(client) -> None:
        info = asdict(client.server_info())
        if args.json:
            print(json.dumps(info))
            return
        nodes = info.pop("nodes")
        width = max(len(k) for k in info)
        for key, value in info.items():
            print(f"{key:<{width}}  {value}")
        for node in nodes:
            gpus = f", GPUs {','.join(node['gpus'])}" if node["gpus"] else ""
            print(f"{'node':<{width}}  {node['name']}: {node['free_slots']} of {node['slots']} slot(s) free, "
                  f"{node['warm']} warm{gpus}")

    return _run(args, show)
