"""The task's recipe for a `flax.linen.Module` candidate: AdamW (optax), jitted steps, validation predicted
at every checkpoint; at the checkpoint the server picks, the model is exported for the verifier, which
alone sees the test inputs."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from . import common
from .candidate import get_attribute
from .errors import CandidateError
from .export_flax import export_flax
from .protocol import EXPORT_BATCH


def build(module: Any, spec: dict[str, Any]) -> Any:
    """The candidate's `Model()`, built before the data arrives (its parameters are made in `train`)."""
    import flax.linen as nn

    model_cls = get_attribute(module, "Model", "class")
    if not (isinstance(model_cls, type) and issubclass(model_cls, nn.Module)):
        raise CandidateError("COMPILE_ERROR", "`Model` must be a subclass of flax.linen.Module")
    try:
        return model_cls()
    except TypeError as exc:
        raise CandidateError("COMPILE_ERROR", f"`Model()` must be constructible with no arguments: {exc}") from None


def train(model: Any, data: dict[str, np.ndarray], spec: dict[str, Any], output_dir: Path,
          choose: Callable[[list[int]], int]) -> dict[str, Any]:
    import jax
    import jax.numpy as jnp
    import optax

    seed = int(spec["seed"])
    x_train = jnp.asarray(data["x_train"], dtype=jnp.float32)
    y_train = jnp.asarray(data["y_train"], dtype=jnp.int32)
    x_val = jnp.asarray(data["x_val"], dtype=jnp.float32)

    variables = model.init(jax.random.PRNGKey(seed), x_train[:2])
    mutable = sorted(k for k in variables if k != "params")
    if mutable:
        raise CandidateError(
            "COMPILE_ERROR",
            f"flax candidates must not use mutable collections (found {', '.join(mutable)}); "
            "use LayerNorm instead of BatchNorm",
        )
    params = variables.get("params", {})
    out = model.apply({"params": params}, x_train[:2])
    if not hasattr(out, "shape"):
        raise CandidateError("INVALID_OUTPUT", f"Model().apply must return an array, got {type(out).__name__}")
    common.check_logits_shape(tuple(out.shape), 2, "Model().apply(params, x)")
    if not jax.tree_util.tree_leaves(params):
        raise CandidateError("INVALID_OUTPUT", "the model has no trainable parameters")

    optimizer = optax.adamw(float(spec["lr"]), weight_decay=float(spec["weight_decay"]))
    opt_state = optimizer.init(params)

    def loss_fn(p: Any, xb: Any, yb: Any) -> Any:
        logits = model.apply({"params": p}, xb)
        return optax.softmax_cross_entropy_with_integer_labels(logits, yb).mean()

    @jax.jit
    def train_step(p: Any, s: Any, xb: Any, yb: Any) -> tuple[Any, Any, Any]:
        loss, grads = jax.value_and_grad(loss_fn)(p, xb, yb)
        updates, s = optimizer.update(grads, s, p)
        return optax.apply_updates(p, updates), s, loss

    @jax.jit
    def predict(p: Any, x: Any) -> Any:
        return jnp.argmax(model.apply({"params": p}, x), axis=-1)

    checkpoints = common.Checkpoints(spec["checkpoints"])
    started = time.monotonic()
    batches = common.batch_indices(len(x_train), int(spec["batch_size"]), int(spec["steps"]), seed)
    for step, idx in enumerate(batches, 1):
        params, opt_state, loss = train_step(params, opt_state, x_train[idx], y_train[idx])
        if step % 100 == 0 or step in checkpoints:
            common.check_loss(float(loss), step)
        if step in checkpoints:  # jax arrays are immutable: the snapshot is a reference
            checkpoints.add(step, {"val": np.asarray(predict(params, x_val))}, params)
    train_seconds = time.monotonic() - started

    checkpoints.write_validation(output_dir)
    best = choose(checkpoints.steps)
    export_flax(model, checkpoints.snapshots[best], EXPORT_BATCH, output_dir)
    return {"train_seconds": train_seconds, "steps": int(spec["steps"]), "device": str(jax.devices()[0])}
