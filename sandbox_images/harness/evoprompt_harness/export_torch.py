"""Export the chosen checkpoint of a torch candidate as a program of standard operations.

The verifier (verify_torch.py), in a sandbox of its own that never runs candidate code, rebuilds the
model from these files alone: what it holds is counted there, not here, so nothing this process does
(it runs the candidate's code too) can change the size the server reports.

`program.json` is torch.export's serialized graph (JSON); its tensors go into `tensors.npz` as plain
arrays under `params/<name>` (trainable parameters), `state/<name>` (frozen parameters, buffers) and
`constants/<name>` (tensors the forward creates from literals), never torch.save's pickles. The batch
size is static: dynamic shapes would bring symbolic expressions the verifier would have to evaluate.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .errors import CandidateError
from .export_files import not_exportable, write_export
from .protocol import EXPORT_BATCH, PROGRAM_TORCH


def _as_array(tensor: torch.Tensor) -> np.ndarray:
    value = tensor.detach().cpu()
    if value.dtype == torch.bfloat16:  # numpy has no bfloat16: the verifier casts it back
        value = value.float()
    return value.numpy()


def export_torch(model: torch.nn.Module, example: torch.Tensor, output_dir: Path) -> None:
    """Write PROGRAM_TORCH and TENSORS for `model` (eval mode, on the CPU) called on `example`'s shape."""
    from torch._export.serde.serialize import serialize

    model = model.cpu().eval()
    example = example[:EXPORT_BATCH].detach().cpu()
    if len(example) < EXPORT_BATCH:
        example = torch.cat([example, example.new_zeros(EXPORT_BATCH - len(example), *example.shape[1:])])
    try:
        program = torch.export.export(model, (example,), strict=False)
        artifact = serialize(program)
    except Exception as exc:  # noqa: BLE001 - whatever torch.export refuses is the candidate's to fix
        raise not_exportable("torch.export", exc, "avoid Python control flow on tensor values, data-dependent "
                                                  "shapes and non-tensor outputs in forward()") from None
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    arrays: dict[str, np.ndarray] = {}
    for name, tensor in program.state_dict.items():
        arrays[f"{'params' if name in trainable else 'state'}/{name}"] = _as_array(tensor)
    for name, value in program.constants.items():
        if not isinstance(value, torch.Tensor):
            raise CandidateError("NOT_EXPORTABLE", f"the exported model holds a non-tensor constant {name!r} "
                                                   f"({type(value).__name__}); only tensors can be verified")
        arrays[f"constants/{name}"] = _as_array(value)
    write_export(output_dir, PROGRAM_TORCH, artifact.exported_program, arrays)
