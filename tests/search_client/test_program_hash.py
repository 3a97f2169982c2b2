"""Structural hashes of candidate programs: equal for near-duplicates (comments, docstrings, layout, local
and self-attribute names), different when the model changes, None for code that does not parse."""

from __future__ import annotations

import ast
import re

import pytest

from evoprompt.search.program_hash import Canonicaliser, TreeIndex, structural_hash
from evoprompt.search.seeds import Seed, list_seeds

GRU = next(s.code for s in list_seeds("mnist1d", "torch") if s.name == "gru")

MLP = '''import torch
from torch import nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear1 = nn.Linear(40, 100)
        self.linear2 = nn.Linear(100, 10)

    def forward(self, x):
        h = torch.relu(self.linear1(x))
        return self.linear2(h)
'''

TRIPLET = '''import haiku as hk
import jax.numpy as jnp


def get_triplet_msgs(z, edge_fts, graph_fts, nb_triplet_fts):
    def project(x):
        return hk.Linear(nb_triplet_fts)(x)

    node_1, node_2 = (project(z) for _ in range(2))
    graph = project(graph_fts)
    return jnp.expand_dims(node_1, axis=2) + jnp.expand_dims(node_2, axis=1) + edge_fts + graph
'''


CLOSURE = '''from weakref import ref


class Pool:
    def __init__(self, size):
        def release(item, owner=ref(self)):
            self = owner()  # the closure's own `self`, which reads the attributes before __init__ sets them
            if self is not None:
                self.busy.discard(item)
                self.free.append(item)

        self.free = list(range(size))
        self.busy = set()
        self.release = release
'''


def all_seeds() -> list[Seed]:
    return [s for task, frameworks in (("mnist1d", ("torch", "flax")), ("clrs", ("haiku",)))
            for framework in frameworks for s in list_seeds(task, framework)]


def canonical_source(code: str) -> str:
    """The canonical tree as Python again, its placeholder names made legal (`local#3` -> `local_3`)."""
    tree = ast.parse(code)
    Canonicaliser(TreeIndex(tree)).canonicalise(tree)
    return ast.unparse(tree).replace("local#", "local_").replace("attr#", "attr_")


def rename(code: str, mapping: dict[str, str]) -> str:
    """Whole-word renames, applied all at once."""
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, mapping)) + r")\b")
    return pattern.sub(lambda m: mapping[m.group(0)], code)


def assert_same(a: str, b: str) -> None:
    assert a != b, "the variant must differ textually, or the test proves nothing"
    assert structural_hash(a) is not None
    assert structural_hash(a) == structural_hash(b)


def assert_different(a: str, b: str) -> None:
    assert structural_hash(a) is not None and structural_hash(b) is not None
    assert structural_hash(a) != structural_hash(b)


def test_hash_is_hex_sha256_and_deterministic():
    digest = structural_hash(GRU)
    assert digest is not None and re.fullmatch(r"[0-9a-f]{64}", digest)
    assert structural_hash(GRU) == digest


def test_renamed_self_attributes_and_locals_with_a_different_comment():
    variant = rename(GRU, {"linear": "linear_2_2", "gru": "linear_2", "h": "out", "_": "hidden"})
    variant = variant.replace("        super().__init__()\n", "        super().__init__()  # set up layers\n")
    assert "self.linear_2_2 = nn.Linear" in variant and "self.linear_2(x" in variant
    assert_same(GRU, variant)


@pytest.mark.parametrize("names", [
    {"linear1": "fc", "linear2": "head"},
    {"linear1": "linear_2", "linear2": "linear_2_2"},
    {"self": "me", "x": "inputs", "h": "hidden"},
])
def test_consistent_renames_are_equal(names):
    assert_same(MLP, rename(MLP, names))


def test_renamed_function_arguments_and_nested_helpers():
    variant = rename(TRIPLET, {"z": "nodes", "edge_fts": "edges", "project": "linear", "x": "inp", "_": "i",
                               "node_1": "a", "graph": "g"})
    assert_same(TRIPLET, variant)


@pytest.mark.parametrize("code, names", [
    ("def f(xs):\n    return [x * 2 for x in xs if x]\n", {"xs": "values", "x": "v"}),
    ("def f(x):\n    try:\n        return int(x)\n    except ValueError as err:\n        return err\n",
     {"x": "text", "err": "e"}),
    ("def f(p):\n    match p:\n        case (a, *rest):\n            return rest\n        case {'k': v, **others}:\n"
     "            return others\n", {"p": "point", "a": "head", "rest": "tail", "others": "more"}),
    ("def f(items):\n    with open(items) as fh:\n        for i, line in enumerate(fh):\n            yield i, line\n",
     {"items": "path", "fh": "handle", "i": "n", "line": "row"}),
    ("def f(x, *args, scale=1, **kwargs):\n    g = lambda y, z=scale: y * z\n    return g(x), args, kwargs\n",
     {"args": "rest", "kwargs": "extra", "scale": "k", "g": "fn", "y": "t", "z": "w"}),
])
def test_every_kind_of_local_binding_renames(code, names):
    assert_same(code, rename(code, names))


def test_comments_docstrings_and_layout():
    variant = MLP.replace("class Model(nn.Module):\n", 'class Model(nn.Module):\n    """An MLP."""\n')
    variant = variant.replace("    def forward(self, x):\n",
                              "    # the forward pass\n    def forward(\n        self,\n        x,\n    ):\n"
                              "        '''Apply it.'''\n")
    variant = variant.replace("nn.Linear(40, 100)", "nn.Linear(\n            40,\n            100,\n        )")
    variant = variant.replace("return self.linear2(h)", "return (self.linear2(h))  # logits\n\n\n")
    assert_same(MLP, '"""Module docstring."""\n' + variant)


