"""The EvoPrompting loop against a real gRPC evaluator with a fake sandbox (fast): the algorithm's
bookkeeping, filtering, selection, ablation modes, failures and resume."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from evoprompt.evaluator.server import EvaluatorServer
from evoprompt.evaluator.settings import load_settings
from evoprompt.search.config import SearchConfig
from evoprompt.search.lm.base import LanguageModel, LMConfigError, LMError, Usage
from evoprompt.search.prompt import Prompt
from evoprompt.search.runner import RunDirError, run_search
from evoprompt.search.store import RunStore
from tests.support.fakes import FAKE_SHAPE_ERROR, FakeExecutor


class ScriptedLM(LanguageModel):
    """Continuations that differ by a comment (and so in size); scripted junk, repeats and failures."""

    def __init__(self, junk_every: int = 0, repeat_every: int = 0, fail_prompts: int = 0,
                 crash_after: int | None = None) -> None:
        super().__init__("scripted")
        self.calls: list[tuple[str, int, float, int]] = []
        self.junk_every, self.repeat_every, self.fail_prompts = junk_every, repeat_every, fail_prompts
        self.crash_after = crash_after

    async def generate(self, prompt: Prompt, num_samples: int, temperature: float, seed: int,
                       usage: Usage | None = None) -> list[str]:
        self.calls.append((prompt.text, num_samples, temperature, seed))
        if self.crash_after is not None and len(self.calls) > self.crash_after:
            raise KeyboardInterrupt  # stands in for kill -9: nothing after this point runs
        if len(self.calls) <= self.fail_prompts:
            raise LMError("the LM server answered 500")
        outputs = []
        for i in range(num_samples):
            if self.junk_every and i % self.junk_every == 0:
                outputs.append(f"    def forward(self x):  # {seed}\n")
            elif self.repeat_every and i % self.repeat_every == 0:
                outputs.append("    pass\n")
            else:
                # distinct programs (not only distinct comments, which the normalised hash ignores)
                outputs.append(f"    width = {seed % 100_003 * 100 + i}  # {'x' * (seed % 97 + i)}\n")
        return outputs


class TunableScriptedLM(ScriptedLM):
    tunable = True

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.tuned: list[list[str]] = []

    def tune(self, texts, out_dir):
        from evoprompt.search.lm.base import TuneReport

        out_dir.mkdir(parents=True)
        (out_dir / "adapter.txt").write_text("soft prompt")
        self.tuned.append(texts)
        return TuneReport((2.0, 1.5, 1.0), out_dir, len(texts))

    def load_soft_prompt(self, path):
        self.loaded = path


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory):
    settings = load_settings(overrides={"port": 0, "backend": "process", "slots": 2, "queue_capacity": 256,
                                        "home": tmp_path_factory.mktemp("evaluator")})
    server = EvaluatorServer(settings, executor=FakeExecutor()).start()
    yield server.endpoint
    server.stop()


def config(**kw) -> SearchConfig:
    base = {"task": "mnist1d", "framework": "torch", "lm": "scripted", "rounds": 2, "prompts": 3, "samples": 4,
            "parents": 3, "shots": 2, "alpha": 1.0, "max_steps": 5}
    return SearchConfig(**{**base, **kw})


def search(tmp_path: Path, endpoint: str, lm: LanguageModel, **kw) -> RunStore:
    resume = kw.pop("resume", False)
    run_search(None if resume else config(**kw), tmp_path, resume=resume, evaluator=endpoint, lm=lm,
               progress=False)
    return RunStore(tmp_path / "run.sqlite3")


def test_rounds_prompts_samples_and_parent_selection(tmp_path, endpoint):
    lm = ScriptedLM()
    store = search(tmp_path, endpoint, lm)
    seeds = store.candidates(kind="seed")
    children = store.candidates(kind="child")
    assert len(seeds) == 4 and all(s.status == "OK" for s in seeds)
    assert len(children) == 2 * 3 * 4 and len(lm.calls) == 6
    assert {s for _, s, _, _ in lm.calls} == {4} and {t for _, _, t, _ in lm.calls} <= {0.2, 0.6, 0.8, 1.0}
    rounds = store.rounds()
    assert [r.state for r in rounds] == ["done", "done"]
    # round 1 draws from the seeds; round 2 from the top p children of round 1
    assert set(rounds[0].parents_in) == {s.id for s in seeds}
    r1 = [c for c in children if c.round == 1]
    top = sorted(r1, key=lambda c: (-c.fitness, c.id))[:3]
    assert rounds[0].parents_out == tuple(c.id for c in top)
    assert rounds[1].parents_in == tuple(c.id for c in top)
    # round 2's parents are the best children never used as parents
    out2 = rounds[1].parents_out
    assert out2 is not None and not set(out2) & set(rounds[1].parents_in)
    for prompt in store.prompts():
        parents = prompt.parents
        assert len(parents) == 2 and len(set(parents)) == 2
        assert set(parents) <= set(rounds[prompt.round - 1].parents_in)
        assert prompt.state == "generated" and prompt.generations == 1
    for c in children:
        assert c.fitness == pytest.approx(-c.num_params * (1 - c.val_accuracy))


def test_invalid_and_duplicate_children_count_but_are_not_evaluated(tmp_path, endpoint):
    store = search(tmp_path, endpoint, ScriptedLM(junk_every=4, repeat_every=3), rounds=1)
    states = [c.state for c in store.candidates(kind="child")]
    assert len(states) == 12
    assert states.count("invalid") == 3  # samples 0 of each prompt: a syntax error
    assert states.count("duplicate") >= 2  # "pass" again: only the first copy is evaluated
    for c in store.candidates(kind="child"):
        if c.state in ("invalid", "duplicate"):
            assert c.status is None and c.fitness is None
    assert (store.candidates(state="invalid")[0].message or "").startswith("syntax error")


def test_alpha_drops_weak_children(tmp_path, endpoint):
    store = search(tmp_path, endpoint, ScriptedLM(), rounds=1, alpha=0.5)  # the fake sandbox scores ~10%
    assert all(c.fitness is None for c in store.candidates())
    assert [e.kind for e in store.events()].count("search") == 1


def test_lm_failures_are_recorded_and_the_run_goes_on(tmp_path, endpoint):
    store = search(tmp_path, endpoint, ScriptedLM(fail_prompts=2))
    assert [r.state for r in store.rounds()] == ["done", "done"]
    assert [e.kind for e in store.events()].count("lm") == 2
    assert [p.state for p in store.prompts()].count("failed") == 2


def test_few_shot_ablation_spends_the_budget_in_one_round_from_the_seeds(tmp_path, endpoint):
    store = search(tmp_path, endpoint, ScriptedLM(), mode="few-shot")
    assert len(store.rounds()) == 1
    assert len(store.prompts()) == 2 * 3
    seeds = {c.id for c in store.candidates(kind="seed")}
    for prompt in store.prompts():
        assert set(prompt.parents) <= seeds


def test_random_parents_ablation_picks_others_than_the_top(tmp_path, endpoint):
    store = search(tmp_path, endpoint, ScriptedLM(), mode="random-parents", rounds=1, parents=3, seed=5)
    r1 = store.candidates(kind="child")
    chosen = store.rounds()[0].parents_out
    assert chosen is not None and len(chosen) == 3 and set(chosen) <= {c.id for c in r1}
    top = tuple(c.id for c in sorted(r1, key=lambda c: (-c.fitness, c.id))[:3])
    assert chosen != top


def test_prompt_tuning_on_the_children_not_chosen(tmp_path, endpoint):
    lm = TunableScriptedLM()
    store = search(tmp_path, endpoint, lm, rounds=3)
    assert len(lm.tuned) == 2  # after rounds 1 and 2, not after the last
    rounds = store.rounds()
    for r, texts in zip(rounds, lm.tuned, strict=False):
        parents = set(r.parents_out or ())
        ok = [c for c in store.candidates(round=r.round, status="OK") if c.id not in parents]
        assert len(texts) == len(ok) and all(t.startswith('"""Metrics: {') for t in texts)
        assert r.tune_losses == [2.0, 1.5, 1.0] and r.soft_prompt is not None and Path(r.soft_prompt).is_dir()


def test_tuning_a_back_end_that_cannot_be_tuned_is_a_clear_error(tmp_path, endpoint):
    with pytest.raises(LMConfigError, match="needs an hf:MODEL back-end"):
        search(tmp_path, endpoint, ScriptedLM(), prompt_tuning="on")


def test_an_existing_run_needs_resume(tmp_path, endpoint):
    search(tmp_path, endpoint, ScriptedLM(), rounds=1)
    with pytest.raises(RunDirError, match="--resume"):
        search(tmp_path, endpoint, ScriptedLM(), rounds=1)


def test_resume_after_a_crash_repeats_nothing_finished(tmp_path, endpoint):
    lm = TunableScriptedLM(crash_after=4)  # dies sampling round 2's second prompt
    with pytest.raises(KeyboardInterrupt):
        search(tmp_path, endpoint, lm, rounds=2)
    store = RunStore(tmp_path / "run.sqlite3")
    before = {c.id: (c.code, c.status) for c in store.candidates()}
    evaluated_before = {c.id for c in store.candidates(state="evaluated")}
    store.close()

    lm2 = TunableScriptedLM()
    store = search(tmp_path, endpoint, lm2, resume=True)
    assert lm2.loaded.name == "round_01"  # the soft prompt of round 1 is used again
    assert len(lm2.calls) == 6 - 4  # only the two prompts never finished are sampled
    after = {c.id: (c.code, c.status) for c in store.candidates()}
    assert all(after[i][0] == code for i, (code, _) in before.items())
    assert len(store.candidates(kind="child")) == 2 * 3 * 4
    for c in store.candidates():
        assert c.state in ("evaluated", "invalid", "duplicate")
        if c.id in evaluated_before:
            assert c.submissions == 1  # finished before the crash: never sent again
    # every prompt was sampled once, but the one whose sampling the crash interrupted (nothing of it was kept)
    assert sorted(p.generations for p in store.prompts()) == [1] * 5 + [2]
    assert [r.state for r in store.rounds()] == ["done", "done"]


def test_config_is_validated():
    with pytest.raises(ValueError, match="--samples must be at least 1"):
        config(samples=0)
    with pytest.raises(ValueError, match="--mode"):
        config(mode="greedy")


def test_seed_programs_pick_the_seeds_and_a_resumed_run_keeps_them(tmp_path, endpoint):
    store = search(tmp_path, endpoint, ScriptedLM(), rounds=1, seed_programs=("cnn", "mlp"))
    assert sorted(s.name for s in store.candidates(kind="seed")) == ["cnn", "mlp"]
    assert set(store.rounds()[0].parents_in) == {s.id for s in store.candidates(kind="seed")}
    assert SearchConfig.load(tmp_path).seed_programs == ("cnn", "mlp")
    with pytest.raises(ValueError, match=r"no seed program 'resnet' for mnist1d / torch \(it has: cnn, gru, "):
        config(seed_programs=("cnn", "resnet"))


def test_fitness_is_the_papers():
    from evoprompt.sdk import EvaluationResult, Status
    from evoprompt.search.loop import fitness

    ok = EvaluationResult(request_id="a", status=Status.OK, num_params=1000, val_accuracy=0.9)
    assert fitness(ok, 0.5) == pytest.approx(-100.0)
    hiding = EvaluationResult(request_id="a", status=Status.OK, num_params=1000, num_state=9000, val_accuracy=0.9)
    assert fitness(hiding, 0.5) == pytest.approx(-1000.0)  # numbers held outside the parameters cost size too
    assert fitness(EvaluationResult(request_id="a", status=Status.OK, num_params=10, val_accuracy=0.5), 0.5) is None
    assert fitness(EvaluationResult(request_id="a", status=Status.RUNTIME_ERROR), 0.5) is None
    assert asyncio.iscoroutinefunction(ScriptedLM.generate)


class RepairingLM(LanguageModel):
    """Writes children that crash (FAKE_SHAPE_ERROR) or do not parse; answers a repair prompt with a
    program that works after `fixed_after` repairs of the same lineage (the broken code's generation)."""

    def __init__(self, fixed_after: int = 1, crash_after: int | None = None) -> None:
        super().__init__("repairing")
        self.fixed_after, self.crash_after = fixed_after, crash_after
        self.repair_prompts: list[Prompt] = []
        self.calls = 0

    async def generate(self, prompt: Prompt, num_samples: int, temperature: float, seed: int,
                       usage: Usage | None = None) -> list[str]:
        self.calls += 1
        if self.crash_after is not None and self.calls > self.crash_after:
            raise KeyboardInterrupt
        if usage is not None:
            usage.prompt_tokens += len(prompt.text.split())
            usage.completion_tokens += 10 * num_samples
        if prompt.text.startswith("# This program"):
            self.repair_prompts.append(prompt)
            generation = prompt.examples[0].code.count("# repaired") + 1
            mark = "\n    # repaired" * generation
            body = "    pass" if generation >= self.fixed_after else f"    x = '{FAKE_SHAPE_ERROR}'"
            return [f"{body}  # seed {seed}{mark}\n    width = {seed}\n"]
        # sample 0: a crash before training; sample 1: a syntax error; the rest: programs that train
        return [f"    x = '{FAKE_SHAPE_ERROR}'\n    width = {seed}\n", f"    def forward(self x):  # {seed}\n"] + [
            f"    width = {seed * 10 + i}\n" for i in range(2, num_samples)]


def test_children_that_never_trained_are_repaired_with_the_evaluators_message(tmp_path, endpoint):
    lm = RepairingLM(fixed_after=1)
    store = search(tmp_path, endpoint, lm, rounds=1, prompts=2, samples=3, repairs=2)
    children = store.candidates(kind="child")
    broken = [c for c in children if c.repair_of is None and (c.state == "invalid" or c.status == "RUNTIME_ERROR")]
    repairs = [c for c in children if c.repair_of is not None]
    assert len(broken) == 4 and {c.repair_of for c in repairs} == {c.id for c in broken}
    assert all(c.status == "OK" for c in repairs)  # each mended at the first try: no second repair
    crash_prompts = [p for p in lm.repair_prompts if "crashes before training" in p.text]
    assert crash_prompts and all("mat1 and mat2 shapes cannot be multiplied" in p.text for p in crash_prompts)
    assert any("syntax error" in p.text for p in lm.repair_prompts)
    assert all(p.messages and "mat1" in p.messages[-1]["content"] or "syntax" in p.messages[-1]["content"]
               for p in lm.repair_prompts)
    calls = store.lm_calls()
    assert len([c for c in calls if c.repair_of is not None]) == 4 and len(calls) == 2 + 4
    assert all(c.completion_tokens > 0 for c in calls)


def test_a_repair_that_fails_is_mended_again_up_to_the_limit(tmp_path, endpoint):
    lm = RepairingLM(fixed_after=99)  # never fixed
    store = search(tmp_path, endpoint, lm, rounds=1, prompts=1, samples=2, repairs=2)
    children = store.candidates(kind="child")
    by_id = {c.id: c for c in children}
    depths = []
    for c in children:
        depth, cur = 0, c
        while cur.repair_of is not None:
            cur, depth = by_id[cur.repair_of], depth + 1
        depths.append(depth)
    assert max(depths) == 2  # --repairs 2: two attempts per lineage, then it is dropped
    assert sum(d > 0 for d in depths) == 2 * 2  # the crash and the syntax error, each repaired twice


def test_no_repairs_without_the_flag(tmp_path, endpoint):
    lm = RepairingLM()
    store = search(tmp_path, endpoint, lm, rounds=1, prompts=1, samples=3)
    assert not lm.repair_prompts and all(c.repair_of is None for c in store.candidates())


def test_resume_in_the_middle_of_repairs_repeats_none(tmp_path, endpoint):
    lm = RepairingLM(fixed_after=99, crash_after=3)  # two prompts, then dies in the repairs
    with pytest.raises(KeyboardInterrupt):
        search(tmp_path, endpoint, lm, rounds=1, prompts=2, samples=2, repairs=2)
    with RunStore(tmp_path / "run.sqlite3") as before:
        finished = {c.id for c in before.candidates(state="evaluated")}
        assert any(c.repair_of for c in before.candidates())  # killed after a repair was stored
    lm2 = RepairingLM(fixed_after=99)
    store = search(tmp_path, endpoint, lm2, resume=True)
    children = store.candidates(kind="child")
    repaired = [c.repair_of for c in children if c.repair_of is not None]
    assert len(repaired) == len(set(repaired))  # no candidate repaired twice
    assert len(repaired) == 4 * 2  # four broken children, two repairs each
    assert all(c.submissions == 1 for c in children if c.id in finished)  # none evaluated again


def test_copies_that_differ_only_in_names_and_comments_cost_no_evaluation(tmp_path, endpoint):
    from evoprompt.search.seeds import list_seeds

    mlp = next(s for s in list_seeds("mnist1d", "torch") if s.name == "mlp").code
    renamed = "# a copy\n" + mlp.replace("self.", "self.renamed_").replace("x", "inputs") + "\n\n"

    class CopyingLM(ScriptedLM):
        async def generate(self, prompt, num_samples, temperature, seed, usage=None):
            return [renamed] * num_samples

    store = search(tmp_path, endpoint, CopyingLM(), rounds=1, prompts=1, samples=2)
    seed_id = next(c.id for c in store.candidates(kind="seed") if c.name == "mlp")
    children = store.candidates(kind="child")
    assert [c.state for c in children] == ["duplicate", "duplicate"]
    assert [c.duplicate_of for c in children] == [seed_id, seed_id]


def test_a_round_without_a_trained_child_tunes_on_its_parents(tmp_path, endpoint):
    class BrokenTunableLM(TunableScriptedLM):
        async def generate(self, prompt, num_samples, temperature, seed, usage=None):
            self.calls.append((prompt.text, num_samples, temperature, seed))
            return [f"    x = '{FAKE_SHAPE_ERROR}'\n    width = {seed * 10 + i}\n" for i in range(num_samples)]

    lm = BrokenTunableLM()
    store = search(tmp_path, endpoint, lm, rounds=2, prompts=1, samples=2, parents=2)
    seeds = {c.id: c.code for c in store.candidates(kind="seed")}
    assert all(c.status == "RUNTIME_ERROR" for c in store.candidates(kind="child"))
    assert len(lm.tuned) == 1 and len(lm.tuned[0]) == len(seeds)  # round 1's parents: the four seeds
    assert all(any(code in text for code in seeds.values()) for text in lm.tuned[0])
    assert any("tuned on the 4 parents instead" in e.message for e in store.events())


# -- multi-fidelity rungs, repeats, Pareto selection ------------------------------------------------


def rung_counts(store: RunStore) -> dict[tuple[int, int], int]:
    counts: dict[tuple[int, int], int] = {}
    for e in store.evaluations():
        counts[(e.rung, e.repeat)] = counts.get((e.rung, e.repeat), 0) + 1
    return counts


def test_rungs_promote_the_top_one_over_eta_and_only_finalists_become_parents(tmp_path, endpoint):
    store = search(tmp_path, endpoint, ScriptedLM(), rounds=1, prompts=2, samples=4, rungs=(2, 4, 8), eta=2,
                   max_steps=0)
    children = store.candidates(kind="child")
    assert len(children) == 8
    seeds = {c.id for c in store.candidates(kind="seed")}
    kids = [e for e in store.evaluations() if e.candidate_id not in seeds]
    assert sorted({(e.rung, e.steps) for e in kids}) == [(0, 2), (1, 4), (2, 8)]
    assert [sum(e.rung == r for e in kids) for r in range(3)] == [8, 4, 2]  # 8 -> 8 // 2 -> 4 // 2
    # the seeds train at the last rung only
    assert {(e.rung, e.steps) for e in store.evaluations() if e.candidate_id in seeds} == {(2, 8)}
    finalists = {c.id for c in children if c.rung == 2}
    assert len(finalists) == 2 and {c.id for c in children if c.fitness is not None} == finalists
    assert all(c.state == "evaluated" for c in children)
    # promotion follows the ranking at the rung below: rung 1's entrants are rung 0's fittest
    rung0 = {e.candidate_id: -e.size * (1 - e.val_accuracy) for e in kids if e.rung == 0}
    best4 = sorted(rung0, key=lambda cid: (-rung0[cid], cid))[:4]
    assert {e.candidate_id for e in kids if e.rung == 1} == set(best4)
    (r1,) = store.rounds()
    assert set(r1.parents_out) <= finalists


def test_repeats_train_each_finalist_with_k_seeds_and_report_an_interval(tmp_path, endpoint):
    store = search(tmp_path, endpoint, ScriptedLM(), rounds=1, prompts=1, samples=4, rungs=(2, 4), eta=2,
                   repeats=3, max_steps=0)
    last = [e for e in store.evaluations() if e.rung == 1]
    by_candidate: dict[int, list] = {}
    for e in last:
        by_candidate.setdefault(e.candidate_id, []).append(e)
    assert all(sorted(x.repeat for x in es) == [0, 1, 2] for es in by_candidate.values())
    assert all(sorted(x.result["seed"] for x in es) == [0, 1, 2] for es in by_candidate.values())
    finalists = [c for c in store.candidates(kind="child") if c.rung == 1]
    assert finalists and all(c.val_ci is not None and c.fitness is not None for c in finalists)


def test_resume_mid_rung_sends_only_what_was_not_stored(tmp_path, endpoint, monkeypatch):
    from evoprompt.sdk import AsyncEvaluatorClient

    store = search(tmp_path, endpoint, ScriptedLM(), rounds=1, prompts=2, samples=4, rungs=(2, 4, 8), eta=2,
                   max_steps=0)
    kids = {c.id for c in store.candidates(kind="child")}
    lost = [e for e in store.evaluations() if e.rung == 2 and e.candidate_id in kids]
    # what a kill during the last rung leaves: its evaluations unwritten, the round not finished
    with store._lock:
        marks = ",".join("?" * len(lost))
        store._db.execute(f"DELETE FROM evaluations WHERE rung=2 AND candidate_id IN ({marks})",
                          tuple(e.candidate_id for e in lost))
        store._db.execute("UPDATE candidates SET state='generated', status=NULL, fitness=NULL, rung=NULL, result=NULL"
                          " WHERE kind='child' AND state='evaluated' AND status='OK'")
        store._db.execute("UPDATE rounds SET state='started', parents_out=NULL")
    store.close()
    sent: list[str] = []
    real = AsyncEvaluatorClient.evaluate_request

    async def recording(self, request, *args, **kw):
        sent.append(request.request_id)
        return await real(self, request, *args, **kw)

    monkeypatch.setattr(AsyncEvaluatorClient, "evaluate_request", recording)
    store = search(tmp_path, endpoint, ScriptedLM(), resume=True)
    assert sorted(sent) == sorted(e.request_id for e in lost)  # no stored rung was sent again
    assert sum(e.rung == 2 and e.candidate_id in kids for e in store.evaluations()) == len(lost)
    assert store.rounds()[0].state == "done"


def test_pareto_selection_chooses_parents_by_front_then_crowding(tmp_path, endpoint):
    from evoprompt.search.selection import Point, rank

    store = search(tmp_path, endpoint, ScriptedLM(), rounds=1, prompts=2, samples=4, selection="pareto", parents=3)
    pool = store.candidates(kind="child", scored=True)
    expected = rank([Point(c.id, c.size, 1 - c.val_accuracy, c.fitness) for c in pool], "pareto")[:3]
    assert store.rounds()[0].parents_out == tuple(expected)


def test_the_report_shows_rungs_intervals_and_the_front(tmp_path, endpoint):
    from evoprompt.search.report import summarize

    search(tmp_path, endpoint, ScriptedLM(), rounds=1, prompts=2, samples=4, rungs=(2, 4), eta=2, repeats=2,
           selection="pareto", max_steps=0, seed=23)  # a seed of its own: the evaluator's cache answers repeats
    s = summarize(tmp_path)
    assert [(r["rung"], r["steps"], r["children"]) for r in s["rungs"]] == [(0, 2, 8), (1, 4, 4)]
    best = s["best"]
    assert best["rung"] == 1 and best["val_ci95"] is not None
    assert sorted((r["rung"], r["repeat"]) for r in best["rungs"]) == [(0, 0), (1, 0), (1, 1)]
    with RunStore(tmp_path / "run.sqlite3") as store:  # the front holds finalists only (the last rung)
        finalists = {c.id for c in store.candidates(kind="child") if c.rung == 1}
    assert s["front"] and {f["id"] for f in s["front"]} <= finalists
    # 8 children at 2 steps, 4 finalists x 2 repeats at 4 steps, 4 seeds x 2 repeats at 4 steps, none cached
    assert s["training_steps"] == 8 * 2 + 4 * 2 * 4 + 4 * 2 * 4
    assert s["per_round"][-1]["training_steps_so_far"] == s["training_steps"]
    with RunStore(tmp_path / "run.sqlite3") as store:  # every rung and repeat a child trained at, not its last
        children = {c.id for c in store.candidates(kind="child")}
        spent = sum(e.evaluator_seconds for e in store.evaluations() if e.candidate_id in children)
    assert spent > 0 and s["lm"]["evaluator_seconds"] == pytest.approx(spent, abs=1e-3)


def test_finalists_that_fail_alpha_are_still_on_the_plane(tmp_path, endpoint):
    """The hypervolume and front count every model trained at the full budget, in both loops alike: the alpha
    filter keeps a child from being a parent, not from being a point."""
    from evoprompt.search.report import summarize

    search(tmp_path, endpoint, ScriptedLM(), rounds=1, prompts=2, samples=4, rungs=(2, 4), eta=2, alpha=0.01,
           max_steps=0, seed=29)  # the fake sandbox scores ~10%: every child fails alpha
    s = summarize(tmp_path)
    with RunStore(tmp_path / "run.sqlite3") as store:
        finalists = {c.id for c in store.candidates(kind="child") if c.rung == 1 and c.status == "OK"}
        assert finalists and not store.candidates(kind="child", scored=True)
    assert s["front"] and {f["id"] for f in s["front"]} <= finalists and s["per_round"][0]["hypervolume"] > 0


GOLDEN = Path(__file__).parent / "data" / "paper_loop_golden.json"


def record_paper_loop(run_dir: Path, endpoint: str) -> dict:
    """Candidates (code, status, fitness, parents) and each round's parents of a fixed search."""
    import hashlib

    config = SearchConfig(task="mnist1d", framework="torch", lm="scripted", rounds=2, prompts=3, samples=4, parents=3,
                          shots=2, alpha=1.0, max_steps=5, seed=5, run_id="golden")
    run_search(config, run_dir, evaluator=endpoint, lm=ScriptedLM(junk_every=5, repeat_every=7), progress=False)
    with RunStore(run_dir / "run.sqlite3") as store:
        cands = [{"id": c.id, "round": c.round, "kind": c.kind, "state": str(c.state), "status": c.status,
                  "sha": hashlib.sha256(c.code.encode()).hexdigest()[:16], "fitness": c.fitness,
                  "parents": list(c.parents)} for c in store.candidates()]
        rounds = [{"round": r.round, "in": list(r.parents_in), "out": list(r.parents_out or ())}
                  for r in store.rounds()]
    return {"candidates": cands, "rounds": rounds}


def test_the_papers_loop_is_unchanged(tmp_path):
    """Without the new flags the search gives the same candidates, scores and parents as the loop did
    before rungs, repeats and Pareto selection (the golden file was recorded with that code)."""
    # a fresh server (no cached answers) on the published data (a secret draw would change the scores)
    settings = load_settings(overrides={"port": 0, "backend": "process", "slots": 2, "queue_capacity": 256,
                                        "public_data": True, "home": tmp_path / "evaluator"})
    server = EvaluatorServer(settings, executor=FakeExecutor()).start()
    try:
        assert record_paper_loop(tmp_path / "run", server.endpoint) == json.loads(GOLDEN.read_text())
    finally:
        server.stop()
