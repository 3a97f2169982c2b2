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

Prompt styles: "completion" sends `Prompt.text` to a completion model, which continues the opening
line; "chat" sends `chat_messages(prompt)`, the same examples and targets as a request to an instruct
model, which answers with a whole program. `program_from_output` turns either output into a program.
"""

from __future__ import annotations

import ast
import keyword
import re
from dataclasses import dataclass, field, replace

from evoprompt.sdk.ast_retry import retry_ast

METRICS_PREFIX = '"""Metrics: '
PROMPT_STYLES = ("completion", "chat")  # prompt.text for completion models; chat_messages(prompt) for instruct models
SIZE_FACTOR = 0.9
ACCURACY_FACTOR = 1.02

# The line each task's program is built around (the prompt ends with it; DESIGN section 2).
ANCHORS: dict[str, re.Pattern[str]] = {
    "mnist1d": re.compile(r"^class Model\b.*:\s*$", re.M),
    "clrs": re.compile(r"^def get_triplet_msgs\(.*$", re.M),
}
# What the chat style asks for, per task family: "a new program whose <this> about N parameters and
# validation accuracy A", and the contract in one line ({signature}: the opening line, as the seeds spell it).
_CHAT_ASKS: dict[str, tuple[str, str]] = {
    "mnist1d": ("class Model reaches",
                "`Model()` maps float32 inputs of shape (batch, 40) to logits of shape (batch, 10)"),
    "clrs": ("get_triplet_msgs gives the whole model",
             "`{signature}` takes z (B, N, 2H) node features, edge_fts (B, N, N, H) and graph_fts (B, H) "
             "and returns triplet messages (B, N, N, N, nb_triplet_fts)"),
}
# A line at column 0 that starts code rather than prose: an import, a definition, a decorator or a
# plain assignment (`HIDDEN = 32`).
_CODE_START = re.compile(r"(?:import|from|class|def|async\s+def)\s|@\w|[A-Za-z_]\w*(?:\s*,\s*[A-Za-z_]\w*)*\s*=(?!=)")
# A prose line at column 0 starts with a letter, a digit or a list marker ("This model ...", "1. ...", "- ...").
_PROSE_START = re.compile(r"[A-Za-z0-9*\-]")
# How many trailing lines a program that does not parse may lose (a truncated tail is a line or a few).
MAX_TRIMMED_LINES = 40


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
    # the same prompt as a chat ("chat" style; build_prompt renders it, a repair prompt brings its own)
    messages: tuple[dict[str, str], ...] = field(default=(), compare=False)
    # texts that end a completion: what the model writes when it starts the next example (a sample is
    # cut there, and a back-end stops sampling it there rather than writing to its token limit)
    stop: tuple[str, ...] = field(default=(METRICS_PREFIX.rstrip(),), compare=False)


def cut_at_stop(text: str, stop: tuple[str, ...]) -> str:
    """`text` up to the first of the `stop` texts (all of it when none occurs)."""
    cuts = [i for i in (text.find(s) for s in stop) if i != -1]
    return text[:min(cuts)] if cuts else text


def anchor_for(task: str) -> re.Pattern[str]:
    try:
        return ANCHORS[task.split("/")[0]]
    except KeyError:
        raise ValueError(f"no prompt format for task {task!r}; known: {', '.join(sorted(ANCHORS))}") from None


def metrics_docstring(num_params: int, val_accuracy: float) -> str:
    return f'"""{_metrics_text(num_params, val_accuracy)}"""'


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
    prompt = Prompt(text="\n\n".join([*parts, tail]), task=task, examples=tuple(examples), target_num_params=size,
                    target_val_accuracy=accuracy, preamble=preamble, opening=opening)
    return replace(prompt, messages=tuple(_render_chat(prompt)))


def chat_messages(prompt: Prompt) -> list[dict[str, str]]:
    """The prompt as a chat, for instruct models ("chat" style): its own messages where it carries
    them (a repair prompt does), else its examples and targets rendered as a request."""
    return [dict(m) for m in prompt.messages] if prompt.messages else _render_chat(prompt)


