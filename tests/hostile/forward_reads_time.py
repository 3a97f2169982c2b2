# expect: OK|VERIFICATION_FAILED reads the clock in forward and adds it to its logits: tracing bakes
# the value read at export into the program, so the verifier predicts with a constant (no clock, no
# candidate code), and disagrees with the training run if the logits it shifts change a class.
import time

import torch
from torch import nn


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
        shift = torch.zeros(10)
        shift[int(time.time() * 1000) % 10] = 1e-3
        return logits + shift
