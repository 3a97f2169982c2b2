"""`evoprompt report DIR`: write a search run's report (plots, HTML page, summary.json) into DIR/report/.

Works on a finished run, a killed one or one still running (the database is only read).
Exit status: 0 the report was written, 2 it could not be (no run directory, no run.sqlite3, unreadable).
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="write a search run's report", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dir", type=Path, help="the run directory (holds run.sqlite3 and config.json)")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object instead of the path")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from evoprompt.sdk.errors import UserError
    from evoprompt.search.report import write_report
    from evoprompt.search.store import DB_NAME

    run_dir: Path = args.dir
    if not run_dir.is_dir():
        print(f"evoprompt report: no such run directory: {run_dir}", file=sys.stderr)
        return 2
    if not (run_dir / DB_NAME).is_file():
        print(f"evoprompt report: {run_dir} is not a run directory (no {DB_NAME})", file=sys.stderr)
        return 2
    try:
        page = write_report(run_dir)
        summary = json.loads((page.parent / "summary.json").read_text(encoding="utf-8"))
    except (OSError, sqlite3.Error) as exc:  # the run directory or its database (exit 2)
        raise UserError(f"cannot report on {run_dir}: {exc}") from exc
    if args.json:
        print(json.dumps(summary))
    else:
        print(page)
    return 0
