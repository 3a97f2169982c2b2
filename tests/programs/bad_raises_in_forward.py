# expect: RUNTIME_ERROR ZeroDivisionError
from torch import nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(40, 10)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        if self.calls > 3:
            return self.linear(x) * (1 / (self.calls - self.calls))  # Python ints: ZeroDivisionError
        return self.linear(x)
