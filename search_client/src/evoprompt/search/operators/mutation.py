"""The non-LM operator: mutation and crossover by editing the parents' syntax trees.

It plays the part of regularized evolution's mutations (Real et al. 2019) in this search: the
baseline the LM operator is compared with, and the fallback when no LM can be reached. Children are
derived from `prompt.examples` with `ast` edits (layer widths, kernel sizes, strides, layers
duplicated, removed or inserted, activations, crossover of two parents), deterministically given
the seed. A child is whole program text, starting with a comment naming its edits.

Widths must stay consistent. Flax and haiku layers infer their input sizes; for torch, a static
shape tracer follows `forward` from the task's input and rewrites the input-width argument of any
layer that no longer matches what reaches it. When the tracer can follow a parent, each child of it
must trace to the task's output shape too, so children of ordinary parents are valid by
construction; when it cannot, only edits that keep widths consistent on their own are made.
"""

from __future__ import annotations

import ast
import asyncio
import builtins
import copy
import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ..lm.base import LanguageModel, LMConfigError, LMError
from ..prompt import Prompt

#: Factors a width is multiplied by (regularized evolution's "change a layer's size").
FACTORS = (0.5, 0.75, 1.25, 1.5, 2.0)
#: The edits, with how often each is tried relative to the others.
EDIT_WEIGHTS: dict[str, int] = {"width": 3, "kernel": 2, "stride": 1, "layer": 2, "insert": 1, "activation": 1}
EDITS = (*EDIT_WEIGHTS, "crossover")
CROSSOVER_RATE = 0.5
#: Edits per child: 1 + Binomial(MAX_EXTRA_EDITS, temperature / MAX_EXTRA_EDITS), so the mean is 1 + temperature.
MAX_EXTRA_EDITS = 4
ATTEMPTS_PER_SAMPLE = 25
INSERT_WIDTHS = (16, 32, 64, 128)

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
_CONVS = {("torch", "Conv1d"), ("flax", "Conv")}
_TORCH_SAME_SHAPE = {"ReLU", "ReLU6", "GELU", "SiLU", "ELU", "SELU", "CELU", "LeakyReLU", "Tanh", "Sigmoid",
                     "Softplus", "Mish", "Hardtanh", "Hardswish", "Dropout", "Dropout1d", "AlphaDropout", "Identity",
                     "Softmax", "LogSoftmax"}
_FLAX_SAME_SHAPE = {"LayerNorm", "RMSNorm", "GroupNorm", "BatchNorm", "Dropout"}
_ELEMENTWISE = {"relu", "relu6", "gelu", "silu", "swish", "elu", "selu", "celu", "leaky_relu", "softplus", "mish",
                "tanh", "sigmoid", "hard_tanh", "hardtanh", "hard_swish", "log_sigmoid", "softmax", "log_softmax",
                "dropout", "abs", "exp", "square", "sqrt", "sin", "cos", "normalize", "contiguous", "float", "clone",
                "detach", "clamp", "clip"}
_REDUCTIONS = {"mean", "sum", "amax", "amin", "max", "min", "std", "var", "prod", "logsumexp"}
#: Activations that can stand in for each other, by the namespace they are called from.
_ACTIVATIONS: dict[str, tuple[str, ...]] = {
    "torch": ("relu", "tanh", "sigmoid"),
    "torch.nn.functional": ("relu", "gelu", "silu", "elu", "tanh"),
    "torch.nn": ("ReLU", "GELU", "SiLU", "ELU", "Tanh"),
    "flax.linen": ("relu", "gelu", "silu", "elu", "tanh"),
    "jax.nn": ("relu", "gelu", "silu", "elu"),
}
_BUILTINS = frozenset(dir(builtins))


# --------------------------------------------------------------------------------------------------
# Reading programs


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
                ast.literal_eval(stmt.value)
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


# --------------------------------------------------------------------------------------------------
# The shape tracer


class _Fail(Exception):
    """The tracer met something it cannot follow, or a shape error."""


class _Batch:
    """The batch dimension, in integer arithmetic about shapes."""


_BATCH = _Batch()


class _Unknown:
    """A value the tracer need not follow (an RNN's final state): it may be unpacked, never used."""


_UNKNOWN = _Unknown()


@dataclass(frozen=True)
class _Tensor:
    shape: tuple[int | None, ...]  # sizes after the batch dimension; None where unknown


@dataclass(frozen=True)
class _Multi:
    items: tuple[Any, ...]  # what an RNN or torch's max(dim=) returns


def _need(cond: bool) -> None:
    if not cond:
        raise _Fail


def _positive(n: int | None) -> int | None:
    _need(n is None or n >= 1)
    return n


