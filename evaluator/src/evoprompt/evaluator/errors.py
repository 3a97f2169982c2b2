"""Servicer-method wrappers: an API error raised anywhere below (validation, scheduler, store,
sandbox) aborts the call with its status from `evoprompt.sdk.status_codes`; anything else is logged
and becomes INTERNAL. The error classes themselves are the SDK's (`evoprompt.sdk.errors`)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import grpc

from evoprompt.sdk.errors import EvaluatorError
from evoprompt.sdk.status_codes import code_of

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])


def _abort_unexpected(context: grpc.ServicerContext, name: str) -> None:
    log.exception("unexpected error in %s", name)
    context.abort(grpc.StatusCode.INTERNAL, f"internal error in {name}; see the server log")


def grpc_errors(method: F) -> F:
    """Unary servicer methods: API errors become their status, anything else INTERNAL (logged)."""

    @functools.wraps(method)
    def wrapper(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return method(self, request, context)
        except EvaluatorError as exc:
            context.abort(code_of(exc), exc.message)
        except Exception:
            _abort_unexpected(context, method.__name__)

    return wrapper  # type: ignore[return-value]


def grpc_stream_errors(method: F) -> F:
    """As grpc_errors, for server-streaming methods (generators)."""

    @functools.wraps(method)
    def wrapper(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            yield from method(self, request, context)
        except EvaluatorError as exc:
            context.abort(code_of(exc), exc.message)
        except Exception:
            _abort_unexpected(context, method.__name__)

    return wrapper  # type: ignore[return-value]
