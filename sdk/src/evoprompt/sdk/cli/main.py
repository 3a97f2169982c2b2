"""`evoprompt`: one command assembled from what is installed.

Each distribution registers its subcommands in the `evoprompt.commands` entry-point group (a
function that adds an argparse sub-parser), so `evoprompt --help` lists only what works here and a
command of a part that is not installed says which distribution brings it.

Errors are handled here, once: a `UserError` (a bad argument, setting or file, no evaluator; each
part's own user errors subclass it) prints `evoprompt COMMAND: MESSAGE` and exits 2; anything else
is a bug and propagates with its traceback. Commands catch nothing broader than the one failure
they turn into a `UserError` with a clearer message.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from importlib import metadata

from ..errors import UserError

COMMAND_GROUP = "evoprompt.commands"

# Where each command of the project lives, for the message when its distribution is missing.
PROVIDED_BY = {
    "evaluate": "evoprompt-sdk",
    "tasks": "evoprompt-sdk",
    "info": "evoprompt-sdk",
    "serve": "evoprompt-evaluator",
    "images": "evoprompt-evaluator",
    "cache": "evoprompt-evaluator",
    "search": "evoprompt-search",
    "report": "evoprompt-search",
    "demo": "evoprompt-search",
}


def installed_commands() -> dict[str, Callable[[argparse._SubParsersAction], None]]:
    """Sub-parser builders of the installed distributions, by command name."""
    found: dict[str, Callable[[argparse._SubParsersAction], None]] = {}
    for ep in metadata.entry_points(group=COMMAND_GROUP):
        try:
            found.setdefault(ep.name, ep.load())
        except ImportError as exc:  # a broken install of one part must not take the others down
            logging.getLogger(__name__).debug("command %s unavailable: %s", ep.name, exc)
    return dict(sorted(found.items()))


def build_parser(commands: dict[str, Callable[[argparse._SubParsersAction], None]]) -> argparse.ArgumentParser:
    missing = sorted({dist for name, dist in PROVIDED_BY.items() if name not in commands})
    epilog = f"not installed here: {', '.join(missing)} (pip install it for its commands)" if missing else None
    parser = argparse.ArgumentParser(prog="evoprompt", description=__doc__.splitlines()[0], epilog=epilog)
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add_parser in commands.values():
        add_parser(sub)
    return parser


def _first_word(argv: list[str]) -> str | None:
    return next((a for a in argv if not a.startswith("-")), None)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = installed_commands()
    word = _first_word(argv)
    if word is not None and word not in commands and word in PROVIDED_BY:
        dist = PROVIDED_BY[word]
        print(f"evoprompt {word}: this command comes with {dist}, which is not installed here; "
              f"pip install {dist}", file=sys.stderr)
        return 2
    args = build_parser(commands).parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO if args.command == "serve" else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return int(args.run(args) or 0)
    except UserError as exc:
        print(f"evoprompt {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