def _conv_length(length: int | None, k: int, s: int, lo: int, hi: int, d: int = 1) -> int | None:
    return None if length is None else _positive((length + lo + hi - d * (k - 1) - 1) // s + 1)


def _first(value: Any) -> Any:
    """An int from `k` or `(k,)`."""
    if isinstance(value, (tuple, list)) and len(value) == 1:
        value = value[0]
    _need(isinstance(value, int) and not isinstance(value, bool))
    return value


def _axis(axis: Any, rank: int) -> int:
    """A non-batch axis of a tensor of `rank` dims after the batch, as an index into its shape."""
    axis = _first(axis)
    full = axis + rank + 1 if axis < 0 else axis
    _need(1 <= full <= rank)
    return full - 1


class _Tracer:
    """Follows shapes through a model's forward pass, statically, from a (batch, *inputs) input.

    With `repair`, a torch layer whose input-width argument disagrees with what reaches it gets that
    argument rewritten in place: how a torch child stays consistent after its widths or layers change.
    """

    def __init__(self, tree: ast.Module, cls: ast.ClassDef | None, aliases: dict[str, str], repair: bool) -> None:
        self.aliases = aliases
        self.repair = repair
        self.torch = any(v.startswith("torch") for v in aliases.values())
        self.consts = {k: ast.literal_eval(v) for k, v in _literal_consts(tree.body).items()}
        self.self_consts: dict[str, Any] = {}
        self.attrs: dict[str, ast.Call] = {}
        self.widths: dict[int, int] = {}
        self.env: dict[str, Any] = {}
        if cls is not None:
            self.self_consts.update({k: ast.literal_eval(v) for k, v in _literal_consts(cls.body).items()})
            for name, stmt in _self_assigns(_init_of(cls)).items():
                if isinstance(stmt.value, ast.Call):
                    self.attrs[name] = stmt.value
                else:
                    try:
                        self.self_consts[name] = ast.literal_eval(stmt.value)
                    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                        pass

    # statements

    def run(self, func: ast.FunctionDef, inputs: tuple[int, ...]) -> tuple[_Tensor, list[dict[str, Any]]]:
        """The output, and the variables before each statement of the body (for crossover cuts)."""
        args = [a.arg for a in func.args.args]
        args = args[1:] if args[:1] == ["self"] else args
        _need(bool(args))
        self.env = {args[0]: _Tensor(inputs)}
        snapshots: list[dict[str, Any]] = []
        for stmt in _code(func.body):
            snapshots.append(dict(self.env))
            if isinstance(stmt, ast.Return):
                out = self.eval(stmt.value) if stmt.value else None
                _need(isinstance(out, _Tensor))
                return out, snapshots
            self.exec(stmt)
        raise _Fail

    def exec(self, stmt: ast.stmt) -> None:
        if isinstance(stmt, ast.Pass):
            return
        if isinstance(stmt, ast.Expr):
            if not (isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str)):
                self.eval(stmt.value)
        elif isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
            self.assign(stmt.targets[0], self.eval(stmt.value))
        elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
            self.assign(stmt.target, self.eval(stmt.value))
        elif isinstance(stmt, ast.AugAssign):
            self.assign(stmt.target, self.binop(self.eval(_load(stmt.target)), self.eval(stmt.value)))
        elif isinstance(stmt, ast.For) and not stmt.orelse:
            for value in self.loop_values(stmt.iter):
                self.assign(stmt.target, value)
                for inner in stmt.body:
                    _need(not isinstance(inner, ast.Return))
                    self.exec(inner)
        else:
            raise _Fail

    def loop_values(self, node: ast.expr) -> list[Any]:
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "range":
            bounds = [self.eval(a) for a in node.args]
            _need(all(isinstance(b, int) for b in bounds) and 1 <= len(bounds) <= 3)
            values = list(range(*bounds))
        else:
            values = self.eval(node)
            _need(isinstance(values, (tuple, list)))
        _need(len(values) <= 64)
        return list(values)

    def assign(self, target: ast.expr, value: Any) -> None:
        if isinstance(target, ast.Name):
            self.env[target.id] = value
        elif isinstance(target, (ast.Tuple, ast.List)):
            items = value.items if isinstance(value, _Multi) else value
            if value is _UNKNOWN:
                items = (_UNKNOWN,) * len(target.elts)
            _need(isinstance(items, (tuple, list)) and len(items) == len(target.elts))
            for t, v in zip(target.elts, items, strict=True):
                self.assign(t, v)
        else:
            raise _Fail

    # expressions

    def eval(self, node: ast.expr) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            if node.id in self.env:
                return self.env[node.id]
            _need(node.id in self.consts)
            return self.consts[node.id]
        if isinstance(node, (ast.Tuple, ast.List)):
            return tuple(self.eval(e) for e in node.elts)
        if isinstance(node, ast.Attribute):
            return self.attribute(node)
        if isinstance(node, ast.Subscript):
            return self.subscript(self.eval(node.value), node.slice)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            value = self.eval(node.operand)
            if isinstance(value, _Tensor):
                return value
            _need(isinstance(value, (int, float)))
            return -value if isinstance(node.op, ast.USub) else value
        if isinstance(node, ast.BinOp):
            return self.binop(self.eval(node.left), self.eval(node.right), node.op)
        if isinstance(node, ast.Call):
            return self.call(node)
        raise _Fail

    def attribute(self, node: ast.Attribute) -> Any:
        name = _self_attr(node)
        if name is not None:
            _need(name in self.self_consts)
            return self.self_consts[name]
        value = self.eval(node.value)
        if isinstance(value, _Tensor) and node.attr == "shape":
            return (_BATCH, *value.shape)
        if isinstance(value, _Tensor) and node.attr == "ndim":
            return len(value.shape) + 1
        if isinstance(value, _Multi) and node.attr == "values":
            return value.items[0]
        raise _Fail

    def binop(self, left: Any, right: Any, op: ast.operator | None = None) -> Any:
        if isinstance(left, _Tensor) or isinstance(right, _Tensor):
            _need(not isinstance(op, ast.MatMult))
            if not (isinstance(left, _Tensor) and isinstance(right, _Tensor)):
                other = right if isinstance(left, _Tensor) else left
                _need(isinstance(other, (int, float)) and not isinstance(other, bool))
                return left if isinstance(left, _Tensor) else right
            return _broadcast(left, right)
        _need(all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (left, right)))
        ops: dict[type, Callable[[Any, Any], Any]] = {
            ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
            ast.FloorDiv: lambda a, b: a // b, ast.Div: lambda a, b: a / b}
        _need(type(op) in ops and not (isinstance(op, (ast.FloorDiv, ast.Div)) and right == 0))
        return ops[type(op)](left, right)

    def subscript(self, value: Any, index: ast.expr) -> Any:
        if isinstance(value, (_Multi, tuple)):
            items = value.items if isinstance(value, _Multi) else value
            i = self.eval(index)
            _need(isinstance(i, int) and -len(items) <= i < len(items))
            return items[i]
        _need(isinstance(value, _Tensor))
        return _index(value, index.elts if isinstance(index, ast.Tuple) else [index], self.eval)

    def call(self, node: ast.Call) -> Any:
        func = node.func
        if isinstance(func, ast.Call):  # flax: nn.Dense(10)(x)
            return self.apply(func, node)
        attr = _self_attr(func)
        if attr is not None:
            _need(attr in self.attrs)
            return self.apply(self.attrs[attr], node)
        name = _dotted(func, self.aliases)
        if name is not None:
            return self.function(name, node)
        if isinstance(func, ast.Name) and func.id == "len" and len(node.args) == 1:
            _need(isinstance(self.eval(node.args[0]), _Tensor))
            return _BATCH
        if isinstance(func, ast.Name) and func.id in ("int", "float", "max", "min", "abs"):
            values = [self.eval(a) for a in node.args]
            if func.id == "float" and values and isinstance(values[0], str):
                return 0.0  # float("inf") and the like: a scalar
            _need(all(isinstance(v, (int, float)) for v in values) and values)
            return getattr(builtins, func.id)(*values)
        if isinstance(func, ast.Attribute):
            tensor = self.eval(func.value)
            _need(isinstance(tensor, _Tensor))
            return self.method(tensor, func.attr, node.args, node.keywords, torch_style=self.torch)
        raise _Fail

    def function(self, name: str, node: ast.Call) -> Any:
        last = name.rsplit(".", 1)[-1]
        _need(bool(node.args))
        if last in ("cat", "concatenate", "concat", "stack"):
            return self.concat(node, stack=last == "stack")
        if last in ("max_pool", "avg_pool", "max_pool1d", "avg_pool1d"):
            return self.pool_function(name, node)
        tensor = self.eval(node.args[0])
        _need(isinstance(tensor, _Tensor))
        if last in _ELEMENTWISE:
            return tensor
        return self.method(tensor, last, node.args[1:], node.keywords, torch_style=name.startswith("torch"))

    def method(self, t: _Tensor, name: str, args: list[ast.expr], kws: list[ast.keyword], torch_style: bool) -> Any:
        kw = {k.arg: self.eval(k.value) for k in kws if k.arg}
        pos = [self.eval(a) for a in args]
        rank = len(t.shape)
        if name in _ELEMENTWISE or name in ("relu_", "type", "to"):
            return t
        if name == "size":
            full = (_BATCH, *t.shape)
            if not pos:
                return full
            _need(isinstance(pos[0], int) and -len(full) <= pos[0] < len(full))
            return full[pos[0]]
        if name in ("view", "reshape"):
            dims = pos[0] if len(pos) == 1 and isinstance(pos[0], tuple) else tuple(pos or kw.get("shape", ()))
            return _reshape(t, dims)
        if name == "flatten":
            start = pos[0] if pos else kw.get("start_dim", 0 if torch_style else 1)
            end = pos[1] if len(pos) > 1 else kw.get("end_dim", -1)
            first, last = _axis(start, rank), _axis(end, rank)
            _need(first <= last)
            return _Tensor((*t.shape[:first], _prod(t.shape[first:last + 1]), *t.shape[last + 1:]))
        if name in ("unsqueeze", "expand_dims"):
            axis = pos[0] if pos else kw.get("dim", kw.get("axis"))
            axis = _first(axis)
            full = axis + rank + 2 if axis < 0 else axis
            _need(1 <= full <= rank + 1)
            return _Tensor((*t.shape[:full - 1], 1, *t.shape[full - 1:]))
        if name == "squeeze":
            axis = pos[0] if pos else kw.get("dim", kw.get("axis"))
            _need(axis is not None)
            i = _axis(axis, rank)
            return _Tensor(t.shape[:i] + t.shape[i + 1:]) if t.shape[i] == 1 else t
        if name in ("transpose", "swapaxes", "swapdims"):
            _need(len(pos) == 2)
            i, j = _axis(pos[0], rank), _axis(pos[1], rank)
            dims = list(t.shape)
            dims[i], dims[j] = dims[j], dims[i]
            return _Tensor(tuple(dims))
        if name == "permute":
            order = pos[0] if len(pos) == 1 and isinstance(pos[0], tuple) else tuple(pos)
            _need(len(order) == rank + 1 and order[0] == 0)
            return _Tensor(tuple(t.shape[_axis(o, rank)] for o in order[1:]))
        if name in _REDUCTIONS:
            axis = pos[0] if pos else kw.get("dim", kw.get("axis"))
            _need(axis is not None)
            axes = [_axis(a, rank) for a in (axis if isinstance(axis, tuple) else (axis,))]
            keep = kw.get("keepdim", kw.get("keepdims", pos[1] if len(pos) > 1 else False))
            dims = tuple(1 if i in axes else d for i, d in enumerate(t.shape)) if keep else \
                tuple(d for i, d in enumerate(t.shape) if i not in axes)
            out = _Tensor(dims)
            return _Multi((out, out)) if torch_style and name in ("max", "min") else out
        raise _Fail

    def concat(self, node: ast.Call, stack: bool) -> _Tensor:
        parts = self.eval(node.args[0])
        _need(isinstance(parts, tuple) and bool(parts) and all(isinstance(p, _Tensor) for p in parts))
        rank = len(parts[0].shape)
        _need(all(len(p.shape) == rank for p in parts))
        kw = {k.arg: self.eval(k.value) for k in node.keywords if k.arg}
        axis = self.eval(node.args[1]) if len(node.args) > 1 else kw.get("dim", kw.get("axis", 0))
        if stack:
            axis = _first(axis)
            full = axis + rank + 2 if axis < 0 else axis
            _need(1 <= full <= rank + 1)
            return _Tensor((*parts[0].shape[:full - 1], len(parts), *parts[0].shape[full - 1:]))
        i = _axis(axis, rank)
        for p in parts[1:]:
            pairs = enumerate(zip(p.shape, parts[0].shape, strict=True))
            _need(all(a == b or None in (a, b) for j, (a, b) in pairs if j != i))
        sizes = [p.shape[i] for p in parts]
        total = None if None in sizes else sum(s for s in sizes if s is not None)
        return _Tensor((*parts[0].shape[:i], total, *parts[0].shape[i + 1:]))

    def pool_function(self, name: str, node: ast.Call) -> _Tensor:
        t = self.eval(node.args[0])
        _need(isinstance(t, _Tensor) and len(t.shape) == 2)
        kw = {k.arg: self.eval(k.value) for k in node.keywords if k.arg}
        pos = [self.eval(a) for a in node.args[1:]]
        if name.startswith("flax"):  # (batch, length, features), padding VALID by default
            k = _first(pos[0] if pos else kw.get("window_shape"))
            s = _first(pos[1] if len(pos) > 1 else kw.get("strides") or 1)
            length = _flax_length(t.shape[0], k, s, pos[2] if len(pos) > 2 else kw.get("padding", "VALID"))
            return _Tensor((length, t.shape[1]))
        k = _first(pos[0] if pos else kw.get("kernel_size"))
        s = _first(pos[1] if len(pos) > 1 and pos[1] is not None else kw.get("stride") or k)
        p = _first(pos[2] if len(pos) > 2 else kw.get("padding", 0))
        return _Tensor((t.shape[0], _conv_length(t.shape[1], k, s, p, p)))

    # layers

    def apply(self, ctor: ast.Call, call: ast.Call) -> Any:
        _need(len(call.args) == 1)
        t = self.eval(call.args[0])
        _need(isinstance(t, _Tensor))
        return self.layer(ctor, t)

    def layer(self, ctor: ast.expr, t: _Tensor) -> Any:
        fk = _ctor(ctor, self.aliases)
        if fk is None:
            name = _dotted(ctor, self.aliases)  # a function in a flax Sequential, e.g. nn.relu
            _need(name is not None and name.rsplit(".", 1)[-1] in _ELEMENTWISE)
            return t
        assert isinstance(ctor, ast.Call)
        family, kind = fk
        if family == "torch":
            return self.torch_layer(kind, ctor, t)
        _need(family == "flax")
        return self.flax_layer(kind, ctor, t)

    def arg(self, ctor: ast.Call, role: str, default: Any = None) -> Any:
        fk = _ctor(ctor, self.aliases)
        spec = _ARGS.get(fk, {}).get(role) if fk else None
        node = _get_arg(ctor, *spec) if spec else None
        return default if node is None else self.eval(node)

    def fit(self, ctor: ast.Call, role: str, width: int | None) -> None:
        """Check (or, repairing, rewrite) the argument saying how wide the layer's input is."""
        spec = _role(ctor, self.aliases, role)
        node = _get_arg(ctor, *spec) if spec else None
        _need(node is not None)
        assert spec is not None
        if width is None:
            return
        seen = self.widths.setdefault(id(ctor), width)
        _need(seen == width)
        try:
            value = self.eval(node)  # type: ignore[arg-type]
        except _Fail:
            value = None
        if value == width:
            return
        _need(self.repair)
        _set_arg(ctor, *spec, ast.Constant(width))

    def torch_layer(self, kind: str, ctor: ast.Call, t: _Tensor) -> Any:
        shape, rank = t.shape, len(t.shape)
        if kind == "Linear":
            self.fit(ctor, "in", shape[-1])
            return _Tensor((*shape[:-1], _first(self.arg(ctor, "out"))))
        if kind == "Conv1d":
            _need(rank == 2 and self.arg(ctor, "groups", 1) == 1)
            self.fit(ctor, "in", shape[0])
            k, s = _first(self.arg(ctor, "kernel")), _first(self.arg(ctor, "stride", 1))
            d, p = _first(self.arg(ctor, "dilation", 1)), self.arg(ctor, "padding", 0)
            if p in ("same", "valid"):
                _need(p == "valid" or s == 1)
                length = shape[1] if p == "same" else _conv_length(shape[1], k, s, 0, 0, d)
            else:
                length = _conv_length(shape[1], k, s, _first(p), _first(p), d)
            return _Tensor((_first(self.arg(ctor, "out")), length))
        if kind in ("MaxPool1d", "AvgPool1d"):
            _need(rank == 2)
            k = _first(self.arg(ctor, "kernel"))
            s, p = _first(self.arg(ctor, "stride", None) or k), _first(self.arg(ctor, "padding", 0))
            d = _first(self.arg(ctor, "dilation", 1)) if kind == "MaxPool1d" else 1
            _need(not any(k.arg == "ceil_mode" for k in ctor.keywords))
            return _Tensor((shape[0], _conv_length(shape[1], k, s, p, p, d)))
        if kind in ("AdaptiveAvgPool1d", "AdaptiveMaxPool1d"):
            _need(rank == 2)
            return _Tensor((shape[0], _positive(_first(self.arg(ctor, "size")))))
        if kind in ("BatchNorm1d", "LayerNorm"):
            _need(rank in (1, 2))
            self.fit(ctor, "in", shape[0] if kind == "BatchNorm1d" else shape[-1])
            return t
        if kind in ("GRU", "LSTM", "RNN"):
            return self.torch_rnn(ctor, t)
        if kind == "Flatten":
            _need(not ctor.args and not ctor.keywords)
            return _Tensor((_prod(shape),))
        if kind == "Sequential":
            _need(not ctor.keywords)
            for layer in ctor.args:
                t = self.layer(layer, t)
                _need(isinstance(t, _Tensor))
            return t
        _need(kind in _TORCH_SAME_SHAPE)
        return t

    def torch_rnn(self, ctor: ast.Call, t: _Tensor) -> _Multi:
        kw = {k.arg: k.value for k in ctor.keywords}
        _need(len(t.shape) == 2 and len(ctor.args) <= 3 and "proj_size" not in kw)
        _need(self.eval(kw["batch_first"]) is True if "batch_first" in kw else False)
        self.fit(ctor, "in", t.shape[1])
        hidden = _first(self.arg(ctor, "out"))
        directions = 2 if "bidirectional" in kw and self.eval(kw["bidirectional"]) else 1
        return _Multi((_Tensor((t.shape[0], hidden * directions)), _UNKNOWN))

    def flax_layer(self, kind: str, ctor: ast.Call, t: _Tensor) -> Any:
        shape, rank = t.shape, len(t.shape)
        if kind == "Dense":
            return _Tensor((*shape[:-1], _first(self.arg(ctor, "out"))))
        if kind == "Conv":
            _need(rank == 2 and self.arg(ctor, "groups", 1) == 1 and _first(self.arg(ctor, "input_dilation", 1)) == 1)
            k, s = _first(self.arg(ctor, "kernel")), _first(self.arg(ctor, "stride", 1) or 1)
            d = _first(self.arg(ctor, "dilation", 1) or 1)
            length = _flax_length(shape[0], d * (k - 1) + 1, s, self.arg(ctor, "padding", "SAME"))
            return _Tensor((length, _first(self.arg(ctor, "out"))))
        if kind in ("RNN", "Bidirectional"):
            return self.flax_rnn(kind, ctor, t)
        if kind == "Sequential":
            _need(len(ctor.args) == 1 and isinstance(ctor.args[0], (ast.List, ast.Tuple)))
            for layer in ctor.args[0].elts:  # type: ignore[attr-defined]
                t = self.layer(layer, t)
                _need(isinstance(t, _Tensor))
            return t
        _need(kind in _FLAX_SAME_SHAPE)
        return t

    def flax_rnn(self, kind: str, ctor: ast.Call, t: _Tensor) -> _Tensor:
        _need(len(t.shape) == 2 and not ctor.keywords)
        if kind == "Bidirectional":
            _need(len(ctor.args) == 2)
            outs = [self.flax_rnn("RNN", rnn, t) for rnn in ctor.args if isinstance(rnn, ast.Call)]
            _need(len(outs) == 2)
            return _Tensor((t.shape[0], _sum(o.shape[1] for o in outs)))
        _need(_ctor(ctor, self.aliases) == ("flax", "RNN") and len(ctor.args) == 1)
        cell = ctor.args[0]
        _need(isinstance(cell, ast.Call) and (_ctor(cell, self.aliases) or ("", ""))[1] in
              ("GRUCell", "LSTMCell", "OptimizedLSTMCell", "SimpleCell"))
        assert isinstance(cell, ast.Call)
        return _Tensor((t.shape[0], _first(self.arg(cell, "out"))))


def _load(target: ast.expr) -> ast.expr:
    _need(isinstance(target, ast.Name))
    assert isinstance(target, ast.Name)
    return ast.Name(id=target.id, ctx=ast.Load())


def _prod(dims: Iterator[int | None] | tuple[int | None, ...]) -> int | None:
    dims = tuple(dims)
    return None if None in dims else math.prod(d for d in dims if d is not None)


def _sum(dims: Iterator[int | None]) -> int | None:
    dims_t = tuple(dims)
    return None if None in dims_t else sum(d for d in dims_t if d is not None)


def _broadcast(a: _Tensor, b: _Tensor) -> _Tensor:
    n = max(len(a.shape), len(b.shape))
    xs, ys = (1,) * (n - len(a.shape)) + a.shape, (1,) * (n - len(b.shape)) + b.shape
    _need(len(a.shape) == len(b.shape))  # a lower rank would broadcast against the batch dimension
    out: list[int | None] = []
    for x, y in zip(xs, ys, strict=True):
        _need(x == y or 1 in (x, y) or None in (x, y))
        out.append(None if None in (x, y) else max(x, y))  # type: ignore[type-var]
    return _Tensor(tuple(out))


def _reshape(t: _Tensor, dims: tuple[Any, ...]) -> _Tensor:
    """view/reshape, whose first dimension must stay the batch."""
    _need(len(dims) >= 2)
    rest = list(dims[1:])
    total = _prod(t.shape)
    if dims[0] is _BATCH:
        _need(sum(d == -1 for d in rest if isinstance(d, int)) <= 1)
        known = [d for d in rest if isinstance(d, int) and d != -1]
        _need(len(known) + rest.count(-1) == len(rest))
        if -1 in rest:
            _need(total is not None and math.prod(known) > 0 and total % math.prod(known) == 0)
            rest[rest.index(-1)] = total // math.prod(known)  # type: ignore[operator]
    else:  # (-1, ...): the rest must hold one example exactly
        _need(dims[0] == -1 and all(isinstance(d, int) and d > 0 for d in rest) and total == math.prod(rest))
    _need(total is None or math.prod(rest) == total)
    return _Tensor(tuple(int(d) for d in rest))


def _index(t: _Tensor, items: list[ast.expr], evaluate: Callable[[ast.expr], Any]) -> _Tensor:
    """Basic indexing: `x[..., None]`, `x[:, None, :]`, `h[:, -1]`."""
    consumed = sum(1 for i in items if not (isinstance(i, ast.Constant) and i.value in (None, Ellipsis)))
    dims = [_BATCH, *t.shape]
    _need(consumed <= len(dims))
    out: list[Any] = []
    j = 0
    for item in items:
        if isinstance(item, ast.Constant) and item.value is None:
            out.append(1)
        elif isinstance(item, ast.Constant) and item.value is Ellipsis:
            take = len(dims) - consumed
            out.extend(dims[j:j + take])
            j += take
        elif isinstance(item, ast.Slice):
            _need(item.lower is None and item.upper is None and item.step is None)
            out.append(dims[j])
            j += 1
        else:
            _need(j > 0 and isinstance(evaluate(item), int))
            j += 1
    out.extend(dims[j:])
    _need(bool(out) and out[0] is _BATCH and all(d is not _BATCH for d in out[1:]))
    return _Tensor(tuple(out[1:]))


def _flax_length(length: int | None, k: int, s: int, padding: Any) -> int | None:
    if length is None:
        return None
    if isinstance(padding, str):
        _need(padding.upper() in ("SAME", "VALID", "CIRCULAR", "CAUSAL"))
        reach = length - k + 1 if padding.upper() == "VALID" else length
        return _positive(-(-reach // s))
    if isinstance(padding, int):
        return _conv_length(length, k, s, padding, padding)
    _need(isinstance(padding, (tuple, list)) and len(padding) == 1 and len(padding[0]) == 2)
    return _conv_length(length, k, s, _first(padding[0][0]), _first(padding[0][1]))


# --------------------------------------------------------------------------------------------------
# Programs and the edits


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


def _trace(tree: ast.Module, task: str, kind: str, repair: bool) -> list[dict[str, Any]] | None:
    """The variables before each statement of the model's body when it traces to the task's output shape."""
    shapes = TASK_SHAPES.get(task.split("/")[0])
    target = _target(tree, task)
    if shapes is None or kind not in ("torch", "flax") or not isinstance(target, ast.ClassDef):
        return None
    body = _method(target, "forward" if kind == "torch" else "__call__")
    if body is None:
        return None
    try:
        out, snapshots = _Tracer(tree, target, _aliases(tree), repair).run(body, shapes[0])
    except (_Fail, RecursionError, ValueError, TypeError, ZeroDivisionError, IndexError, KeyError, AttributeError,
            AssertionError):
        return None
    return snapshots if out.shape == (shapes[1],) else None


@dataclass
class _Scope:
    """Where a layer argument's integer comes from: a literal, a module or class constant, or a loop."""

    names: dict[str, ast.expr]
    attrs: dict[str, ast.expr]
    parents: dict[int, ast.AST]

    @classmethod
    def of(cls, w: _Work) -> _Scope:
        attrs: dict[str, ast.expr] = {}
        target = w.target
        if isinstance(target, ast.ClassDef):
            attrs.update(_literal_consts(target.body))
            attrs.update({k: s.value for k, s in _self_assigns(_init_of(target)).items()
                          if isinstance(s.value, ast.Constant)})
        return cls(_literal_consts(w.tree.body), attrs, _parents(w.tree))

    def sites(self, node: ast.AST | None, products: bool = False, depth: int = 0) -> list[ast.Constant]:
        """The positive integer literals that decide `node`'s value."""
        if node is None or depth > 8:
            return []
        if isinstance(node, ast.Constant):
            return [node] if type(node.value) is int and node.value > 0 else []
        if isinstance(node, (ast.Tuple, ast.List)):
            return [s for e in node.elts for s in self.sites(e, products, depth + 1)]
        if isinstance(node, ast.Name):
            loop = self.loop_iter(node)
            if loop is not None:
                return self.sites(loop, products, depth + 1)
            return self.sites(self.names.get(node.id), products, depth + 1)
        attr = _self_attr(node)
        if attr is not None:
            return self.sites(self.attrs.get(attr), products, depth + 1)
        if products and isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
            return self.sites(node.left, products, depth + 1) + self.sites(node.right, products, depth + 1)
        return []

    def loop_iter(self, name: ast.Name) -> ast.expr | None:
        """The literal a loop variable iterates over (`for k in (5, 3, 3)`)."""
        node: ast.AST = name
        while id(node) in self.parents:
            node = self.parents[id(node)]
            if isinstance(node, ast.For) and isinstance(node.target, ast.Name) and node.target.id == name.id:
                return node.iter if isinstance(node.iter, (ast.Tuple, ast.List)) else None
        return None


def _unique(nodes: list[ast.Constant]) -> list[ast.Constant]:
    seen: dict[int, ast.Constant] = {}
    for n in nodes:
        seen.setdefault(id(n), n)
    return list(seen.values())


def _scale(value: int, rng: random.Random) -> tuple[float, int] | None:
    factors = list(FACTORS)
    rng.shuffle(factors)
    for f in factors:
        new = max(1, int(value * f + 0.5))
        if new != value:
            return f, new
    return None


def _edit_width(w: _Work) -> str | None:
    """Multiply a layer width; with `joint`, every occurrence of that width in the model changes together."""
    scope = _Scope.of(w)
    outs: list[ast.Constant] = []
    both: list[ast.Constant] = []
    for call, family, kind in w.ctor_calls():
        spec = _ARGS.get((family, kind), {})
        for role in ("out", "in"):
            if role in spec:
                found = scope.sites(_get_arg(call, *spec[role]), products=True)
                both.extend(found)
                outs.extend(found if role == "out" else [])
    shapes = w.shapes
    fixed = {shapes[1]} if shapes else set()
    if shapes and not w.repairs:
        fixed |= {1, *shapes[0]}
    values = sorted({n.value for n in outs} - fixed)
    if not values:
        return _edit_width_expr(w) if w.kind == "haiku" else None
    value = w.rng.choice(values)
    scaled = _scale(value, w.rng)
    if scaled is None:
        return None
    factor, new = scaled
    joint = not w.repairs or w.rng.random() < 0.5
    targets = _unique([n for n in (both if joint else outs) if n.value == value])
    for n in targets if joint else [w.rng.choice(targets)]:
        n.value = new
    return f"width {value}->{new} (x{factor:g}{'' if joint or len(targets) == 1 else ', one layer'})"


def _scaled_expr(expr: ast.expr, factor: float) -> tuple[ast.expr, ast.expr, float]:
    """`E` -> `max(1, int(E * f))`, folding into an earlier scaling of the same kind: (new, E, f)."""
    base, old = expr, 1.0
    if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Name) and expr.func.id == "max" \
            and len(expr.args) == 2 and isinstance(expr.args[1], ast.Call):
        inner = expr.args[1].args[0] if expr.args[1].args else None
        if isinstance(inner, ast.BinOp) and isinstance(inner.op, ast.Mult) and isinstance(inner.right, ast.Constant):
            base, old = inner.left, float(inner.right.value)
    new = round(old * factor, 4)
    if new == 1:
        return copy.deepcopy(base), base, new
    constant = ast.Constant(int(new) if new.is_integer() else new)
    product = ast.BinOp(left=copy.deepcopy(base), op=ast.Mult(), right=constant)
    scaled = ast.Call(func=ast.Name("max", ast.Load()), keywords=[],
                      args=[ast.Constant(1), ast.Call(func=ast.Name("int", ast.Load()), args=[product], keywords=[])])
    return scaled, base, new


def _edit_width_expr(w: _Work) -> str | None:
    """CLRS: widths given by an expression (`hk.Linear(nb_triplet_fts)`, the sizes of an
    `hk.nets.MLP([...])`) change together: the terms of a triplet function are summed, so every width
    of the same base expression becomes the same new width, whatever earlier edits left."""
    Site = tuple[Callable[[], ast.expr], Callable[[ast.expr], None]]
    groups: dict[str, list[Site]] = {}

    def add(expr: ast.expr, site: Site) -> None:
        if not isinstance(expr, ast.Constant):
            groups.setdefault(ast.dump(_scaled_expr(expr, 1.0)[1]), []).append(site)

    for call, family, kind in w.ctor_calls():
        spec = _ARGS.get((family, kind), {}).get("out")
        arg = _get_arg(call, *spec) if spec else None
        if spec is None or arg is None:
            continue
        if isinstance(arg, (ast.List, ast.Tuple)):
            for i, elt in enumerate(arg.elts):
                add(elt, (lambda a=arg, i=i: a.elts[i], lambda v, a=arg, i=i: a.elts.__setitem__(i, v)))
        else:
            add(arg, (lambda c=call, s=spec: _get_arg(c, *s), lambda v, c=call, s=spec: _set_arg(c, *s, v)))
    if not groups:
        return None
    sites = groups[w.rng.choice(sorted(groups))]
    factor = w.rng.choice(FACTORS)
    new, base, total = _scaled_expr(sites[0][0](), factor)
    for _, put in sites:
        put(copy.deepcopy(new))
    return f"width {ast.unparse(base)} x{factor:g}" + (f" (now x{total:g})" if total != factor else "")


def _compensate(call: ast.Call, family: str, delta: int) -> str | None:
    """Shift a conv's padding by half the kernel's change, keeping its output length; None if it cannot."""
    pos, kw = _ARGS[(family, "Conv1d" if family == "torch" else "Conv")]["padding"]
    pad = _get_arg(call, pos, kw)
    shift = delta // 2
    if pad is None:
        if family == "flax":
            return ""  # SAME
        if shift < 0:
            return None
        _set_arg(call, pos, kw, ast.Constant(shift))
        return f" (padding 0->{shift})"
    if isinstance(pad, ast.Constant) and isinstance(pad.value, str):
        return ""
    leaves = [n for n in ast.walk(pad) if isinstance(n, ast.Constant)]
    literal = all(isinstance(n, (ast.Constant, ast.Tuple, ast.List, ast.expr_context)) for n in ast.walk(pad))
    if not literal or not leaves or any(type(n.value) is not int or n.value + shift < 0 for n in leaves):
        return None
    old = leaves[0].value
    for n in leaves:
        n.value += shift
    return f" (padding {old}->{old + shift})"


def _edit_kernel(w: _Work) -> str | None:
    """A conv's kernel size k -> k±2, its padding following where it is a literal of the same layer."""
    scope = _Scope.of(w)
    sites = []
    for call, family, kind in w.ctor_calls():
        if (family, kind) in _CONVS:
            arg = _get_arg(call, *_ARGS[(family, kind)]["kernel"])
            local = {id(n) for n in ast.walk(arg)} if arg is not None else set()
            sites += [(call, family, leaf, id(leaf) in local) for leaf in scope.sites(arg)]
    w.rng.shuffle(sites)
    for call, family, leaf, local in sites:
        k = leaf.value
        new = w.rng.choice([k - 2, k + 2]) if k > 2 else k + 2
        note = _compensate(call, family, new - k) if local else None
        if note is None and not w.repairs:
            continue
        leaf.value = new
        return f"kernel {k}->{new}{note or ''}"
    return None


def _edit_stride(w: _Work) -> str | None:
    """A conv's stride 1 <-> 2 (lengths change, so only where the tracer checks torch children)."""
    if not w.repairs:
        return None
    scope = _Scope.of(w)
    sites: list[tuple[ast.Call, tuple[int, str], ast.Constant | None]] = []
    for call, family, kind in w.ctor_calls():
        if (family, kind) in _CONVS:
            spec = _ARGS[(family, kind)]["stride"]
            arg = _get_arg(call, *spec)
            sites += [(call, spec, leaf) for leaf in scope.sites(arg)] if arg is not None else [(call, spec, None)]
    if not sites:
        return None
    call, spec, leaf = w.rng.choice(sites)
    if leaf is None:
        _set_arg(call, *spec, ast.Constant(2))
        return "stride 1->2"
    old = leaf.value
    leaf.value = 2 if old == 1 else 1
    return f"stride {old}->{leaf.value}"


def _self_update(stmt: ast.stmt) -> str | None:
    """`h = f(..h..)`: the variable a statement both reads and rewrites."""
    if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
        name = stmt.targets[0].id
        return name if name in _names(stmt.value, ast.Load) else None
    return None


def _layer_attrs(w: _Work, node: ast.AST) -> list[str]:
    """The torch submodules (`self.conv1`) a node calls."""
    cls = w.target
    attrs = _self_assigns(_init_of(cls)) if isinstance(cls, ast.ClassDef) else {}
    out = []
    for n in ast.walk(node):
        name = _self_attr(n.func) if isinstance(n, ast.Call) else None
        if name in attrs and _ctor(attrs[name].value, w.aliases) and name not in out:
            out.append(name)
    return out


def _has_layer(w: _Work, node: ast.AST) -> bool:
    if w.kind == "torch":
        return bool(_layer_attrs(w, node))
    if w.kind == "haiku":
        return any(isinstance(n, ast.Call) for n in ast.walk(node))
    return any(_ctor(n, w.aliases) for n in ast.walk(node))


Action = Callable[[], str | None]


def _layer_actions(w: _Work) -> list[Action]:
    """Every way to duplicate or remove a layer of this child."""
    body = w.body
    if body is None or (w.kind == "torch" and not w.traced) or w.kind == "":
        return []
    stmts = body.body
    layered = sum(1 for s in stmts if _has_layer(w, s))
    actions: list[Action] = []
    for i, stmt in enumerate(stmts):
        if _self_update(stmt) and _has_layer(w, stmt):
            actions.append(lambda i=i: _duplicate_statement(w, stmts, i))
            # Without a tracer (haiku), only statements that build no layer are surely width-preserving.
            if layered >= 2 and (w.kind != "haiku" or not any(_ctor(n, w.aliases) for n in ast.walk(stmt))):
                actions.append(lambda i=i: _remove_statement(w, stmts, i))
        if isinstance(stmt, ast.For) and isinstance(stmt.iter, (ast.Tuple, ast.List)) and _has_layer(w, stmt):
            for j in range(len(stmt.iter.elts)):
                actions.append(lambda s=stmt, j=j: _loop_step(s, j, duplicate=True))
                if len(stmt.iter.elts) >= 2:
                    actions.append(lambda s=stmt, j=j: _loop_step(s, j, duplicate=False))
    actions += _sequential_actions(w)
    if w.kind == "haiku":
        actions += _summand_actions(stmts)
    return actions


def _duplicate_statement(w: _Work, stmts: list[ast.stmt], i: int) -> str:
    new = copy.deepcopy(stmts[i])
    target = w.target
    if w.kind == "torch" and isinstance(target, ast.ClassDef):  # the copy gets layers of its own
        init = _init_of(target)
        assert init is not None
        assigns = _self_assigns(init)
        taken = set(assigns)
        for name in _layer_attrs(w, new):
            fresh = _fresh(name, taken)
            taken.add(fresh)
            for n in ast.walk(new):
                if _self_attr(n) == name:
                    n.attr = fresh  # type: ignore[attr-defined]
            copied = copy.deepcopy(assigns[name])
            copied.targets[0].attr = fresh  # type: ignore[attr-defined]
            init.body.insert(init.body.index(assigns[name]) + 1, copied)
    stmts.insert(i + 1, new)
    return f"duplicate `{_short(stmts[i])}`"


def _remove_statement(w: _Work, stmts: list[ast.stmt], i: int) -> str:
    removed = stmts.pop(i)
    return f"remove `{_short(removed)}`"


def _short(node: ast.AST) -> str:
    text = ast.unparse(node).replace("\n", " ")
    return text if len(text) <= 48 else text[:45] + "..."


def _loop_step(loop: ast.For, j: int, duplicate: bool) -> str:
    elts = loop.iter.elts  # type: ignore[attr-defined]
    item = ast.unparse(elts[j])
    if duplicate:
        elts.insert(j + 1, copy.deepcopy(elts[j]))
        return f"duplicate loop step {item}"
    del elts[j]
    return f"remove loop step {item}"


def _sequential_actions(w: _Work) -> list[Action]:
    if not w.repairs:
        return []
    actions: list[Action] = []
    for call, family, kind in w.ctor_calls():
        if kind != "Sequential":
            continue
        elts = call.args if family == "torch" else (call.args[0].elts if call.args and isinstance(
            call.args[0], (ast.List, ast.Tuple)) else [])
        for j in range(len(elts)):
            actions.append(lambda e=elts, j=j: _sequence_step(e, j, True))
            if sum(1 for e in elts if _ARGS.get(_ctor(e, w.aliases) or ("", ""), {}).get("out")) >= 2 \
                    or not _ARGS.get(_ctor(elts[j], w.aliases) or ("", ""), {}).get("out"):
                actions.append(lambda e=elts, j=j: _sequence_step(e, j, False))
    return actions


def _sequence_step(elts: list[ast.expr], j: int, duplicate: bool) -> str | None:
    item = _short(elts[j])
    if duplicate:
        elts.insert(j + 1, copy.deepcopy(elts[j]))
        return f"duplicate `{item}`"
    if len(elts) < 2:
        return None
    del elts[j]
    return f"remove `{item}`"


def _terms(node: ast.expr) -> list[ast.expr]:
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _terms(node.left) + [node.right]
    return [node]


def _summand_actions(stmts: list[ast.stmt]) -> list[Action]:
    """CLRS: drop one term of a returned sum of three or more (one message path fewer)."""
    ret = stmts[-1] if stmts else None
    if not isinstance(ret, ast.Return) or ret.value is None or len(_terms(ret.value)) < 3:
        return []

    def drop(j: int) -> str:
        assert isinstance(ret, ast.Return) and ret.value is not None
        terms = _terms(ret.value)
        removed = terms.pop(j)
        value = terms[0]
        for t in terms[1:]:
            value = ast.BinOp(left=value, op=ast.Add(), right=t)
        ret.value = value
        return f"remove term `{_short(removed)}`"

    return [lambda j=j: drop(j) for j in range(len(_terms(ret.value)))]


def _edit_layer(w: _Work) -> str | None:
    """Duplicate or remove a layer (a statement `h = layer(h)`, a loop step, a Sequential entry)."""
    actions = _layer_actions(w)
    return w.rng.choice(actions)() if actions else None


def _activation_call(w: _Work) -> ast.expr | None:
    """An expression for relu in this program's namespaces (`torch.relu`, `F.relu`, `nn.relu`)."""
    prefer = {"torch": ("torch", "torch.nn.functional", "torch.nn"), "flax": ("flax.linen", "jax.nn")}
    for module in prefer.get(w.kind, ()):
        for local, full in sorted(w.aliases.items()):
            if full == module:
                attr = "functional.relu" if module == "torch.nn" else "relu"
                return ast.parse(f"{local}.{attr}", mode="eval").body
    return None


def _edit_insert(w: _Work) -> str | None:
    """Insert a hidden dense layer and a relu in front of a dense layer (e.g. logistic regression -> MLP)."""
    act, body = _activation_call(w), w.body
    if act is None or body is None or not w.repairs:
        return None
    width = w.rng.choice(INSERT_WIDTHS)
    if w.kind == "flax":
        sites = [n for n in ast.walk(body) if isinstance(n, ast.Call) and len(n.args) == 1
                 and _ctor(n.func, w.aliases) == ("flax", "Dense")]
        if not sites:
            return None
        site = w.rng.choice(sites)
        dense = site.func
        assert isinstance(dense, ast.Call)
        layer = ast.Call(func=copy.deepcopy(dense.func), args=[ast.Constant(width)], keywords=[])
        _insert_before(body, site, lambda x: ast.Call(func=act, args=[ast.Call(layer, [x], [])], keywords=[]))
        return f"insert dense {width}"
    return _insert_torch(w, body, act, width)


def _insert_before(body: ast.FunctionDef, site: ast.Call, wrap: Callable[[ast.expr], ast.expr]) -> None:
    """Feed `site` through `wrap`: as a statement `v = wrap(v)` before it where its input is a variable
    of the body's top level, else inline."""
    arg = site.args[0]
    for k, stmt in enumerate(body.body):
        if isinstance(arg, ast.Name) and not isinstance(stmt, (ast.For, ast.While, ast.If, ast.With)) \
                and any(n is site for n in ast.walk(stmt)):
            new = ast.Assign(targets=[ast.Name(arg.id, ast.Store())], value=wrap(ast.Name(arg.id, ast.Load())))
            body.body.insert(k, new)
            return
    site.args[0] = wrap(arg)


def _insert_torch(w: _Work, body: ast.FunctionDef, act: ast.expr, width: int) -> str | None:
    target = w.target
    init = _init_of(target) if isinstance(target, ast.ClassDef) else None
    if init is None:
        return None
    assigns = _self_assigns(init)
    sites = [n for n in ast.walk(body) if isinstance(n, ast.Call) and len(n.args) == 1 and _self_attr(n.func)
             in assigns and _ctor(assigns[_self_attr(n.func) or ""].value, w.aliases) == ("torch", "Linear")]
    if not sites:
        return None
    site = w.rng.choice(sites)
    name = _self_attr(site.func) or ""
    old = assigns[name].value
    assert isinstance(old, ast.Call)
    fresh = _fresh("hidden", set(assigns))
    in_arg = _get_arg(old, 0, "in_features") or ast.Constant(1)
    layer = ast.Call(func=copy.deepcopy(old.func), args=[copy.deepcopy(in_arg), ast.Constant(width)], keywords=[])
    stmt = ast.Assign(targets=[ast.Attribute(ast.Name("self", ast.Load()), fresh, ast.Store())], value=layer)
    init.body.insert(init.body.index(assigns[name]), stmt)
    call = ast.Attribute(ast.Name("self", ast.Load()), fresh, ast.Load())
    _insert_before(body, site, lambda x: ast.Call(func=act, args=[ast.Call(call, [x], [])], keywords=[]))
    return f"insert linear {width} before {name}"


def _edit_activation(w: _Work) -> str | None:
    """Swap an activation for another from the same namespace (relu -> gelu)."""
    aliases = w.aliases
    sites = []
    for node in ast.walk(w.target):
        if isinstance(node, ast.Attribute):
            name = _dotted(node, aliases) or ""
            module, _, last = name.rpartition(".")
            if last in _ACTIVATIONS.get(module, ()):
                sites.append((node, _ACTIVATIONS[module]))
    if not sites:
        return None
    node, family = w.rng.choice(sites)
    old = node.attr
    node.attr = w.rng.choice([a for a in family if a != old])
    return f"activation {old}->{node.attr}"


EDIT_FUNCTIONS: dict[str, Callable[[_Work], str | None]] = {
    "width": _edit_width, "kernel": _edit_kernel, "stride": _edit_stride, "layer": _edit_layer,
    "insert": _edit_insert, "activation": _edit_activation}


# --------------------------------------------------------------------------------------------------
# Crossover


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


# --------------------------------------------------------------------------------------------------
# Children


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
        compile(code, "<mutation>", "exec")
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
            tree = ast.parse(code)
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

    async def generate(self, prompt: Prompt, num_samples: int, temperature: float, seed: int) -> list[str]:
        """Whole programs (not continuations); CPU-bound, so off the event loop."""
        codes = [e.code for e in prompt.examples]
        return await asyncio.to_thread(mutate, codes, prompt.task, num_samples, temperature, seed, self.edits)
