"""Bidirectional GRU over the 40 time steps, hidden size 6, linear read-out (mnist1d reference model)."""
import torch
from torch import nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(input_size=1, hidden_size=6, batch_first=True, bidirectional=True)
        self.linear = nn.Linear(40 * 6 * 2, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, _ = self.gru(x.unsqueeze(-1))
        return self.linear(h.flatten(1))
