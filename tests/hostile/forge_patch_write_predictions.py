# expect: VERIFICATION_FAILED monkeypatches the harness's prediction writers at import time so that
# every checkpoint's validation predictions are all class 0 (any predictions could be written the same way).
# twin: honest_twin
# The candidate runs inside the harness process, so the forged predictions reach the server; but the
# verifier rebuilds the exported model, whose predictions are not the forged ones.
import numpy as np

import evoprompt_harness.common as common

_real_val, _real_test = common.write_validation, common.write_test_predictions


def fake_validation(output_dir, steps, val):
    _real_val(output_dir, steps, {k: [np.zeros_like(v) for v in vs] for k, vs in val.items()})


def fake_test(output_dir, step, arrays):
    _real_test(output_dir, step, {k: np.zeros_like(v) for k, v in arrays.items()})


common.write_validation, common.write_test_predictions = fake_validation, fake_test

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
