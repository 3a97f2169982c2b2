"""Reading programs: resolving imported names, finding layers and their arguments, and the two
records the other modules share, a parsed parent (`_Program`) and a child being edited (`_Work`).

Every other part of the operator looks at a program through these helpers, so they live apart
from the shape tracer, the edits and the crossover that use them.
"""

from __future__ import annotations

import ast
import builtins
import copy
import random
from dataclasses import dataclass, field

from evoprompt.sdk.ast_retry import retry_ast

#: Per task: the shape of one input example, and the number of classes the model must output.
TASK_SHAPES: dict[str, tuple[tuple[int, ...], int]] = {"mnist1d": ((40,), 10)}

# Where a layer's arguments are: role -> (position, keyword). "in" is derived from what reaches the
# layer (torch only; the tracer rewrites it), "out" is the width it produces.
_ArgSpec = dict[str, tuple[int, str]]
_RNN: _ArgSpec = {"in": (0, "input_size"), "out": (1, "hidden_size")}
_CELL: _ArgSpec = {"out": (0, "features")}
_ARGS: dict[tuple[str, str], _ArgSpec] = {
    ("torch", "Linear"): {"in": (0, "in_features"), "out": (1, "out_features")},
    ("torch", "Conv1d"): {"in": (0, "in_channels"), "out": (1, "out_channels"), "kernel": (2, "kernel_size"),
                          "stride": (3, "stride"), "padding": (4, "padding"), "dilation": (5, "dilation"),
                          "groups": (6, "groups")},
    ("torch", "GRU"): _RNN, ("torch", "LSTM"): _RNN, ("torch", "RNN"): _RNN,
    ("torch", "BatchNorm1d"): {"in": (0, "num_features")},
    ("torch", "LayerNorm"): {"in": (0, "normalized_shape")},
    ("torch", "MaxPool1d"): {"kernel": (0, "kernel_size"), "stride": (1, "stride"), "padding": (2, "padding"),
                             "dilation": (3, "dilation")},
    ("torch", "AvgPool1d"): {"kernel": (0, "kernel_size"), "stride": (1, "stride"), "padding": (2, "padding")},
    ("torch", "AdaptiveAvgPool1d"): {"size": (0, "output_size")},
    ("torch", "AdaptiveMaxPool1d"): {"size": (0, "output_size")},
    ("flax", "Dense"): {"out": (0, "features")},
    ("flax", "Conv"): {"out": (0, "features"), "kernel": (1, "kernel_size"), "stride": (2, "strides"),
                       "padding": (3, "padding"), "input_dilation": (4, "input_dilation"),
                       "dilation": (5, "kernel_dilation"), "groups": (6, "feature_group_count")},
    ("flax", "GRUCell"): _CELL, ("flax", "LSTMCell"): _CELL, ("flax", "OptimizedLSTMCell"): _CELL,
    ("flax", "SimpleCell"): _CELL,
    ("haiku", "Linear"): {"out": (0, "output_size")},
    ("haiku", "MLP"): {"out": (0, "output_sizes")},
    ("haiku", "Conv1D"): {"out": (0, "output_channels")},
    ("haiku", "Conv2D"): {"out": (0, "output_channels")},
    ("haiku", "GRU"): {"out": (0, "hidden_size")}, ("haiku", "LSTM"): {"out": (0, "hidden_size")},
}
_BUILTINS = frozenset(dir(builtins))


