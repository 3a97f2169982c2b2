"""Logistic regression: one linear layer (mnist1d reference model)."""
import flax.linen as nn
import jax.numpy as jnp


class Model(nn.Module):
    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        return nn.Dense(10)(x)
