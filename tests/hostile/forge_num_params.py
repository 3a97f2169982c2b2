# expect: OK monkeypatches the harness's write_weights so weights.npz would hold one parameter
# twin: honest_twin
# Before the verifier, num_params was counted from weights.npz, which the candidate's own process
# writes (fitness -num_params*val_error near 0, the best possible). Now the size is counted by the
# verifier from the exported program, so the true count is reported.
import numpy as np

import evoprompt_harness.common as common

_real = common.write_weights


def fake_write_weights(output_dir, params, state):
    _real(output_dir, {"w": np.zeros(1, np.float32)}, {})


common.write_weights = fake_write_weights

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
