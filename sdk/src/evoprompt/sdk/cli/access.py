"""How the SDK's commands reach an evaluator: the access options (token, TLS) and the client they
make, in one place for `evaluate`, `tasks` and `info`."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ..client import EvaluatorClient
from ..errors import UserError


def add_access_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--token", default=os.environ.get("EVOPROMPT_TOKEN"),
                   help="bearer token of the evaluator (default: EVOPROMPT_TOKEN)")
    p.add_argument("--tls-ca", type=Path, default=None, help="PEM CA certificate: talk TLS to --evaluator")


def client_for(args: argparse.Namespace, endpoint: str, *, remote: bool = True) -> EvaluatorClient:
    """A client of `endpoint`; token and TLS apply to a remote evaluator only (an embedded one has neither)."""
    if not remote:
        return EvaluatorClient(endpoint)
    tls = {"tls": True, "root_certificates": _read(args.tls_ca, "--tls-ca")} if args.tls_ca else {}
    return EvaluatorClient(endpoint, token=args.token, **tls)


def _read(path: Path, flag: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read {flag} {path}: {exc.strerror or exc}") from exc
