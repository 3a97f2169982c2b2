"""Exceptions the SDK raises: one per gRPC status a caller may want to handle differently."""

from __future__ import annotations

import grpc


class EvaluatorError(Exception):
    """A call failed; `code` is the gRPC status, `details` the server's message."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"{code.name}: {details}")
        self.code = code
        self.details = details


class InvalidRequestError(EvaluatorError):
    """The request is malformed (unknown task, code too large, ...): fix it, do not retry."""


class QueueFullError(EvaluatorError):
    """The server's queue stayed full through every retry."""


class EvaluatorUnavailableError(EvaluatorError):
    """No server answered (or its sandbox engine is down) through every retry."""


class DeadlineExceededError(EvaluatorError):
    """The call's deadline passed before the answer came."""


class AuthenticationError(EvaluatorError):
    """The server refused the credentials."""


class NotFoundError(EvaluatorError):
    pass


class CancelledError(EvaluatorError):
    pass


_BY_CODE: dict[grpc.StatusCode, type[EvaluatorError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidRequestError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: QueueFullError,
    grpc.StatusCode.UNAVAILABLE: EvaluatorUnavailableError,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceededError,
    grpc.StatusCode.UNAUTHENTICATED: AuthenticationError,
    grpc.StatusCode.PERMISSION_DENIED: AuthenticationError,
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.CANCELLED: CancelledError,
}


def from_rpc_error(err: grpc.RpcError) -> EvaluatorError:
    code = err.code() if hasattr(err, "code") else grpc.StatusCode.UNKNOWN
    details = (err.details() if hasattr(err, "details") else None) or str(err)
    return _BY_CODE.get(code, EvaluatorError)(code, details)
