# expect: OK monkeypatches the harness's result writer (job.write_json) and its loss check so the
# result record claims accuracy 1.0, one parameter and an absurd train time.
# twin: honest_twin
# result.json is advisory: the server must ignore its claims (train_seconds is bounded by the wall
# time); the reported accuracy must not beat the twin's.
import evoprompt_harness.common as common
import evoprompt_harness.job as job

_real = job.write_json


def fake_write_json(path, record):
    record = dict(record, ok=True, val_accuracy=1.0, test_accuracy=1.0, num_params=1, best_step=1,
                  train_seconds=1e9, status="OK")
    _real(path, record)


job.write_json = fake_write_json
common.check_loss = lambda loss, step: None

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
