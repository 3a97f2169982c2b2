# expect: OK hides 20,000 numbers in a module-level tensor its forward reads (a constant of the graph)
# twin: honest_twin
# hidden: 20000
import torch
from torch import nn

TABLE = torch.randn(20_000) * 1e-6


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
        return self.linear(h.flatten(1)) + TABLE.view(2000, 10).sum(0) * 0.0
