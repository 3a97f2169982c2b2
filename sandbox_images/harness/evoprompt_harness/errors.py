"""The one exception the harness raises about a candidate, carrying the status it deserves."""

from __future__ import annotations


class CandidateError(Exception):
    """The candidate broke the contract; `status` is an evaluator status name."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
