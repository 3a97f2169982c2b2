# evoprompt: expect=INVALID_OUTPUT task=mnist1d framework=torch max-steps=30
from torch import nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(40, 5)

    def forward(self, x):
        return self.linear(x)
