"""Read back what a sandbox wrote, trusting nothing: regular files only, bounded sizes and shapes.

Every problem raises `BadOutput` with a message for the candidate's author; the caller turns it
into INVALID_OUTPUT (or OUTPUT_LIMIT for sizes).
"""

from __future__ import annotations

import json
import os
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from evoprompt.sdk.ast_retry import retry_ast

from .protocol import PREDICTIONS, PROGRAM_JAX, PROGRAM_TORCH, RESULT, TENSORS, TEST_PREDICTIONS, WEIGHTS

MAX_RESULT_JSON_BYTES = 64 * 1024
MAX_NPZ_MEMBERS = 100_000


class BadOutput(Exception):
    def __init__(self, message: str, *, too_large: bool = False) -> None:
        super().__init__(message)
        self.too_large = too_large


@dataclass(frozen=True)
class WeightCounts:
    num_params: int
    num_state: int


def _open_regular(path: Path, limit: int) -> bytes:
    """Read a file that must be a plain, unlinked regular file of at most `limit` bytes."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise BadOutput(f"the sandbox wrote no {path.name}") from None
    if not stat.S_ISREG(st.st_mode):
        raise BadOutput(f"{path.name} is not a regular file (links and special files are refused)")
    if st.st_nlink != 1:
        raise BadOutput(f"{path.name} has {st.st_nlink} hard links; outputs must be plain files")
    if st.st_size > limit:
        raise BadOutput(f"{path.name} is {st.st_size:,} bytes, over the limit of {limit:,}", too_large=True)
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise BadOutput(f"{path.name} grew past the limit of {limit:,} bytes", too_large=True)
    return data


def read_result_record(output_dir: Path) -> dict[str, Any] | None:
    """The harness's result.json, or None when absent or unreadable (it is advisory only)."""
    try:
        record = json.loads(_open_regular(output_dir / RESULT, MAX_RESULT_JSON_BYTES))
    except (BadOutput, ValueError, UnicodeDecodeError):
        return None
    return record if isinstance(record, dict) else None


def read_exported_model(output_dir: Path, framework: str, limit: int) -> dict[str, bytes]:
    """The exported model's files (the program and its tensors), as plain bytes for the verifier; the
    tensors' archive must hold plain arrays that inflate to at most `limit` bytes."""
    program = {"torch": PROGRAM_TORCH, "flax": PROGRAM_JAX}.get(framework)
    if program is None:
        raise BadOutput(f"no exported model is read for {framework}")
    files = {name: _open_regular(output_dir / name, limit) for name in (program, TENSORS)}
    _check_npz(files[TENSORS], TENSORS, limit)
    return files


def _check_npz(data: bytes, name: str, limit: int) -> None:
    import io

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            members = zf.infolist()
    except zipfile.BadZipFile as exc:
        raise BadOutput(f"{name} is not a valid .npz file: {exc}") from None
    if len(members) > MAX_NPZ_MEMBERS:
        raise BadOutput(f"{name} holds {len(members):,} arrays; at most {MAX_NPZ_MEMBERS:,} allowed")
    inflated = sum(m.file_size for m in members)
    if inflated > limit:
        raise BadOutput(f"{name} inflates to {inflated:,} bytes, over {limit:,}", too_large=True)


def load_npz(path: Path, limit: int) -> dict[str, np.ndarray]:
    """Load an .npz without pickles, refusing archives that would inflate past `limit` bytes."""
    data = _open_regular(path, limit)
    try:
        _check_npz(data, path.name, limit)
        return retry_ast(_read_npz, data)
    except BadOutput:
        raise
    except Exception as exc:  # zipfile/numpy raise many types for a malformed file
        raise BadOutput(f"{path.name} is not a valid .npz file: {exc}") from None


def _read_npz(data: bytes) -> dict[str, np.ndarray]:
    import io

    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        return {name: npz[name] for name in npz.files}


def _check_arrays(file: str, arrays: dict[str, np.ndarray], expected: dict[str, tuple[int, ...]],
                  rows: int | None, classes: bool, max_rows: int = 0) -> None:
    """Each expected array is there, with `rows` rows (one per checkpoint; None: a single prediction)
    of its shape, and holds class ids (`classes`) or finite numbers."""
    lead = () if rows is None else (rows,)
    missing = set(expected) - arrays.keys()
    if missing:
        raise BadOutput(f"{file} lacks {', '.join(sorted(missing))}")
    for name, shape in expected.items():
        arr = arrays[name]
        if arr.shape != (*lead, *shape):
            what = f"(checkpoints<={max_rows}, {', '.join(map(str, shape))})" if lead else str(tuple(shape))
            raise BadOutput(f"predictions {name} has shape {arr.shape}; expected {what}")
        if classes and not np.issubdtype(arr.dtype, np.integer):
            raise BadOutput(f"predictions {name} has dtype {arr.dtype}; expected integer classes")
        if not classes and (arr.dtype.kind not in "biuf" or not np.isfinite(arr).all()):
            raise BadOutput(f"predictions {name} has dtype {arr.dtype} or values that are not finite numbers")


def read_validation(output_dir: Path, limit: int, expected_steps: list[int], expected: dict[str, tuple[int, ...]],
                    *, classes: bool) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """predictions.npz: `steps`, distinct checkpoints of this job, and each expected array with one row
    per step (`expected`: name -> the shape of one checkpoint's predictions)."""
    arrays = load_npz(output_dir / PREDICTIONS, limit)
    steps = arrays.get("steps")
    if steps is None or steps.ndim != 1 or not 1 <= len(steps) <= len(expected_steps) \
            or not np.issubdtype(steps.dtype, np.integer):
        raise BadOutput(f"predictions.npz needs steps, 1 to {len(expected_steps)} checkpoint steps")
    if not set(steps.tolist()) <= set(expected_steps) or len(set(steps.tolist())) != len(steps):
        raise BadOutput(f"predictions name steps {steps.tolist()} that are not checkpoints of this job")
    _check_arrays("predictions.npz", arrays, expected, len(steps), classes, len(expected_steps))
    return steps, {name: arrays[name] for name in expected}


def read_test(output_dir: Path, limit: int, step: int, expected: dict[str, tuple[int, ...]],
              *, classes: bool) -> dict[str, np.ndarray]:
    """test_predictions.npz: `step`, the checkpoint the server chose, and each expected array."""
    arrays = load_npz(output_dir / TEST_PREDICTIONS, limit)
    got = arrays.get("step")
    if got is None or got.shape != () or not np.issubdtype(got.dtype, np.integer) or int(got) != step:
        raise BadOutput(f"test_predictions.npz must name step {step}, the checkpoint the server chose")
    _check_arrays("test_predictions.npz", arrays, expected, None, classes)
    return {name: arrays[name] for name in expected}


def count_weights(output_dir: Path, limit: int) -> WeightCounts:
    """Count trainable parameters and other state from the tensors in weights.npz."""
    arrays = load_npz(output_dir / WEIGHTS, limit)
    params = state = 0
    for name, arr in arrays.items():
        if arr.dtype.kind not in "biuf":
            raise BadOutput(f"weights.npz entry {name!r} has dtype {arr.dtype}; expected numbers")
        if name.startswith("params/"):
            params += int(arr.size)
        elif name.startswith("state/"):
            state += int(arr.size)
        else:
            raise BadOutput(f"weights.npz entry {name!r} is neither params/... nor state/...")
    if params == 0:
        raise BadOutput("weights.npz holds no trainable parameters")
    return WeightCounts(num_params=params, num_state=state)
