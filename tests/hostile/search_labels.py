# expect: OK searches the whole readable filesystem for the held-out labels: any .npz/.npy/.pkl/
# .sqlite3 besides the inputs, any array named y_val/y_test (or *label*), the server's result store.
# Raises if it finds any. The data arrives once the model is built, so the search runs in the first
# forward call; the data must hold x_train, y_train, x_val and nothing else (no test inputs).
import json
import os
import zipfile

import numpy as np

DATA = "/job/input/" + json.load(open("/job/input/spec.json"))["data"]  # linked in once Model() is built
_searched = False


def search() -> None:
    with np.load(DATA) as data:
        names = set(data.files)
    if names != {"x_train", "y_train", "x_val"}:
        raise RuntimeError(f"the inputs hold more than they should: {sorted(names)}")

    SUFFIXES = (".npz", ".npy", ".pkl", ".pickle", ".sqlite3", ".db", ".pt", ".safetensors", ".h5")
    found = []
    for root, dirs, files in os.walk("/", onerror=lambda e: None):
        if root == "/" :
            dirs[:] = [d for d in dirs if d not in ("proc", "sys", "dev")]
        for name in files:
            path = os.path.join(root, name)
            lower = name.lower()
            if ("mnist1d" in lower and path != DATA) or "results.sqlite" in lower:
                found.append(path)
            if not lower.endswith(SUFFIXES) or path == DATA:
                continue
            try:
                if lower.endswith(".npz"):
                    with zipfile.ZipFile(path) as zf:
                        members = [m.filename.removesuffix(".npy") for m in zf.infolist()]
                    if any(m in ("y_val", "y_test", "y", "labels") or "label" in m for m in members):
                        found.append(f"{path}: {members[:10]}")
                elif path.startswith(("/job", "/tmp", "/run", "/var", "/home", "/root", "/mnt", "/srv")):
                    found.append(path)
            except (OSError, zipfile.BadZipFile):
                continue
    if found:
        raise RuntimeError(f"held-out labels may be reachable: {found[:20]}")


from torch import nn  # noqa: E402


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(40, 32), nn.ReLU(), nn.Linear(32, 10))

    def forward(self, x):
        global _searched
        if not _searched:
            _searched = True
            search()
        return self.net(x)
