# expect: VERIFICATION_FAILED patches torch.export.export to hand in a one-layer model (41 parameters)
# instead of the one it trained: the exported program's predictions disagree with the training run's.
import torch
from torch import nn

_real_export = torch.export.export


def _small_export(model, args, *rest, **kwargs):
    return _real_export(nn.Sequential(nn.Linear(40, 1), nn.Linear(1, 10)), args, *rest, **kwargs)


torch.export.export = _small_export


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv1d(1, 25, kernel_size=5, stride=2, padding=1)
        self.conv2 = nn.Conv1d(25, 25, kernel_size=3, stride=2, padding=1)
        self.conv3 = nn.Conv1d(25, 25, kernel_size=3, stride=2, padding=1)
        self.linear = nn.Linear(125, 10)

    def forward(self, x):
        h = x.view(-1, 1, x.shape[-1])
        h = torch.relu(self.conv1(h))
        h = torch.relu(self.conv2(h))
        h = torch.relu(self.conv3(h))
        return self.linear(h.flatten(1))
