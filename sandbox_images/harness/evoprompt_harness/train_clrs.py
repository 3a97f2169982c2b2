"""The recipe of the clrs/<algorithm> tasks: dm-clrs' Triplet-GMPNN with the candidate's
`get_triplet_msgs` swapped in, trained on dm-clrs' own samplers, predicting the held-out splits.

The server sends only what the model may see of the validation and test samples: inputs, the hints'
first step (the initial state, derived from the inputs; later steps would give the answer away) and
the lengths. It keeps their outputs and scores the predicted output probes with dm-clrs' evaluation.
Training data is sampled here, from the seed in spec.json, as dm-clrs' `run.py` samples it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from . import common
from .candidate import get_attribute
from .errors import CandidateError

PREDICT_BATCH = 32


def _checked(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The candidate's function, with its result's shape checked where dm-clrs calls it."""

    def get_triplet_msgs(z: Any, edge_fts: Any, graph_fts: Any, nb_triplet_fts: int) -> Any:
        out = fn(z, edge_fts, graph_fts, nb_triplet_fts)
        b, n = z.shape[0], z.shape[1]
        shape = tuple(getattr(out, "shape", ()) or ())
        if len(shape) != 5 or shape[:4] != (b, n, n, n):
            got = shape if hasattr(out, "shape") else type(out).__name__
            raise CandidateError(
                "INVALID_OUTPUT",
                f"get_triplet_msgs must return triplet messages of shape (batch, nodes, nodes, nodes, "
                f"features) = ({b}, {n}, {n}, {n}, F); given z {tuple(z.shape)}, edge_fts "
                f"{tuple(edge_fts.shape)}, graph_fts {tuple(graph_fts.shape)} it returned {got}",
            )
        return out

    return get_triplet_msgs


def _train_batches(recipe: dict[str, Any], seed: int, batch_size: int) -> tuple[Any, Iterator[Any]]:
    """run.py's training pipeline: endless samplers, one per training length, taken in turn, with
    random node positions, pred_h hints as inputs where it does so, and permutation pointers.
    Each sampler is built when first used (building one samples ahead: seconds for long algorithms)."""
    import clrs

    rng = np.random.RandomState(seed)
    lengths = [int(n) for n in recipe["train_lengths"]]
    seeds = [rng.randint(2**32) for _ in lengths]
    samplers: dict[int, Any] = {}

    def sampler(i: int) -> tuple[Any, Any]:
        if i not in samplers:
            samplers[i] = clrs.build_sampler(recipe["algorithm"], num_samples=-1, length=lengths[i], seed=seeds[i],
                                             **recipe["sampler_kwargs"])
        return samplers[i]

    def batches() -> Iterator[Any]:
        while True:
            for i in range(len(lengths)):
                yield sampler(i)[0].next(batch_size)

    spec = sampler(0)[1]
    it: Iterator[Any] = clrs.process_random_pos(batches(), rng)
    if recipe["pred_as_input"]:
        spec, it = clrs.process_pred_as_input(spec, it)
    spec, it = clrs.process_permutations(spec, it, True)
    return spec, it


def _held_out_features(data: dict[str, np.ndarray], split: str, spec: Any, recipe: dict[str, Any]) -> Any:
    import clrs

    def points(kind: str) -> tuple[Any, ...]:
        return tuple(
            clrs.DataPoint(name=name, location=spec[name][1], type_=spec[name][2], data=data[f"{split}/{kind}/{name}"])
            for name in recipe[kind]
        )

    return clrs.Features(inputs=points("inputs"), hints=points("hints"), lengths=data[f"{split}/lengths"])


def _with_data(point: Any, data: np.ndarray) -> Any:
    """The DataPoint `point` holding `data` instead."""
    import clrs

    return clrs.DataPoint(name=point.name, location=point.location, type_=point.type_, data=data)


def _pad_steps(features: Any, steps: int) -> Any:
    """Features with `steps` hint steps: zeros appended. The network runs steps - 1 message-passing
    steps and freezes each sample's outputs at its length, so extra steps change no prediction."""

    def pad(point: Any) -> Any:
        extra = np.zeros((steps - point.data.shape[0], *point.data.shape[1:]), point.data.dtype)
        return _with_data(point, np.concatenate([point.data, extra]))

    return features._replace(hints=tuple(pad(p) for p in features.hints))


def _same_shapes(held_out: dict[str, Any]) -> dict[str, Any]:
    """Where validation and test graphs have the same size (a smoke-test setting), give both the same
    number of hint steps too, so one compiled prediction serves both splits (compiling one takes up to
    ~40 s on a CPU core for the long algorithms)."""
    val, test = held_out["val"], held_out["test"]
    if val.inputs[0].data.shape[1:] != test.inputs[0].data.shape[1:]:
        return held_out
    steps = max(val.hints[0].data.shape[0], test.hints[0].data.shape[0])
    return {split: _pad_steps(f, steps) for split, f in held_out.items()}


def _take(features: Any, idx: np.ndarray) -> Any:
    """The samples `idx` of a Features (batch axis 0 for inputs and lengths, 1 for hints)."""
    return features._replace(
        inputs=tuple(_with_data(p, p.data[idx]) for p in features.inputs),
        hints=tuple(_with_data(p, p.data[:, idx]) for p in features.hints),
        lengths=features.lengths[idx],
    )


