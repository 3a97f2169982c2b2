"""Check an incoming request against the task catalogue and limits; say exactly what to change."""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from evoprompt.sdk.errors import InvalidRequestError
from evoprompt.sdk.limits import MAX_CODE_BYTES

from .tasks import Task

# in the cache key: results scored before the verifier existed (1) are never served again
SCORING_VERSION = 2

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


@dataclass(frozen=True)
class ValidRequest:
    """A request that passed validation, with defaults filled in."""

    request_id: str
    task: Task
    framework: str
    code: str
    steps: int
    seed: int
    timeout: float
    code_sha256: str

    def cache_key(self, sandbox_id: str) -> str:
        """Identity of the work: same code, task (and its data), framework, steps, seed and sandbox image."""
        ident = [self.code_sha256, self.task.name, self.task.data_id, self.framework, self.steps, self.seed, sandbox_id,
                 SCORING_VERSION]
        return hashlib.sha256(json.dumps(ident).encode()).hexdigest()


def describe_task_names(names: Iterable[str]) -> str:
    """'mnist1d, clrs/<algorithm> with <algorithm> one of: bfs, dfs, ...': one family of tasks per entry."""
    plain: list[str] = []
    families: dict[str, list[str]] = {}
    for name in sorted(names):
        family, _, member = name.partition("/")
        if member:
            families.setdefault(family, []).append(member)
        else:
            plain.append(name)
    parts = plain + [f"{f}/<name> with <name> one of: {', '.join(members)}" for f, members in families.items()]
    return "; ".join(parts)


def validate(
    *,
    request_id: str,
    task: str,
    framework: str,
    code: str,
    max_steps: int,
    seed: int,
    timeout_seconds: float,
    server_timeout: float,
    tasks: Mapping[str, Task],
) -> ValidRequest:
    if request_id and not _REQUEST_ID.match(request_id):
        raise InvalidRequestError("request_id must be 1-128 characters of letters, digits and . _ : -")
    spec = tasks.get(task)
    if spec is None:
        raise InvalidRequestError(f"unknown task {task!r}; this server offers: {describe_task_names(tasks)}")
    if framework not in spec.frameworks:
        raise InvalidRequestError(
            f"task {task!r} has no framework {framework!r}; choose one of: {', '.join(spec.frameworks)}"
        )
    if not code.strip():
        raise InvalidRequestError("code is empty: send the candidate program's Python source")
    size = len(code.encode("utf-8"))
    if size > MAX_CODE_BYTES:
        raise InvalidRequestError(f"code is {size:,} bytes; the limit is {MAX_CODE_BYTES:,} (64 KiB)")
    if "\x00" in code:
        raise InvalidRequestError("code contains a NUL byte; send plain Python source text")
    if max_steps < 0:
        raise InvalidRequestError(f"max_steps must be 0 (the task's default) or positive, not {max_steps}")
    if max_steps > spec.recipe.max_steps:
        raise InvalidRequestError(
            f"max_steps {max_steps} exceeds the maximum of task {task!r}, {spec.recipe.max_steps}; "
            "a request may lower the step budget, never raise it"
        )
    if timeout_seconds < 0:
        raise InvalidRequestError(f"timeout_seconds must be 0 (the server's limit) or positive, not {timeout_seconds}")
    timeout = min(timeout_seconds, server_timeout) if timeout_seconds > 0 else server_timeout
    return ValidRequest(
        request_id=request_id or uuid.uuid4().hex,
        task=spec,
        framework=framework,
        code=code,
        steps=max_steps or spec.recipe.default_steps,
        seed=seed,
        timeout=timeout,
        code_sha256=hashlib.sha256(code.encode("utf-8")).hexdigest(),
    )
