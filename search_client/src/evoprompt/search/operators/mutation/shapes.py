"""The static shape tracer: follows a model's forward pass from the task's input shape.

It exists so that torch children stay consistent: it tells which parents can be followed, rewrites
the input-width argument of layers that no longer match (repair), and gives crossover the
variables' shapes before each statement of the body.
"""

from __future__ import annotations

import ast
import builtins
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from evoprompt.sdk.ast_retry import retry_ast

from .program import (
    _ARGS,
    TASK_SHAPES,
    _aliases,
    _code,
    _ctor,
    _dotted,
    _get_arg,
    _init_of,
    _literal_consts,
    _method,
    _role,
    _self_assigns,
    _self_attr,
    _set_arg,
    _target,
)

_TORCH_SAME_SHAPE = {"ReLU", "ReLU6", "GELU", "SiLU", "ELU", "SELU", "CELU", "LeakyReLU", "Tanh", "Sigmoid",
                     "Softplus", "Mish", "Hardtanh", "Hardswish", "Dropout", "Dropout1d", "AlphaDropout", "Identity",
                     "Softmax", "LogSoftmax"}
_FLAX_SAME_SHAPE = {"LayerNorm", "RMSNorm", "GroupNorm", "BatchNorm", "Dropout"}
_ELEMENTWISE = {"relu", "relu6", "gelu", "silu", "swish", "elu", "selu", "celu", "leaky_relu", "softplus", "mish",
                "tanh", "sigmoid", "hard_tanh", "hardtanh", "hard_swish", "log_sigmoid", "softmax", "log_softmax",
                "dropout", "abs", "exp", "square", "sqrt", "sin", "cos", "normalize", "contiguous", "float", "clone",
                "detach", "clamp", "clip"}
_REDUCTIONS = {"mean", "sum", "amax", "amin", "max", "min", "std", "var", "prod", "logsumexp"}


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
        self.consts = {k: retry_ast(ast.literal_eval, v) for k, v in _literal_consts(tree.body).items()}
        self.self_consts: dict[str, Any] = {}
        self.attrs: dict[str, ast.Call] = {}
        self.widths: dict[int, int] = {}
        self.env: dict[str, Any] = {}
        if cls is not None:
            self.self_consts.update({k: retry_ast(ast.literal_eval, v) for k, v in _literal_consts(cls.body).items()})
            for name, stmt in _self_assigns(_init_of(cls)).items():
                if isinstance(stmt.value, ast.Call):
                    self.attrs[name] = stmt.value
                else:
                    try:
                        self.self_consts[name] = retry_ast(ast.literal_eval, stmt.value)
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
