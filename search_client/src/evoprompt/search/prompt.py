"""The paper's prompt format, and turning an LM's output back into a candidate program.

A prompt is k in-context examples, each a docstring with its metrics followed by its code, then a
docstring with the target metrics and the opening line of the program's main definition:

    \"\"\"Metrics: {'num_params': 5210, 'val_accuracy': 0.918}\"\"\"
    <code of parent 1>

    \"\"\"Metrics: {'num_params': 15210, 'val_accuracy': 0.65}\"\"\"
    <code of parent 2>

    \"\"\"Metrics: {'num_params': 4700, 'val_accuracy': 0.936}\"\"\"
    <import lines of the parents>
    class Model(nn.Module):

Targets (the paper's): 90% of the smallest parent's size, rounded to 100 parameters; 102% of the
best parent's validation accuracy, rounded to 0.1% (and at most 100%).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

METRICS_PREFIX = '"""Metrics: '
SIZE_FACTOR = 0.9
ACCURACY_FACTOR = 1.02

# The line each task's program is built around (the prompt ends with it; DESIGN section 2).
ANCHORS: dict[str, re.Pattern[str]] = {
    "mnist1d": re.compile(r"^class Model\b.*:\s*$", re.M),
    "clrs": re.compile(r"^def get_triplet_msgs\(.*$", re.M),
}
_FENCE = re.compile(r"```[a-zA-Z0-9_+-]*\n(.*?)(?:```|\Z)", re.S)


@dataclass(frozen=True)
class Example:
    """One in-context example: a program and the metrics the evaluator gave it."""

    code: str
    num_params: int
    val_accuracy: float


@dataclass(frozen=True)
class Prompt:
    text: str
    task: str
    examples: tuple[Example, ...]
    target_num_params: int
    target_val_accuracy: float
    preamble: str  # import lines the completion is placed after
    opening: str  # the opening line the prompt ends with


def anchor_for(task: str) -> re.Pattern[str]:
    try:
        return ANCHORS[task.split("/")[0]]
    except KeyError:
        raise ValueError(f"no prompt format for task {task!r}; known: {', '.join(sorted(ANCHORS))}") from None


def metrics_docstring(num_params: int, val_accuracy: float) -> str:
    return f"{METRICS_PREFIX}{{'num_params': {num_params}, 'val_accuracy': {val_accuracy:.3f}}}\"\"\""


def target_metrics(examples: list[Example] | tuple[Example, ...]) -> tuple[int, float]:
    """The paper's targets: smaller than the smallest parent, more accurate than the best."""
    smallest = min(e.num_params for e in examples)
    best = max(e.val_accuracy for e in examples)
    size = max(100, int(round(smallest * SIZE_FACTOR / 100.0)) * 100)
    accuracy = min(1.0, round(best * ACCURACY_FACTOR, 3))
    return size, accuracy


def split_program(code: str, task: str) -> tuple[str, str, str]:
    """(lines before the anchor, the anchor line, the rest); raises ValueError without an anchor."""
    match = anchor_for(task).search(code)
    if match is None:
        raise ValueError(f"the program has no line matching {anchor_for(task).pattern!r}")
    return code[: match.start()], match.group(0).rstrip(), code[match.end():]


def import_preamble(codes: list[str]) -> str:
    """The import lines of the programs, first occurrence first, without duplicates."""
    seen: list[str] = []
    for code in codes:
        for line in code.splitlines():
            if re.match(r"^(import|from)\s+\S+", line) and line not in seen:
                seen.append(line)
    return "\n".join(seen) + ("\n" if seen else "")


def build_prompt(examples: list[Example], task: str) -> Prompt:
    if not examples:
        raise ValueError("a prompt needs at least one example")
    parts = [f"{metrics_docstring(e.num_params, e.val_accuracy)}\n{e.code.strip()}\n" for e in examples]
    size, accuracy = target_metrics(examples)
    preamble = import_preamble([e.code for e in examples])
    _, opening, _ = split_program(examples[0].code, task)
    # no newline after the opening line: the model writes it, tokenized as in its training data
    tail = f"{metrics_docstring(size, accuracy)}\n{preamble}{opening}"
    return Prompt(text="\n\n".join([*parts, tail]), task=task, examples=tuple(examples), target_num_params=size,
                  target_val_accuracy=accuracy, preamble=preamble, opening=opening)


def _until_dedent(continuation: str) -> str:
    """A continuation of the opening line ends where a line starts at column 0 again (the usual stop
    rule of code completion: the definition is over and the model has moved on)."""
    lines = continuation.split("\n")
    for i, line in enumerate(lines[1:], 1):
        if line and not line[0].isspace():
            return "\n".join(lines[:i])
    return continuation


def program_from_output(prompt: Prompt, output: str) -> str:
    """The candidate program an LM output stands for.

    A continuation (what a completion model writes after the prompt) is placed after the prompt's
    imports and opening line. An output that holds a whole program (a chat model's answer, often in
    a code fence) is taken as it is, with the prompt's imports added in front. Either way it ends
    before the next metrics docstring, which is where the model starts a new example.
    """
    text = output.replace("\r\n", "\n")
    fenced = _FENCE.findall(text)
    if fenced:
        text = max(fenced, key=len)
    cut = text.find(METRICS_PREFIX.rstrip())
    if cut != -1:
        text = text[:cut]
    first = next((line for line in text.split("\n") if line.strip()), "")
    if first[:1].isspace() or not anchor_for(prompt.task).search(text):
        # a continuation of the opening line: it ends where the definition does
        text = _until_dedent(text)
        program = f"{prompt.preamble}{prompt.opening}{'' if text.startswith(chr(10)) else chr(10)}{text}"
    else:  # a whole program
        missing = [line for line in prompt.preamble.splitlines() if line not in text]
        program = "\n".join(missing) + ("\n" if missing else "") + text
    return program.rstrip() + "\n"
