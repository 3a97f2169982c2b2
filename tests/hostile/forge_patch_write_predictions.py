# expect: OK monkeypatches the harness's write_predictions at import time so that every
# checkpoint's predictions are all class 0 (any predictions could be written the same way).
# twin: honest_twin
# The candidate runs inside the harness process, so this works; but without the held-out labels it
# cannot do better than the honest model: the reported accuracy must not beat the twin's.
import numpy as np

import evoprompt_harness.common as common

_real = common.write_predictions


def fake_write_predictions(output_dir, steps, val, test):
    _real(output_dir, steps, [np.zeros_like(v) for v in val], [np.zeros_like(t) for t in test])


common.write_predictions = fake_write_predictions

import torch  # noqa: E402
from torch import nn  # noqa: E402


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
        return self.linear(h.flatten(1))
