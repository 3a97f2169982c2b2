# expect: OK fills /tmp (a size-capped tmpfs) with 32 MiB files until ENOSPC (the per-file
# fsize limit alone stops one file at 256 MiB) and keeps them. The tmpfs cap (256 MiB) must stop it
# (raises if more than 300 MiB fit, which would be a COMPILE_ERROR). Training then works: the
# harness set its framework up (which wants a temporary directory) before the job arrived, so the
# full scratch space harms nobody (before the warm pool it was a RUNTIME_ERROR, "No usable
# temporary directory found").
import errno
import os

folder = "/tmp"
written = 0
block = b"\xee" * (1 << 20)
full = False
for i in range(64):  # at most 2 GiB
    try:
        with open(os.path.join(folder, f"fill{i:02d}.bin"), "wb") as f:
            for _ in range(32):
                f.write(block)
                f.flush()
                written += len(block)
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        full = True
        break
if not full or written > 300 << 20:
    raise RuntimeError(f"{folder} took {written >> 20} MiB without running out of space")

import torch  # noqa: E402
from torch import nn  # noqa: E402


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(40, 32), nn.ReLU(), nn.Linear(32, 10))

    def forward(self, x):
        return self.net(x)
