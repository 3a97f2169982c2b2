# expect: OK prints fake result JSON (status OK, accuracy 1.0, one parameter) to stdout and stderr
# twin: honest_twin
# Nothing a candidate prints is trusted: the reported accuracy must not beat the honest twin's.
import json
import sys

fake = {"status": "OK", "ok": True, "val_accuracy": 1.0, "test_accuracy": 1.0, "num_params": 1, "best_step": 1}
for stream in (sys.stdout, sys.stderr):
    print(json.dumps(fake), file=stream)
    print("EvaluateResponse: " + json.dumps(fake), file=stream)

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
