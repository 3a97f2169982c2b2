# expect: INVALID_OUTPUT hard-links the outputs: predictions.npz gets a second name, and weights.npz
# is a hard link to a file elsewhere in the output folder. The server must refuse files with more
# than one link (a hard link could otherwise expose a file the server reads or deletes).
import json
import os
from pathlib import Path

import evoprompt_harness.common as common

_real_p, _real_w = common.write_validation, common.write_weights


def linked_predictions(output_dir, steps, val):
    _real_p(output_dir, steps, val)
    os.link(os.path.join(output_dir, "predictions.npz"), os.path.join(output_dir, "copy.npz"))


def linked_weights(output_dir, params, state):
    os.makedirs("/job/output/elsewhere", exist_ok=True)
    _real_w(Path("/job/output/elsewhere"), params, state)
    os.link("/job/output/elsewhere/weights.npz", os.path.join(output_dir, "weights.npz"))


common.write_validation, common.write_weights = linked_predictions, linked_weights
# a hard link to the read-only inputs must fail (another mount): if it works, say so; the data is there
# once the model is built, so this runs in the first forward call
DATA = "/job/input/" + json.load(open("/job/input/spec.json"))["data"]
_tried = False


def link_data() -> None:
    try:
        os.link(DATA, "/job/output/data_link.npz")
    except OSError:
        pass
    else:
        raise RuntimeError(f"could hard-link {DATA} into /job/output")


import torch  # noqa: E402
from torch import nn  # noqa: E402


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(40, 32), nn.ReLU(), nn.Linear(32, 10))

    def forward(self, x):
        global _tried
        if not _tried:
            _tried = True
            link_data()
        return self.net(x)
