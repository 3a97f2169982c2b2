"""Export the chosen checkpoint of a flax candidate as a StableHLO program (jax.export).

The verifier (verify_flax.py), in a sandbox of its own that never runs candidate code, rebuilds the
model from these files alone and counts what it holds there, not here.

`program.jaxexport` is jax.export's serialization (a flatbuffer holding the StableHLO module, no
pickles) of `logits(params, x)`: the parameters are the program's arguments, not constants baked into
it, and go into `tensors.npz` as plain arrays `params/0000`, `params/0001`, ... in the order of the
parameter tree's leaves. The batch size is static, as for torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .errors import CandidateError
from .export_files import not_exportable, write_export
from .protocol import PROGRAM_JAX


def param_key(index: int) -> str:
    return f"params/{index:04d}"


def export_flax(model: Any, params: Any, batch: int, output_dir: Path) -> None:
    """Write PROGRAM_JAX and TENSORS for `model.apply({"params": params}, x)` on float32 (batch, 40)."""
    import jax
    import jax.numpy as jnp
    from jax import export

    leaves, treedef = jax.tree_util.tree_flatten(params)

    def logits(flat: list[Any], x: Any) -> Any:
        return model.apply({"params": jax.tree_util.tree_unflatten(treedef, flat)}, x)

    shapes = ([jax.ShapeDtypeStruct(np.shape(leaf), jnp.result_type(leaf)) for leaf in leaves],
              jax.ShapeDtypeStruct((batch, 40), jnp.float32))
    try:
        artifact = export.export(jax.jit(logits))(*shapes).serialize()
    except Exception as exc:  # noqa: BLE001 - whatever jax.export refuses is the candidate's to fix
        raise not_exportable("jax.export", exc, "avoid host callbacks and side effects in __call__") from None
    arrays = {param_key(i): np.asarray(jax.device_get(leaf)) for i, leaf in enumerate(leaves)}
    for name, array in arrays.items():
        if array.dtype.kind not in "fiub":  # bfloat16 and friends: numpy's npz cannot hold them plainly
            raise CandidateError("NOT_EXPORTABLE", f"parameter {name} has dtype {array.dtype}; use float32")
    write_export(output_dir, PROGRAM_JAX, bytes(artifact), arrays)
