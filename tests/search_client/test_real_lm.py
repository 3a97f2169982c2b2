"""A pretrained LM writes the children: SmolLM2-135M-Instruct from its pinned PyPI package (installed
by `make setup`), sampled for real, its children evaluated in real sandboxes, prompt-tuned between
rounds, killed with SIGKILL mid-search and resumed with the tuned soft prompt.

Sized for CI on 2 cores (one prompt of two samples per round, 128 new tokens, one example per
prompt). SmolLM2's children seldom train; when none of a round does, the round tunes on its parents
(the seeds), so the tuning step is there whatever the model wrote."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from evoprompt.search.config import SearchConfig
from evoprompt.search.lm.hf import HuggingFaceLM
from evoprompt.search.lm.offline_models import MODELS, ModelFileError, materialise
from evoprompt.search.report import summarize
from evoprompt.search.runner import run_search
from evoprompt.search.store import RunStore

pytestmark = pytest.mark.integration
EVOPROMPT = [sys.executable, "-m", "evoprompt.sdk.cli"]


@pytest.fixture(scope="module")
def smollm2() -> str:
    """The `hf:` spec of the packaged SmolLM2; CI (EVOPROMPT_REQUIRE_DOCKER=1) must have it."""
    try:
        return f"hf:{materialise(MODELS[0])}"
    except ModelFileError as exc:
        if os.environ.get("EVOPROMPT_REQUIRE_DOCKER") == "1":
            pytest.fail(f"make setup installs SmolLM2 (models/smollm2.txt): {exc}")
        pytest.skip(str(exc))


def _wait_for(predicate, proc: subprocess.Popen, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the search ended before {what}: {proc.stderr.read() if proc.stderr else ''}")
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError(f"no {what} within {timeout:.0f} s")


def test_smollm2_two_rounds_tuned_killed_and_resumed(tmp_path, smollm2):
    run_dir = tmp_path / "run"
    db = run_dir / "run.sqlite3"
    args = ["search", "--task", "mnist1d", "--framework", "torch", "--lm", smollm2, "--run-dir", str(run_dir),
            "--rounds", "2", "--prompts", "1", "--samples", "2", "--shots", "1", "--parents", "2",
            "--max-steps", "50", "--seed", "1", "--lm-max-tokens", "128", "--tune-epochs", "3",
            "--tune-length", "256", "--no-progress"]
    proc = subprocess.Popen(EVOPROMPT + args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"}, start_new_session=True)
    try:
        # killed once round 1 is tuned (its soft prompt saved), before round 2 has finished
        def tuned() -> bool:
            if not db.exists():
                return False
            with RunStore(db) as store:
                row = store.round(1)
                return row is not None and row.state == "done"
        _wait_for(tuned, proc, 1200, "round 1 finished and tuned")
        assert proc.poll() is None
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the search and its embedded evaluator die at once
        proc.wait()

    with RunStore(db) as store:
        r1 = store.round(1)
        assert r1 is not None and r1.tune_losses and r1.soft_prompt
        assert r1.tune_losses[-1] < r1.tune_losses[0], r1.tune_losses  # prompt-tuning lowered its loss
        finished = {c.id for c in store.candidates() if c.state == "evaluated"}
        round1 = store.candidates(round=1, kind="child")
        assert len(round1) == 2 and all("class Model" in c.code for c in round1)
        # what SmolLM2 wrote reached a sandbox (or was refused before it, as a copy or as invalid Python)
        assert all(c.state in ("evaluated", "duplicate", "invalid") for c in round1)
        assert all(c.status for c in round1 if c.state == "evaluated")

    config = SearchConfig.load(run_dir)
    lm = HuggingFaceLM(smollm2, **config.lm_options())
    run_search(None, run_dir, resume=True, lm=lm, progress=False)
    assert lm.sampled_with_soft_prompt, "the resumed run sampled nothing"
    assert all(lm.sampled_with_soft_prompt), lm.sampled_with_soft_prompt  # round 2 with the tuned prompt
    with RunStore(db) as store:
        assert [r.state for r in store.rounds()] == ["done", "done"]
        assert all(c.submissions == 1 for c in store.candidates() if c.id in finished)  # none evaluated twice
        assert [p.state for p in store.prompts(2)] == ["generated"]
        calls = store.lm_calls()
    assert calls and all(c.completion_tokens > 0 and c.seconds > 0 for c in calls if c.prompt_index is not None)
    summary = summarize(run_dir)
    assert summary["rounds"] == 2 and summary["candidates"] == 4 and summary["lm"]["completion_tokens"] > 0
    assert summary["per_round"][0]["tune_losses"] and summary["per_round"][0]["tune_seconds"] > 0
