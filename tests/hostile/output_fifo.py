# expect: INVALID_OUTPUT makes the exported model's tensors.npz and result.json named pipes (FIFOs)
# A server that opened them would block forever; it must refuse special files without opening them.
import os

import evoprompt_harness.export_torch as export_torch
import evoprompt_harness.job as job


def fifo_export(output_dir, program_name, program, arrays):
    (output_dir / program_name).write_bytes(program)
    os.mkfifo(os.path.join(output_dir, "tensors.npz"))


def fifo_json(path, record):
    os.mkfifo(path)


export_torch.write_export = fifo_export
job.write_json = fifo_json

import torch  # noqa: E402
from torch import nn  # noqa: E402


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(40, 32), nn.ReLU(), nn.Linear(32, 10))

    def forward(self, x):
        return self.net(x)
