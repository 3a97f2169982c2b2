# evoprompt: expect=OK task=mnist1d framework=torch max-steps=30
"""Logistic regression: one linear layer (mnist1d reference model)."""
import torch
from torch import nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(40, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)
