# expect: OUTPUT_LIMIT writes a tensors.npz (the exported model's) that is small on disk but inflates past the output cap
# (a compressed 320 MiB array of zeros: a zip bomb); the server must check sizes before inflating.
import numpy as np

import evoprompt_harness.export_torch as export_torch


def bomb_export(output_dir, program_name, program, arrays):
    (output_dir / program_name).write_bytes(program)
    arrays = dict(arrays)
    arrays["params/bomb"] = np.zeros(80 * 1024 * 1024, dtype=np.float32)  # 320 MiB inflated
    np.savez_compressed(output_dir / "tensors.npz", **arrays)


export_torch.write_export = bomb_export

import torch  # noqa: E402
from torch import nn  # noqa: E402


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(40, 32), nn.ReLU(), nn.Linear(32, 10))

    def forward(self, x):
        return self.net(x)
