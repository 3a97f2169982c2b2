# expect: OK the flax image gets the same attacks as the torch one, at import time:
# framework: flax
# no canary in any environment, no Docker socket, read-only image and inputs, only the loopback
# interface. Raises on any finding; then defines a small flax MLP.
import os
import socket

NAME = b"EVOPROMPT_TEST_CANARY"
found = []
if any(NAME.decode() in k or NAME.decode() in v for k, v in os.environ.items()):
    found.append("os.environ")
for pid in (p for p in os.listdir("/proc") if p.isdigit()):
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            if NAME in f.read():
                found.append(f"/proc/{pid}/environ")
    except OSError:
        pass
if os.path.lexists("/var/run/docker.sock") or os.path.lexists("/run/docker.sock"):
    found.append("docker.sock")
for path in ("/evil", "/opt/venv/evil", "/opt/harness/evil", "/job/input/evil", "/job/input/candidate.py"):
    try:
        with open(path, "ab"):
            pass
        found.append(f"wrote {path}")
    except OSError:
        pass
if {name for _, name in socket.if_nameindex()} - {"lo"}:
    found.append("network interfaces besides lo")
if found:
    raise RuntimeError(f"the flax sandbox leaks: {found}")

import flax.linen as nn  # noqa: E402


class Model(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = nn.relu(nn.Dense(32)(x))
        return nn.Dense(10)(x)
