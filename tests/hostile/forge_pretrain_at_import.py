# expect: OK trains its model for 800 extra steps at import time (reading the training data
# from /data), then lets the harness run its small step budget on the pre-trained weights.
# twin: honest_twin
# weakness: score max_steps bounds only the harness's loop: import-time code can train as long as the wall-clock limit allows, so the step budget (and the comparison between candidates) is not enforced
import json

import numpy as np

import torch  # noqa: E402
from torch import nn  # noqa: E402


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


_PRETRAINED = None


def _pretrain():
    global _PRETRAINED
    torch.manual_seed(1)
    with np.load("/data/" + json.load(open("/job/input/spec.json"))["data"]) as data:
        x = torch.as_tensor(data["x_train"], dtype=torch.float32)
        y = torch.as_tensor(data["y_train"], dtype=torch.long)
    model = Model()
    opt = torch.optim.AdamW(model.parameters(), lr=0.01, weight_decay=0.01)
    for step in range(800):
        idx = torch.randint(0, len(x), (128,))
        loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    _PRETRAINED = model.state_dict()


_real_init = Model.__init__


def _init_pretrained(self):
    _real_init(self)
    if _PRETRAINED is not None:
        self.load_state_dict(_PRETRAINED)


_pretrain()
Model.__init__ = _init_pretrained
