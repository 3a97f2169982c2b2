# expect: OK tries to reach the evaluator's own gRPC port on 127.0.0.1 (and a few other loopback
# ports) from inside the sandbox; the sandbox's loopback is its own, so every connect must fail.
# The test replaces the token EVALUATOR_PORT with the server's port. Only 127.0.0.1 is ever contacted.
import socket

port = int("EVALUATOR_PORT")
for target in (port, 2375, 2376, 50051):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(2)
    try:
        s.connect(("127.0.0.1", target))
    except OSError:
        continue
    finally:
        s.close()
    raise RuntimeError(f"connected to 127.0.0.1:{target} from inside the sandbox")
# the host's abstract unix sockets (e.g. a container runtime's) must not be visible either
with open("/proc/net/unix") as f:
    lines = f.read().splitlines()[1:]
visible = [line.split()[-1] for line in lines if len(line.split()) >= 8]
if visible:
    raise RuntimeError(f"unix sockets of other network namespaces are visible: {visible[:5]}")

import torch  # noqa: E402
from torch import nn  # noqa: E402


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(40, 32), nn.ReLU(), nn.Linear(32, 10))

    def forward(self, x):
        return self.net(x)
