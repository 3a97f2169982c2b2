"""Rebuild a torch candidate's model from its export alone, count what it holds, and predict with it.

This runs in the verifier's sandbox, which holds no candidate code: the only inputs are the files the
training sandbox wrote (export_torch.py), and those were written by a process that ran the candidate.
So they are checked before torch reads them. torch's deserializer resolves each node's target as a
dotted path under `torch` (`torch.os.system` would resolve too), evaluates symbolic shapes with sympy
and reads tensors with torch.load (pickle): here every target must be an ATen operator, every shape a
plain integer, and the tensors come from an npz that numpy reads without pickles. What survives the
checks is re-serialized without metadata and deserialized with its tensors passed as objects.

Counts: `num_params`, the elements of the parameters the candidate trained (`params/`); `num_state`,
every other number the program holds: frozen parameters and buffers (`state/`), tensor constants
(`constants/`), and each non-trivial number written into the graph as an operator's argument (every
float literal but 0, 1 and -1; an integer given as an arithmetic operand). Integers that are shapes,
dims or strides are not counted; the node cap bounds what could hide there.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import CandidateError
from .protocol import PROGRAM_TORCH, TENSORS

MAX_NODES = 20_000  # an honest MNIST-1D model is tens of nodes; a cap keeps integer literals from hiding much
MAX_PROGRAM_BYTES = 32 * 1024**2
MAX_BATCH = 4096
_ATEN_TARGET = re.compile(r"torch\.ops\.aten\.([A-Za-z0-9_]+)\.([A-Za-z0-9_]+)")
# operators that read files or print: they have no place in a model
_DENIED_OPS = frozenset({"from_file", "_print", "save", "load"})
# argument kinds a model's operators take; not graphs, symbolic values, custom objects or operators
_ARG_KINDS = frozenset({"as_none", "as_tensor", "as_tensors", "as_int", "as_ints", "as_float", "as_floats",
                        "as_string", "as_strings", "as_scalar_type", "as_memory_format", "as_layout", "as_device",
                        "as_bool", "as_bools", "as_optional_tensors", "as_optional_tensor", "as_int_lists",
                        "as_float_lists"})
_OUTPUT_KINDS = frozenset({"as_tensor", "as_tensors", "as_none"})
_OPERAND_NAMES = frozenset({"other", "alpha", "fill_value", "value", "scalar", "exponent", "self"})
_NEUTRAL = frozenset({0.0, 1.0, -1.0})
_INPUT_SPECS = {"parameter": "parameter_name", "buffer": "buffer_name", "tensor_constant": "tensor_constant_name"}


class Verified:
    """A rebuilt program: `predict` maps float32 (n, 40) to float32 logits (n, 10) in fixed batches."""

    def __init__(self, program: Any, args: list[Any], user_index: int, batch: int, num_params: int,
                 num_state: int) -> None:
        self._module = program.graph_module
        self._args = args
        self._user_index = user_index
        self.batch = batch
        self.num_params = num_params
        self.num_state = num_state

    @torch.no_grad()
    def predict(self, x: np.ndarray) -> np.ndarray:
        out = []
        for start in range(0, len(x), self.batch):
            chunk = torch.as_tensor(x[start:start + self.batch], dtype=torch.float32)
            real = len(chunk)
            if real < self.batch:
                chunk = torch.cat([chunk, chunk.new_zeros(self.batch - real, *chunk.shape[1:])])
            args = list(self._args)
            args[self._user_index] = chunk
            result = self._module(*args)
            logits = result[0] if isinstance(result, tuple | list) else result
            if not isinstance(logits, torch.Tensor) or tuple(logits.shape) != (self.batch, 10):
                raise _refuse(f"the exported program returned {type(logits).__name__} "
                              f"{tuple(getattr(logits, 'shape', ()))}, not logits of shape ({self.batch}, 10)")
            out.append(logits[:real].float().numpy())
        return np.concatenate(out) if out else np.zeros((0, 10), np.float32)


def _refuse(why: str) -> CandidateError:
    return CandidateError("VERIFICATION_FAILED", f"the exported model was refused: {why}")


def load_torch(input_dir: Path) -> Verified:
    """Check, then rebuild, the exported program in `input_dir`; raise CandidateError when refused."""
    raw = (input_dir / PROGRAM_TORCH).read_bytes()
    if len(raw) > MAX_PROGRAM_BYTES:
        raise _refuse(f"program.json is {len(raw)} bytes (at most {MAX_PROGRAM_BYTES})")
    try:
        program = json.loads(raw)
    except ValueError as exc:
        raise _refuse(f"program.json is not JSON ({exc})") from None
    with np.load(input_dir / TENSORS, allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    clean, literals = _checked_program(program)
    return _rebuild(clean, arrays, literals)


def _checked_program(program: Any) -> tuple[dict[str, Any], int]:
    """The program with only what a plain model needs, and the count of numbers written into its graph."""
    _expect(isinstance(program, dict), "program.json is not an object")
    module = program.get("graph_module")
    _expect(isinstance(module, dict), "no graph_module")
    _expect(program.get("guards_code") in ([], None), "it carries guard code")
    _expect(program.get("range_constraints") == {}, "it has symbolic shapes (export with a static batch)")
    _expect(program.get("verifiers") == ["TRAINING"], f"unexpected dialect {program.get('verifiers')!r}")
    opset = program.get("opset_version")
    _expect(isinstance(opset, dict) and set(opset) == {"aten"} and isinstance(opset["aten"], int),
            "its operator set is not ATen's")
    schema = program.get("schema_version")
    _expect(isinstance(schema, dict) and set(schema) == {"major", "minor"}
            and all(isinstance(v, int) for v in schema.values()), "bad schema_version")
    _expect(isinstance(program.get("torch_version"), str), "bad torch_version")
    graph = module.get("graph")
    _expect(isinstance(graph, dict), "no graph")
    for key in ("sym_int_values", "sym_bool_values", "sym_float_values", "custom_obj_values"):
        _expect(not graph.get(key), f"it holds {key}")
    nodes = graph.get("nodes")
    _expect(isinstance(nodes, list) and len(nodes) <= MAX_NODES, f"more than {MAX_NODES} operations")
    literals = sum(_checked_node(node) for node in nodes)
    tensor_values = graph.get("tensor_values")
    _expect(isinstance(tensor_values, dict), "no tensor_values")
    for name, meta in tensor_values.items():
        _checked_meta(name, meta)
    signature = module.get("signature")
    _expect(isinstance(signature, dict), "no signature")
    clean_graph = {
        "inputs": _list_of_tensor_args(graph.get("inputs"), "graph inputs"),
        "outputs": _list_of_tensor_args(graph.get("outputs"), "graph outputs"),
        "nodes": [{"target": n["target"], "inputs": n["inputs"], "outputs": n["outputs"], "metadata": {},
                   "is_hop_single_tensor_return": None, "name": n.get("name")} for n in nodes],
        "tensor_values": tensor_values, "sym_int_values": {}, "sym_bool_values": {}, "sym_float_values": {},
        "custom_obj_values": {}, "is_single_tensor_return": bool(graph.get("is_single_tensor_return", False)),
    }
    clean = {
        "graph_module": {"graph": clean_graph, "signature": _checked_signature(signature), "module_call_graph": [],
                         "metadata": {}, "treespec_namedtuple_fields": {}},
        "opset_version": {"aten": opset["aten"]}, "range_constraints": {}, "schema_version": schema,
        "verifiers": ["TRAINING"], "torch_version": program["torch_version"], "guards_code": [],
    }
    return clean, literals


def _expect(condition: bool, why: str) -> None:
    if not condition:
        raise _refuse(why)


def _checked_node(node: Any) -> int:
    """Check one operation; return how many numbers it writes into the graph as literals."""
    _expect(isinstance(node, dict), "an operation is not an object")
    target = node.get("target")
    match = _ATEN_TARGET.fullmatch(target) if isinstance(target, str) else None
    _expect(match is not None, f"operation {str(target)[:80]!r} is not an ATen operator")
    assert match is not None
    op = getattr(torch.ops.aten, match.group(1), None)
    _expect(op is not None and match.group(1) not in _DENIED_OPS
            and isinstance(getattr(op, match.group(2), None), torch._ops.OpOverload),
            f"operation {target!r} is not an allowed ATen operator")
    _expect(node.get("name") is None or isinstance(node.get("name"), str), "bad operation name")
    inputs, outputs = node.get("inputs"), node.get("outputs")
    _expect(isinstance(inputs, list) and isinstance(outputs, list), f"{target}: bad inputs or outputs")
    literals = 0
    for named in inputs:
        _expect(isinstance(named, dict) and set(named) <= {"name", "arg", "kind"} and isinstance(named.get("name"), str)
                and named.get("kind") in (None, 0, 1, 2), f"{target}: bad argument")
        literals += _checked_arg(named["arg"], named["name"], target)
    for out in outputs:
        _expect(isinstance(out, dict) and len(out) == 1 and next(iter(out)) in _OUTPUT_KINDS,
                f"{target}: outputs must be tensors")
    return literals


def _checked_arg(arg: Any, name: str, target: str) -> int:
    _expect(isinstance(arg, dict) and len(arg) == 1, f"{target}: bad argument {name!r}")
    kind, value = next(iter(arg.items()))
    _expect(kind in _ARG_KINDS, f"{target}: argument {name!r} of kind {kind!r} is not allowed")
    if kind == "as_float":
        return int(_numeric(value) not in _NEUTRAL)
    if kind in ("as_floats", "as_float_lists"):
        flat = [v for row in value for v in row] if kind == "as_float_lists" else value
        _expect(isinstance(flat, list), f"{target}: bad {kind}")
        return sum(_numeric(v) not in _NEUTRAL for v in flat)
    if kind == "as_int" and name in _OPERAND_NAMES:
        return int(_numeric(value) not in _NEUTRAL)
    return 0


def _numeric(value: Any) -> float:
    if value in ("Infinity", "-Infinity", "NaN"):  # how the serializer writes them: limits, not weights
        return 0.0
    _expect(isinstance(value, int | float) and not isinstance(value, bool), f"a literal is not a number: {value!r}")
    return float(value) if math.isfinite(value) else 0.0


def _checked_meta(name: str, meta: Any) -> None:
    _expect(isinstance(meta, dict), f"tensor {name!r}: bad meta")
    for key in ("sizes", "strides"):
        dims = meta.get(key)
        _expect(isinstance(dims, list) and all(isinstance(d, dict) and set(d) == {"as_int"} for d in dims),
                f"tensor {name!r} has a symbolic shape (export with a static batch)")
    offset = meta.get("storage_offset")
    _expect(isinstance(offset, dict) and set(offset) == {"as_int"}, f"tensor {name!r}: symbolic storage offset")


def _list_of_tensor_args(args: Any, what: str) -> list[Any]:
    _expect(isinstance(args, list) and all(isinstance(a, dict) and set(a) == {"as_tensor"} for a in args),
            f"{what} must be tensors")
    return args


def _checked_signature(signature: dict[str, Any]) -> dict[str, Any]:
    inputs, outputs = signature.get("input_specs"), signature.get("output_specs")
    _expect(isinstance(inputs, list) and isinstance(outputs, list), "bad signature")
    users = 0
    for spec in inputs:
        _expect(isinstance(spec, dict) and len(spec) == 1, "bad input spec")
        kind, body = next(iter(spec.items()))
        _expect(kind in _INPUT_SPECS or kind == "user_input", f"input of kind {kind!r} is not allowed")
        users += kind == "user_input"
    _expect(users == 1, f"the program takes {users} inputs, not one batch")
    _expect(len(outputs) == 1 and isinstance(outputs[0], dict) and set(outputs[0]) == {"user_output"},
            "the program must return the logits alone (no buffer or input mutations)")
    return {"input_specs": inputs, "output_specs": outputs}


def _rebuild(clean: dict[str, Any], arrays: dict[str, np.ndarray], literals: int) -> Verified:
    from torch._export.serde.serialize import SerializedArtifact, deserialize

    specs = clean["graph_module"]["signature"]["input_specs"]
    metas = clean["graph_module"]["graph"]["tensor_values"]
    used: set[str] = set()
    state: dict[str, torch.Tensor] = {}
    constants: dict[str, torch.Tensor] = {}
    num_params = num_state = 0
    user_index, batch = -1, 0
    for index, spec in enumerate(specs):
        kind, body = next(iter(spec.items()))
        arg = body.get("arg", {})
        meta = metas.get(arg.get("as_tensor", arg).get("name") if kind == "user_input" else arg.get("name"))
        _expect(isinstance(meta, dict), f"input {index} has no tensor meta")
        shape = tuple(d["as_int"] for d in meta["sizes"])
        if kind == "user_input":
            _expect(len(shape) == 2 and shape[1] == 40 and 1 <= shape[0] <= MAX_BATCH,
                    f"the program's input has shape {shape}, not (batch, 40)")
            user_index, batch = index, shape[0]
            continue
        target = body.get(_INPUT_SPECS[kind])
        _expect(isinstance(target, str), f"input {index} names no tensor")
        group = "constants" if kind == "tensor_constant" else None
        key = next((f"{g}/{target}" for g in ((group,) if group else ("params", "state"))
                    if f"{g}/{target}" in arrays), None)
        _expect(key is not None and key not in used, f"tensors.npz has no tensor for {target!r}")
        assert key is not None
        used.add(key)
        tensor = _tensor(arrays[key], meta, target)
        if key.startswith("params/"):
            _expect(kind == "parameter", f"{target!r} is filed as trained but is not a parameter")
            num_params += tensor.numel()
        else:
            num_state += tensor.numel()
        if kind == "parameter":
            state[target] = torch.nn.Parameter(tensor, requires_grad=key.startswith("params/"))
        elif kind == "buffer" and body.get("persistent", True):
            state[target] = tensor
        else:
            constants[target] = tensor
    extra = sorted(set(arrays) - used)
    _expect(not extra, f"tensors.npz holds tensors the program does not use: {extra[:5]}")
    artifact = SerializedArtifact(json.dumps(clean).encode(), state, constants, ())
    try:
        program = deserialize(artifact)
    except CandidateError:
        raise
    except Exception as exc:  # noqa: BLE001 - a malformed program is the candidate's
        raise _refuse(f"torch could not load it ({type(exc).__name__}: {str(exc)[:300]})") from None
    args = [None] * len(specs)
    for index, spec in enumerate(program.graph_signature.input_specs):
        if spec.kind.name == "USER_INPUT":
            continue
        source = program.state_dict if spec.target in program.state_dict else program.constants
        args[index] = source[spec.target]
    return Verified(program, args, user_index, batch, num_params, num_state + literals)


def _tensor(array: np.ndarray, meta: dict[str, Any], name: str) -> torch.Tensor:
    from torch._export.serde.serialize import _SERIALIZE_TO_TORCH_DTYPE

    _expect(array.dtype.kind in "fiub" and array.dtype != object, f"tensor {name!r} is not numeric")
    shape = tuple(d["as_int"] for d in meta["sizes"])
    _expect(tuple(array.shape) == shape, f"tensor {name!r} has shape {array.shape}, the program says {shape}")
    dtype = _SERIALIZE_TO_TORCH_DTYPE.get(meta.get("dtype"))
    _expect(dtype is not None, f"tensor {name!r} has an unknown dtype")
    return torch.from_numpy(np.ascontiguousarray(array)).to(dtype)


