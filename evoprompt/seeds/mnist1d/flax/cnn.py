"""Three strided 1-D convolutions of 25 features and a linear read-out (mnist1d reference model)."""
import flax.linen as nn
import jax.numpy as jnp


class Model(nn.Module):
    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        x = x[..., None]  # (batch, 40, 1): length-major, one channel
        x = nn.relu(nn.Conv(25, kernel_size=(5,), strides=(2,), padding=[(1, 1)])(x))
        x = nn.relu(nn.Conv(25, kernel_size=(3,), strides=(2,), padding=[(1, 1)])(x))
        x = nn.relu(nn.Conv(25, kernel_size=(3,), strides=(2,), padding=[(1, 1)])(x))
        return nn.Dense(10)(x.reshape((x.shape[0], -1)))
