# evoprompt: expect=COMPILE_ERROR task=mnist1d framework=torch
import torch
class Model(torch.nn.Module)
    pass
