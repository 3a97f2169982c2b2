"""A JUnit XML report of a smoke run (one testcase per file), the format GitHub Actions, GitLab and
Jenkins read: a file that got another status than it expects is a <failure> naming both."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from ..types import EvaluationResult
from .expectations import Sample


def write_junit(path: Path, outcomes: Sequence[tuple[Sample, EvaluationResult]], suite: str = "evoprompt") -> None:
    failures = [(s, r) for s, r in outcomes if r.status is not s.expect]
    root = ET.Element("testsuites", name=suite, tests=str(len(outcomes)), failures=str(len(failures)))
    total = sum(r.wall_seconds for _, r in outcomes)
    ts = ET.SubElement(root, "testsuite", name=suite, tests=str(len(outcomes)), failures=str(len(failures)),
                       errors="0", skipped="0", time=f"{total:.3f}")
    for sample, result in outcomes:
        case = ET.SubElement(ts, "testcase", name=sample.label,
                             classname=f"{sample.request.task}.{sample.request.framework}",
                             time=f"{result.wall_seconds:.3f}", file=sample.label)
        summary = (f"status {result.status.name} (expected {sample.expect.name}); val_accuracy "
                   f"{result.val_accuracy:.4f}, num_params {result.num_params}, cached {result.cached}")
        if result.status is not sample.expect:
            failure = ET.SubElement(case, "failure", type=result.status.name,
                                    message=f"expected {sample.expect.name}, got {result.status.name}: "
                                            f"{result.message}"[:2000])
            failure.text = "\n".join(filter(None, [summary, result.message, result.stderr_tail[-4000:]]))
        out = ET.SubElement(case, "system-out")
        out.text = summary + (f"\n{result.message}" if result.message else "")
    ET.indent(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
