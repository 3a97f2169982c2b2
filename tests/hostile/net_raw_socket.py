# expect: OK asks for raw and packet sockets (no CAP_NET_RAW, so they must be refused); creates
# nothing it could send with and sends nothing. Raises if any such socket can be created.
import socket

attempts = [
    ("AF_INET SOCK_RAW ICMP", socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP),
    ("AF_INET SOCK_RAW RAW", socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW),
    ("AF_INET6 SOCK_RAW ICMPV6", socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6),
    ("AF_PACKET SOCK_RAW", socket.AF_PACKET, socket.SOCK_RAW, 0x0003),
]
opened = []
for label, family, kind, proto in attempts:
    try:
        s = socket.socket(family, kind, proto)
    except OSError:
        continue
    s.close()
    opened.append(label)
if opened:
    raise RuntimeError(f"privileged sockets could be created: {opened}")

import torch  # noqa: E402
from torch import nn  # noqa: E402


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(40, 32), nn.ReLU(), nn.Linear(32, 10))

    def forward(self, x):
        return self.net(x)
