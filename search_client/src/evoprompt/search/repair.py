"""Repair before discard: a child that never trained gets a prompt showing it its own program and
the evaluator's message, and the LM's answer is a new candidate linked to the one it mends.

Beyond the paper (which drops such children); OpenEvolve feeds errors back into its prompts the
same way. Small code LMs write many children that almost work: a shape mismatch between two layers
(`mat1 and mat2 shapes cannot be multiplied (2x40 and 480x10)`) is one number away from a child
that trains, and a repair costs one sample instead of a whole prompt's.

Both prompt styles are built: the completion form shows the broken program under a comment with
the error and ends with the opening line of the fixed one (a base model continues it); the chat
form asks for the whole fixed program in one fence."""

from __future__ import annotations

from typing import Any

from evoprompt.sdk import Status

from .prompt import Example, Prompt, split_program

#: At most this much of the evaluator's message goes into a repair prompt (the end of a traceback).
MESSAGE_CHARS = 600
# the completion-style repair prompt's two headers; a model that has written its fix and goes on
# starts one of them again, so both end a sample (seen: Qwen repeating the fix to its token limit)
BROKEN_MARKER = "# This program"
FIXED_MARKER = "# The same program"

_WHAT = {
    Status.COMPILE_ERROR.name: "fails to build",
    Status.INVALID_OUTPUT.name: "returns output of the wrong shape or type",
    Status.RUNTIME_ERROR.name: "crashes before training",
}


def repairable(result: dict[str, Any]) -> bool:
    """A child that never trained, from its stored result (EvaluationResult.to_dict): it did not
    build, crashed before its first checkpoint, or mis-shaped its output (a child that trained and
    then failed is not a near miss)."""
    status = result.get("status")
    if status in (Status.COMPILE_ERROR.name, Status.INVALID_OUTPUT.name):
        return True
    return status == Status.RUNTIME_ERROR.name and not result.get("checkpoints")


def failure(result: dict[str, Any]) -> tuple[str, str]:
    """(what the program does wrong, the evaluator's message and stderr's end) for a repair prompt."""
    problem = "\n".join(str(x) for x in (result.get("message"), result.get("stderr_tail")) if x)
    return _WHAT.get(result.get("status", ""), "fails"), problem


def error_excerpt(message: str) -> str:
    """The end of the message (where a traceback names the error), on as few lines as it takes."""
    text = "\n".join(line.rstrip() for line in message.strip().splitlines() if line.strip())
    return text if len(text) <= MESSAGE_CHARS else "..." + text[-MESSAGE_CHARS:]


def build_repair_prompt(base: Prompt, code: str, problem: str, what: str = "fails") -> Prompt:
    """A prompt asking to mend `code`, which `what` (e.g. "fails to build") with `problem`.

    `base` is the prompt the broken child came from: its task, preamble and opening line are
    kept so that the answer parses the same way (prompt.program_from_output)."""
    error = error_excerpt(problem)
    commented = "\n".join(f"# {line}" for line in error.splitlines())
    try:
        before, _, _ = split_program(code, base.task)
        preamble = before if before.strip() else base.preamble
    except ValueError:
        preamble = base.preamble
    text = (f"{BROKEN_MARKER} {what} in the evaluator, with:\n{commented}\n{code.rstrip()}\n\n"
            f"{FIXED_MARKER}, fixed so that it runs:\n{preamble}{base.opening}")
    ask = (f"This program {what} when the evaluator runs it:\n\n```python\n{code.rstrip()}\n```\n\n"
           f"The evaluator says:\n\n```\n{error}\n```\n\nFix the program, changing as little as you can, "
           "and answer with the whole fixed program in one ```python fence, nothing else.")
    messages = ({"role": "system", "content": _system(base)}, {"role": "user", "content": ask})
    return Prompt(text=text, task=base.task, examples=(Example(code, base.target_num_params,
                                                               base.target_val_accuracy),),
                  target_num_params=base.target_num_params, target_val_accuracy=base.target_val_accuracy,
                  preamble=preamble, opening=base.opening, messages=messages,
                  stop=(*base.stop, f"\n{BROKEN_MARKER}", f"\n{FIXED_MARKER}"))


def _system(base: Prompt) -> str:
    if base.messages:
        return base.messages[0]["content"]
    return "You fix Python programs that define neural networks. Answer with code only."
