"""Each part installs alone from its folder, as a user installs it: the SDK with grpcio and protobuf
and nothing else (and smoke-tests a folder of samples against a real server with real containers),
the search client without the evaluator (and runs a search against a remote one)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import venv
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.support.servers import REPO, SAMPLES

pytestmark = [pytest.mark.integration, pytest.mark.docker]
PIP_TIMEOUT = 900


def make_venv(path: Path, *packages: str) -> Path:
    """A fresh virtualenv with `packages` installed (pinned by the project's constraints); its bin/."""
    venv.EnvBuilder(with_pip=True, clear=True).create(path)
    bin_dir = path / "bin"
    proc = subprocess.run([str(bin_dir / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                           "-c", str(REPO / "constraints.txt"), *packages],
                          capture_output=True, text=True, timeout=PIP_TIMEOUT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return bin_dir


def installed(bin_dir: Path) -> set[str]:
    out = subprocess.run([str(bin_dir / "python"), "-m", "pip", "list", "--format=json"],
                         capture_output=True, text=True, check=True).stdout
    return {p["name"].lower().replace("_", "-") for p in json.loads(out)}


def requirements_of(bin_dir: Path, *dists: str) -> set[str]:
    """The names `dists` require, transitively (what pip may rightly have pulled in for them)."""
    script = (
        "import importlib.metadata as m, json, re, sys\n"
        "todo, seen = list(sys.argv[1:]), set()\n"
        "while todo:\n"
        "    name = todo.pop()\n"
        "    if name in seen: continue\n"
        "    seen.add(name)\n"
        "    try: reqs = m.requires(name) or []\n"
        "    except m.PackageNotFoundError: continue\n"
        "    todo += [re.split(r'[ ;<>=!~\\[(]', r, maxsplit=1)[0].lower().replace('_', '-')\n"
        "             for r in reqs if 'extra ==' not in r]\n"
        "print(json.dumps(sorted(seen)))\n"
    )
    out = subprocess.run([str(bin_dir / "python"), "-c", script, *dists], capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout))


def evoprompt(bin_dir: Path, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([str(bin_dir / "evoprompt"), *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def sdk_only(tmp_path_factory) -> Path:
    return make_venv(tmp_path_factory.mktemp("sdk-venv"), str(REPO / "sdk"))


def test_the_sdk_installs_with_grpcio_and_protobuf_only(sdk_only):
    names = installed(sdk_only) - {"pip", "setuptools", "wheel"}
    allowed = requirements_of(sdk_only, "evoprompt-sdk")
    assert {"evoprompt-sdk", "grpcio", "protobuf"} <= names
    assert names <= allowed, f"the SDK pulled in more than grpcio and protobuf: {sorted(names - allowed)}"
    assert allowed - {"evoprompt-sdk", "grpcio", "protobuf"} <= {"typing-extensions"}, sorted(allowed)


def test_an_sdk_only_command_offers_what_works_and_names_what_to_install(sdk_only, tmp_path):
    help_text = evoprompt(sdk_only, "--help").stdout
    assert "evaluate" in help_text and "serve" not in help_text.split("not installed here")[0]
    serve = evoprompt(sdk_only, "serve")
    assert serve.returncode == 2 and "pip install evoprompt-evaluator" in serve.stderr, serve.stderr
    search = evoprompt(sdk_only, "search")
    assert search.returncode == 2 and "pip install evoprompt-search" in search.stderr, search.stderr
    local = evoprompt(sdk_only, "evaluate", str(SAMPLES / "mnist1d" / "logistic_torch.py"))
    assert local.returncode == 2, local.stderr
    assert local.stderr.count("\n") == 1 and "pip install evoprompt-evaluator" in local.stderr, local.stderr


def test_sdk_only_smoke_test_of_a_folder_against_a_real_server(sdk_only, docker_server, tmp_path):
    samples = tmp_path / "samples"
    shutil.copytree(SAMPLES / "mnist1d", samples)
    shutil.copy(SAMPLES / "mismatch" / "no_model_expects_ok.py", samples)
    report = tmp_path / "junit.xml"
    proc = evoprompt(sdk_only, "evaluate", str(samples), "--evaluator", docker_server.endpoint,
                     "--junit-xml", str(report))
    print(proc.stdout, proc.stderr)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stdout.count("\n") == 6 and "FAIL" in proc.stdout  # a row per file, as results arrive
    suite = ET.parse(report).getroot()
    cases = suite.findall(".//testcase")
    assert len(cases) == 6 and suite.get("failures") == "1"
    failed = [c for c in cases if c.find("failure") is not None]
    assert [c.get("name") for c in failed] == [str(samples / "no_model_expects_ok.py")]
    failure = failed[0].find("failure")
    assert failure.get("type") == "COMPILE_ERROR" and "expected OK, got COMPILE_ERROR" in failure.get("message")
    passed = {Path(c.get("name")).name for c in cases if c.find("failure") is None}
    assert passed == {"logistic_torch.py", "cnn_torch.py", "syntax_error.py", "wrong_shape.py", "nan_loss.py"}

    (samples / "no_model_expects_ok.py").unlink()
    again = evoprompt(sdk_only, "evaluate", str(samples), "--evaluator", docker_server.endpoint,
                      "--junit-xml", str(report))
    assert again.returncode == 0, again.stdout + again.stderr
    assert ET.parse(report).getroot().get("failures") == "0"


def test_the_search_client_alone_searches_against_a_remote_evaluator(docker_server, tmp_path):
    bin_dir = make_venv(tmp_path / "search-venv", str(REPO / "sdk"), str(REPO / "search_client"))
    assert "evoprompt-evaluator" not in installed(bin_dir)
    run_dir = tmp_path / "run"
    proc = evoprompt(bin_dir, "search", "--task", "mnist1d", "--framework", "torch", "--lm", "mutation",
                     "--run-dir", str(run_dir), "--rounds", "1", "--prompts", "2", "--samples", "2",
                     "--parents", "2", "--max-steps", "30", "--evaluator", docker_server.endpoint, "--no-progress")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads(evoprompt(bin_dir, "report", str(run_dir), "--json").stdout)
    assert summary["rounds"] == 1 and summary["candidates"] == 4 and summary["evaluated"] >= 1
    no_server = evoprompt(bin_dir, "search", "--task", "mnist1d", "--framework", "torch", "--lm", "mutation",
                          "--run-dir", str(tmp_path / "run2"), "--rounds", "1")
    assert no_server.returncode == 2 and "pip install evoprompt-evaluator" in no_server.stderr, no_server.stderr


def test_the_sdk_runs_without_the_other_parts_importable(sdk_only):
    proc = subprocess.run([str(sdk_only / "python"), "-c", "import evoprompt.sdk, sys; import evoprompt.evaluator"],
                          capture_output=True, text=True)
    assert proc.returncode != 0 and "No module named 'evoprompt.evaluator'" in proc.stderr
    assert sys.executable  # the dev venv is not the one under test
