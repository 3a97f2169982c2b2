"""Bidirectional GRU over the 40 time steps, hidden size 6, linear read-out (mnist1d reference model)."""
import flax.linen as nn
import jax.numpy as jnp


class Model(nn.Module):
    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        seq = x[..., None]  # (batch, 40, 1)
        h = nn.Bidirectional(nn.RNN(nn.GRUCell(6)), nn.RNN(nn.GRUCell(6)))(seq)
        return nn.Dense(10)(h.reshape((h.shape[0], -1)))
