# expect: COMPILE_ERROR imports a module the sandbox image does not have
import tensorflow_is_not_in_the_sandbox  # noqa: F401
from torch import nn


class Model(nn.Module):
    pass
