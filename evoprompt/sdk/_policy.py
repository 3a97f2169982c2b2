"""What the sync and async clients share: targets, channel options, retry decisions, backoff."""

from __future__ import annotations

import ipaddress
import json
import random
import time
from dataclasses import dataclass

import grpc

# Idempotent calls (all of ours: Evaluate carries a request_id) are retried on these.
RETRYABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED})

MAX_MESSAGE_BYTES = 64 * 1024 * 1024


def normalize_target(target: str | list[str] | tuple[str, ...]) -> str:
    """Accept "host:port", "a:p,b:p", a list of those, or any gRPC target URI (dns:///..., ipv4:...).

    Several literal addresses become one `ipv4:`/`ipv6:` target, which gRPC balances round-robin.
    """
    if isinstance(target, (list, tuple)):
        target = ",".join(target)
    target = target.strip()
    if not target:
        raise ValueError("the evaluator target is empty; give HOST:PORT")
    has_scheme = "://" in target or target.startswith(("ipv4:", "ipv6:", "unix:", "dns:"))
    if "," in target and not has_scheme:
        parts = [p.strip() for p in target.split(",") if p.strip()]
        families = {_family(p) for p in parts}
        if families == {"ipv4"}:
            return "ipv4:" + ",".join(parts)
        if families == {"ipv6"}:
            return "ipv6:" + ",".join(parts)
        raise ValueError(
            f"several endpoints must be literal IP:PORT addresses of one family (got {target!r}); "
            "for host names use one name that resolves to all of them: dns:///NAME:PORT"
        )
    return target


def _family(endpoint: str) -> str:
    host = endpoint.rsplit(":", 1)[0].strip("[]")
    try:
        return f"ipv{ipaddress.ip_address(host).version}"
    except ValueError:
        return "name"


def auth_metadata(metadata: object, token: str | None) -> tuple[tuple[str, str], ...]:
    """Call metadata, with the bearer token when one is given."""
    items = tuple(metadata)  # type: ignore[call-overload]
    return items + ((("authorization", f"Bearer {token}"),) if token else ())


def channel_options() -> list[tuple[str, object]]:
    config = {"loadBalancingConfig": [{"round_robin": {}}]}
    return [
        ("grpc.service_config", json.dumps(config)),
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.enable_retries", 0),  # we retry ourselves, with the same request_id
    ]


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter; `retries` extra attempts after the first."""

    retries: int = 5
    initial_backoff: float = 0.2
    max_backoff: float = 10.0

    def delay(self, attempt: int) -> float:
        return random.uniform(0, min(self.max_backoff, self.initial_backoff * 2**attempt))

    def should_retry(self, code: grpc.StatusCode, attempt: int, deadline: float | None) -> float | None:
        """Seconds to sleep before the next attempt, or None to give up."""
        if code not in RETRYABLE or attempt >= self.retries:
            return None
        pause = self.delay(attempt)
        if deadline is not None and time.monotonic() + pause >= deadline:
            return None
        return pause


def remaining(deadline: float | None) -> float | None:
    """Per-attempt gRPC timeout left until an absolute monotonic deadline."""
    if deadline is None:
        return None
    return max(0.0, deadline - time.monotonic())


def absolute(timeout: float | None) -> float | None:
    return None if timeout is None else time.monotonic() + timeout
