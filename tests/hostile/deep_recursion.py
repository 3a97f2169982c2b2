# expect: RUNTIME_ERROR raises the recursion limit to 10**6 and recurses through C code (sorted with
# a key) in forward(): the C stack overflows (SIGSEGV) or a RecursionError is raised; either way
# the harness reports a runtime error, not a hang or an internal error.
import sys

from torch import nn

sys.setrecursionlimit(10**6)


def dive(n):
    return sorted([n], key=lambda v: dive(v + 1))[0]


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(40, 32), nn.ReLU(), nn.Linear(32, 10))

    def forward(self, x):
        dive(0)
        return self.net(x)
