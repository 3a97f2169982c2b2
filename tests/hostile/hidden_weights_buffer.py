# expect: OK hides 20,000 numbers in a buffer (not a parameter) that its forward uses
# twin: honest_twin
# hidden: 20000
# A size counted from parameters alone would miss them; the verifier counts every tensor the exported
# program holds, so they cost num_state.
import torch
from torch import nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv1d(1, 25, kernel_size=5, stride=2, padding=1)
        self.conv2 = nn.Conv1d(25, 25, kernel_size=3, stride=2, padding=1)
        self.conv3 = nn.Conv1d(25, 25, kernel_size=3, stride=2, padding=1)
        self.linear = nn.Linear(125, 10)
        self.register_buffer("table", torch.randn(20_000) * 1e-6)

    def forward(self, x):
        h = x.view(-1, 1, x.shape[-1])
        h = torch.relu(self.conv1(h))
        h = torch.relu(self.conv2(h))
        h = torch.relu(self.conv3(h))
        return self.linear(h.flatten(1)) + self.table[:10] * 0.0
