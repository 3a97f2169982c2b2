"""The exporters and the verifier's loaders, in this process (no sandbox): what they count, what they
refuse, and that a rebuilt model predicts what the trained one does. The sandboxed path is covered by
the integration and hostile tests."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from evoprompt.evaluator.verification import TIE_TOLERANCE, _disagreements, check_floor
from evoprompt.search.seeds import list_seeds

HARNESS = Path(__file__).resolve().parents[2] / "sandbox_images" / "harness"
sys.path.insert(0, str(HARNESS))

from evoprompt_harness.errors import CandidateError  # noqa: E402
from evoprompt_harness.protocol import BUILT, PROGRAM_TORCH, RESULT, TENSORS, VERIFIED  # noqa: E402
from evoprompt_harness.verify import run_verification  # noqa: E402

torch = pytest.importorskip("torch")


def seed_code(framework: str, name: str) -> str:
    return next(s for s in list_seeds("mnist1d", framework) if s.name == name).code


def torch_model(code: str):
    namespace: dict = {}
    exec(compile(code, "candidate.py", "exec"), namespace)
    torch.manual_seed(0)
    return namespace["Model"]()


def export_torch_model(model, folder: Path) -> Path:
    from evoprompt_harness.export_torch import export_torch

    folder.mkdir(parents=True, exist_ok=True)
    export_torch(model, torch.randn(7, 40), folder)
    return folder


def test_torch_seed_rebuilt_predicts_the_same_and_counts_its_parameters(tmp_path):
    from evoprompt_harness.verify_torch import load_torch

    model = torch_model(seed_code("torch", "cnn")).eval()
    verified = load_torch(export_torch_model(model, tmp_path))
    x = np.random.default_rng(0).normal(size=(250, 40)).astype(np.float32)  # not a multiple of the batch
    with torch.no_grad():
        expected = model(torch.as_tensor(x)).numpy()
    assert verified.num_params == 5210 and verified.num_state == 0
    np.testing.assert_allclose(verified.predict(x), expected, rtol=1e-5, atol=1e-5)


class Hidden(torch.nn.Module):
    """A small model hiding numbers outside its parameters: a buffer, a module constant, float literals."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(40, 10)
        self.register_buffer("table", torch.randn(500))
        self.constant = torch.randn(300)  # a plain tensor attribute: a constant of the graph
        self.scales = [0.5 + i / 100 for i in range(20)]

    def forward(self, x):
        out = self.linear(x) + self.table[:10] * 0.0 + self.constant[:10] * 0.0
        for s in self.scales:
            out = out * s
        return out


def test_hidden_numbers_cost_state(tmp_path):
    from evoprompt_harness.verify_torch import load_torch

    verified = load_torch(export_torch_model(Hidden(), tmp_path))
    assert verified.num_params == 410
    assert verified.num_state >= 500 + 300 + 20


def tamper(folder: Path, change) -> None:
    program = json.loads((folder / PROGRAM_TORCH).read_text())
    change(program)
    (folder / PROGRAM_TORCH).write_text(json.dumps(program))


@pytest.mark.parametrize("change, why", [
    (lambda p: p["graph_module"]["graph"]["nodes"][0].update(target="torch.os.system"), "not an ATen operator"),
    (lambda p: p["graph_module"]["graph"]["nodes"][0].update(target="torch.ops.aten.from_file.default"),
     "not an allowed ATen operator"),
    (lambda p: p["graph_module"]["graph"]["nodes"][0].update(target="torch.ops.evil.lookup.default"),
     "not an ATen operator"),
    (lambda p: p.update(range_constraints={"s0": {"min_val": 1, "max_val": 10}}), "symbolic shapes"),
    (lambda p: p["graph_module"]["signature"]["output_specs"].append({"buffer_mutation": {}}), "logits alone"),
    (lambda p: p["graph_module"]["graph"]["nodes"][0]["inputs"].append(
        {"name": "x", "arg": {"as_graph": {"graph": {}}}, "kind": 1}), "not allowed"),
], ids=["os-system", "denied-aten-op", "custom-op", "symbolic", "mutation", "subgraph"])
def test_tampered_programs_are_refused(tmp_path, change, why):
    from evoprompt_harness.verify_torch import load_torch

    folder = export_torch_model(torch_model(seed_code("torch", "cnn")), tmp_path)
    tamper(folder, change)
    with pytest.raises(CandidateError, match=why) as caught:
        load_torch(folder)
    assert caught.value.status == "VERIFICATION_FAILED"


def test_extra_or_mislabelled_tensors_are_refused(tmp_path):
    from evoprompt_harness.verify_torch import load_torch

    folder = export_torch_model(Hidden(), tmp_path)
    with np.load(folder / TENSORS) as npz:
        arrays = {k: npz[k] for k in npz.files}
    np.savez(folder / TENSORS, **arrays, **{"state/unused": np.zeros(3, np.float32)})
    with pytest.raises(CandidateError, match="does not use"):
        load_torch(folder)
    # a buffer filed as a trained parameter would move numbers from num_state to num_params
    arrays["params/table"] = arrays.pop("state/table")
    np.savez(folder / TENSORS, **arrays)
    with pytest.raises(CandidateError, match="not a parameter"):
        load_torch(folder)


def write_verify_job(tmp_path: Path, framework: str) -> tuple[Path, Path, dict]:
    input_dir, output_dir = tmp_path / "input", tmp_path / "output"
    output_dir.mkdir(parents=True)
    x = np.random.default_rng(1).normal(size=(120, 40)).astype(np.float32)
    np.savez(input_dir / "verify.npz", x_val=x, x_test=x[:50], x_check=x[:70])
    return input_dir, output_dir, {"role": "verify", "framework": framework, "data": "verify.npz"}


