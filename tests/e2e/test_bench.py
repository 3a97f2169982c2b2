"""The benchmarks' short-budget variants: they run, print their table and write sound JSON.

The full runs (minutes) are `make bench`; their figures are in the README."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
BENCH = Path(__file__).resolve().parents[2] / "bench"


def run_bench(script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(BENCH / script), *args], capture_output=True, text=True, timeout=900)


SHORT_STEPS = 20  # the script's run, table and JSON, not the models' accuracy (make bench trains 8000 steps)


def test_mnist1d_baselines_short_budget(tmp_path):
    out = tmp_path / "baselines.json"
    proc = run_bench("mnist1d_baselines.py", "--max-steps", str(SHORT_STEPS), "--seeds", "1", "--json", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "published" in proc.stdout and "cnn" in proc.stdout
    data = json.loads(out.read_text())
    assert data["max_steps"] == SHORT_STEPS and len(data["results"]) == 9 and len(data["summary"]) == 9
    assert all(r["status"] == "OK" and r["steps"] == SHORT_STEPS for r in data["results"])
    torch_cnn = next(r for r in data["results"] if r["framework"] == "torch" and r["seed"] == "cnn")
    assert torch_cnn["num_params"] == 5210 and torch_cnn["published_test_accuracy"] == 0.94


def test_overhead_short_budget(tmp_path):
    out = tmp_path / "overhead.json"
    proc = run_bench("overhead.py", "--steps", "50", "--repeats", "1", "--settle", "1", "--json", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads(out.read_text())
    ratios = data["median_ratio"]["50"]
    assert ratios["bare"] == 1.0 and {"process pool on", "process pool off"} <= set(ratios)
    assert "ratio" in proc.stdout