def _predict(model: Any, features: Any, key: Any) -> dict[str, np.ndarray]:
    """Output probes for every sample, in batches of up to PREDICT_BATCH; the last one is padded with
    repeats, so every call has the shape that is already compiled."""
    import jax

    n = int(features.lengths.shape[0])
    batch = min(n, PREDICT_BATCH)
    parts: dict[str, list[np.ndarray]] = {}
    for lo in range(0, n, batch):
        real = np.arange(lo, min(lo + batch, n))
        key, sub = jax.random.split(key)
        preds, _ = model.predict(sub, _take(features, np.resize(real, batch)))
        for name, point in preds.items():
            parts.setdefault(name, []).append(np.asarray(point.data)[: len(real)])
    return {name: np.concatenate(chunks) for name, chunks in parts.items()}


def _check_finite(arrays: dict[str, np.ndarray]) -> None:
    for name, array in arrays.items():
        if not np.isfinite(array).all():
            raise CandidateError("RUNTIME_ERROR", f"the predicted output probe {name} holds NaN or infinite values")


def _adamw_model_class() -> type:
    """dm-clrs' BaselineModel trained with AdamW, as EvoPrompting trains it, after Ibarz et al.'s
    gradient clipping. BaselineModel's own update is Adam and calls the optimizer without the
    parameters, which AdamW's weight decay needs; single-task training has no null gradients to skip."""
    import clrs
    import jax
    import jax.numpy as jnp
    import optax

    class AdamWBaselineModel(clrs.models.BaselineModel):  # type: ignore[misc,name-defined]
        def _update_params(self, params: Any, grads: Any, opt_state: Any, algorithm_index: Any) -> Any:
            updates, opt_state = self.opt.update(grads, opt_state, params)
            return optax.apply_updates(params, updates), opt_state

        def init(self, features: Any, seed: int) -> None:
            # as BaselineModel.init, but compiled: run eagerly, op by op, it takes ~12 s on a CPU
            def init_params(rng: Any, features_list: Any) -> Any:
                return self.net_fn.init(rng, features_list, True, algorithm_index=-1, return_hints=False,
                                        return_all_outputs=False)

            self.params = jax.jit(init_params)(jax.random.PRNGKey(seed), [features])
            self.opt_state = self.opt.init(self.params)
            self.opt_state_skeleton = self.opt.init(jnp.zeros(1))

    return AdamWBaselineModel


def build(module: Any, spec: dict[str, Any]) -> Callable[..., Any]:
    """The candidate's `get_triplet_msgs`, found before the data arrives."""
    fn = get_attribute(module, "get_triplet_msgs", "function")
    if not callable(fn):
        raise CandidateError("COMPILE_ERROR", "`get_triplet_msgs` must be a function")
    return fn


def train(fn: Callable[..., Any], data: dict[str, np.ndarray], spec: dict[str, Any], output_dir: Path,
          choose: Callable[[list[int]], int]) -> dict[str, Any]:
    import clrs
    import jax
    import optax
    from absl import logging as absl_logging
    from clrs._src import processors

    absl_logging.set_verbosity(absl_logging.ERROR)  # dm-clrs logs a line per sampler built
    processors.get_triplet_msgs = _checked(fn)  # PGN looks the name up in its module when it runs

    recipe = spec["clrs"]
    seed = int(spec["seed"])
    clrs_spec, batches = _train_batches(recipe, seed, int(spec["batch_size"]))
    first = next(batches)
    held_out = _same_shapes({split: _held_out_features(data, split, clrs_spec, recipe) for split in ("val", "test")})

    factory = clrs.get_processor_factory(
        "triplet_gmpnn", use_ln=True, nb_triplet_fts=int(recipe["nb_triplet_fts"]), nb_heads=1
    )
    model = _adamw_model_class()(
        spec=clrs_spec, dummy_trajectory=first, processor_factory=factory,
        hidden_dim=int(recipe["hidden_dim"]), encode_hints=True, decode_hints=True,
        encoder_init="xavier_on_scalars", use_lstm=False, learning_rate=float(spec["lr"]),
        grad_clip_max_norm=1.0, checkpoint_path="/tmp/clrs-checkpoints", freeze_processor=False,
        dropout_prob=0.0, hint_teacher_forcing=0.0, hint_repred_mode="soft", nb_msg_passing_steps=1,
    )
    model.opt = optax.chain(
        optax.clip_by_global_norm(1.0), optax.adamw(float(spec["lr"]), weight_decay=float(spec["weight_decay"]))
    )
    model.init(first.features, seed + 1)

    key = jax.random.PRNGKey(seed)
    checkpoints = common.Checkpoints(spec["checkpoints"])
    started = time.monotonic()
    feedback = first
    for step in range(1, int(spec["steps"]) + 1):
        key, sub = jax.random.split(key)
        loss = model.feedback(sub, feedback)
        if step % 50 == 0 or step in checkpoints:
            common.check_loss(float(loss), step)
        if step in checkpoints:
            key, sub = jax.random.split(key)
            val = {f"val/{name}": a for name, a in _predict(model, held_out["val"], sub).items()}
            _check_finite(val)
            # a host copy: the training step donates the parameters' buffers
            checkpoints.add(step, val, jax.tree_util.tree_map(np.array, model.params))
        feedback = next(batches)
    train_seconds = time.monotonic() - started

    checkpoints.write_validation(output_dir)
    common.write_weights(output_dir, common.flatten_tree(model.params), {})
    best = choose(checkpoints.steps)
    model.params = jax.tree_util.tree_map(jax.numpy.asarray, checkpoints.snapshots[best])
    key, sub = jax.random.split(key)
    test = {f"test/{name}": a for name, a in _predict(model, held_out["test"], sub).items()}
    _check_finite(test)
    common.write_test_predictions(output_dir, best, test)
    return {"train_seconds": train_seconds, "steps": int(spec["steps"]), "device": str(jax.devices()[0])}
