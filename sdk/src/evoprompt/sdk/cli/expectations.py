"""Sample programs and what each must get: files and folders become evaluation requests.

A file may say what it expects in a header comment line (within its first 20 lines):

    # evoprompt: expect=INVALID_OUTPUT task=mnist1d framework=torch max-steps=50

`expect` is a status name (default OK); `task`, `framework` and `max-steps` override the command
line's for that file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError
from ..limits import MAX_CODE_BYTES
from ..types import EvaluationRequest, Status

HEADER = re.compile(r"^\s*#\s*evoprompt:\s*(?P<fields>.*)$")
HEADER_LINES = 20
KEYS = ("expect", "task", "framework", "max-steps")


class SampleError(UserError, ValueError):
    """A sample cannot be evaluated as given (unreadable, bad header, no task); says which and why."""


@dataclass(frozen=True)
class Sample:
    path: Path
    label: str  # the path as the user named it (relative where it was), for tables and reports
    expect: Status
    request: EvaluationRequest


def find_files(paths: list[Path]) -> list[tuple[Path, str]]:
    """Each named file, and every `*.py` under each named folder (sorted); with display labels."""
    found: list[tuple[Path, str]] = []
    for path in paths:
        if path.is_dir():
            files = sorted(p for p in path.rglob("*.py") if p.is_file() and "__pycache__" not in p.parts)
            if not files:
                raise SampleError(f"{path}: the folder holds no *.py file")
            found += [(f, str(f)) for f in files]
        elif path.is_file():
            found.append((path, str(path)))
        else:
            raise SampleError(f"{path}: no such file or folder")
    return found


def parse_header(code: str, label: str) -> dict[str, str]:
    for line in code.splitlines()[:HEADER_LINES]:
        match = HEADER.match(line)
        if not match:
            continue
        fields: dict[str, str] = {}
        for item in match.group("fields").split():
            key, sep, value = item.partition("=")
            if not sep or key not in KEYS or not value:
                raise SampleError(f"{label}: header item {item!r} is not one of "
                                  f"{', '.join(k + '=...' for k in KEYS)}")
            fields[key] = value
        return fields
    return {}


def load_sample(path: Path, label: str, *, task: str | None, framework: str | None, max_steps: int,
                seed: int, timeout_seconds: float) -> Sample:
    try:
        raw = path.read_bytes()
        code = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SampleError(f"cannot read {label}: {exc}") from None
    if len(raw) > MAX_CODE_BYTES:
        raise SampleError(f"{label} is {len(raw):,} bytes; a candidate is at most {MAX_CODE_BYTES:,} (64 KiB)")
    fields = parse_header(code, label)
    expect_name = fields.get("expect", "OK").upper()
    if expect_name not in Status.__members__ or expect_name == "STATUS_UNSPECIFIED":
        names = ", ".join(s.name for s in Status if s is not Status.STATUS_UNSPECIFIED)
        raise SampleError(f"{label}: expect={fields['expect']} is not a status; one of: {names}")
    task = fields.get("task", task)
    framework = fields.get("framework", framework)
    if not task or not framework:
        missing = " and ".join(n for n, v in (("task", task), ("framework", framework)) if not v)
        raise SampleError(f"{label}: no {missing}: pass --{missing.replace(' and ', ' and --')} or put "
                          f"it in the file's header (# evoprompt: task=... framework=...)")
    try:
        steps = int(fields.get("max-steps", max_steps))
    except ValueError:
        raise SampleError(f"{label}: max-steps={fields['max-steps']} is not a whole number") from None
    request = EvaluationRequest(task, framework, code, max_steps=steps, seed=seed, timeout_seconds=timeout_seconds)
    return Sample(path, label, Status[expect_name], request)
