"""`evoprompt demo`: the short MNIST-1D search that `make demo` runs (see evoprompt.search.demo)."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..demo import add_arguments

    p = sub.add_parser("demo", help="a short EvoPrompting search on MNIST-1D, then its report")
    add_arguments(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..demo import run_demo

    return run_demo(args)
