"""The errors of the evaluator's API: one class per failure a caller handles differently, raised by
the server's own code and by the SDK alike, and free of gRPC (`status_codes` maps them to and from
gRPC status codes, in one place).

`UserError` is the base of every error that is its user's to fix (a bad argument, setting or file,
no evaluator to reach): the `evoprompt` command prints its message on one line and exits 2, where any
other exception is a bug and shows its traceback. Each part's own user errors (the evaluator's
settings and image builds, the search client's run directory and LM) subclass it.

`EvaluatorError.message` is what a person reads: what went wrong and what to do about it.
"""

from __future__ import annotations


class UserError(Exception):
    """Its user's to fix, and its message says how: `evoprompt` prints it and exits 2 (no traceback)."""


class InvalidTargetError(UserError, ValueError):
    """The evaluator's address (HOST:PORT, several, or a gRPC target) cannot be used as given."""


class EvaluatorError(UserError):
    """Base class of every error of the evaluator's API."""

    #: the status code of the failed call that raised it in the SDK (None when raised locally)
    status_code: object = None

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def details(self) -> str:  # the name gRPC gives the message; kept for callers that use it
        return self.message


class InvalidRequestError(EvaluatorError):
    """The request is malformed (unknown task, code too large, ...): fix it, do not retry."""


class QueueFullError(EvaluatorError):
    """The server's queue is full (in the SDK: it stayed full through every retry)."""


class EvaluatorUnavailableError(EvaluatorError):
    """No server answered, or its sandbox engine cannot be used; the message says how to fix it."""


class DeadlineExceededError(EvaluatorError):
    """The call's deadline passed before the answer came."""


class AuthenticationError(EvaluatorError):
    """The server refused the credentials (or got none where it needs a token)."""


class NotFoundError(EvaluatorError):
    """What the call names does not exist."""


class CancelledError(EvaluatorError):
    """The call was cancelled."""


class InternalError(EvaluatorError):
    """The evaluator itself failed; retrying may help, the server's log says more."""
