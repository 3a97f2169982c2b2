# expect: OK forks 100 children that exit at once and are never reaped (zombies), then trains
# Zombies hold pids (limit 256) until the container ends; the model must still train.
import os

for _ in range(100):
    if os.fork() == 0:
        os._exit(0)

import torch  # noqa: E402
from torch import nn  # noqa: E402


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(40, 32), nn.ReLU(), nn.Linear(32, 10))

    def forward(self, x):
        return self.net(x)
