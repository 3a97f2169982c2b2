# expect: OK looks for the training data at import time, to train on it before the harness's step
# budget starts (as an earlier version of this program did, for 800 extra steps).
# twin: honest_twin
# The data reaches the sandbox only after Model() is built, so at import there is nothing to read:
# the program raises if it finds any, and otherwise is its honest twin.
import glob
import json
import os

import torch
from torch import nn

_spec = json.load(open("/job/input/spec.json"))
_found = [p for p in glob.glob("/job/input/*.npz") + glob.glob("/data/*") if os.path.exists(p)]
if _found:
    raise RuntimeError(f"training data visible at import time: {_found} (spec names {_spec['data']})")


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
