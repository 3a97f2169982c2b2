"""What both exporters share: how an export is refused and how its files are written."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .errors import CandidateError
from .protocol import TENSORS


def not_exportable(tool: str, exc: BaseException, advice: str) -> CandidateError:
    """The status a model gets when `tool` (torch.export, jax.export) cannot export it."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    return CandidateError(
        "NOT_EXPORTABLE",
        f"{tool} could not export the trained model ({type(exc).__name__}: {first[:500]}); the evaluator "
        f"scores only models it can rebuild from standard operations: {advice}",
    )


def write_export(output_dir: Path, program_name: str, program: bytes, arrays: dict[str, np.ndarray]) -> None:
    """Write the program and TENSORS (plain arrays, no pickles), each atomically."""
    path = output_dir / program_name
    partial = path.with_name(f".{path.name}.partial")
    partial.write_bytes(program)
    os.replace(partial, path)
    partial_npz = output_dir / f".{TENSORS}.partial.npz"
    np.savez(partial_npz, **arrays)
    os.replace(partial_npz, output_dir / TENSORS)
