"""Crossover of two parents of the same framework: the front of one body spliced onto the back of
the other's (with the layers and module-level names it needs), or one layer hyperparameter taken
from the other parent's layer of the same type.
"""

from __future__ import annotations

import ast
import copy
from dataclasses import dataclass
from typing import Any

from .edits import _has_layer
from .program import (
    _ARGS,
    _code,
    _free_names,
    _fresh,
    _get_arg,
    _has_docstring,
    _init_of,
    _method,
    _names,
    _Program,
    _self_assigns,
    _self_attr,
    _set_arg,
    _target,
    _Work,
)
from .shapes import _Tensor, _trace


def _out_var(stmts: list[ast.stmt]) -> str | None:
    """The variable the last of `stmts` leaves its result in."""
    for stmt in reversed(stmts):
        if isinstance(stmt, ast.For):
            found = _out_var(stmt.body)
            if found:
                return found
        if isinstance(stmt, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            target = stmt.targets[0] if isinstance(stmt, ast.Assign) else stmt.target
            if isinstance(target, (ast.Tuple, ast.List)) and target.elts:
                target = target.elts[0]
            return target.id if isinstance(target, ast.Name) else None
    return None


def _rename(nodes: list[ast.stmt], old: str, new: str) -> None:
    for stmt in nodes:
        for n in ast.walk(stmt):
            if isinstance(n, ast.Name) and n.id == old:
                n.id = new


def _args(func: ast.FunctionDef) -> list[str]:
    names = [a.arg for a in func.args.args]
    return names[1:] if names[:1] == ["self"] else names


@dataclass
class _Cut:
    i: int  # statements of the child's own body kept in front
    j: int  # first statement of the donor's body taken
    own: str  # the variable the kept part leaves its result in
    theirs: str  # the variable the donor's part starts from


def _cuts(w: _Work, a: ast.FunctionDef, b: ast.FunctionDef, snaps: tuple[list[dict[str, Any]], ...] | None
          ) -> list[_Cut]:
    """Where the front of one body can be joined to the back of another."""
    sa, sb = _code(a.body), _code(b.body)
    ret_a = next((k for k, s in enumerate(sa) if isinstance(s, ast.Return)), len(sa))
    ret_b = next((k for k, s in enumerate(sb) if isinstance(s, ast.Return)), len(sb) - 1)
    shared = set(_args(a)) & set(_args(b))
    out: list[_Cut] = []
    if not sb or not isinstance(sb[ret_b], ast.Return):
        return out
    for i in range(1, ret_a + 1):
        own = _out_var(sa[:i])
        if own is None:
            continue
        for j in range(ret_b + 1):
            theirs = _out_var(sb[:j]) if j else (_args(b) or [None])[0]
            suffix = sb[j:ret_b + 1]
            if theirs is None or not any(_calls_layer(w, s) for s in suffix):
                continue
            loaded = set().union(*(_names(s, ast.Load) for s in suffix))
            defined = set(_args(b)).union(*(_names(s, ast.Store) for s in sb[:j]))
            needed = (loaded & defined) - {theirs}
            if theirs not in loaded or not needed <= shared or own in needed or not _renamable(suffix, theirs, own):
                continue
            if snaps is not None and not _same_rank(snaps[0][i].get(own), snaps[1][j].get(theirs)):
                continue
            if w.kind == "haiku" and own != theirs:
                continue
            out.append(_Cut(i, j, own, theirs))
    return out


def _calls_layer(w: _Work, stmt: ast.stmt) -> bool:
    """Whether a donor's statement applies a layer (for torch: calls one of the donor's submodules)."""
    if w.kind == "torch":
        return any(isinstance(n, ast.Call) and _self_attr(n.func) for n in ast.walk(stmt))
    return _has_layer(w, stmt)


def _renamable(suffix: list[ast.stmt], old: str, new: str) -> bool:
    """Whether `old` can become `new` in `suffix`: `old` is not read after the suffix assigns `new`."""
    if old == new:
        return True
    first = next((k for k, s in enumerate(suffix) if new in _names(s, ast.Store)), None)
    return first is None or all(old not in _names(s, ast.Load) for s in suffix[first + 1:])


def _same_rank(x: Any, y: Any) -> bool:
    return isinstance(x, _Tensor) and isinstance(y, _Tensor) and len(x.shape) == len(y.shape)


def _cross_splice(w: _Work, donor: _Program) -> str | None:
    """The front of this parent's body, then the back of the donor's (with the layers it uses)."""
    theirs = copy.deepcopy(donor.tree)
    b_target = _target(theirs, w.task)
    a, b = w.body, (_method(b_target, "forward" if w.kind == "torch" else "__call__")
                    if isinstance(b_target, ast.ClassDef) else b_target)
    if a is None or b is None:
        return None
    snaps = None
    if w.kind in ("torch", "flax"):
        sa, sb = _trace(w.tree, w.task, w.kind, False), _trace(theirs, w.task, w.kind, False)
        if sa is None or sb is None:
            return None
        snaps = (sa, sb)
    cuts = _cuts(w, a, b, snaps)
    if not cuts:
        return None
    cut = w.rng.choice(cuts)
    code_b = _code(b.body)
    suffix = code_b[cut.j:next((k for k, s in enumerate(code_b) if isinstance(s, ast.Return)), len(code_b)) + 1]
    if cut.own != cut.theirs:
        _rename(suffix, cut.theirs, cut.own)
    if w.kind == "torch" and not _bring_layers(w, b_target, suffix):
        return None
    head = a.body[:1] if _has_docstring(a.body) else []
    a.body = head + _code(a.body)[:cut.i] + suffix
    if not _bring_names(w.tree, theirs):
        return None
    return f"crossover: {cut.i} statement(s) of this parent, then parent {donor.index}'s from statement {cut.j + 1}"


def _bring_layers(w: _Work, donor_cls: ast.AST, suffix: list[ast.stmt]) -> bool:
    """Copy the donor's submodules the spliced statements call, renamed where the names are taken."""
    cls = w.target
    if not isinstance(cls, ast.ClassDef) or not isinstance(donor_cls, ast.ClassDef):
        return False
    init, donor_init = _init_of(cls), _init_of(donor_cls)
    if init is None or donor_init is None:
        return False
    mine, theirs = _self_assigns(init), _self_assigns(donor_init)
    taken = set(mine) | set(theirs)
    used = [n for n in ast.walk(ast.Module(body=suffix, type_ignores=[])) if _self_attr(n) is not None]
    for name in sorted({_self_attr(n) or "" for n in used}):
        if name not in theirs:
            return False
        fresh = name if name not in mine else _fresh(name, taken)
        taken.add(fresh)
        copied = copy.deepcopy(theirs[name])
        copied.targets[0].attr = fresh  # type: ignore[attr-defined]
        init.body.append(copied)
        for n in used:
            if _self_attr(n) == name:
                n.attr = fresh  # type: ignore[attr-defined]
    return True


def _module_bindings(tree: ast.Module) -> dict[str, ast.stmt]:
    """Module-level statement binding each name (imports, constants, helper functions)."""
    out: dict[str, ast.stmt] = {}
    for stmt in tree.body:
        if isinstance(stmt, (ast.Import, ast.ImportFrom)):
            for a in stmt.names:
                out.setdefault(a.asname or a.name.split(".")[0], stmt)
        elif isinstance(stmt, (ast.FunctionDef, ast.ClassDef)):
            out.setdefault(stmt.name, stmt)
        elif isinstance(stmt, ast.Assign):
            for t in stmt.targets:
                for n in ast.walk(t):
                    if isinstance(n, ast.Name):
                        out.setdefault(n.id, stmt)
    return out


def _bring_names(tree: ast.Module, donor: ast.Module) -> bool:
    """Copy the donor's module-level definitions that material taken from it needs."""
    available = _module_bindings(donor)
    for _ in range(8):
        missing = sorted(_free_names(tree))
        if not missing:
            return True
        stmts = [available[n] for n in missing if n in available]
        if not stmts:
            return True  # left to the caller, which compares with what the parent lacked
        for stmt in stmts:
            copied = copy.deepcopy(stmt)
            if isinstance(stmt, (ast.Import, ast.ImportFrom)):
                at = max((k + 1 for k, s in enumerate(tree.body) if isinstance(s, (ast.Import, ast.ImportFrom))),
                         default=0)
            else:
                at = next(k for k, s in enumerate(tree.body) if isinstance(s, (ast.ClassDef, ast.FunctionDef)))
            tree.body.insert(at, copied)
    return not _free_names(tree)


def _cross_args(w: _Work, donor: _Program) -> str | None:
    """Take one hyperparameter (width, kernel, stride, padding) of a layer from the donor's layer of the same type."""
    if not w.repairs and w.kind != "haiku":
        return None
    theirs = _Work(copy.deepcopy(donor.tree), donor.kind, donor.traced, w.task, w.rng)
    if _target(theirs.tree, w.task) is None:
        return None
    classes = (w.shapes or ((), None))[1]
    options = []
    for call, family, kind in w.ctor_calls():
        for other, f2, k2 in theirs.ctor_calls():
            if (family, kind) != (f2, k2):
                continue
            for role, spec in sorted(_ARGS.get((family, kind), {}).items()):
                if role not in ("out", "kernel", "stride", "padding"):
                    continue
                mine, new = _get_arg(call, *spec), _get_arg(other, *spec)
                if new is None or any(isinstance(n, (ast.Name, ast.Attribute, ast.Call)) for n in ast.walk(new)):
                    continue
                if mine is not None and ast.dump(mine) == ast.dump(new):
                    continue
                if role == "out" and classes in {_literal(mine), _literal(new)}:
                    continue
                options.append((call, kind, role, spec, new))
    if not options:
        return None
    call, kind, role, spec, new = w.rng.choice(options)
    _set_arg(call, *spec, copy.deepcopy(new))
    return f"crossover with parent {donor.index} ({kind} {role} {ast.unparse(new)})"


def _literal(node: ast.AST | None) -> Any:
    try:
        return ast.literal_eval(node) if node is not None else None  # type: ignore[arg-type]
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None
