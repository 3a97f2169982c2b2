# expect: OK reads every environment it can (os.environ, /proc/1/environ, /proc/*/environ and
# cmdline) looking for the server's EVOPROMPT_TEST_CANARY variable; raises if it finds the name.
# It also prints the whole environment to stderr, so a leaked value would reach stderr_tail, which
# the test searches for the canary's value.
import os
import sys

NAME = "EVOPROMPT_TEST_CANARY"
found = []
if any(NAME in k or NAME in v for k, v in os.environ.items()):
    found.append("os.environ")
for pid in os.listdir("/proc"):
    if not pid.isdigit():
        continue
    for name in ("environ", "cmdline"):
        try:
            with open(f"/proc/{pid}/{name}", "rb") as f:
                data = f.read()
        except OSError:
            continue
        if NAME.encode() in data:
            found.append(f"/proc/{pid}/{name}")
print("environment:", dict(os.environ), file=sys.stderr)
if found:
    raise RuntimeError(f"the host's canary variable is visible in {found}")

import torch  # noqa: E402
from torch import nn  # noqa: E402


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(40, 32), nn.ReLU(), nn.Linear(32, 10))

    def forward(self, x):
        return self.net(x)
