"""Rebuild a flax candidate's model from its jax.export artifact alone, count what it holds, predict.

This runs in the verifier's sandbox, which holds no candidate code. jax.export's deserializer reads a
flatbuffer (no pickles) holding a StableHLO module; before it runs, the module is checked: one device,
no effects, static shapes, the argument tree export_flax.py writes (a list of parameters, then one
batch), logits out, and no operation that reaches outside the computation (custom calls, which is how
host callbacks such as `jax.debug.callback` or `pure_callback` compile, in/outfeed, send/recv).

Counts: `num_params`, the elements of the parameters (the program's arguments, from `tensors.npz`);
`num_state`, every number the module itself holds: each non-splat constant's elements, and one for
each splat constant whose value is not 0, 1 or -1 (an epsilon, a scale).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from .errors import CandidateError
from .export_flax import param_key
from .protocol import PROGRAM_JAX, TENSORS

MAX_PROGRAM_BYTES = 32 * 1024**2
MAX_BATCH = 4096
# operations that leave the computation: a model has no use for them
_DENIED_OPS = ("custom_call", "infeed", "outfeed", "send", "recv")
_OP = re.compile(r"\b(?:stablehlo|mhlo|chlo)\.([a-z_]+)")
_CONSTANT = re.compile(r"stablehlo\.constant\s+(dense(?:_resource)?)<(.*?)>\s*:\s*tensor<([^>]*)>")
_NEUTRAL = frozenset({0.0, 1.0, -1.0})


class Verified:
    """A rebuilt program: `predict` maps float32 (n, 40) to float32 logits (n, 10) in fixed batches."""

    def __init__(self, exported: Any, params: list[np.ndarray], batch: int, num_params: int, num_state: int):
        self._exported = exported
        self._params = params
        self.batch = batch
        self.num_params = num_params
        self.num_state = num_state

    def predict(self, x: np.ndarray) -> np.ndarray:
        out = []
        for start in range(0, len(x), self.batch):
            chunk = np.asarray(x[start:start + self.batch], np.float32)
            real = len(chunk)
            if real < self.batch:
                chunk = np.concatenate([chunk, np.zeros((self.batch - real, *chunk.shape[1:]), np.float32)])
            logits = np.asarray(self._exported.call(self._params, chunk))
            out.append(logits[:real].astype(np.float32))
        return np.concatenate(out) if out else np.zeros((0, 10), np.float32)


def _refuse(why: str) -> CandidateError:
    return CandidateError("VERIFICATION_FAILED", f"the exported model was refused: {why}")


def _expect(condition: bool, why: str) -> None:
    if not condition:
        raise _refuse(why)


def load_flax(input_dir: Path) -> Verified:
    """Check, then rebuild, the exported program in `input_dir`; raise CandidateError when refused."""
    import jax
    from jax import export

    raw = (input_dir / PROGRAM_JAX).read_bytes()
    _expect(len(raw) <= MAX_PROGRAM_BYTES, f"{PROGRAM_JAX} is {len(raw)} bytes (at most {MAX_PROGRAM_BYTES})")
    with np.load(input_dir / TENSORS, allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    try:
        exported = export.deserialize(bytearray(raw))
    except Exception as exc:  # noqa: BLE001 - a malformed artifact is the candidate's
        raise _refuse(f"jax could not read it ({type(exc).__name__}: {str(exc)[:300]})") from None
    params = [arrays[param_key(i)] for i in range(len(arrays)) if param_key(i) in arrays]
    _expect(len(params) == len(arrays), f"{TENSORS} must hold params/0000 ... params/NNNN and nothing else")
    _expect(exported.nr_devices == 1, "it runs on more than one device")
    _expect(not exported.ordered_effects and not exported.unordered_effects, "it has side effects")
    _expect(not exported.disabled_safety_checks, "it disables jax.export's safety checks")
    platform = jax.default_backend()
    _expect(platform in exported.platforms, f"it was exported for {exported.platforms}, not {platform}")
    expected_tree = jax.tree_util.tree_structure(((list(range(len(params))), 0), {}))
    _expect(exported.in_tree == expected_tree, "its arguments are not (parameters, batch)")
    avals = exported.in_avals
    for index, (aval, array) in enumerate(zip(avals, params, strict=False)):
        _expect(array.dtype.kind in "fiub", f"{param_key(index)} is not numeric")
        _expect(tuple(aval.shape) == array.shape and np.dtype(aval.dtype) == array.dtype,
                f"{param_key(index)} is {array.dtype}{list(array.shape)}, the program takes "
                f"{np.dtype(aval.dtype)}{list(aval.shape)}")
    batch_shape = avals[-1].shape
    _expect(all(isinstance(d, int) for aval in avals for d in aval.shape), "it has symbolic shapes")
    _expect(len(batch_shape) == 2 and batch_shape[1] == 40 and 1 <= batch_shape[0] <= MAX_BATCH
            and np.dtype(avals[-1].dtype) == np.float32, f"its input is {avals[-1]}, not float32 (batch, 40)")
    batch = int(batch_shape[0])
    outs = exported.out_avals
    _expect(len(outs) == 1 and tuple(outs[0].shape) == (batch, 10)
            and np.issubdtype(np.dtype(outs[0].dtype), np.floating), "it does not return logits of shape (batch, 10)")
    module = exported.mlir_module()
    denied = sorted({op for op in _OP.findall(module) if op in _DENIED_OPS})
    _expect(not denied, f"it calls {', '.join(denied)}, which reach outside the computation (host callbacks?)")
    num_params = sum(int(p.size) for p in params)
    return Verified(exported, params, batch, num_params, count_constants(module))


def count_constants(module: str) -> int:
    """The numbers a StableHLO module's constants hold (see the module's docstring)."""
    total = 0
    for kind, value, tensor_type in _CONSTANT.findall(module):
        dims = tensor_type.split("x")[:-1]
        elements = int(np.prod([int(d) for d in dims])) if dims else 1
        if kind == "dense" and not value.lstrip().startswith(("[", '"')):
            total += int(_splat(value.strip(), tensor_type.split("x")[-1]) not in _NEUTRAL)
        else:
            total += elements
    return total


def _splat(value: str, element: str) -> float:
    """A splat constant's value; infinities and NaN (written as hex bit patterns) are limits, not weights."""
    if value in ("true", "false"):
        return 0.0
    try:
        if value.startswith("0x"):
            bits = {"f64": (np.uint64, np.float64), "f32": (np.uint32, np.float32), "f16": (np.uint16, np.float16)}
            unsigned, floating = bits.get(element, (np.uint32, np.float32))
            number = float(np.array(int(value, 16), unsigned).view(floating))
        else:
            number = float(value)
    except (ValueError, OverflowError):
        return 2.0  # a form not parsed here counts, rather than hides
    return number if np.isfinite(number) else 0.0