def chat_tuning_messages(task: str, opening: str, num_params: int, val_accuracy: float,
                         code: str) -> list[dict[str, str]]:
    """A child as a prompt-tuning example in the chat style: the request for its metrics (without
    in-context examples, to keep tuning texts short on a CPU) and the program as the answer."""
    goal, contract = _CHAT_ASKS[task.split("/")[0]]
    system = (f"You write Python model code for the {task} task. "
              "Answer with one complete program in one ```python fence, nothing else.")
    ask = (f"Write a new program whose {goal} about {num_params} parameters and validation accuracy "
           f"{val_accuracy:.3f}. Contract: {contract.format(signature=opening.rstrip().rstrip(':'))}.")
    return [{"role": "system", "content": system}, {"role": "user", "content": ask},
            {"role": "assistant", "content": f"```python\n{code.strip()}\n```"}]


def _render_chat(prompt: Prompt) -> list[dict[str, str]]:
    """The examples and targets as a system and a user message.

    Instruct models answer a request better than they continue a file: the system message says what
    to write and in which form (one program in one fence, which `program_from_output` takes apart),
    the user message shows the k examples with their metrics and asks for the targets.
    """
    family = prompt.task.split("/")[0]
    goal, contract = _CHAT_ASKS[family]
    metrics_meaning = "num_params: trainable parameters; val_accuracy: validation accuracy"
    examples = [f"Program {i}. {_metrics_text(e.num_params, e.val_accuracy)}\n```python\n{e.code.strip()}\n```"
                for i, e in enumerate(prompt.examples, 1)]
    ask = (f"Write a new program whose {goal} about {prompt.target_num_params} parameters and "
           f"validation accuracy {prompt.target_val_accuracy:.3f}. "
           f"Contract: {contract.format(signature=prompt.opening.rstrip().rstrip(':'))}.")
    user = "\n\n".join([f"Here are programs for {prompt.task} and the metrics they reached ({metrics_meaning}).",
                        *examples, ask])
    system = (f"You write Python model code for the {prompt.task} task. "
              "Answer with one complete program in one ```python fence, nothing else.")
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def program_from_output(prompt: Prompt, output: str) -> str:
    """The candidate program an LM output stands for (a string ending in a newline).

    A continuation (what a completion model writes after the prompt: its first line is indented) is
    placed after the prompt's imports and opening line, and ends where the definition does. An
    output that holds a whole program (a chat model's answer, often in a code fence, with prose
    around it) is cut down to its code, with the prompt's imports added in front where missing.
    Either way it ends before the next metrics docstring, where the model starts a new example, and
    a program that does not parse (a generation cut off by its token limit) loses trailing lines
    until it does.
    """
    anchor = anchor_for(prompt.task)
    text = _close_inline_fences(output.replace("\r\n", "\n"))
    if not _starts_indented(text):
        text = _code_piece(text, anchor)
    code = cut_at_stop(_from_first_code_line(text, anchor), prompt.stop)  # the model began another example
    if _starts_indented(text) or not anchor.search(code):
        # a continuation of the opening line: it ends where the definition does
        body = _until_dedent(text)
        program = f"{prompt.preamble}{prompt.opening}{'' if body.startswith(chr(10)) else chr(10)}{body}"
    else:  # a whole program
        code = _without_trailing_prose(code, anchor)
        missing = [line for line in prompt.preamble.splitlines() if line not in code]
        program = "\n".join(missing) + ("\n" if missing else "") + code
    return _longest_parsable_prefix(program.rstrip() + "\n", anchor)


def _metrics_text(num_params: int, val_accuracy: float) -> str:
    return f"Metrics: {{'num_params': {num_params}, 'val_accuracy': {val_accuracy:.3f}}}"


def _tree(code: str) -> ast.Module | None:
    try:
        return retry_ast(ast.parse, code)
    except (SyntaxError, ValueError, RecursionError):  # ValueError: a null byte
        return None


def _parses(code: str) -> bool:
    return _tree(code) is not None


def _is_fence(line: str) -> bool:
    return line.lstrip().startswith("```")


def _starts_indented(text: str) -> bool:
    """Whether the first non-blank line is indented: then the text continues the prompt's opening line."""
    first = next((line for line in text.split("\n") if line.strip()), "")
    return first[:1].isspace()


