"""bench/ray_overhead.py at a short budget: it runs both executors, prints its table and writes sound JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.docker_util import require_sandbox_images
from tests.support.ray_cluster import require_loopback_only_namespace

pytestmark = [pytest.mark.integration, pytest.mark.docker, pytest.mark.fleet]
BENCH = Path(__file__).resolve().parents[2] / "bench"


def test_ray_overhead_short_budget(tmp_path):
    require_loopback_only_namespace()
    require_sandbox_images(["torch-cpu"])
    out = tmp_path / "ray_overhead.json"
    proc = subprocess.run([sys.executable, str(BENCH / "ray_overhead.py"), "--steps", "20", "--repeats", "1",
                           "--settle", "1", "--json", str(out)], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ratio" in proc.stdout
    summary = json.loads(out.read_text())["summary"]["20"]
    assert summary["local"]["ratio_to_local"] == 1.0 and summary["ray"]["median_seconds"] > 0
