"""Making children: parents parsed, edits and crossover applied, each child validated (repaired,
traced, compiled) and deduplicated; and `MutationLM`, the language-model interface the search calls.
"""

from __future__ import annotations

import ast
import asyncio
import copy
import random

from evoprompt.sdk.ast_retry import retry_ast

from ...lm.base import LanguageModel, LMConfigError, LMError, Usage
from ...prompt import Prompt
from .crossover import _cross_args, _cross_splice
from .edits import EDIT_FUNCTIONS, EDIT_WEIGHTS
from .program import (
    _ctor,
    _free_names,
    _has_docstring,
    _init_of,
    _key,
    _kind,
    _Program,
    _self_assigns,
    _self_attr,
    _target,
    _Work,
)
from .shapes import _trace

EDITS = (*EDIT_WEIGHTS, "crossover")
CROSSOVER_RATE = 0.5
#: Edits per child: 1 + Binomial(MAX_EXTRA_EDITS, temperature / MAX_EXTRA_EDITS), so the mean is 1 + temperature.
MAX_EXTRA_EDITS = 4
ATTEMPTS_PER_SAMPLE = 25


def _drop_unused_layers(w: _Work) -> None:
    """Delete torch submodules nothing calls any more (their parameters would count)."""
    cls = w.target
    init = _init_of(cls) if isinstance(cls, ast.ClassDef) else None
    if init is None or not isinstance(cls, ast.ClassDef):
        return
    while True:
        assigns = _self_assigns(init)
        used = {_self_attr(n) for n in ast.walk(cls) if isinstance(n, ast.Attribute) and isinstance(n.ctx, ast.Load)}
        unused = [s for name, s in assigns.items() if name not in used and _ctor(s.value, w.aliases)]
        if not unused:
            return
        for stmt in unused:
            init.body.remove(stmt)


def _finish(w: _Work, parent: _Program) -> str | None:
    """The child's text when it is valid: repaired and traced (where the parent traces), and it compiles."""
    if w.kind == "torch":
        _drop_unused_layers(w)
    if _has_docstring(w.tree.body):
        w.tree.body = w.tree.body[1:]  # it describes the parent
    if not _free_names(w.tree) <= parent.free:
        return None
    if parent.traced and (_trace(w.tree, w.task, w.kind, repair=True) is None
                          or _trace(w.tree, w.task, w.kind, repair=False) is None):
        return None
    try:
        code = ast.unparse(ast.fix_missing_locations(w.tree))
        retry_ast(compile, code, "<mutation>", "exec")
    except (SyntaxError, ValueError, TypeError, RecursionError):
        return None
    return code


def _edit_count(temperature: float, rng: random.Random) -> int:
    p = min(1.0, max(0.0, temperature) / MAX_EXTRA_EDITS)
    return 1 + sum(rng.random() < p for _ in range(MAX_EXTRA_EDITS))


def _one_edit(w: _Work, edits: tuple[str, ...]) -> None:
    """Apply one edit, trying the kinds in a weighted random order until one applies."""
    kinds = [k for k in edits if k in EDIT_FUNCTIONS]
    order = sorted(kinds, key=lambda k: -(w.rng.random() ** (1.0 / EDIT_WEIGHTS[k])))
    for kind in order:
        note = EDIT_FUNCTIONS[kind](w)
        if note:
            w.notes.append(note)
            return


def _make_child(parents: list[_Program], task: str, temperature: float, edits: tuple[str, ...],
                rng: random.Random) -> tuple[str, str] | None:
    """One child (its key and text), or None when this attempt made nothing valid."""
    parent = rng.choice(parents)
    w = _Work(copy.deepcopy(parent.tree), parent.kind, parent.traced, task, rng)
    count = _edit_count(temperature, rng)
    donors = [p for p in parents if p is not parent and p.kind == parent.kind]
    if donors and "crossover" in edits and rng.random() < CROSSOVER_RATE:
        donor = rng.choice(donors)
        note = _cross_splice(w, donor) if rng.random() < 0.6 else None
        note = note or _cross_args(w, donor)
        if note:
            w.notes.append(note)
            count -= 1
    for _ in range(count):
        _one_edit(w, edits)
    if not w.notes:
        return None
    code = _finish(w, parent)
    if code is None:
        return None
    header = f"# mutation of parent {parent.index}: {'; '.join(w.notes)}"
    return _key(w.tree), f"{header}\n{code}\n"


def _parse(examples: list[str], task: str) -> list[_Program]:
    out = []
    for index, code in enumerate(examples, 1):
        try:
            tree = retry_ast(ast.parse, code)
        except (SyntaxError, ValueError, RecursionError):
            continue
        target = _target(tree, task)
        if target is None:
            continue
        kind = _kind(tree, target)
        traced = _trace(copy.deepcopy(tree), task, kind, repair=False) is not None
        out.append(_Program(index, tree, kind, _key(tree), traced, _free_names(tree)))
    return out


def mutate(codes: list[str], task: str, num_samples: int, temperature: float = 1.0, seed: int = 0,
           edits: tuple[str, ...] = EDITS) -> list[str]:
    """Up to `num_samples` distinct children of the parent programs `codes`; raises LMError when none parses."""
    parents = _parse(codes, task)
    if not parents:
        raise LMError(f"mutation: none of the {len(codes)} parent programs parses with a top-level "
                      f"{'get_triplet_msgs' if task.startswith('clrs') else 'class Model'}")
    rng = random.Random(seed)
    seen = {p.key for p in parents}
    children: list[str] = []
    for _ in range(ATTEMPTS_PER_SAMPLE * num_samples):
        if len(children) >= num_samples:
            break
        try:
            made = _make_child(parents, task, temperature, edits, rng)
        except Exception:  # a parent this operator cannot edit this way is skipped, never fatal
            continue
        if made is not None and made[0] not in seen:
            seen.add(made[0])
            children.append(made[1])
    return children


class MutationLM(LanguageModel):
    """Spec `mutation`, or `mutation:width,kernel,...` to allow only some edits (see EDITS)."""

    def __init__(self, spec: str = "mutation") -> None:
        super().__init__(spec)
        head, _, rest = spec.partition(":")
        if head != "mutation":
            raise LMConfigError(f"not a mutation spec: {spec!r}")
        edits = tuple(e.strip() for e in rest.split(",") if e.strip()) or EDITS
        unknown = [e for e in edits if e not in EDITS]
        if unknown:
            raise LMConfigError(f"unknown mutation edits {unknown}; known: {', '.join(EDITS)}")
        self.edits = edits

    async def generate(self, prompt: Prompt, num_samples: int, temperature: float, seed: int,
                       usage: Usage | None = None) -> list[str]:
        """Whole programs (not continuations); CPU-bound, so off the event loop. No tokens."""
        codes = [e.code for e in prompt.examples]
        return await asyncio.to_thread(mutate, codes, prompt.task, num_samples, temperature, seed, self.edits)
