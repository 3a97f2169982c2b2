# expect: OK builds 1,500 nested directories in /job/output at import time, then trains normally
# own-server: it kills the evaluator slot that runs it, so the test gives it a server of its own
# The directories are made with relative paths (chdir), so no path ever gets long.
import os

os.chdir("/job/output")
for _ in range(1500):
    os.mkdir("d")
    os.chdir("d")
os.chdir("/tmp")

import torch  # noqa: E402
from torch import nn  # noqa: E402


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(40, 32), nn.ReLU(), nn.Linear(32, 10))

    def forward(self, x):
        return self.net(x)
