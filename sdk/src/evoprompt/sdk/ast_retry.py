"""A workaround for CPython 3.11, whose AST-to-object converter is not thread-safe (gh-106905): when
two threads build AST objects at once (`ast.parse`, `ast.literal_eval`, numpy's .npy header reader),
one of them may fail with `SystemError: AST constructor recursion depth mismatch`. It happens where a
search and its embedded evaluator share a process (the search parses programs while the server reads
.npz outputs). The work is pure, so it is retried; any other error propagates at once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
ATTEMPTS = 5


def retry_ast(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """fn(*args, **kwargs), again (up to ATTEMPTS times) when only the interpreter's race failed it."""
    for attempt in range(ATTEMPTS):
        try:
            return fn(*args, **kwargs)
        except SystemError as exc:
            if "recursion depth mismatch" not in str(exc) or attempt == ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")
