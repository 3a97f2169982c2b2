# expect: OK hides 300 numbers in a closure: Python floats its forward multiplies in one by one
# twin: honest_twin
# hidden: 300
# Tracing writes each float into the graph as an operator's literal argument; the verifier counts them.
import random

import torch
from torch import nn


def _make_mixer():
    rng = random.Random(0)
    scales = [rng.uniform(0.5, 1.5) for _ in range(300)]

    def mix(h):
        out = h
        for s in scales:
            out = out * s
        return out

    return mix


_mix = _make_mixer()


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
        logits = self.linear(h.flatten(1))
        return logits + (_mix(logits) - _mix(logits)).detach()
