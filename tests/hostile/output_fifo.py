# expect: INVALID_OUTPUT makes weights.npz and result.json named pipes (FIFOs) instead of files
# A server that opened them would block forever; it must refuse special files without opening them.
import os

import evoprompt_harness.common as common
import evoprompt_harness.job as job


def fifo_weights(output_dir, params, state):
    os.mkfifo(os.path.join(output_dir, "weights.npz"))


def fifo_json(path, record):
    os.mkfifo(path)


common.write_weights = fifo_weights
job._write_json = fifo_json

import torch  # noqa: E402
from torch import nn  # noqa: E402


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(40, 32), nn.ReLU(), nn.Linear(32, 10))

    def forward(self, x):
        return self.net(x)
