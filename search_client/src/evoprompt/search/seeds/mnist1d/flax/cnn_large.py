"""The paper's larger seed CNN: three convolutions of 32 features and a dense layer of 256."""
import flax.linen as nn
import jax.numpy as jnp


class Model(nn.Module):
    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        x = x[..., None]
        x = nn.relu(nn.Conv(32, kernel_size=(5,), strides=(2,), padding=[(1, 1)])(x))
        x = nn.relu(nn.Conv(32, kernel_size=(3,), strides=(2,), padding=[(1, 1)])(x))
        x = nn.relu(nn.Conv(32, kernel_size=(3,), strides=(2,), padding=[(1, 1)])(x))
        x = nn.relu(nn.Dense(256)(x.reshape((x.shape[0], -1))))
        return nn.Dense(10)(x)
