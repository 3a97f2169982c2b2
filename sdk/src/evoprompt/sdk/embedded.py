"""Start an evaluator inside this process, when one is installed: the one door through which the
client side (`evoprompt evaluate` without --evaluator, the search client) reaches the server side.

The evaluator distribution registers its embedded server in the `evoprompt.embedded` entry-point
group; the SDK never imports it by name, so an SDK-only install says what to install instead of
failing on an import.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from .errors import EvaluatorUnavailableError

EMBEDDED_GROUP = "evoprompt.embedded"


class EmbeddedEvaluatorMissing(EvaluatorUnavailableError):
    """No evaluator distribution is installed to start one in this process."""


def _factory() -> Callable[..., contextlib.AbstractContextManager[str]]:
    for ep in metadata.entry_points(group=EMBEDDED_GROUP, name="evaluator"):
        try:
            return ep.load()
        except ImportError as exc:
            raise EmbeddedEvaluatorMissing(
                f"the evaluator is installed but cannot be imported ({exc}); reinstall evoprompt-evaluator"
            ) from None
    raise EmbeddedEvaluatorMissing(
        "no evaluator given and none installed to start here: pass --evaluator HOST:PORT, "
        "or pip install evoprompt-evaluator"
    )


@contextlib.contextmanager
def evaluator_or_embedded(evaluator: str | None, **embedded: Any) -> Iterator[str]:
    """`evaluator` (HOST:PORT) when given, else an embedded server started with `embedded`'s settings
    (see `embedded_evaluator`): what every command that takes --evaluator does without it."""
    if evaluator:
        yield evaluator
        return
    with embedded_evaluator(**embedded) as endpoint:
        yield endpoint


@contextlib.contextmanager
def embedded_evaluator(
    *,
    frameworks: Sequence[str],
    backend: str = "auto",
    slots: int = 1,
    home: Path | str | None = None,
    timeout: float | None = None,
    **settings: Any,
) -> Iterator[str]:
    """A server on a free loopback port for the given frameworks; yields its endpoint (HOST:PORT).

    Its settings are exactly these arguments (and the evaluator's defaults), never the caller's
    EVOPROMPT_* environment, which configures standalone servers.
    """
    start = _factory()
    with start(frameworks=tuple(frameworks), backend=backend, slots=slots, home=home, timeout=timeout,
               **settings) as endpoint:
        yield endpoint
