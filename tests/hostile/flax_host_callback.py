# expect: NOT_EXPORTABLE|VERIFICATION_FAILED a flax model calling back into Python from __call__
# framework: flax
# jax.pure_callback runs the candidate's code on the host: the verifier must never run it, so the
# exported program is refused (jax.export refuses the callback, or the verifier its custom call).
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np


def _clock():
    return np.full((10,), time.time() % 1 * 1e-6, np.float32)


class Model(nn.Module):
    @nn.compact
    def __call__(self, x):
        h = nn.relu(nn.Dense(32)(x))
        logits = nn.Dense(10)(h)
        # no operand, so no gradient flows through it and the model trains
        return logits + jax.pure_callback(_clock, jax.ShapeDtypeStruct((10,), jnp.float32))
