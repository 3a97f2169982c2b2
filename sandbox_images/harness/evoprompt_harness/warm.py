"""What a warm sandbox does before its job arrives: import the framework and the harness's trainer,
then run one tiny training step of a model of its own, and export and rebuild one as the verifier does,
so that what the framework sets up lazily on first use (torch's optimizer and torch.export trace
through torch._dynamo: seconds; XLA's CPU client) is ready. This start-up cost leaves the evaluation's
clock. No candidate code is present yet."""

from __future__ import annotations

import importlib

PRELOAD = {
    "torch": ("torch", "evoprompt_harness.train_torch", "evoprompt_harness.verify_torch"),
    "flax": ("jax", "flax.linen", "optax", "evoprompt_harness.train_flax", "evoprompt_harness.verify_flax"),
    "haiku": ("clrs", "clrs._src.processors", "haiku", "optax", "evoprompt_harness.train_clrs"),
}


def _torch_step() -> None:
    import torch

    model = torch.nn.Sequential(torch.nn.Conv1d(1, 2, 3), torch.nn.Flatten(), torch.nn.Linear(76, 10))
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.01, weight_decay=0.01)
    loss = torch.nn.CrossEntropyLoss()(model(torch.zeros(4, 1, 40)), torch.zeros(4, dtype=torch.long))
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    with torch.no_grad():
        model.eval()
        model(torch.zeros(4, 1, 40)).argmax(dim=-1).numpy()
    _torch_export(torch.nn.Sequential(torch.nn.Linear(40, 10)))


def _torch_export(model: object) -> None:
    import tempfile
    from pathlib import Path

    import torch

    from .export_torch import export_torch
    from .verify_torch import load_torch

    with tempfile.TemporaryDirectory() as folder:
        export_torch(model, torch.zeros(1, 40), Path(folder))  # type: ignore[arg-type]
        load_torch(Path(folder)).predict(torch.zeros(3, 40).numpy())


def _jax_step() -> None:
    import jax
    import jax.numpy as jnp
    import optax

    optimizer = optax.adamw(0.01, weight_decay=0.01)
    params = {"w": jnp.zeros((40, 10))}
    state = optimizer.init(params)

    def loss(p: dict, x: jax.Array) -> jax.Array:
        return optax.softmax_cross_entropy_with_integer_labels(x @ p["w"], jnp.zeros(4, jnp.int32)).mean()

    grads = jax.jit(jax.grad(loss))(params, jnp.zeros((4, 40)))
    updates, state = optimizer.update(grads, state, params)
    jax.block_until_ready(optax.apply_updates(params, updates))


def _flax_export() -> None:
    import tempfile
    from pathlib import Path

    import flax.linen as nn
    import jax
    import numpy as np

    from .export_flax import export_flax
    from .verify_flax import load_flax

    model = nn.Dense(10)
    params = model.init(jax.random.PRNGKey(0), np.zeros((1, 40), np.float32))["params"]
    with tempfile.TemporaryDirectory() as folder:
        export_flax(model, params, 4, Path(folder))
        load_flax(Path(folder)).predict(np.zeros((3, 40), np.float32))


def preload(framework: str) -> None:
    for name in PRELOAD.get(framework, ()):
        importlib.import_module(name)
    if framework == "torch":
        _torch_step()
    elif framework in ("flax", "haiku"):
        _jax_step()
    if framework == "flax":
        _flax_export()
