"""`evoprompt cache`: look into the result store of an evaluator's home, and drop results from it.

evoprompt cache show SHA [--status S] [--home DIR]     the stored results of a program (sha256 or a prefix)
evoprompt cache forget SHA [--status S] [--home DIR]   drop them: the next request for that work runs again

A result stored before this evaluator told infrastructure failures from the candidate's (a sandbox
killed from outside stored as RUNTIME_ERROR, say) is answered from the cache forever; forgetting it is
the fix. Safe while servers use the store (SQLite, WAL): a server reads the store at every request.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

MIN_PREFIX = 8  # hex digits of a sha256 prefix: fewer would match programs by accident


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("cache", help="show or forget stored results of a program",
                              description=__doc__.splitlines()[0])
    actions = p.add_subparsers(dest="cache_action", metavar="ACTION", required=True)
    for name, what in (("show", "list the stored results of a program"),
                       ("forget", "drop the stored results of a program, so that it is evaluated again")):
        a = actions.add_parser(name, help=what, description=what)
        a.add_argument("sha", metavar="SHA",
                       help=f"the program's code_sha256 (as `evoprompt evaluate --json` prints it), or its first "
                       f"{MIN_PREFIX}+ hex digits")
        a.add_argument("--status", default="", help="only results of this status, e.g. RUNTIME_ERROR")
        a.add_argument("--home", type=Path, default=None, help="the evaluator's home (default: EVOPROMPT_HOME, "
                       "else ~/.cache/evoprompt)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from evoprompt.sdk.errors import UserError
    from evoprompt.sdk.types import Status

    from ..settings import load_settings
    from ..store import ResultStore

    if not re.fullmatch(f"[0-9a-fA-F]{{{MIN_PREFIX},64}}", args.sha):
        raise UserError(f"{args.sha!r} is not a sha256 or a prefix of at least {MIN_PREFIX} hex digits")
    if args.status and args.status not in Status.__members__:
        raise UserError(f"unknown status {args.status!r}; choose one of {', '.join(Status.__members__)}")
    path = load_settings(overrides={"home": args.home}).store_path
    if not path.exists():
        raise UserError(f"no result store at {path}: pass the evaluator's --home")
    store = ResultStore(path)
    try:
        found = store.matching(args.sha, args.status)
        for r in found:
            print(f"{r.request_id}  {r.status.name:<14} {r.task} {r.framework} steps {r.steps} seed {r.seed} "
                  f"cached={str(r.cached).lower()}  {r.code_sha256[:16]}")
        if args.cache_action == "forget":
            dropped = store.forget([r.request_id for r in found])
            print(f"forgot {dropped} result(s) of {args.sha} in {path}")
        elif not found:
            print(f"no stored result of {args.sha} in {path}")
    finally:
        store.close()
    return 0
