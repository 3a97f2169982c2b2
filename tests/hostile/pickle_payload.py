# expect: VERIFICATION_FAILED replaces the exported tensors with a pickle that would run code when
# loaded (it writes a marker file and prints the marker): the verifier reads only plain arrays.
import numpy as np
import torch
from torch import nn

import evoprompt_harness.export_files as export_files


class _Payload:
    def __reduce__(self):
        return (exec, ("open('/tmp/evoprompt-pwned', 'w').write('x'); print('PICKLE-PAYLOAD-RAN')",))


_real_write = export_files.write_export


def _write_with_payload(output_dir, program_name, program, arrays):
    _real_write(output_dir, program_name, program, arrays)
    evil = np.empty(1, dtype=object)
    evil[0] = _Payload()
    with open(output_dir / "tensors.npz", "wb") as f:
        np.savez(f, **{name: evil for name in arrays})


export_files.write_export = _write_with_payload
import evoprompt_harness.export_torch as export_torch  # noqa: E402

export_torch.write_export = _write_with_payload


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv1d(1, 25, kernel_size=5, stride=2, padding=1)
        self.conv2 = nn.Conv1d(25, 25, kernel_size=3, stride=2, padding=1)
        self.conv3 = nn.Conv1d(25, 25, kernel_size=3, stride=2, padding=1)
        self.linear = nn.Linear(125, 10)

    def forward(self, x):
        h = x.view(-1, 1, x.shape[-1])
        h = torch.relu(self.conv1(h))
        h = torch.relu(self.conv2(h))
        h = torch.relu(self.conv3(h))
        return self.linear(h.flatten(1))
