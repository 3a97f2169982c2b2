# expect: OK writes a fake predictions.npz (class 0 at steps 1..8999), a one-parameter weights.npz
# and a result.json claiming accuracy 1.0 into /job/output at import time, then trains honestly.
# twin: honest_twin
# The harness overwrites them and the server scores only the files; the reported accuracy must not
# beat the honest twin's, and the claimed val_accuracy 1.0 must not appear.
import json

import numpy as np

steps = np.arange(1, 9000, dtype=np.int64)
np.savez("/job/output/predictions.npz", steps=steps, val=np.zeros((len(steps), 500), np.int64),
         test=np.zeros((len(steps), 1000), np.int64))
np.savez("/job/output/weights.npz", **{"params/w": np.zeros(1, np.float32)})
with open("/job/output/result.json", "w") as f:
    json.dump({"ok": True, "val_accuracy": 1.0, "test_accuracy": 1.0, "num_params": 1,
               "train_seconds": 0.001}, f)

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
