"""`evoprompt evaluate PATH...` without a server: finding files, reading headers, the JUnit report,
and the command assembled from entry points."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from evoprompt.sdk.cli import main as cli
from evoprompt.sdk.cli.expectations import SampleError, find_files, load_sample
from evoprompt.sdk.cli.junit import write_junit
from evoprompt.sdk.types import EvaluationResult, Status
from tests.support.servers import SAMPLES


def load(path, **kw):
    args = {"task": None, "framework": None, "max_steps": 0, "seed": 0, "timeout_seconds": 0.0, **kw}
    return load_sample(path, str(path), **args)


def test_folders_recurse_into_python_files_in_order():
    files = [p.name for p, _ in find_files([SAMPLES])]
    assert files == sorted(files, key=lambda n: n) or len(files) == 6
    assert "no_model_expects_ok.py" in files and all(n.endswith(".py") for n in files)


def test_headers_set_expectation_task_framework_and_steps():
    sample = load(SAMPLES / "mnist1d" / "wrong_shape.py")
    assert sample.expect is Status.INVALID_OUTPUT
    assert (sample.request.task, sample.request.framework, sample.request.max_steps) == ("mnist1d", "torch", 30)


def test_no_header_expects_ok_with_the_command_line_task(tmp_path):
    path = tmp_path / "plain.py"
    path.write_text("class Model: pass\n")
    sample = load(path, task="mnist1d", framework="flax", max_steps=7)
    assert sample.expect is Status.OK and sample.request.framework == "flax" and sample.request.max_steps == 7


@pytest.mark.parametrize("header, fragment", [
    ("# evoprompt: expect=GREAT", "is not a status"),
    ("# evoprompt: expect=OK colour=blue", "is not one of"),
    ("# evoprompt: max-steps=many task=mnist1d framework=torch", "not a whole number"),
    ("# evoprompt: expect=OK", "no task and framework"),
])
def test_bad_headers_say_what_is_wrong(tmp_path, header, fragment):
    path = tmp_path / "x.py"
    path.write_text(header + "\nclass Model: pass\n")
    with pytest.raises(SampleError, match=fragment):
        load(path)


def test_missing_paths_and_empty_folders_are_refused(tmp_path):
    with pytest.raises(SampleError, match="no such file or folder"):
        find_files([tmp_path / "nope.py"])
    with pytest.raises(SampleError, match="holds no"):
        find_files([tmp_path])


def test_junit_names_the_mismatch(tmp_path):
    good = load(SAMPLES / "mnist1d" / "syntax_error.py")
    bad = load(SAMPLES / "mismatch" / "no_model_expects_ok.py")
    outcomes = [(good, EvaluationResult("a", Status.COMPILE_ERROR, message="does not compile", wall_seconds=1.5)),
                (bad, EvaluationResult("b", Status.COMPILE_ERROR, message="no top-level class `Model`"))]
    report = tmp_path / "out" / "junit.xml"
    write_junit(report, outcomes)
    root = ET.parse(report).getroot()
    assert root.get("tests") == "2" and root.get("failures") == "1"
    (failure,) = root.iter("failure")
    assert failure.get("type") == "COMPILE_ERROR"
    assert failure.get("message").startswith("expected OK, got COMPILE_ERROR: no top-level class")


def test_a_command_of_a_missing_part_names_its_distribution(monkeypatch, capsys):
    monkeypatch.setattr(cli, "installed_commands", lambda: {})
    assert cli.main(["serve"]) == 2
    assert "pip install evoprompt-evaluator" in capsys.readouterr().err
    assert cli.main(["demo"]) == 2
    assert "pip install evoprompt-search" in capsys.readouterr().err
