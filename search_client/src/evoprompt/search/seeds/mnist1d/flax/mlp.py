"""Multi-layer perceptron, two hidden layers of 100 (mnist1d reference model)."""
import flax.linen as nn
import jax.numpy as jnp


class Model(nn.Module):
    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        x = nn.relu(nn.Dense(100)(x))
        x = nn.relu(nn.Dense(100)(x))
        return nn.Dense(10)(x)