def _aliases(tree: ast.Module) -> dict[str, str]:
    """Local name -> what it was imported as (`nn` -> `torch.nn`), so calls resolve whatever the aliases."""
    out: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.Import):
            for a in node.names:
                out[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for a in node.names:
                out[a.asname or a.name] = f"{node.module}.{a.name}"
    return out


def _dotted(node: ast.AST, aliases: dict[str, str]) -> str | None:
    """The full dotted name an expression like `nn.Linear` refers to, or None when it is not an import."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name) or node.id not in aliases:
        return None
    return ".".join([aliases[node.id], *reversed(parts)])


def _ctor(call: ast.AST, aliases: dict[str, str]) -> tuple[str, str] | None:
    """(framework, layer class) when `call` constructs a layer (`nn.Conv1d(...)` -> ("torch", "Conv1d"))."""
    if not isinstance(call, ast.Call):
        return None
    name = _dotted(call.func, aliases)
    for prefix, family in (("torch.nn.", "torch"), ("flax.linen.", "flax"), ("haiku.nets.", "haiku"),
                           ("haiku.", "haiku")):
        if name and name.startswith(prefix):
            rest = name[len(prefix):]
            if "." not in rest and rest[:1].isupper():
                return family, rest
    return None


def _get_arg(call: ast.Call, pos: int, kw: str) -> ast.expr | None:
    for k in call.keywords:
        if k.arg == kw:
            return k.value
    if pos < len(call.args) and not any(isinstance(a, ast.Starred) for a in call.args[: pos + 1]):
        return call.args[pos]
    return None


def _set_arg(call: ast.Call, pos: int, kw: str, value: ast.expr) -> None:
    for k in call.keywords:
        if k.arg == kw:
            k.value = value
            return
    if pos < len(call.args):
        call.args[pos] = value
    else:
        call.keywords.append(ast.keyword(arg=kw, value=value))


def _role(call: ast.Call, aliases: dict[str, str], role: str) -> tuple[int, str] | None:
    fk = _ctor(call, aliases)
    return _ARGS.get(fk, {}).get(role) if fk else None


def _method(cls: ast.ClassDef, name: str) -> ast.FunctionDef | None:
    for node in cls.body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            return node
    return None


def _has_docstring(body: list[ast.stmt]) -> bool:
    return bool(body) and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
        and isinstance(body[0].value.value, str)


def _code(body: list[ast.stmt]) -> list[ast.stmt]:
    """A body without its docstring."""
    return body[1:] if _has_docstring(body) else body


def _literal_consts(body: list[ast.stmt]) -> dict[str, ast.expr]:
    """`NAME = <literal>` assignments of a module or class body: name -> value node."""
    out: dict[str, ast.expr] = {}
    for stmt in body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            try:
                retry_ast(ast.literal_eval, stmt.value)
            except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                continue
            out[stmt.targets[0].id] = stmt.value
    return out


def _self_assigns(func: ast.FunctionDef | None) -> dict[str, ast.Assign]:
    """`self.NAME = ...` statements at the top of `__init__`/`setup`: name -> statement."""
    out: dict[str, ast.Assign] = {}
    for stmt in func.body if func else []:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
            t = stmt.targets[0]
            if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "self":
                out[t.attr] = stmt
    return out


def _init_of(cls: ast.ClassDef) -> ast.FunctionDef | None:
    return _method(cls, "__init__") or _method(cls, "setup")


def _parents(tree: ast.AST) -> dict[int, ast.AST]:
    return {id(child): node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}


def _names(node: ast.AST, ctx: type) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ctx)}


def _bound_names(tree: ast.AST) -> set[str]:
    """Every name something in the tree binds: assignments, arguments, definitions, imports."""
    out = _names(tree, ast.Store)
    for n in ast.walk(tree):
        if isinstance(n, ast.arg):
            out.add(n.arg)
        elif isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.add(n.name)
        elif isinstance(n, (ast.Import, ast.ImportFrom)):
            out.update(a.asname or a.name.split(".")[0] for a in n.names)
        elif isinstance(n, ast.ExceptHandler) and n.name:
            out.add(n.name)
    return out


def _free_names(tree: ast.AST) -> set[str]:
    """Names loaded but bound nowhere (nor builtins): what would be a NameError."""
    return _names(tree, ast.Load) - _bound_names(tree) - _BUILTINS


def _strip_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) \
                and _has_docstring(node.body) and len(node.body) > 1:
            node.body = node.body[1:]
    return tree


def _key(tree: ast.AST) -> str:
    """What makes two programs the same: their syntax trees, docstrings and comments aside."""
    return ast.dump(_strip_docstrings(copy.deepcopy(tree)))


def _self_attr(node: ast.AST) -> str | None:
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self":
        return node.attr
    return None


def _fresh(base: str, taken: set[str]) -> str:
    if base not in taken:
        return base
    for i in range(2, 10_000):
        if f"{base}_{i}" not in taken:
            return f"{base}_{i}"
    raise ValueError("no fresh name")



@dataclass
class _Program:
    """A parent, parsed: its position among the prompt's examples, tree, framework and whether it traces."""

    index: int
    tree: ast.Module
    kind: str  # torch, flax, haiku, or "" when unknown
    key: str
    traced: bool
    free: set[str]


@dataclass
class _Work:
    """A child being made: a copy of its parent's tree and what the edits need to know."""

    tree: ast.Module
    kind: str
    traced: bool
    task: str
    rng: random.Random
    notes: list[str] = field(default_factory=list)

    @property
    def aliases(self) -> dict[str, str]:
        return _aliases(self.tree)

    @property
    def target(self) -> ast.ClassDef | ast.FunctionDef:
        found = _target(self.tree, self.task)
        assert found is not None
        return found

    @property
    def body(self) -> ast.FunctionDef | None:
        """The function the data flows through: forward, __call__, or the CLRS function itself."""
        t = self.target
        if isinstance(t, ast.FunctionDef):
            return t
        return _method(t, "forward" if self.kind == "torch" else "__call__")

    @property
    def repairs(self) -> bool:
        """Whether a layer may change width alone (its successors adapt or get repaired)."""
        return self.kind == "flax" or (self.kind == "torch" and self.traced)

    @property
    def shapes(self) -> tuple[tuple[int, ...], int] | None:
        return TASK_SHAPES.get(self.task.split("/")[0])

    def ctor_calls(self) -> list[tuple[ast.Call, str, str]]:
        aliases = self.aliases
        out = []
        for node in ast.walk(self.target):
            fk = _ctor(node, aliases)
            if fk is not None:
                assert isinstance(node, ast.Call)
                out.append((node, *fk))
        return out


def _target(tree: ast.Module, task: str) -> ast.ClassDef | ast.FunctionDef | None:
    """The definition a program is built around: `class Model`, or `def get_triplet_msgs` for CLRS."""
    clrs = task.startswith("clrs")
    for node in tree.body:
        if clrs and isinstance(node, ast.FunctionDef) and node.name == "get_triplet_msgs":
            return node
        if not clrs and isinstance(node, ast.ClassDef) and node.name == "Model":
            return node
    return None


def _kind(tree: ast.Module, target: ast.ClassDef | ast.FunctionDef) -> str:
    aliases = _aliases(tree)
    names = [_dotted(b, aliases) or "" for b in target.bases] if isinstance(target, ast.ClassDef) else []
    names += sorted(aliases.values())
    for name in names:
        for kind in ("torch", "flax", "haiku"):
            if name.startswith(kind):
                return kind
    return ""

