"""The EvoPrompting loop (Chen, Dohan, So 2023, Algorithm 1), resumable at any point.

    parents <- the seeds, evaluated
    for round t = 1..T:
        m prompts, each with k examples drawn uniformly from the parents and a temperature drawn
        uniformly from {0.2, 0.6, 0.8, 1.0}; n children sampled per prompt
        children are de-duplicated (normalised syntax trees) and evaluated (generation and
        evaluation overlap); a child that fails to build gets up to `repairs` repair prompts
        fitness = -size * val_error, size = num_params + num_state (every number the verified model
        holds: weights hidden in buffers or constants still cost); children with val_error >= alpha are dropped
        parents <- top p of all children so far that were never parents
        prompt-tune the LM on this round's evaluated children that were not chosen as parents

Every step is written to the run's database before the next starts (see store.py), so a killed run
resumes without sampling a finished prompt again or evaluating a finished candidate again.
"""

from __future__ import annotations

import ast
import asyncio
import hashlib
import logging
import math
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from pathlib import Path

from evoprompt.sdk import AsyncEvaluatorClient, EvaluationRequest, EvaluationResult, EvaluatorError, Status
from evoprompt.sdk.ast_retry import retry_ast
from evoprompt.sdk.errors import InvalidRequestError, UserError
from evoprompt.sdk.limits import MAX_CODE_BYTES
from evoprompt.search.seeds import list_seeds

from .config import SearchConfig
from .lm.base import LanguageModel, LMConfigError, LMError, Usage
from .program_hash import structural_hash
from .prompt import Example, Prompt, anchor_for, build_prompt, program_from_output
from .repair import build_repair_prompt, failure, repairable
from .selection import Point, mean_interval, promoted, rank, rank_for_promotion
from .store import (
    SOFT_PROMPTS_DIR,
    Candidate,
    CandidateState,
    ChildDraft,
    Evaluation,
    PlannedPrompt,
    PromptState,
    Round,
    RoundState,
    RunStore,
)

log = logging.getLogger(__name__)


class NoParentsError(UserError):
    """No seed program evaluated OK: the search has nothing to prompt with (its sandboxes likely fail)."""


def fitness(result: EvaluationResult, alpha: float) -> float | None:
    """The paper's objective, or None for a child that is dropped (failed, or error >= alpha)."""
    if result.status is not Status.OK or result.val_error >= alpha:
        return None
    return -(result.num_params + result.num_state) * result.val_error


def _point(e: Evaluation) -> Point:
    """A rung evaluation as promotion ranks it: its size, validation error and fitness (rank_for_promotion puts
    those under the alpha bound first)."""
    result = _as_result(e)
    return Point(e.candidate_id, result.num_params + result.num_state, result.val_error,
                 fitness(result, math.inf) or 0.0)


def _as_result(e: Evaluation) -> EvaluationResult:
    """A stored rung evaluation as the SDK's result (its checkpoints left out)."""
    known = {f.name for f in fields(EvaluationResult)} - {"status", "checkpoints"}
    return EvaluationResult(status=Status[e.status], **{k: v for k, v in e.result.items() if k in known})


def _chosen(row: Round) -> tuple[int, ...]:
    """The parents a round chose; read only once its evaluation has finished."""
    if row.parents_out is None:
        raise RuntimeError(f"round {row.round} has no parents chosen in the run database")
    return row.parents_out


