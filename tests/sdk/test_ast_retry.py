"""The CPython 3.11 AST race workaround retries that race alone."""

from __future__ import annotations

import pytest

from evoprompt.sdk.ast_retry import ATTEMPTS, retry_ast


def flaky(failures: int, message: str = "AST constructor recursion depth mismatch (before=1, after=2)"):
    calls = []

    def fn(x):
        calls.append(x)
        if len(calls) <= failures:
            raise SystemError(message)
        return x * 2

    return fn, calls


def test_the_race_is_retried_and_the_value_returned():
    fn, calls = flaky(2)
    assert retry_ast(fn, 21) == 42 and len(calls) == 3


def test_other_errors_and_a_race_that_never_ends_propagate():
    fn, calls = flaky(1, "some other interpreter error")
    with pytest.raises(SystemError, match="other"):
        retry_ast(fn, 1)
    assert len(calls) == 1
    fn, calls = flaky(ATTEMPTS + 1)
    with pytest.raises(SystemError, match="mismatch"):
        retry_ast(fn, 1)
    assert len(calls) == ATTEMPTS