def test_a_function_that_is_only_a_docstring_equals_one_that_passes():
    assert_same("def helper():\n    'Nothing yet.'\n", "def helper():\n    pass\n")


@pytest.mark.parametrize("old, new", [
    ("nn.Linear(100, 10)", "nn.Linear(100, 20)"),                      # width
    ("nn.Linear(40, 100)", "nn.Conv1d(40, 100, 1)"),                   # layer type
    ("torch.relu(self.linear1(x))", "torch.tanh(self.linear1(x))"),    # activation
    ("torch.relu(self.linear1(x))", "self.linear1(torch.relu(x))"),    # op order
    ("return self.linear2(h)", "return self.linear2(h) * 2"),          # an extra op
    ("def forward(self, x):", "def __call__(self, x):"),               # contract name
    ("import torch", "import torch as torch_"),                        # imported name
])
def test_changed_models_differ(old, new):
    assert old in MLP
    assert_different(MLP, MLP.replace(old, new))


def test_an_added_layer_differs():
    added = MLP.replace("        self.linear2 = nn.Linear(100, 10)\n",
                        "        self.linear2 = nn.Linear(100, 10)\n        self.extra = nn.Linear(10, 10)\n")
    added = added.replace("return self.linear2(h)", "return self.extra(self.linear2(h))")
    assert_different(MLP, added)


def test_swapped_attribute_uses_differ():
    swapped = MLP.replace("self.linear1(x)", "self.TMP(x)").replace("self.linear2(h)", "self.linear1(h)")
    swapped = swapped.replace("self.TMP(x)", "self.linear2(x)")
    assert_different(MLP, swapped)


def test_globals_are_not_renamed_like_locals():
    """A global and a local of another spelling are different programs, even if consistently 'renamed'."""
    uses_global = "def f(x):\n    return len(x)\n"
    uses_local = "def f(x, n):\n    return n(x)\n"
    assert_different(uses_global, uses_local)
    assert_different("def f(x):\n    return range(x)\n", "def f(x):\n    return len(x)\n")
    assert_different("scale = 2\ndef f(x):\n    return x * scale\n", "scale = 2\ndef f(x):\n    return x * x\n")


def test_swapping_arguments_differs():
    assert_different("def f(a, b):\n    return a - b\n", "def f(a, b):\n    return b - a\n")


def test_comprehension_variable_does_not_capture_a_global():
    """`i` inside the comprehension is its own scope; the `i` after it is the module's."""
    base = "i = 1\ndef f(xs):\n    ys = [i * 2 for i in xs]\n    return ys, i\n"
    renamed_inside = "i = 1\ndef f(xs):\n    ys = [j * 2 for j in xs]\n    return ys, i\n"
    both_renamed = "i = 1\ndef f(xs):\n    ys = [j * 2 for j in xs]\n    return ys, j\n"
    assert_same(base, renamed_inside)
    assert_different(base, both_renamed)


def test_attribute_of_other_objects_is_kept():
    assert_different(MLP, MLP.replace("nn.Linear(100, 10)", "nn.LazyLinear(100, 10)"))
    assert_different("def f(x):\n    return x.sum()\n", "def f(x):\n    return x.mean()\n")


def test_self_attribute_that_is_only_read_is_kept():
    """`self.training` is never assigned by the program; its name is the framework's, not the program's."""
    base = MLP.replace("return self.linear2(h)", "return self.linear2(h) if self.training else h")
    assert_different(base, base.replace("self.training", "self.other"))


@pytest.mark.parametrize("code", ["def f(:\n", "class Model(nn.Module)\n    pass\n", "x = = 1", "a\x00b"])
def test_unparsable_code_is_none(code):
    assert structural_hash(code) is None


def test_all_seeds_hash_distinctly():
    seeds = all_seeds()
    assert len(seeds) >= 15
    hashes = {f"{s.task}/{s.framework}/{s.name}": structural_hash(s.code) for s in seeds}
    assert None not in hashes.values()
    assert len(set(hashes.values())) == len(hashes), hashes


def test_assigned_framework_attributes_are_kept():
    base = MLP.replace("        super().__init__()\n", "        super().__init__()\n        self.training = False\n")
    assert_different(base, base.replace("self.training = False", "self.frozen = False"))


def test_methods_see_enclosing_function_locals_past_the_class_body():
    """`k` in the method is the function's local, not the class attribute `k`."""
    base = ("def build():\n    k = 1\n    class C:\n        k = 2\n"
            "        def m(self):\n            return k\n    return C\n")
    renamed = base.replace("    k = 1", "    j = 1").replace("return k", "return j")
    assert_same(base, renamed)
    assert_different(base, base.replace("return k", "return C.k"))


def test_nonlocal_follows_the_enclosing_rename():
    base = "def f():\n    a = 0\n    def g():\n        nonlocal a\n        a += 1\n    g()\n    return a\n"
    assert_same(base, rename(base, {"a": "total", "g": "bump"}))
    assert_different(base, base.replace("nonlocal a", "global a"))
    two = "def f():\n    a = 0\n    b = 0\n    def g():\n        nonlocal a\n        a += 1\n    g()\n    return a, b\n"
    assert_different(two, two.replace("nonlocal a\n        a += 1", "nonlocal b\n        b += 1"))


@pytest.mark.parametrize("code", [GRU, MLP, TRIPLET, CLOSURE, *(s.code for s in all_seeds())])
def test_the_canonical_form_is_a_consistent_renaming(code):
    """Written back as Python, the canonical form is the program under other names, so it hashes the same.
    A name or attribute renamed in one place but not another would change the second canonicalisation."""
    again = canonical_source(code)
    assert "local_0" in again
    assert structural_hash(again) == structural_hash(code)
