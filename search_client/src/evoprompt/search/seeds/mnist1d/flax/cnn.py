"""Three strided 1-D convolutions of 25 features and a linear read-out (mnist1d reference model).

The reference model is PyTorch's, so its kernels start from PyTorch's default initialisation
(uniform, bound 1/sqrt(fan_in)) rather than flax's lecun_normal.
"""
import flax.linen as nn
import jax.numpy as jnp

torch_default_init = nn.initializers.variance_scaling(1 / 3, "fan_in", "uniform")


class Model(nn.Module):
    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        x = x[..., None]  # (batch, 40, 1): length-major, one channel
        for kernel in (5, 3, 3):
            x = nn.Conv(25, kernel_size=(kernel,), strides=(2,), padding=[(1, 1)], kernel_init=torch_default_init)(x)
            x = nn.relu(x)
        return nn.Dense(10, kernel_init=torch_default_init)(x.reshape((x.shape[0], -1)))
