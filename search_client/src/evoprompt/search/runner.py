"""Set up a search (run directory, LM, evaluator) and run it; shared by `evoprompt search` and the demo."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Any

from evoprompt.sdk import AsyncEvaluatorClient
from evoprompt.sdk.embedded import evaluator_or_embedded
from evoprompt.sdk.errors import UserError

from .config import SearchConfig
from .lm import LanguageModel, make_lm
from .loop import Counters, Search
from .store import CONFIG_NAME, DB_NAME, RunStore

log = logging.getLogger(__name__)


class RunDirError(UserError, ValueError):
    """The run directory does not fit the request (a run exists without --resume, or none with it)."""


def prepare_run_dir(run_dir: Path, config: SearchConfig | None, resume: bool) -> SearchConfig:
    """A new run writes config.json; a resumed one reads it (the saved search is the one continued)."""
    exists = (run_dir / DB_NAME).exists() or (run_dir / CONFIG_NAME).exists()
    if resume:
        if not (run_dir / CONFIG_NAME).exists():
            raise RunDirError(f"{run_dir} holds no run to resume (no {CONFIG_NAME})")
        try:
            return SearchConfig.load(run_dir)
        except (OSError, ValueError, TypeError) as exc:  # unreadable, not JSON, or not a search's settings
            raise RunDirError(f"cannot resume the run in {run_dir}: its {CONFIG_NAME}: {exc}") from exc
    if exists:
        raise RunDirError(f"{run_dir} already holds a run; pass --resume to continue it, or choose another --run-dir")
    if config is None:
        raise RunDirError("a new run needs its settings")
    try:
        config.save(run_dir)
    except OSError as exc:
        raise RunDirError(f"cannot write the run directory {run_dir}: {exc}") from exc
    return config


class ProgressBar:
    """rich progress: round, samples, evaluations, best fitness."""

    def __init__(self, config: SearchConfig) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[status]}"), TimeElapsedColumn())
        self.task = self.progress.add_task("search", total=config.total_rounds * config.prompts_per_round
                                           * config.samples, status="")
        self.rounds = config.total_rounds

    def __enter__(self) -> ProgressBar:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def update(self, c: Counters) -> None:
        best = "-" if c.best_fitness is None else f"{c.best_fitness:,.1f}"
        self.progress.update(self.task, completed=c.samples,
                             description=f"round {c.round}/{self.rounds}",
                             status=f"evaluated {c.evaluations}  best fitness {best}")


async def _run(config: SearchConfig, lm: LanguageModel, endpoint: str, store: RunStore, run_dir: Path,
               eval_concurrency: int, progress: bool) -> None:
    try:
        async with AsyncEvaluatorClient(endpoint) as client:
            await client.wait_ready(60)
            with ProgressBar(config) if progress else contextlib.nullcontext() as bar:
                search = Search(config, lm, client, store, run_dir, eval_concurrency=eval_concurrency,
                                on_progress=bar.update if bar is not None else None)
                await search.run()
    finally:
        await lm.aclose()  # in this event loop: HTTP clients belong to the loop that made them


def run_search(config: SearchConfig | None, run_dir: Path, *, resume: bool = False, evaluator: str | None = None,
               backend: str = "auto", slots: int = 2, lm: LanguageModel | None = None, progress: bool = True,
               lm_options: dict[str, Any] | None = None) -> SearchConfig:
    """Run (or resume) a search to the end; returns its config. The report is written separately."""
    config = prepare_run_dir(run_dir, config, resume)
    lm = lm or make_lm(config.lm, **{**config.lm_options(), **(lm_options or {})})
    store = RunStore(run_dir / DB_NAME)
    try:
        # without --evaluator: an embedded one (the `embedded` extra), its store in the run directory
        with evaluator_or_embedded(evaluator, frameworks=[config.framework], backend=backend, slots=slots,
                                   home=run_dir / "evaluator") as endpoint:
            asyncio.run(_run(config, lm, endpoint, store, run_dir, eval_concurrency=2 * slots, progress=progress))
    finally:
        store.close()
    return config
