"""The edits a child's tree gets: layer widths, kernel sizes, strides, layers duplicated, removed
or inserted, and activations swapped.

Each edit takes a `_Work`, changes its tree in place and returns a note naming what it did, or None
when it does not apply; `EDIT_FUNCTIONS` names them for the operator to choose from.
"""

from __future__ import annotations

import ast
import copy
import random
from collections.abc import Callable
from dataclasses import dataclass

from evoprompt.sdk.ast_retry import retry_ast

from .program import (
    _ARGS,
    _ctor,
    _dotted,
    _fresh,
    _get_arg,
    _init_of,
    _literal_consts,
    _names,
    _parents,
    _self_assigns,
    _self_attr,
    _set_arg,
    _Work,
)

#: Factors a width is multiplied by (regularized evolution's "change a layer's size").
FACTORS = (0.5, 0.75, 1.25, 1.5, 2.0)
#: The edits, with how often each is tried relative to the others.
EDIT_WEIGHTS: dict[str, int] = {"width": 3, "kernel": 2, "stride": 1, "layer": 2, "insert": 1, "activation": 1}
INSERT_WIDTHS = (16, 32, 64, 128)

_CONVS = {("torch", "Conv1d"), ("flax", "Conv")}
#: Activations that can stand in for each other, by the namespace they are called from.
_ACTIVATIONS: dict[str, tuple[str, ...]] = {
    "torch": ("relu", "tanh", "sigmoid"),
    "torch.nn.functional": ("relu", "gelu", "silu", "elu", "tanh"),
    "torch.nn": ("ReLU", "GELU", "SiLU", "ELU", "Tanh"),
    "flax.linen": ("relu", "gelu", "silu", "elu", "tanh"),
    "jax.nn": ("relu", "gelu", "silu", "elu"),
}


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
                return retry_ast(ast.parse, f"{local}.{attr}", mode="eval").body
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
