# expect: OOM|RUNTIME_ERROR a layer with an absurd shape: nn.Linear(40, 10**9) needs 160 GB
# Either the allocator refuses (RuntimeError: can't allocate memory -> RUNTIME_ERROR, or a
# MemoryError -> OOM) or the pages are touched and the kernel's OOM killer ends it (OOM). Observed:
# RUNTIME_ERROR (the kernel's overcommit heuristic refuses a 160 GB mapping outright), which depends on
# the host's vm.overcommit_memory, hence either status.
import torch
from torch import nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.big = nn.Linear(40, 10**9)
        self.out = nn.Linear(10**9, 10)

    def forward(self, x):
        return self.out(self.big(x))