def _close_inline_fences(text: str) -> str:
    """Puts a fence that closes at the end of a code line (`return x```) on a line of its own."""
    return re.sub(r"(?m)^(.*\S)```[ \t]*$", "\\1\n```", text)


def _code_piece(text: str, anchor: re.Pattern[str]) -> str:
    """The piece of a fenced answer that holds the program.

    Small chat models wrap code in ``` fences, write several (the program, then a usage example),
    leave the last one open when they run out of tokens, or close one they never opened. Of the
    pieces between fence lines, the longest one holding the anchor line wins; without an anchor,
    the longest fenced piece (it may be a continuation). Text without fences is returned unchanged.
    """
    pieces: list[list[str]] = [[]]
    for line in text.split("\n"):
        if _is_fence(line):
            pieces.append([])
        else:
            pieces[-1].append(line)
    if len(pieces) == 1:
        return text
    texts = ["\n".join(piece) for piece in pieces]
    return max([t for t in texts if anchor.search(t)] or texts[1::2], key=len)


def _from_first_code_line(text: str, anchor: re.Pattern[str]) -> str:
    """Drops what a model writes before its code: prose ("Sure! Here is a smaller model:") or a
    repeat of the target's metrics docstring, which would otherwise cut the program to nothing.

    What comes before the first line at column 0 that starts code is kept only when it is nothing
    but docstrings and comments, none of them a metrics docstring (the program's own module docstring).
    """
    lines = text.split("\n")
    start = next((i for i, line in enumerate(lines) if _CODE_START.match(line) or anchor.match(line)), 0)
    head = "\n".join(lines[:start])
    if start == 0 or (_only_docstrings(head) and METRICS_PREFIX.rstrip() not in head):
        return text
    return "\n".join(lines[start:])


def _only_docstrings(code: str) -> bool:
    tree = _tree(code)
    return tree is not None and all(
        isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant) and isinstance(s.value.value, str)
        for s in tree.body)


def _until_dedent(continuation: str) -> str:
    """A continuation of the opening line ends where a line starts at column 0 again or a fence
    closes (the usual stop rule of code completion: the definition is over and the model has moved on)."""
    lines = continuation.split("\n")
    for i, line in enumerate(lines[1:], 1):
        if (line and not line[0].isspace()) or _is_fence(line):
            return "\n".join(lines[:i])
    return continuation


def _is_prose(line: str) -> bool:
    """A line at column 0 that reads as a sentence, not Python: it neither parses alone nor as the
    header of a block, and does not start with a keyword (`else:`, `except ...:`)."""
    if not _PROSE_START.match(line):
        return False
    first_word = re.split(r"[\s:(]", line, maxsplit=1)[0]
    return not keyword.iskeyword(first_word) and not _parses(line) and not _parses(line + "\n    pass")


def _without_trailing_prose(code: str, anchor: re.Pattern[str]) -> str:
    """Drops what a model writes after unfenced code ("This model uses fewer parameters ..."): the
    program ends before the first prose line after the anchor. Only a program that does not parse
    is cut, so a column-0 line inside a multi-line string stays."""
    if _parses(code):
        return code
    match = anchor.search(code)
    lines = code.split("\n")
    after = code[: match.start()].count("\n") + 1 if match else 0
    end = next((i for i in range(after, len(lines)) if _is_prose(lines[i])), len(lines))
    return "\n".join(lines[:end])


def _longest_parsable_prefix(program: str, anchor: re.Pattern[str]) -> str:
    """A generation cut off by its token limit ends mid-line or mid-statement: dropping trailing lines
    until the rest parses keeps its finished part. At most MAX_TRIMMED_LINES go, never the anchor line
    or the first line of its body; when no such prefix parses the program is returned as it is (and
    its syntax error reported)."""
    match = anchor.search(program)
    if match is None or _parses(program):
        return program
    lines = program.rstrip("\n").split("\n")
    shortest = max(program[: match.start()].count("\n") + 2, len(lines) - MAX_TRIMMED_LINES)
    for n in range(len(lines) - 1, shortest - 1, -1):
        candidate = "\n".join(lines[:n]).rstrip() + "\n"
        if _parses(candidate):
            return candidate
    return program
