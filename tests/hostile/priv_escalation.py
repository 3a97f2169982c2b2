# expect: OK tries to gain privileges: setuid(0), setgid(0), chroot, new user and mount namespaces
# (unshare), mount, ptrace of PID 1 (the container's init, tini, which runs as root: another uid);
# reads its own capability sets, no_new_privs and seccomp state. Raises if anything succeeds.
import ctypes
import os

libc = ctypes.CDLL(None, use_errno=True)
gained = []
CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWNET = 0x00020000, 0x10000000, 0x40000000
for label, fn in (("setuid(0)", lambda: os.setuid(0)), ("setgid(0)", lambda: os.setgid(0)),
                  ("chroot", lambda: os.chroot("/tmp"))):
    try:
        fn()
    except OSError:
        continue
    gained.append(label)
for label, flag in (("unshare(CLONE_NEWUSER)", CLONE_NEWUSER), ("unshare(CLONE_NEWNS)", CLONE_NEWNS),
                    ("unshare(CLONE_NEWNET)", CLONE_NEWNET)):
    if libc.unshare(flag) == 0:
        gained.append(label)
if libc.mount(b"tmpfs", b"/tmp", b"tmpfs", 0, None) == 0:
    gained.append("mount")
PTRACE_ATTACH, PTRACE_DETACH, WALL = 16, 17, 0x40000000
if libc.ptrace(PTRACE_ATTACH, 1, None, None) == 0:
    gained.append("ptrace(PTRACE_ATTACH, PID 1)")
    os.waitpid(1, WALL)  # the attach stop
    libc.ptrace(PTRACE_DETACH, 1, None, None)  # resume it, so the container can still end normally
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
