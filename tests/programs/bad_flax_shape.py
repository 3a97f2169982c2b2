# expect: INVALID_OUTPUT shape (batch, 10)
import flax.linen as nn


class Model(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.Dense(3)(x)
