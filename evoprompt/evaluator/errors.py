"""Domain exceptions of the evaluator, and the one place that turns them into gRPC status codes.

Raised anywhere (validation, scheduler, store); the servicer's wrapper maps them, so an in-process
caller and a remote caller see the same failure with the same message.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import grpc

log = logging.getLogger(__name__)


class EvaluatorError(Exception):
    """Base class; `code` is the gRPC status a remote caller receives."""

    code = grpc.StatusCode.INTERNAL


class InvalidRequest(EvaluatorError):
    code = grpc.StatusCode.INVALID_ARGUMENT


class QueueFull(EvaluatorError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class NotFound(EvaluatorError):
    code = grpc.StatusCode.NOT_FOUND


class Unauthenticated(EvaluatorError):
    code = grpc.StatusCode.UNAUTHENTICATED


class SandboxUnavailable(EvaluatorError):
    """The sandbox engine (Docker) cannot be used; the message says how to fix it."""

    code = grpc.StatusCode.UNAVAILABLE


F = TypeVar("F", bound=Callable[..., Any])


def grpc_errors(method: F) -> F:
    """Servicer-method wrapper: domain errors become their status, anything else INTERNAL (logged)."""

    @functools.wraps(method)
    def wrapper(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return method(self, request, context)
        except EvaluatorError as exc:
            context.abort(exc.code, str(exc))
        except Exception:
            log.exception("unexpected error in %s", method.__name__)
            context.abort(grpc.StatusCode.INTERNAL, f"internal error in {method.__name__}; see the server log")

    return wrapper  # type: ignore[return-value]


def grpc_stream_errors(method: F) -> F:
    """As grpc_errors, for server-streaming methods (generators)."""

    @functools.wraps(method)
    def wrapper(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            yield from method(self, request, context)
        except EvaluatorError as exc:
            context.abort(exc.code, str(exc))
        except Exception:
            log.exception("unexpected error in %s", method.__name__)
            context.abort(grpc.StatusCode.INTERNAL, f"internal error in {method.__name__}; see the server log")

    return wrapper  # type: ignore[return-value]
