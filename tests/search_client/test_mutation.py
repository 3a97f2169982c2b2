"""The non-LM mutation operator: determinism, validity of children (they build and run), crossover,
CLRS functions, and parents it cannot use."""

from __future__ import annotations

import ast
import asyncio
import re

import pytest

from evoprompt.search.lm.base import LMConfigError, LMError
from evoprompt.search.operators.mutation import MutationLM
from evoprompt.search.prompt import Example, build_prompt, program_from_output
from evoprompt.search.seeds import SEEDS_DIR

SEEDS = SEEDS_DIR / "mnist1d"
TORCH_SEEDS = sorted(p.stem for p in (SEEDS / "torch").glob("*.py"))
FLAX_SEEDS = sorted(p.stem for p in (SEEDS / "flax").glob("*.py"))

CLRS_TRIPLETS = '''import haiku as hk
import jax
import jax.numpy as jnp


def get_triplet_msgs(z, edge_fts, graph_fts, nb_triplet_fts):
  """Triplet messages, as done by Dudzik and Velickovic (2022)."""
  t_1 = hk.Linear(nb_triplet_fts)
  t_2 = hk.Linear(nb_triplet_fts)
  t_e = hk.Linear(nb_triplet_fts)
  t_g = hk.Linear(nb_triplet_fts)
  tri_1 = t_1(z)
  tri_2 = t_2(z)
  tri_e = t_e(edge_fts)
  tri_g = t_g(graph_fts)
  return (jnp.expand_dims(tri_1, axis=(2, 3)) + jnp.expand_dims(tri_2, axis=(1, 3))
          + jnp.expand_dims(tri_e, axis=3) + jnp.expand_dims(tri_g, axis=(1, 2, 3)))
'''

CLRS_MLP = '''import haiku as hk
import jax
import jax.numpy as jnp


def get_triplet_msgs(z, edge_fts, graph_fts, nb_triplet_fts):
  x = hk.Linear(64)(z)
  x = jax.nn.relu(x)
  x = hk.Linear(nb_triplet_fts)(x)
  return jnp.expand_dims(x, axis=(2, 3)) + jnp.expand_dims(hk.Linear(nb_triplet_fts)(edge_fts), axis=1)
'''

# The tracer cannot follow a loop over a ModuleList: only self-consistent edits (joint widths) apply.
TORCH_MODULELIST = '''import torch
from torch import nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(40, 64), nn.Linear(64, 64)])
        self.out = nn.Linear(64, 10)

    def forward(self, x):
        for layer in self.layers:
            x = torch.relu(layer(x))
        return self.out(x)
'''


def seed_code(framework: str, name: str) -> str:
    return (SEEDS / framework / f"{name}.py").read_text()


def prompt_of(codes: list[str], task: str = "mnist1d"):
    return build_prompt([Example(code, 1000 * (i + 1), 0.5) for i, code in enumerate(codes)], task)


def generate(codes: list[str], n: int, seed: int = 0, temperature: float = 1.0, spec: str = "mutation",
             task: str = "mnist1d") -> list[str]:
    return asyncio.run(MutationLM(spec).generate(prompt_of(codes, task), n, temperature, seed))


def key(code: str) -> str:
    """A program's syntax tree without docstrings (and so without comments)."""
    tree = ast.parse(code)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and len(body) > 1 and isinstance(body[0], ast.Expr) \
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
            node.body = body[1:]
    return ast.dump(tree)


def notes(child: str) -> list[str]:
    first = child.splitlines()[0]
    assert re.match(r"# mutation of parent \d+: .+", first), first
    return first.split(": ", 1)[1].split("; ")


def torch_model(code: str):
    namespace: dict = {}
    exec(compile(code, "<child>", "exec"), namespace)
    return namespace["Model"]()


def torch_runs(code: str) -> bool:
    import torch

    try:
        out = torch_model(code)(torch.zeros(4, 40))
    except Exception:
        return False
    return tuple(out.shape) == (4, 10)


def flax_runs(code: str, abstract: bool) -> bool:
    """init and apply on a (4, 40) input; `abstract` runs them with jax.eval_shape (no compilation)."""
    import jax
    import jax.numpy as jnp

    try:
        namespace: dict = {}
        exec(compile(code, "<child>", "exec"), namespace)
        model, x = namespace["Model"](), jnp.zeros((4, 40))
        if abstract:
            params = jax.eval_shape(model.init, jax.random.PRNGKey(0), x)
            out = jax.eval_shape(model.apply, params, x)
        else:
            out = model.apply(model.init(jax.random.PRNGKey(0), x), x)
    except Exception:
        return False
    return tuple(out.shape) == (4, 10)


def test_same_seed_same_children():
    codes = [seed_code("torch", "mlp"), seed_code("torch", "cnn")]
    assert generate(codes, 6, seed=7) == generate(codes, 6, seed=7)


def test_different_seeds_different_children():
    codes = [seed_code("flax", "cnn_large")]
    assert generate(codes, 6, seed=1) != generate(codes, 6, seed=2)


