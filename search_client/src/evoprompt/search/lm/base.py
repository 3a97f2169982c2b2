"""What the search needs of a language model, whatever serves it (local weights, an HTTP server,
or the non-LM mutation operator)."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from pathlib import Path

from evoprompt.sdk.errors import UserError

from ..prompt import Prompt, metrics_docstring


class LMError(Exception):
    """A back-end failed in a way the run records and survives (a bad answer, a server error)."""


class LMConfigError(UserError, ValueError):
    """The LM cannot be used as asked (bad spec, no weights, tuning a back-end that cannot tune)."""


@dataclass
class Usage:
    """What one `generate` call cost (the run store's LM ledger). `seconds`: time the back-end
    spent on it, when it knows better than the caller's clock (local weights shared by concurrent
    calls: time holding them, not waiting for them); 0 means the caller's wall time."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0


@dataclass(frozen=True)
class TuneReport:
    """What a prompt-tuning step did: losses per epoch, and where the soft prompt was saved."""

    losses: tuple[float, ...]
    path: Path | None
    examples: int
    seconds: float = 0.0

    @property
    def improved(self) -> bool:
        return len(self.losses) >= 2 and self.losses[-1] < self.losses[0]


class LanguageModel(abc.ABC):
    """A sampler of candidate programs from prompts."""

    #: Only back-ends with weights of their own (hf) can be prompt-tuned.
    tunable: bool = False

    def __init__(self, spec: str) -> None:
        self.spec = spec

    @abc.abstractmethod
    async def generate(self, prompt: Prompt, num_samples: int, temperature: float, seed: int,
                       usage: Usage | None = None) -> list[str]:
        """`num_samples` raw outputs for one prompt. Text models return continuations of
        `prompt.text` (or whole programs, from chat models); `prompt.program_from_output` turns
        either into a program. May return fewer than asked; raises LMError on failure. Back-ends
        that count tokens add them to `usage`."""

    def tuning_text(self, task: str, opening: str, num_params: int, val_accuracy: float, code: str) -> str:
        """One child as a prompt-tuning example, in the form this LM is prompted with (the paper's:
        the metrics docstring, then the program)."""
        return f"{metrics_docstring(num_params, val_accuracy)}\n{code}"

    def tune(self, texts: list[str], out_dir: Path) -> TuneReport:
        """Prompt-tune on `texts` (in the prompt's format) and sample with the result from now on."""
        raise LMConfigError(f"the {self.spec.split(':')[0]!r} back-end cannot be prompt-tuned; "
                            "use an hf:MODEL back-end or --no-tuning")

    def load_soft_prompt(self, path: Path) -> None:
        """Use a soft prompt saved by an earlier `tune` (a resumed run)."""
        raise LMConfigError(f"the {self.spec.split(':')[0]!r} back-end has no soft prompt to load")

    async def aclose(self) -> None:  # noqa: B027 (optional hook, nothing to release by default)
        """Release connections, threads or memory."""
