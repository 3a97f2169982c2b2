# expect: INVALID_OUTPUT writes a malformed tensors.npz (the exported model's tensors): a truncated zip
# whose member claims to be an array, plus an object-dtype (pickle) array, so neither zip nor numpy can
# load it safely.
import io
import zipfile

import numpy as np

import evoprompt_harness.export_torch as export_torch


def bad_export(output_dir, program_name, program, arrays):
    (output_dir / program_name).write_bytes(program)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        obj = io.BytesIO()
        np.save(obj, np.array([{"evil": 1}], dtype=object), allow_pickle=True)
        zf.writestr("params/evil.npy", obj.getvalue())
        zf.writestr("params/w.npy", b"\x93NUMPY garbage that is not an array header")
    data = buf.getvalue()
    (output_dir / "tensors.npz").write_bytes(data[: len(data) - 7])  # truncated central directory


export_torch.write_export = bad_export

import torch  # noqa: E402
from torch import nn  # noqa: E402


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(40, 32), nn.ReLU(), nn.Linear(32, 10))

    def forward(self, x):
        return self.net(x)
