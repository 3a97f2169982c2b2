# expect: OK thread bomb at import time: start sleeping threads until the pids limit refuses more
# The limit (256 tasks per container) must stop it well before 10,000 threads; if it does not, raise.
# Then the model is defined and trained normally with the threads still alive.
import threading
import time

threads = 0
while threads < 10_000:
    try:
        threading.Thread(target=time.sleep, args=(10**6,), daemon=True).start()
        threads += 1
    except RuntimeError:  # "can't start new thread"
        break
if threads >= 1000:
    raise RuntimeError(f"the pids limit did not stop a thread bomb: {threads} threads started")

import torch  # noqa: E402
from torch import nn  # noqa: E402


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(40, 32), nn.ReLU(), nn.Linear(32, 10))

    def forward(self, x):
        return self.net(x)
