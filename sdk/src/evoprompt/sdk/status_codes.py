"""The one place where the API's errors meet gRPC status codes, in both directions (as OSS Vizier's
grpc_util): the server aborts a call with `code_of(error)`, the SDK turns a failed call back into
the same class with `error_from_rpc`. A local and a remote caller therefore see the same error."""

from __future__ import annotations

import grpc

from .errors import (
    AuthenticationError,
    CancelledError,
    DeadlineExceededError,
    EvaluatorError,
    EvaluatorUnavailableError,
    InternalError,
    InvalidRequestError,
    NotFoundError,
    QueueFullError,
)

_CODES: dict[type[EvaluatorError], grpc.StatusCode] = {
    InvalidRequestError: grpc.StatusCode.INVALID_ARGUMENT,
    QueueFullError: grpc.StatusCode.RESOURCE_EXHAUSTED,
    EvaluatorUnavailableError: grpc.StatusCode.UNAVAILABLE,
    DeadlineExceededError: grpc.StatusCode.DEADLINE_EXCEEDED,
    AuthenticationError: grpc.StatusCode.UNAUTHENTICATED,
    NotFoundError: grpc.StatusCode.NOT_FOUND,
    CancelledError: grpc.StatusCode.CANCELLED,
    InternalError: grpc.StatusCode.INTERNAL,
}
_ERRORS: dict[grpc.StatusCode, type[EvaluatorError]] = {code: cls for cls, code in _CODES.items()}
_ERRORS[grpc.StatusCode.PERMISSION_DENIED] = AuthenticationError


def code_of(error: EvaluatorError) -> grpc.StatusCode:
    """The status a remote caller receives for `error` (the nearest mapped base class wins)."""
    for cls in type(error).__mro__:
        if cls in _CODES:
            return _CODES[cls]  # type: ignore[index]
    return grpc.StatusCode.INTERNAL


def error_from_rpc(err: grpc.RpcError) -> EvaluatorError:
    """The API error a failed call stands for; `status_code` keeps the wire's code for logs."""
    code = err.code() if hasattr(err, "code") else grpc.StatusCode.UNKNOWN
    details = (err.details() if hasattr(err, "details") else None) or str(err)
    error = _ERRORS.get(code, EvaluatorError)(details)
    error.status_code = code
    return error
