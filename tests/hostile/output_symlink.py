# expect: INVALID_OUTPUT replaces the outputs by symbolic links: predictions.npz points to a real
# file next to it, weights.npz to a path that, read on the host, would be the host's /etc/passwd.
# The server must refuse links rather than follow them.
import os
from pathlib import Path

import evoprompt_harness.common as common

_real_p, _real_w = common.write_validation, common.write_weights


def linked_predictions(output_dir, steps, val):
    os.makedirs("/job/output/real", exist_ok=True)
    _real_p(Path("/job/output/real"), steps, val)
    os.symlink("real/predictions.npz", os.path.join(output_dir, "predictions.npz"))


def linked_weights(output_dir, params, state):
    os.symlink("/etc/passwd", os.path.join(output_dir, "weights.npz"))


common.write_validation, common.write_weights = linked_predictions, linked_weights

import torch  # noqa: E402
from torch import nn  # noqa: E402


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(40, 32), nn.ReLU(), nn.Linear(32, 10))

    def forward(self, x):
        return self.net(x)
