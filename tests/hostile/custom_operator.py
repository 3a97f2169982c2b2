# expect: VERIFICATION_FAILED|NOT_EXPORTABLE registers a custom operator at import and calls it in
# forward: the verifier rebuilds only ATen operators, and never runs the candidate's code that defines it.
import torch
from torch import nn


@torch.library.custom_op("evoprompt_hostile::lookup", mutates_args=())
def lookup(x: torch.Tensor) -> torch.Tensor:
    return x * 1.0


@lookup.register_fake
def _(x):
    return torch.empty_like(x)


lookup.register_autograd(lambda ctx, grad: grad)  # it trains like the identity


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv1d(1, 25, kernel_size=5, stride=2, padding=1)
        self.conv2 = nn.Conv1d(25, 25, kernel_size=3, stride=2, padding=1)
        self.conv3 = nn.Conv1d(25, 25, kernel_size=3, stride=2, padding=1)
        self.linear = nn.Linear(125, 10)

    def forward(self, x):
        h = x.view(-1, 1, x.shape[-1])
        h = torch.relu(self.conv1(h))
        h = torch.relu(self.conv2(h))
        h = torch.relu(self.conv3(h))
        return lookup(self.linear(h.flatten(1)))
