# expect: OK|TIMEOUT floods stdout with up to 4 GiB (1 MiB lines) for at most 12 s, then trains
# OK when the flood ends in time, TIMEOUT when the log pipe is slow enough that writing blocks past
# the wall-clock limit; either way the result must stay small and the server's memory flat.
import os
import time

line = b"A" * ((1 << 20) - 1) + b"\n"
fd = 1
written = 0
started = time.monotonic()
while written < (4 << 30) and time.monotonic() - started < 12:
    written += os.write(fd, line)
os.write(fd, f"flooded {written >> 20} MiB in {time.monotonic() - started:.1f} s\n".encode())

import torch  # noqa: E402
from torch import nn  # noqa: E402


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(40, 32), nn.ReLU(), nn.Linear(32, 10))

    def forward(self, x):
        return self.net(x)