def sha256(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


@dataclass
class Counters:
    """What the progress bar shows."""

    round: int = 0
    samples: int = 0
    evaluations: int = 0
    best_fitness: float | None = None


class Search:
    def __init__(self, config: SearchConfig, lm: LanguageModel, client: AsyncEvaluatorClient, store: RunStore,
                 run_dir: Path, *, eval_concurrency: int = 4,
                 on_progress: Callable[[Counters], None] | None = None) -> None:
        self.config = config
        self.lm = lm
        self.client = client
        self.store = store
        self.run_dir = run_dir
        self.counters = Counters()
        self._eval_slots = asyncio.Semaphore(max(1, eval_concurrency))
        self._on_progress = on_progress or (lambda c: None)
        self.tuning = self._tuning_enabled()

    def _tuning_enabled(self) -> bool:
        wanted = self.config.prompt_tuning
        if wanted == "on" and not self.lm.tunable:
            raise LMConfigError(f"--prompt-tuning on needs an hf:MODEL back-end; {self.config.lm!r} cannot be tuned")
        if self.config.mode == "few-shot":
            return False
        return self.lm.tunable and wanted != "off"

    # -- the loop -------------------------------------------------------------------------------
    async def run(self) -> None:
        self._restore_soft_prompt()
        self._refresh_counters()
        parents = await self._evaluate_seeds()
        if not parents:
            raise NoParentsError("no seed program evaluated OK, so there is nothing to prompt with; "
                               "see `evoprompt report` for their errors")
        for t in range(1, self.config.total_rounds + 1):
            self.counters.round = t
            row = self.store.round(t)
            if row is not None and row.state == RoundState.DONE:
                parents = _chosen(row)
                continue
            if row is None:
                self.store.start_round(t, parents)
            parents_in = self._round(t).parents_in
            if row is None or row.state == RoundState.STARTED:
                await self._run_round(t, parents_in)
                self.store.finish_evaluation(t, self._select_parents(t, parents_in))
            parents = _chosen(self._round(t))
            losses, soft_prompt, seconds = await self._tune(t, parents)
            self.store.finish_round(t, losses, soft_prompt, seconds)
            self._progress()

    def _round(self, t: int) -> Round:
        """A round this run has started; its absence would be a bug."""
        row = self.store.round(t)
        if row is None:
            raise RuntimeError(f"round {t} is not in the run database")
        return row

    # -- seeds ----------------------------------------------------------------------------------
    async def _evaluate_seeds(self) -> tuple[int, ...]:
        have = {c.name: c for c in self.store.candidates(kind="seed")}
        chosen = self.config.seed_programs
        for seed in list_seeds(self.config.task, self.config.framework):
            if seed.name not in have and (not chosen or seed.name in chosen):
                self.store.add_candidate(round=0, kind="seed", name=seed.name, code=seed.code,
                                         code_sha256=sha256(seed.code), structure=structural_hash(seed.code),
                                         request_id=f"{self.config.run_id}-seed-{seed.name}")
        seeds = self.store.candidates(kind="seed")
        if not seeds:
            raise LMConfigError(f"no seed programs for task {self.config.task!r} and framework "
                                f"{self.config.framework!r}")
        await asyncio.gather(*(self._evaluate(c) for c in seeds if c.state == CandidateState.GENERATED))
        return tuple(c.id for c in self.store.candidates(kind="seed", status="OK"))

    # -- one round ------------------------------------------------------------------------------
    def _plan(self, t: int, parents_in: tuple[int, ...]) -> None:
        """The round's prompts, drawn once from a generator seeded by (seed, round)."""
        if self.store.prompts(t):
            return
        rng = random.Random(f"{self.config.seed}:{t}:prompts")
        for i in range(self.config.prompts_per_round):
            chosen = tuple(rng.sample(list(parents_in), min(self.config.shots, len(parents_in))))
            temperature = rng.choice(self.config.temperatures)
            self.store.plan_prompt(t, i, chosen, temperature, self._prompt(chosen).text)

    def _prompt(self, parents: tuple[int, ...]) -> Prompt:
        """The prompt whose in-context examples are these candidates, in this order."""
        by_id = self.store.by_ids(parents)
        examples = [Example(by_id[p].code, int(by_id[p].num_params or 0), float(by_id[p].val_accuracy or 0.0))
                    for p in parents]
        return build_prompt(examples, self.config.task)

    async def _run_round(self, t: int, parents_in: tuple[int, ...]) -> None:
        self._plan(t, parents_in)
        evaluations: list[asyncio.Task[None]] = []
        # children generated before a restart but never evaluated
        for c in self.store.candidates(round=t, kind="child", state=CandidateState.GENERATED):
            evaluations.append(asyncio.create_task(self._evaluate(c)))
        for planned in self.store.prompts(t):
            if planned.state != PromptState.PLANNED:
                continue
            children = await self._generate(t, planned)
            evaluations.extend(asyncio.create_task(self._evaluate(c)) for c in children)
        await asyncio.gather(*evaluations)
        # repairs come in waves (a repair that fails is mended in the next), each wave's sampling
        # overlapping its evaluations; what a wave finds is read from the store, so resume continues it
        while broken := self._to_repair(t):
            await asyncio.gather(*(self._repair(t, c, problem, what) for c, problem, what in broken))
        if self.config.multi_fidelity:
            await self._climb(t)

    # -- repair before discard ------------------------------------------------------------------
    def _to_repair(self, t: int) -> list[tuple[Candidate, str, str]]:
        """Round t's children that never trained, have no repair yet and are not too deep in repairs,
        each with the message and the kind of failure a repair prompt shows."""
        if not self.config.repairs:
            return []
        repaired = {c.repair_of for c in self.store.candidates(round=t, kind="child") if c.repair_of is not None}
        by_id = {c.id: c for c in self.store.candidates(round=t, kind="child")}
        broken = []
        for c in by_id.values():
            if c.id in repaired or self._repair_depth(c, by_id) >= self.config.repairs:
                continue
            if c.state == CandidateState.INVALID:
                broken.append((c, c.message or "the program is not valid Python", "is not a valid program"))
            elif c.state == CandidateState.EVALUATED and c.status and c.status != "OK":
                stored = self.store.result(c.id)
                if stored and repairable(stored):
                    what, problem = failure(stored)
                    broken.append((c, problem, what))
        return broken

    @staticmethod
    def _repair_depth(c: Candidate, by_id: dict[int, Candidate]) -> int:
        depth = 0
        while c.repair_of is not None and c.repair_of in by_id:
            c, depth = by_id[c.repair_of], depth + 1
        return depth

    async def _repair(self, t: int, broken: Candidate, problem: str, what: str) -> None:
        """One repair prompt for `broken`; its answer becomes a candidate (evaluated here when valid)."""
        base = self._prompt(broken.parents)
        prompt = build_repair_prompt(base, broken.code, problem, what)
        seed = int(sha256(f"{self.config.seed}:{t}:repair:{broken.id}")[:8], 16)
        temperature = broken.temperature if broken.temperature is not None else self.config.temperatures[0]
        outputs = await self._sample(t, prompt, 1, temperature, seed, repair_of=broken.id)
        if not outputs:  # the LM failed (an event says so) or answered nothing: no candidate, no retry
            outputs = [""]
        code = program_from_output(prompt, outputs[0])
        digest, structure = sha256(code), structural_hash(code)
        duplicate_of = self.store.known_structures().get(structure or digest)
        state, message = CandidateState.GENERATED, None
        if duplicate_of is not None:
            state = CandidateState.DUPLICATE
            message = f"the same program as candidate {duplicate_of} (normalised syntax tree)"
        elif problem := self._syntax_problem(code):
            state, message = CandidateState.INVALID, problem
        cid = self.store.add_candidate(
            round=t, kind="child", code=code, code_sha256=digest, parents=broken.parents, lm_output=outputs[0],
            temperature=temperature, request_id=f"{self.config.run_id}-{t}-repair-{broken.id}", state=state,
            message=message, structure=structure, duplicate_of=duplicate_of, repair_of=broken.id)
        self.counters.samples += 1
        child = self.store.by_ids([cid])[cid]
        if child.state == CandidateState.GENERATED:
            await self._evaluate(child)

    async def _generate(self, t: int, planned: PlannedPrompt) -> list[Candidate]:
        """Sample one prompt's children and store them; returns those to evaluate."""
        index, parents, temperature = planned.index, planned.parents, planned.temperature
        prompt = self._prompt(parents)
        self.store.begin_generation(t, index)
        seed = int(sha256(f"{self.config.seed}:{t}:{index}")[:8], 16)
        outputs = await self._sample(t, prompt, self.config.samples, temperature, seed, prompt_index=index)
        if outputs is None:
            self.store.mark_prompt(t, index, PromptState.FAILED)
            return []
        known = self.store.known_structures()
        rows: list[ChildDraft] = []
        for j, output in enumerate(outputs[: self.config.samples]):
            code = program_from_output(prompt, output)
            digest, structure = sha256(code), structural_hash(code)
            state, message, duplicate_of = CandidateState.GENERATED, None, known.get(structure or digest)
            if duplicate_of is not None:
                first = (f"candidate {duplicate_of}" if duplicate_of >= 0
                         else f"sample {-1 - duplicate_of} of this prompt")
                state, message = CandidateState.DUPLICATE, f"the same program as {first} (normalised syntax tree)"
            else:
                problem = self._syntax_problem(code)
                if problem:
                    state, message = CandidateState.INVALID, problem
                else:  # later samples of this prompt are compared with it; ids come at insertion
                    known[structure or digest] = -1 - j
            rows.append(ChildDraft(sample_index=j, code=code, code_sha256=digest, parents=parents, lm_output=output,
                                   temperature=temperature, state=state, message=message,
                                   request_id=f"{self.config.run_id}-{t}-{index}-{j}", structure=structure,
                                   duplicate_of=duplicate_of))
        ids = self.store.add_generation(t, index, rows)
        self.counters.samples += len(rows)
        self._progress()
        return [c for c in self.store.by_ids(ids).values() if c.state == CandidateState.GENERATED]

    async def _sample(self, t: int, prompt: Prompt, n: int, temperature: float, seed: int, *,
                      prompt_index: int | None = None, repair_of: int | None = None) -> list[str] | None:
        """One generate call, its cost written to the ledger; None (and an event) when the LM failed."""
        usage, started = Usage(), time.monotonic()
        try:
            outputs = await self.lm.generate(prompt, n, temperature, seed, usage)
        except LMError as exc:
            what = f"prompt {prompt_index}" if repair_of is None else f"repair of candidate {repair_of}"
            self.store.event("lm", f"round {t} {what}: {exc}", round=t)
            outputs = None
        self.store.record_lm_call(round=t, prompt_index=prompt_index, repair_of=repair_of, samples=n,
                                  prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens,
                                  seconds=usage.seconds or time.monotonic() - started)
        return outputs

    def _syntax_problem(self, code: str) -> str | None:
        """Programs that cannot be candidates are not sent to the evaluator (they count as samples)."""
        try:
            retry_ast(ast.parse, code)
        except SyntaxError as exc:
            return f"syntax error: {exc.msg} (line {exc.lineno})"
        if len(code.encode()) > MAX_CODE_BYTES:
            return f"longer than {MAX_CODE_BYTES // 1024} KiB"
        if not anchor_for(self.config.task).search(code):
            return f"no line matching {anchor_for(self.config.task).pattern!r}"
        return None

    async def _evaluate(self, c: Candidate) -> None:
        """Evaluate a new candidate: once (the paper's loop), or at its first rung (multi-fidelity; a
        seed goes straight to the last rung, with every repeat)."""
        if not self.config.multi_fidelity:
            result = await self._request(c.code, self.config.max_steps, self.config.seed, c.request_id or "", c)
            self._record(c, result, fitness(result, self.config.alpha))
            return
        rung = self._last_rung if c.kind == "seed" else 0
        done = await self._evaluate_at(c, rung)
        if c.kind == "seed" or rung == self._last_rung or not all(e.ok for e in done):
            self._finalize(c, done)  # nothing to climb: its verdict is final now

    async def _request(self, code: str, steps: int, seed: int, request_id: str, c: Candidate) -> EvaluationResult:
        request = EvaluationRequest(self.config.task, self.config.framework, code, max_steps=steps, seed=seed,
                                    request_id=request_id)
        async with self._eval_slots:
            self.store.mark_submitted(c.id)
            try:
                result = await self.client.evaluate_request(request)
            except InvalidRequestError as exc:
                result = EvaluationResult(request_id=request.request_id, status=Status.REJECTED, message=exc.details)
            except EvaluatorError as exc:
                self.store.event("evaluator", f"candidate {c.id}: {exc}", round=c.round)
                result = EvaluationResult(request_id=request.request_id, status=Status.INTERNAL_ERROR,
                                          message=str(exc))
        self.counters.evaluations += 1
        return result

    def _record(self, c: Candidate, result: EvaluationResult, score: float | None) -> None:
        """The candidate's verdict, written once."""
        self.store.record_result(c.id, result, score)
        if score is not None and c.kind == "child":
            best = self.counters.best_fitness
            self.counters.best_fitness = score if best is None else max(best, score)
        self._progress()

    # -- multi-fidelity: rungs and repeats ------------------------------------------------------
    @property
    def _last_rung(self) -> int:
        return len(self.config.rung_steps) - 1

    async def _evaluate_at(self, c: Candidate, rung: int) -> list[Evaluation]:
        """Train `c` at `rung` (every repeat at the last rung), skipping what the run already stored;
        returns all of `c`'s evaluations."""
        stored = {(e.rung, e.repeat) for e in self.store.evaluations([c.id])}
        steps = self.config.rung_steps[rung]
        repeats = self.config.repeats if rung == self._last_rung else 1

        async def one(repeat: int) -> None:
            request_id = f"{c.request_id or f'{self.config.run_id}-{c.id}'}-rung{rung}-seed{repeat}"
            result = await self._request(c.code, steps, self.config.seed + repeat, request_id, c)
            self.store.record_evaluation(c.id, rung, repeat, steps, result)
            self._progress()

        await asyncio.gather(*(one(r) for r in range(repeats) if (rung, r) not in stored))
        return self.store.evaluations([c.id])

    async def _climb(self, t: int) -> None:
        """Successive halving over round t's children: the top 1/eta of each rung's children (by the
        selection) train at the next; then every child still open gets its verdict. Promotions are
        recomputed from the stored evaluations, so a resumed run continues mid-rung."""
        children = [c for c in self.store.candidates(round=t, kind="child")
                    if c.state in (CandidateState.GENERATED, CandidateState.EVALUATED)]
        by_id = {c.id: c for c in children}
        evaluations = self.store.evaluations(list(by_id))
        entered = sorted({e.candidate_id for e in evaluations if e.rung == 0})
        for rung in range(1, self._last_rung + 1):
            points = [_point(e) for e in evaluations
                      if e.candidate_id in entered and e.rung == rung - 1 and e.repeat == 0 and e.ok]
            order = rank_for_promotion(points, self.config.selection, self.config.alpha)
            chosen = promoted(order, len(entered), self.config.eta)
            await asyncio.gather(*(self._evaluate_at(by_id[cid], rung) for cid in chosen))
            entered = chosen
            evaluations = self.store.evaluations(list(by_id))
        for c in self.store.candidates(round=t, kind="child", state=CandidateState.GENERATED):
            mine = [e for e in evaluations if e.candidate_id == c.id]
            if mine:
                self._finalize(c, mine)

    def _finalize(self, c: Candidate, evaluations: list[Evaluation]) -> None:
        """The candidate's verdict from its highest rung: the mean over its repeats there (a failed
        repeat decides); a fitness only at the last rung."""
        rung = max(e.rung for e in evaluations)
        top = [e for e in evaluations if e.rung == rung]
        results = [_as_result(e) for e in top]
        failed = next((r for r in results if not r.ok), None)
        if failed is not None:
            self.store.set_rung(c.id, rung, None)
            self._record(c, failed, None)
            return
        mean_val, half = mean_interval([r.val_accuracy for r in results])
        mean_test = statistics.fmean(r.test_accuracy for r in results)
        verdict = replace(results[0], val_accuracy=mean_val, test_accuracy=mean_test)
        score = None
        if rung == self._last_rung and fitness(verdict, self.config.alpha) is not None:  # the filter, on the mean
            ranked_on = mean_val - half if self.config.select_on == "lcb" else mean_val
            score = fitness(replace(verdict, val_accuracy=ranked_on), math.inf)
        self.store.set_rung(c.id, rung, half if len(results) > 1 else None)
        self._record(c, verdict, score)

    # -- selection and tuning -------------------------------------------------------------------
    def _select_parents(self, t: int, parents_in: tuple[int, ...]) -> tuple[int, ...]:
        used = self.store.used_parents()
        pool = [c for c in self.store.candidates(kind="child", scored=True, up_to_round=t)
                if c.id not in used]
        if self.config.mode == "random-parents":
            rng = random.Random(f"{self.config.seed}:{t}:parents")
            chosen = rng.sample(pool, min(self.config.parents, len(pool)))
        elif self.config.selection == "pareto":
            by_id = {c.id: c for c in pool}
            points = [Point(c.id, c.size, 1.0 - float(c.val_accuracy or 0.0), float(c.fitness or 0.0))
                      for c in pool]
            order = rank(points, "pareto")
            chosen = [by_id[cid] for cid in order[: self.config.parents]]
        else:
            chosen = sorted(pool, key=lambda c: (-(c.fitness or 0.0), c.id))[: self.config.parents]
        if not chosen:
            self.store.event("search", f"round {t}: no child passed the filter; the round's parents stay", round=t)
            return parents_in
        return tuple(c.id for c in chosen)

    async def _tune(self, t: int, parents_out: tuple[int, ...]
                    ) -> tuple[list[float] | None, str | None, float | None]:
        """Prompt-tune on round t's children that were not chosen: (losses, soft prompt folder, seconds)."""
        if not self.tuning or t >= self.config.total_rounds:
            return None, None, None
        # best first: a tuning budget of fewer examples keeps the fittest (lm.hf.TuningConfig.max_examples)
        rest = sorted((c for c in self.store.candidates(round=t, kind="child", status="OK")
                       if c.id not in set(parents_out)), key=lambda c: (-(c.fitness or -1e18), c.id))
        if not rest:
            # beyond the paper, for small LMs whose children seldom train: rather than no tuning at
            # all, tune on the parents the round chose (the seeds, when no child qualified), so the
            # soft prompt still learns what programs that train look like
            rest = [c for c in self.store.by_ids(parents_out).values() if c.status == "OK"]
            if not rest:
                self.store.event("tuning", f"round {t}: no evaluated program to tune on", round=t)
                return None, None, None
            self.store.event("tuning", f"round {t}: no child outside the parents trained OK; tuned on the "
                                       f"{len(rest)} parents instead", round=t)
        opening = anchor_for(self.config.task).search(rest[0].code)
        texts = [self.lm.tuning_text(self.config.task, opening.group(0) if opening else "", int(c.num_params or 0),
                                     float(c.val_accuracy or 0), c.code) for c in rest]
        out_dir = self.run_dir / SOFT_PROMPTS_DIR / f"round_{t:02d}"
        try:
            report = await asyncio.to_thread(self.lm.tune, texts, out_dir)
        except LMError as exc:
            self.store.event("tuning", f"round {t}: {exc}", round=t)
            return None, None, None
        return list(report.losses), str(report.path) if report.path else None, report.seconds

    def _restore_soft_prompt(self) -> None:
        if not self.tuning:
            return
        done = [r.soft_prompt for r in self.store.rounds() if r.soft_prompt]
        if done:
            self.lm.load_soft_prompt(Path(done[-1]))

    # -- progress -------------------------------------------------------------------------------
    def _refresh_counters(self) -> None:
        counts = self.store.child_counts()
        self.counters.samples, self.counters.evaluations = counts.samples, counts.evaluations
        self.counters.best_fitness = counts.best_fitness

    def _progress(self) -> None:
        self._on_progress(self.counters)
