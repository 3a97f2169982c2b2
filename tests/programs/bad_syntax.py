# expect: COMPILE_ERROR syntax error
import torch
class Model(torch.nn.Module)
    pass