@pytest.mark.parametrize("framework", ["torch", "flax"])
def test_children_parse_define_model_and_are_all_new(framework):
    parents = [seed_code(framework, "mlp"), seed_code(framework, "cnn")]
    children = generate(parents, 12, seed=3)
    assert len(children) == 12
    keys = [key(c) for c in children]
    assert len(set(keys)) == len(keys)
    assert not set(keys) & {key(p) for p in parents}
    for child in children:
        tree = ast.parse(child)
        assert any(isinstance(n, ast.ClassDef) and n.name == "Model" for n in tree.body)
        assert notes(child)
        imports = [ast.unparse(n) for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
        assert "from torch import nn" in imports if framework == "torch" else "import flax.linen as nn" in imports


@pytest.mark.parametrize("name", TORCH_SEEDS)
def test_torch_children_build_and_run(name):
    children = generate([seed_code("torch", name)], 20, seed=11)
    assert sum(torch_runs(c) for c in children) >= 0.8 * 20


@pytest.mark.parametrize("name", FLAX_SEEDS)
def test_flax_children_build_and_run(name):
    """Abstractly (jax.eval_shape traces init and apply in full, without compiling: a tenth of the time)."""
    children = generate([seed_code("flax", name)], 6, seed=11)
    assert len(children) == 6
    assert sum(flax_runs(c, abstract=True) for c in children) >= 0.8 * 6


def test_a_flax_child_really_runs():
    children = generate([seed_code("flax", "cnn")], 3, seed=11, spec="mutation:kernel,stride")
    assert flax_runs(children[0], abstract=False)


def test_a_parent_the_tracer_cannot_follow_still_gives_children_that_run():
    children = generate([TORCH_MODULELIST], 8, seed=5)
    assert children
    assert sum(torch_runs(c) for c in children) >= 0.8 * len(children)


def statements(code: str) -> set[str]:
    """The statements of Model's methods, as syntax trees."""
    cls = next(n for n in ast.parse(code).body if isinstance(n, ast.ClassDef) and n.name == "Model")
    return {ast.dump(s) for f in cls.body if isinstance(f, ast.FunctionDef) for s in f.body}


@pytest.mark.parametrize("framework, names", [("torch", ("mlp", "cnn")), ("flax", ("cnn_large", "mlp"))])
def test_crossover_takes_material_from_both_parents(framework, names):
    parents = [seed_code(framework, n) for n in names]
    a, b = statements(parents[0]), statements(parents[1])
    children = generate(parents, 16, seed=0, temperature=0.0)
    mixed = [c for c in children if statements(c) & (a - b) and statements(c) & (b - a)]
    assert mixed
    assert all("crossover" in notes(c)[0] for c in mixed)
    runs = torch_runs if framework == "torch" else (lambda c: flax_runs(c, abstract=True))
    assert all(runs(c) for c in mixed)


def test_width_edits_change_the_parameter_count():
    parent = seed_code("torch", "mlp")
    count = sum(p.numel() for p in torch_model(parent).parameters())
    children = generate([parent], 8, seed=4, spec="mutation:width")
    assert len(children) == 8
    assert all(n.startswith("width") for c in children for n in notes(c))
    assert all(sum(p.numel() for p in torch_model(c).parameters()) != count for c in children)


def test_torch_widths_stay_consistent_when_one_layer_changes():
    children = generate([seed_code("torch", "cnn")], 20, seed=8, spec="mutation:width,kernel,stride,layer")
    changed = [c for c in children if "nn.Linear(125, 10)" not in c]
    assert changed  # the read-out's input width followed the convolutions
    assert all(torch_runs(c) for c in changed)


def test_clrs_function_is_mutated_and_parses():
    children = generate([CLRS_TRIPLETS, CLRS_MLP], 8, seed=2, task="clrs/floyd_warshall")
    assert len(children) == 8
    parents = {key(CLRS_TRIPLETS), key(CLRS_MLP)}
    for child in children:
        tree = ast.parse(child)
        assert any(isinstance(n, ast.FunctionDef) and n.name == "get_triplet_msgs" for n in tree.body)
        assert key(child) not in parents
    assert any("hk.Linear(max(1, int(nb_triplet_fts *" in c for c in children)


def test_children_survive_the_search_s_program_extraction():
    prompt = prompt_of([seed_code("torch", "mlp"), seed_code("torch", "gru")])
    children = asyncio.run(MutationLM("mutation").generate(prompt, 4, 1.0, 9))
    for child in children:
        assert key(program_from_output(prompt, child)) == key(child)


def test_a_parent_that_does_not_parse_is_skipped():
    children = generate(["class Model(nn.Module:\n    pass\n", seed_code("torch", "mlp")], 4, seed=0)
    assert len(children) == 4
    assert all(c.startswith("# mutation of parent 2:") for c in children)


def test_no_parent_that_parses_raises_lm_error():
    with pytest.raises(LMError):
        generate(["class Model(nn.Module:\n    pass\n", "class Model:\n    def f(:\n"], 2)


def test_higher_temperature_applies_more_edits():
    parent = [seed_code("torch", "mlp")]
    cold = generate(parent, 12, seed=0, temperature=0.0)
    hot = generate(parent, 12, seed=0, temperature=3.0)
    assert all(len(notes(c)) == 1 for c in cold)
    assert sum(len(notes(c)) for c in hot) > 2 * len(hot)


def test_spec_selects_edits():
    assert MutationLM("mutation:width,kernel").edits == ("width", "kernel")
    assert "crossover" in MutationLM("mutation").edits
    for bad in ("mutation:bogus", "hf:some/model"):
        with pytest.raises(LMConfigError):
            MutationLM(bad)
    assert generate([seed_code("torch", "mlp")], 0) == []
