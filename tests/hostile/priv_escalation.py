# expect: OK tries to gain privileges: setuid(0), chroot, a new user namespace (unshare), mount,
# ptrace of PID 1; reads its own capability sets, no_new_privs and seccomp state.
# Raises if any attempt succeeds or the process holds any capability.
import ctypes
import os

gained = []
for label, fn in (("setuid(0)", lambda: os.setuid(0)), ("setgid(0)", lambda: os.setgid(0)),
                  ("chroot", lambda: os.chroot("/tmp")),
                  ("unshare(CLONE_NEWUSER)", lambda: os.unshare(os.CLONE_NEWUSER)),
                  ("unshare(CLONE_NEWNS)", lambda: os.unshare(os.CLONE_NEWNS))):
    try:
        fn()
    except (OSError, AttributeError):
        continue
    gained.append(label)
libc = ctypes.CDLL(None, use_errno=True)
if libc.mount(b"tmpfs", b"/tmp", b"tmpfs", 0, None) == 0:
    gained.append("mount")
PTRACE_ATTACH = 16
if libc.ptrace(PTRACE_ATTACH, 1, None, None) == 0:
    gained.append("ptrace(PID 1)")
with open("/proc/self/status") as f:
    status = dict(line.split(":", 1) for line in f.read().splitlines() if ":" in line)
for cap in ("CapEff", "CapPrm", "CapBnd", "CapAmb"):
    if int(status[cap].strip(), 16) != 0:
        gained.append(f"{cap}={status[cap].strip()}")
if status.get("NoNewPrivs", "").strip() != "1":
    gained.append("no_new_privs is off")
if status.get("Seccomp", "").strip() == "0":
    gained.append("no seccomp filter")
if os.getuid() == 0 or os.geteuid() == 0:
    gained.append("runs as root")
if gained:
    raise RuntimeError(f"privileges were available: {gained}")

import torch  # noqa: E402
from torch import nn  # noqa: E402


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(40, 32), nn.ReLU(), nn.Linear(32, 10))

    def forward(self, x):
        return self.net(x)
