# expect: OK looks for a way out: the only network interface must be the loopback (lo)
# Checks socket.if_nameindex(), /proc/net/dev and /sys/class/net; raises if anything else exists.
# It sends nothing anywhere.
import os
import socket

names = {name for _, name in socket.if_nameindex()}
with open("/proc/net/dev") as f:
    dev = {line.split(":", 1)[0].strip() for line in f.read().splitlines()[2:] if ":" in line}
sysfs = set(os.listdir("/sys/class/net")) if os.path.isdir("/sys/class/net") else set()
for source, found in (("if_nameindex", names), ("/proc/net/dev", dev), ("/sys/class/net", sysfs)):
    if found - {"lo"}:
        raise RuntimeError(f"network interfaces besides lo are visible via {source}: {sorted(found)}")
with open("/proc/net/route") as f:
    routes = f.read().splitlines()[1:]
if routes:
    raise RuntimeError(f"the sandbox has IPv4 routes: {routes}")

import torch  # noqa: E402
from torch import nn  # noqa: E402


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(40, 32), nn.ReLU(), nn.Linear(32, 10))

    def forward(self, x):
        return self.net(x)
