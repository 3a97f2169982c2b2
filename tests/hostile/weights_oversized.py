# expect: OUTPUT_LIMIT writes a weights.npz that is small on disk but inflates past the output cap
# (a compressed 320 MiB array of zeros: a zip bomb); the server must check sizes before inflating.
import numpy as np

import evoprompt_harness.common as common


def bomb_weights(output_dir, params, state):
    arrays = {f"params/{k}": np.asarray(v) for k, v in params.items()}
    arrays["params/bomb"] = np.zeros(80 * 1024 * 1024, dtype=np.float32)  # 320 MiB inflated
    np.savez_compressed(output_dir / "weights.npz", **arrays)


common.write_weights = bomb_weights

import torch  # noqa: E402
from torch import nn  # noqa: E402


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(40, 32), nn.ReLU(), nn.Linear(32, 10))

    def forward(self, x):
        return self.net(x)
