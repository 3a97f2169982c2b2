"""`evoprompt images`: build and list the sandbox images.

evoprompt images build [NAME ...] [--force]   (default: the CPU images torch-cpu, jax-cpu, clrs-cpu)
evoprompt images list                          (every image: name, tag, present yes/no)

The images' settings (sandbox_base, build_dir, debian_mirror) are the evaluator's: defaults, --config's
[evaluator] table, EVOPROMPT_<NAME> variables. Exit status: 0 done, 1 a build failed, 2 bad arguments.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "images",
        help="build or list the sandbox Docker images",
        description="Build the sandbox images offline (a debootstrapped Debian base and a host-side "
        "wheelhouse; no image registry needed) or list them with their current tags.",
    )
    p.add_argument("--config", type=Path, default=None,
                   help="TOML file with an [evaluator] table (sandbox_base, build_dir, debian_mirror)")
    actions = p.add_subparsers(dest="images_action", metavar="ACTION")
    actions.required = True
    b = actions.add_parser("build", help="build images whose current tag is missing")
    b.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help="images to build (default: torch-cpu jax-cpu clrs-cpu); see `evoprompt images list`",
    )
    b.add_argument("--force", action="store_true", help="rebuild even when the tag exists (no layer cache)")
    b.add_argument("-q", "--quiet", action="store_true", help="print only the resulting tags")
    actions.add_parser("list", help="print each image's name, current tag and whether the engine has it")
    p.set_defaults(run=run)


def _build(args: argparse.Namespace, settings) -> int:
    from evoprompt.evaluator import image_builder, images
    from evoprompt.sdk.errors import UserError

    def log(line: str) -> None:
        if not args.quiet:
            print(line, file=sys.stderr, flush=True)

    names = args.names or list(images.CPU_IMAGES)
    known = images.known_images()
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UserError(f"unknown image(s): {', '.join(unknown)}; known: {', '.join(known)}")
    for name in names:
        started = time.monotonic()
        tag = image_builder.build_image(name, force=args.force, log=log, sandbox_base=settings.sandbox_base,
                                        build_dir=settings.build_dir, debian_mirror=settings.debian_mirror)
        print(f"{name}\t{tag}\t{time.monotonic() - started:.1f}s", flush=True)
    return 0


def _list(settings) -> int:
    from evoprompt.evaluator import images

    try:
        client = images.docker_client(timeout=30)
    except images.ImageBuildError as e:
        client = None
        print(f"note: {e}", file=sys.stderr)
    rows = [("NAME", "TAG", "PRESENT")]
    for name in images.known_images():
        tag = images.image_tag(name, sandbox_base=settings.sandbox_base)
        present = "?" if client is None else ("yes" if images.image_present(client, tag) else "no")
        rows.append((name, tag, present))
    widths = [max(len(r[i]) for r in rows) for i in range(2)]
    for r in rows:
        print(f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]}")
    return 0


def run(args: argparse.Namespace) -> int:
    from evoprompt.evaluator.images import ImageBuildError
    from evoprompt.evaluator.settings import load_settings

    settings = load_settings(args.config)
    if args.images_action == "list":
        return _list(settings)
    try:
        return _build(args, settings)
    except ImageBuildError as e:  # a build failed (exit 1); bad arguments or settings are exit 2
        print(f"evoprompt images: {e}", file=sys.stderr)
        return 1
