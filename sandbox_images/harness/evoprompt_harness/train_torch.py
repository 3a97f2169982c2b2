"""The task's recipe for a `torch.nn.Module` candidate: AdamW, fixed steps, validation predicted at every
checkpoint; at the checkpoint the server picks, the model is exported for the verifier, which alone sees
the test inputs."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import common
from .candidate import get_attribute
from .errors import CandidateError
from .export_torch import export_torch


def _setup_device(spec: dict[str, Any]) -> torch.device:
    torch.set_num_threads(max(1, int(spec.get("threads", 1))))
    if torch.cuda.is_available():
        fraction = spec.get("gpu_memory_fraction")
        if fraction:
            torch.cuda.set_per_process_memory_fraction(float(fraction), 0)
    return _device()


def build(module: Any, spec: dict[str, Any]) -> torch.nn.Module:
    """The candidate's model, on the job's device, built before the data arrives."""
    device = _setup_device(spec)
    torch.manual_seed(int(spec["seed"]))
    model_cls = get_attribute(module, "Model", "class")
    if not (isinstance(model_cls, type) and issubclass(model_cls, torch.nn.Module)):
        raise CandidateError("COMPILE_ERROR", "`Model` must be a subclass of torch.nn.Module")
    try:
        model = model_cls()
    except TypeError as exc:
        raise CandidateError("COMPILE_ERROR", f"`Model()` must be constructible with no arguments: {exc}") from None
    return model.to(device)


def _device() -> torch.device:
    return torch.device("cuda", 0) if torch.cuda.is_available() else torch.device("cpu")


@torch.no_grad()
def _predict(model: torch.nn.Module, x: torch.Tensor) -> np.ndarray:
    model.eval()
    logits = model(x)
    model.train()
    return logits.argmax(dim=-1).cpu().numpy()


def _snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A copy of parameters and buffers, off the accelerator: GPU memory stays one model's."""
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def train(model: torch.nn.Module, data: dict[str, np.ndarray], spec: dict[str, Any], output_dir: Path,
          choose: Callable[[list[int]], int]) -> dict[str, Any]:
    device = _device()
    x_train = torch.as_tensor(data["x_train"], dtype=torch.float32, device=device)
    y_train = torch.as_tensor(data["y_train"], dtype=torch.long, device=device)
    x_val = torch.as_tensor(data["x_val"], dtype=torch.float32, device=device)

    out = model(x_train[:2])
    if not isinstance(out, torch.Tensor):
        raise CandidateError("INVALID_OUTPUT", f"Model()(x) must return a torch.Tensor, got {type(out).__name__}")
    common.check_logits_shape(tuple(out.shape), 2, "Model()(x)")

    trainable = [p for p in model.parameters() if p.requires_grad]
    if not trainable:
        raise CandidateError("INVALID_OUTPUT", "the model has no trainable parameters")
    optimizer = torch.optim.AdamW(trainable, lr=float(spec["lr"]), weight_decay=float(spec["weight_decay"]))
    loss_fn = torch.nn.CrossEntropyLoss()
    checkpoints = common.Checkpoints(spec["checkpoints"])

    model.train()
    started = time.monotonic()
    batches = common.batch_indices(len(x_train), int(spec["batch_size"]), int(spec["steps"]), int(spec["seed"]))
    for step, idx in enumerate(batches, 1):
        index = torch.as_tensor(idx, device=device)
        loss = loss_fn(model(x_train[index]), y_train[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step % 100 == 0 or step in checkpoints:
            common.check_loss(float(loss.detach()), step)
        if step in checkpoints:
            checkpoints.add(step, {"val": _predict(model, x_val)}, _snapshot(model))
    train_seconds = time.monotonic() - started

    checkpoints.write_validation(output_dir)
    best = choose(checkpoints.steps)
    model.load_state_dict(checkpoints.snapshots[best])
    export_torch(model, x_val, output_dir)
    return {"train_seconds": train_seconds, "steps": int(spec["steps"]), "device": str(device)}
