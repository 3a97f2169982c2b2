# expect: OK looks for host secrets: the Docker and containerd sockets must be absent, and no file
# the sandbox can read under /job, /tmp, /run, /var, /home, /root, /mnt, /srv, /media or /etc may
# mention the server's EVOPROMPT_TEST_CANARY variable (/etc/shadow must not hold a password hash).
# Raises on any finding.
import os

NAME = b"EVOPROMPT_TEST_CANARY"
found = []
for sock in ("/var/run/docker.sock", "/run/docker.sock", "/run/containerd/containerd.sock",
             "/var/run/containerd/containerd.sock", "/run/podman/podman.sock"):
    if os.path.lexists(sock):
        found.append(sock)
for top in ("/job", "/tmp", "/run", "/var", "/home", "/root", "/mnt", "/srv", "/media", "/etc"):
    for root, dirs, files in os.walk(top, onerror=lambda e: None):
        for name in files:
            path = os.path.join(root, name)
            if path == "/job/input/candidate.py":  # this program's own text names the variable
                continue
            try:
                if os.path.getsize(path) > 64 << 20:
                    continue
                with open(path, "rb") as f:
                    if NAME in f.read():
                        found.append(path)
            except OSError:
                continue
try:
    with open("/etc/shadow", "rb") as f:
        shadow = f.read()
    # readable would be a mistake in the image, but it must at least not be the host's file
    if b"root:" in shadow and b"$" in shadow.split(b"\n", 1)[0]:
        found.append("/etc/shadow (holds a password hash)")
except OSError:
    pass
if found:
    raise RuntimeError(f"host secrets are reachable: {found}")

import torch  # noqa: E402
from torch import nn  # noqa: E402


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(40, 32), nn.ReLU(), nn.Linear(32, 10))

    def forward(self, x):
        return self.net(x)
