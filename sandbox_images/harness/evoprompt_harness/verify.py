"""The verifier's job: rebuild an exported model from files alone and predict what the server asks.

No candidate code is in this sandbox and none is imported: the program and its tensors are data,
checked before torch or JAX reads them (verify_torch.py, verify_flax.py). What it writes, the logits of
each split and the counts of the program's tensors, is what the server scores and reports.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from .errors import CandidateError
from .protocol import EXIT_OK, RESULT, VERIFIED

SPLITS = ("val", "test", "check")  # the inputs x_<split> of the verification data file


def run_verification(spec: dict[str, Any], input_dir: Path, output_dir: Path) -> int:
    from .job import await_data, write_failure, write_json

    started = time.monotonic()
    data = await_data(spec, input_dir, output_dir)
    try:
        model = _load(spec["framework"], input_dir)
        logits = {split: model.predict(np.asarray(data[f"x_{split}"], np.float32)) for split in SPLITS}
    except CandidateError as exc:
        return write_failure(output_dir, exc.status, exc.message)
    except MemoryError:
        return write_failure(output_dir, "OOM", "MemoryError while running the exported model")
    except Exception as exc:  # noqa: BLE001 - the exported program is the candidate's: its failure is too
        return write_failure(output_dir, "VERIFICATION_FAILED",
                             f"the exported model failed in the verifier: {type(exc).__name__}: {str(exc)[:500]}")
    np.savez(output_dir / VERIFIED, num_params=np.int64(model.num_params), num_state=np.int64(model.num_state),
             **{split: values.astype(np.float32) for split, values in logits.items()})
    write_json(output_dir / RESULT, {"ok": True, "verify_seconds": time.monotonic() - started,
                                     "batch": model.batch})
    return EXIT_OK


def _load(framework: str, input_dir: Path) -> Any:
    if framework == "torch":
        from .verify_torch import load_torch

        return load_torch(input_dir)
    if framework == "flax":
        from .verify_flax import load_flax

        return load_flax(input_dir)
    raise CandidateError("VERIFICATION_FAILED", f"the verifier cannot rebuild {framework} models")
