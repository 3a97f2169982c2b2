# expect: INVALID_OUTPUT hard-links the outputs: predictions.npz gets a second name, and weights.npz
# is a hard link to a file elsewhere in the output folder. The server must refuse files with more
# than one link (a hard link could otherwise expose a file the server reads or deletes).
import os
from pathlib import Path

import evoprompt_harness.common as common

_real_p, _real_w = common.write_predictions, common.write_weights


def linked_predictions(output_dir, steps, val, test):
    _real_p(output_dir, steps, val, test)
    os.link(os.path.join(output_dir, "predictions.npz"), os.path.join(output_dir, "copy.npz"))


def linked_weights(output_dir, params, state):
    os.makedirs("/job/output/elsewhere", exist_ok=True)
    _real_w(Path("/job/output/elsewhere"), params, state)
    os.link("/job/output/elsewhere/weights.npz", os.path.join(output_dir, "weights.npz"))


common.write_predictions, common.write_weights = linked_predictions, linked_weights
# a hard link to the read-only input must fail (another mount): if it works, say so
try:
    os.link("/job/input/data.npz", "/job/output/data_link.npz")
except OSError:
    pass
else:
    raise RuntimeError("could hard-link /job/input/data.npz into /job/output")

import torch  # noqa: E402
from torch import nn  # noqa: E402


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(40, 32), nn.ReLU(), nn.Linear(32, 10))

    def forward(self, x):
        return self.net(x)
