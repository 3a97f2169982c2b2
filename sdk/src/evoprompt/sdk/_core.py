"""What the sync and async clients share: targets, channel options, credentials, retry decisions,
backoff, request ids and the bookkeeping of a batch stream. The two clients add only their I/O."""

from __future__ import annotations

import ipaddress
import json
import random
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import grpc

from .errors import EvaluatorUnavailableError, InternalError, InvalidTargetError
from .limits import MAX_BATCH, MAX_MESSAGE_BYTES
from .proto import evaluator_pb2 as pb
from .proto import evaluator_pb2_grpc as pb_grpc
from .status_codes import error_from_rpc
from .types import EvaluationRequest, EvaluationResult

# Idempotent calls (all of ours: Evaluate carries a request_id) are retried on these.
RETRYABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED})


def normalize_target(target: str | list[str] | tuple[str, ...]) -> str:
    """Accept "host:port", "a:p,b:p", a list of those, or any gRPC target URI (dns:///..., ipv4:...).

    Several literal addresses become one `ipv4:`/`ipv6:` target, which gRPC balances round-robin.
    """
    if isinstance(target, (list, tuple)):
        target = ",".join(target)
    target = target.strip()
    if not target:
        raise InvalidTargetError("the evaluator target is empty; give HOST:PORT")
    has_scheme = "://" in target or target.startswith(("ipv4:", "ipv6:", "unix:", "dns:"))
    if "," in target and not has_scheme:
        parts = [p.strip() for p in target.split(",") if p.strip()]
        families = {_family(p) for p in parts}
        if families == {"ipv4"}:
            return "ipv4:" + ",".join(parts)
        if families == {"ipv6"}:
            return "ipv6:" + ",".join(parts)
        raise InvalidTargetError(
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


def new_request_id() -> str:
    return uuid.uuid4().hex


def with_request_ids(requests: Iterable[EvaluationRequest]) -> list[EvaluationRequest]:
    """Give every request an id (so retries are idempotent); refuse duplicates in one call."""
    out = [r if r.request_id else replace(r, request_id=new_request_id()) for r in requests]
    ids = [r.request_id for r in out]
    if len(set(ids)) != len(ids):
        raise ValueError("request_ids must be unique within one evaluate_many call")
    return out


def fit_batch_size(queue_capacity: int) -> int:
    """Requests per EvaluateBatch when the caller names no size: what fits the server's queue."""
    return max(1, min(MAX_BATCH, queue_capacity))


def chunks(requests: list[EvaluationRequest], size: int) -> Iterator[list[EvaluationRequest]]:
    """Consecutive batches of at most `size` requests whose code fits one message."""
    budget = MAX_MESSAGE_BYTES // 2
    chunk: list[EvaluationRequest] = []
    used = 0
    for request in requests:
        cost = len(request.code.encode("utf-8")) + 256
        if chunk and (len(chunk) >= size or used + cost > budget):
            yield chunk
            chunk, used = [], 0
        chunk.append(request)
        used += cost
    if chunk:
        yield chunk


class PendingBatch:
    """One EvaluateBatch's requests still unanswered: re-sent (same ids) when a stream breaks."""

    def __init__(self, chunk: list[EvaluationRequest]) -> None:
        self.pending = {r.request_id: r for r in chunk}
        self.attempt = 0

    def message(self) -> pb.EvaluateBatchRequest:
        return pb.EvaluateBatchRequest(requests=[r.to_proto() for r in self.pending.values()])

    def accept(self, msg: pb.EvaluateResponse) -> EvaluationResult | None:
        """The result, the first time its request is answered; None for a repeat."""
        result = EvaluationResult.from_proto(msg)
        if self.pending.pop(result.request_id, None) is None:
            return None
        self.attempt = 0
        return result

    def check_complete(self) -> None:
        if self.pending:
            raise InternalError(f"the server ended the batch without answering {sorted(self.pending)}")


class ClientCore:
    """Configuration and decisions of a client. A subclass names its transport (`grpc` or
    `grpc.aio`) in `_channels` and adds the calls."""

    _channels: Any = grpc

    def __init__(
        self,
        target: str | Sequence[str],
        *,
        timeout: float | None = 30.0,
        retry: RetryPolicy | None = None,
        metadata: Sequence[tuple[str, str]] = (),
        token: str | None = None,
        tls: bool = False,
        root_certificates: bytes | None = None,
    ) -> None:
        """`target`: "host:port", "a:p,b:p" (round-robin) or a gRPC URI such as dns:///name:port.
        `timeout`: deadline of the quick calls (list_tasks, server_info, cancel). `token`: the
        server's bearer token. `tls` / `root_certificates` (PEM bytes of the CA; None: the system's):
        talk TLS."""
        self.target = normalize_target(target)
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self._metadata = auth_metadata(metadata, token)
        if tls or root_certificates is not None:
            credentials = grpc.ssl_channel_credentials(root_certificates=root_certificates)
            self._channel = self._channels.secure_channel(self.target, credentials, options=channel_options())
        else:
            self._channel = self._channels.insecure_channel(self.target, options=channel_options())
        self._stub = pb_grpc.EvaluatorStub(self._channel)

    def _give_up_or_pause(self, err: grpc.RpcError, attempt: int, deadline: float | None) -> float:
        """Seconds to wait before retrying `err`; raises its API error when it is not worth retrying."""
        pause = self.retry.should_retry(err.code(), attempt, deadline)
        if pause is None:
            raise error_from_rpc(err) from None
        return pause

    def _not_ready(self, timeout: float) -> EvaluatorUnavailableError:
        return EvaluatorUnavailableError(f"no evaluator answered at {self.target} within {timeout:g} s")
