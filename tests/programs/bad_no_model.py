# expect: COMPILE_ERROR no top-level class `Model`
import torch


class Net(torch.nn.Module):
    def forward(self, x):
        return x