def test_a_pickle_in_the_tensors_is_never_loaded(tmp_path):
    input_dir = export_torch_model(torch_model(seed_code("torch", "cnn")), tmp_path / "input")
    marker = tmp_path / "pwned"
    evil = np.empty(1, dtype=object)
    evil[0] = PickleBomb(str(marker))
    np.savez(input_dir / TENSORS, **{"params/conv1.weight": evil})
    input_dir, output_dir, spec = write_verify_job(tmp_path, "torch")
    assert run_verification(spec, input_dir, output_dir) == 3
    record = json.loads((output_dir / RESULT).read_text())
    assert record["status"] == "VERIFICATION_FAILED" and not marker.exists()
    assert (output_dir / BUILT).exists() and not (output_dir / VERIFIED).exists()


class PickleBomb:
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (Path(self.path).write_text, ("the pickle ran",))


def test_verification_job_writes_logits_and_counts(tmp_path):
    input_dir = export_torch_model(torch_model(seed_code("torch", "mlp")), tmp_path / "input")
    input_dir, output_dir, spec = write_verify_job(tmp_path, "torch")
    assert run_verification(spec, input_dir, output_dir) == 0
    with np.load(output_dir / VERIFIED) as out:
        assert out["val"].shape == (120, 10) and out["test"].shape == (50, 10) and out["check"].shape == (70, 10)
        assert out["val"].dtype == np.float32 and int(out["num_params"]) > 0


def test_flax_seeds_export_and_rebuild(tmp_path):
    jax = pytest.importorskip("jax")
    from evoprompt_harness.export_flax import export_flax
    from evoprompt_harness.verify_flax import load_flax

    for seed in list_seeds("mnist1d", "flax"):
        namespace: dict = {}
        exec(compile(seed.code, "candidate.py", "exec"), namespace)
        model = namespace["Model"]()
        x = np.asarray(jax.random.normal(jax.random.PRNGKey(0), (130, 40)), np.float32)
        params = model.init(jax.random.PRNGKey(1), x[:2])["params"]
        folder = tmp_path / seed.name
        folder.mkdir()
        export_flax(model, params, 100, folder)
        verified = load_flax(folder)
        assert verified.num_params == sum(leaf.size for leaf in jax.tree_util.tree_leaves(params)), seed.name
        assert verified.num_state <= 2, seed.name
        expected = np.asarray(model.apply({"params": params}, x))
        np.testing.assert_allclose(verified.predict(x), expected, rtol=1e-5, atol=1e-5)


def test_flax_host_callbacks_never_reach_the_verifier(tmp_path):
    jax = pytest.importorskip("jax")
    import flax.linen as nn

    from evoprompt_harness.export_flax import export_flax
    from evoprompt_harness.verify_flax import load_flax

    class Calls(nn.Module):
        @nn.compact
        def __call__(self, x):
            logits = nn.Dense(10)(x)
            shape = jax.ShapeDtypeStruct(logits.shape, logits.dtype)
            return jax.pure_callback(lambda v: np.asarray(v) * 2, shape, logits)

    model = Calls()
    params = model.init(jax.random.PRNGKey(0), np.zeros((2, 40), np.float32))["params"]
    try:
        export_flax(model, params, 100, tmp_path)
    except CandidateError as exc:
        assert exc.status == "NOT_EXPORTABLE"
        return
    with pytest.raises(CandidateError, match="custom_call"):
        load_flax(tmp_path)


def test_flax_constants_are_counted():
    from evoprompt_harness.verify_flax import count_constants

    module = """
      %0 = stablehlo.constant dense<0.000000e+00> : tensor<f32>
      %1 = stablehlo.constant dense<1.000000e-06> : tensor<100x10xf32>
      %2 = stablehlo.constant dense<0xFF800000> : tensor<f32>
      %3 = stablehlo.constant dense<[1.0, 2.0, 3.0]> : tensor<3xf32>
      %4 = stablehlo.constant dense<"0xDEADBEEFDEADBEEF"> : tensor<2x1xf32>
      %5 = stablehlo.constant dense_resource<blob> : tensor<20x50xf32>
    """
    assert count_constants(module) == 1 + 3 + 2 + 1000  # the epsilon, then every element of the others


def test_near_ties_pass_and_real_disagreements_do_not():
    logits = np.zeros((3, 10), np.float32)
    logits[0, 3] = 5.0
    logits[1, 2], logits[1, 7] = 4.0, 4.0 - 0.1 * TIE_TOLERANCE  # a near-tie: either class is the model's
    logits[2, 1], logits[2, 4] = 2.0, 1.0
    assert _disagreements(logits, np.array([3, 7, 1])) == 0
    assert _disagreements(logits, np.array([3, 2, 4])) == 1  # class 4 trails by 1.0: a different model
    assert _disagreements(logits, np.array([3, 2, 99])) == 1  # a class that does not exist


def test_check_floor_allows_noise_but_not_a_lookup_table():
    assert check_floor(0.9, 500, 1000) == pytest.approx(0.9 - 0.03 - 4 * np.sqrt(0.09 * (1 / 500 + 1 / 1000)))
    assert 0.80 < check_floor(0.9, 500, 1000) < 0.85
    # a model that memorised the validation inputs (1.0 there, chance elsewhere) is far below its floor
    assert 0.1 < check_floor(1.0, 500, 1000)
