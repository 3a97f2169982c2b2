# expect: OK tries to write where the sandbox must not: /, /etc, /usr, /opt/venv, /opt/harness and
# the harness package, /job, /job/input (including replacing candidate.py and, once it is linked in,
# the data), /sys, /proc/sys. Every attempt must fail; raises if any succeeds (at import, and again
# in the first forward call, when the data is there).
import json
import os

DATA = "/job/input/" + json.load(open("/job/input/spec.json"))["data"]  # linked in once Model() is built
_attacked_with_data = False


def attack() -> None:
    targets = ["/evil", "/etc/evil", "/usr/evil", "/opt/venv/evil", "/opt/venv/bin/python",
               "/opt/harness/evil", "/opt/harness/evoprompt_harness/common.py", "/job/evil",
               "/job/input/evil", "/job/input/candidate.py", DATA, "/job/input/spec.json",
               "/sys/evil", "/proc/sys/kernel/hostname"]
    written = []
    for path in targets:
        try:
            with open(path, "ab") as f:
                f.write(b"")
        except OSError:
            continue
        written.append(path)
    for path, fn in ((DATA, os.unlink), ("/opt/harness", lambda p: os.rename(p, p + ".x")),
                     ("/job/input", lambda p: os.chmod(p, 0o777))):
        try:
            fn(path)
        except OSError:
            continue
        written.append(f"{fn.__name__ if hasattr(fn, '__name__') else 'changed'} {path}")
    if written:
        raise RuntimeError(f"wrote to places that must be read-only: {written}")


attack()

import torch  # noqa: E402
from torch import nn  # noqa: E402


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(40, 32), nn.ReLU(), nn.Linear(32, 10))

    def forward(self, x):
        global _attacked_with_data
        if not _attacked_with_data:
            _attacked_with_data = True
            attack()
        return self.net(x)
