"""A search's settings, with the paper's names and defaults (Chen, Dohan, So 2023, Table 2), saved
as config.json in the run directory so that `--resume` continues the very same search."""

from __future__ import annotations

import argparse
import json
import uuid
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from evoprompt.sdk.errors import UserError

from .store import CONFIG_NAME

MODES = ("evoprompting", "random-parents", "few-shot")
TUNING = ("auto", "on", "off")
TEMPERATURES = (0.2, 0.6, 0.8, 1.0)
PROMPT_STYLES = ("completion", "chat")
DTYPES = ("float32", "bfloat16")


class SearchConfigError(UserError, ValueError):
    """A search's settings cannot work (a count below 1, an unknown mode, ...); says which flags."""


SELECT_ON = ("mean", "lcb")
SELECTIONS = ("fitness", "pareto")


def _flag(default: Any, help: str, choices: tuple[str, ...] | None = None, parse: Any = None) -> Any:
    """A setting that is also a command-line flag of `search` (add_config_flags): its default and
    help live here, once; `parse` reads the flag's text when the default's type cannot."""
    return field(default=default, metadata={"help": help, "choices": choices, "parse": parse})


def _steps(text: str) -> tuple[int, ...]:
    """`500,2000,8000` -> (500, 2000, 8000)."""
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected step counts such as 500,2000,8000, not {text!r}") from None


def _names(text: str) -> tuple[str, ...]:
    """`cnn,mlp` -> ("cnn", "mlp"); SearchConfig spells the list one way (sorted, each name once)."""
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    if not names:
        raise argparse.ArgumentTypeError("expected names of seed programs such as cnn,mlp")
    return names


@dataclass(frozen=True)
class SearchConfig:
    task: str
    framework: str
    lm: str
    rounds: int = _flag(10, "T, rounds of evolution")
    prompts: int = _flag(10, "m, prompts per round")
    samples: int = _flag(16, "n, children sampled per prompt")
    parents: int = _flag(10, "p, parents kept per round")
    shots: int = _flag(2, "k, in-context examples per prompt")
    alpha: float = _flag(0.5, "children with validation error >= alpha are dropped")
    max_steps: int = _flag(0, "training steps per evaluation (0: the task's recipe)")
    seed: int = _flag(0, "the search's seed (prompts, temperatures, training seeds)")
    # a subset of the task's seed programs (e.g. leave out a slow one); empty: all of them
    seed_programs: tuple[str, ...] = _flag((), "the seed programs to start from, e.g. cnn,mlp (default: all of "
                                               "the task's)", parse=_names)
    mode: str = _flag("evoprompting", "the algorithm, or one of the paper's ablations", MODES)
    prompt_tuning: str = _flag("auto", "soft-prompt tuning between rounds (auto: on for hf back-ends)", TUNING)
    temperatures: tuple[float, ...] = TEMPERATURES
    # completion: the paper's prompt; chat: the model's chat template. Measured with both offline
    # instruct models (README), chat did not write more children that train: completion stays the default
    prompt_style: str = _flag("completion", "the paper's completion prompt (default), or the model's chat template",
                              PROMPT_STYLES)
    repairs: int = _flag(0, "repair prompts (with the evaluator's message) per child that never trained (0: the "
                            "paper's loop drops it)")
    # the hf back-end: dtype and threads for sampling, and a CPU-sized prompt-tuning budget per round
    lm_dtype: str = _flag("float32", "hf back-end weights", DTYPES)
    lm_threads: int = _flag(0, "hf back-end CPU threads (0: half the cores; the evaluator trains on the rest)")
    lm_max_tokens: int = _flag(512, "new tokens per sample (hf and openai back-ends)")
    lm_top_p: float = _flag(0.95, "nucleus sampling (1.0: the paper's temperature sampling alone)")
    lm_timeout: float = _flag(600.0, "seconds per request to an openai: server (a CPU server writes ~2-15 tokens/s)")
    tune_epochs: int = _flag(5, "prompt-tuning epochs per round")
    tune_examples: int = _flag(0, "prompt-tune on at most this many children per round, fittest first (0: all)")
    tune_length: int = _flag(0, "tokens per prompt-tuning text (0: the model's context)")
    # beyond the paper: multi-fidelity rungs (successive halving within a round), repeated seeds at the
    # last rung, and Pareto selection; without them the search is the paper's loop
    rungs: tuple[int, ...] = _flag((), "training steps of each rung, e.g. 500,2000,8000: every child trains at the "
                                       "first, the top 1/eta of each rung go on; only the last rung's children can "
                                       "become parents (default: none, every child gets --max-steps)", parse=_steps)
    eta: int = _flag(4, "with --rungs: the top 1/eta of a rung's children are promoted to the next")
    repeats: int = _flag(1, "training seeds per finalist (the last rung): fitness uses their mean")
    select_on: str = _flag("mean", "with --repeats: rank on the mean validation accuracy, or its lower 95% "
                                   "confidence bound", SELECT_ON)
    selection: str = _flag("fitness", "parents (and promotions) by the paper's fitness, or by Pareto rank on "
                                      "(parameters, validation error) with crowding distance", SELECTIONS)
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    def __post_init__(self) -> None:
        # one spelling of one setting (the order means nothing): a config from the flag, from code or
        # from an older config.json resumes and compares as the same
        object.__setattr__(self, "seed_programs", tuple(sorted(set(self.seed_programs))))
        problems = []
        for name in ("rounds", "prompts", "samples", "parents", "shots"):
            if getattr(self, name) < 1:
                problems.append(f"--{name} must be at least 1")
        if not 0 < self.alpha <= 1:
            problems.append("--alpha must be in (0, 1]")
        if self.max_steps < 0:
            problems.append("--max-steps must be >= 0")
        if self.mode not in MODES:
            problems.append(f"--mode must be one of {', '.join(MODES)}")
        if self.prompt_tuning not in TUNING:
            problems.append(f"--prompt-tuning must be one of {', '.join(TUNING)}")
        if not self.temperatures:
            problems.append("at least one temperature is needed")
        if self.prompt_style not in PROMPT_STYLES:
            problems.append(f"--prompt-style must be one of {', '.join(PROMPT_STYLES)}")
        if self.lm_dtype not in DTYPES:
            problems.append(f"--lm-dtype must be one of {', '.join(DTYPES)}")
        for name in ("repairs", "lm_threads", "tune_examples", "tune_length"):
            if getattr(self, name) < 0:
                problems.append(f"--{name.replace('_', '-')} must be >= 0")
        if not 0 < self.lm_top_p <= 1:
            problems.append("--lm-top-p must be in (0, 1]")
        if self.lm_timeout <= 0:
            problems.append("--lm-timeout must be positive")
        if self.lm_max_tokens < 1:
            problems.append("--lm-max-tokens must be at least 1")
        if self.tune_epochs < 1:
            problems.append("--tune-epochs must be at least 1")
        if any(b <= a for a, b in zip(self.rungs, self.rungs[1:], strict=False)) or any(r < 1 for r in self.rungs):
            problems.append("--rungs must be increasing positive step counts, e.g. 500,2000,8000")
        if self.eta < 2:
            problems.append("--eta must be at least 2")
        if self.repeats < 1:
            problems.append("--repeats must be at least 1")
        if self.select_on not in SELECT_ON:
            problems.append(f"--select-on must be one of {', '.join(SELECT_ON)}")
        if self.selection not in SELECTIONS:
            problems.append(f"--selection must be one of {', '.join(SELECTIONS)}")
        problems += self._seed_program_problems()
        if problems:
            raise SearchConfigError("; ".join(problems))

    def _seed_program_problems(self) -> list[str]:
        from .seeds import list_seeds

        if not self.seed_programs:
            return []
        known = [s.name for s in list_seeds(self.task, self.framework)]
        unknown = [name for name in self.seed_programs if name not in known]
        if not unknown:
            return []
        return [f"--seed-programs: no seed program {', '.join(map(repr, unknown))} for {self.task} / {self.framework} "
                f"(it has: {', '.join(known) or 'none'})"]

    @property
    def total_rounds(self) -> int:
        return 1 if self.mode == "few-shot" else self.rounds

    @property
    def prompts_per_round(self) -> int:
        # the few-shot ablation spends the whole budget in one round from the seeds
        return self.prompts * (self.rounds if self.mode == "few-shot" else 1)

    @property
    def multi_fidelity(self) -> bool:
        """Rungs or repeats: a child's evaluations are stored one per rung and repeat (store.evaluations)."""
        return bool(self.rungs) or self.repeats > 1

    @property
    def rung_steps(self) -> tuple[int, ...]:
        """Each rung's training steps; without --rungs, one rung of --max-steps (0: the task's recipe)."""
        return self.rungs or (self.max_steps,)

    def save(self, run_dir: Path) -> None:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / CONFIG_NAME).write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, run_dir: Path) -> SearchConfig:
        data: dict[str, Any] = json.loads((run_dir / CONFIG_NAME).read_text())
        known = {f.name for f in fields(cls)}
        data = {k: v for k, v in data.items() if k in known}
        data["temperatures"] = tuple(data.get("temperatures", TEMPERATURES))
        data["rungs"] = tuple(data.get("rungs", ()))
        return cls(**data)

    def with_changes(self, **changes: Any) -> SearchConfig:
        return replace(self, **changes)

    def lm_options(self) -> dict[str, Any]:
        """What make_lm needs besides the spec, for this back-end."""
        if self.lm.startswith("hf:"):
            from .lm.hf import TuningConfig

            return {"dtype": self.lm_dtype, "threads": self.lm_threads, "prompt_style": self.prompt_style,
                    "max_new_tokens": self.lm_max_tokens, "top_p": self.lm_top_p,
                    "tuning": TuningConfig(epochs=self.tune_epochs, max_examples=self.tune_examples,
                                           max_length=self.tune_length)}
        if self.lm.startswith("openai:"):
            return {"prompt_style": self.prompt_style, "max_tokens": self.lm_max_tokens, "timeout": self.lm_timeout,
                    "top_p": self.lm_top_p}
        return {}


def flag_fields() -> list[Any]:
    """SearchConfig's settings that are command-line flags, in declaration order."""
    return [f for f in fields(SearchConfig) if "help" in f.metadata]


def add_config_flags(parser: argparse.ArgumentParser, *, only: tuple[str, ...] | None = None,
                     defaults: dict[str, Any] | None = None) -> None:
    """`--<setting>` for every flag field (or those in `only`), typed and documented from the field;
    `defaults` overrides a field's default (the demo's smaller budget)."""
    defaults = defaults or {}
    for f in flag_fields():
        if only is not None and f.name not in only:
            continue
        default = defaults.get(f.name, f.default)
        parser.add_argument(f"--{f.name.replace('_', '-')}", type=f.metadata["parse"] or type(f.default),
                            default=default,
                            choices=f.metadata["choices"], help=f"{f.metadata['help']} (default: {default})")


def config_from_args(args: argparse.Namespace, **given: Any) -> SearchConfig:
    """A SearchConfig from parsed flags (add_config_flags) and the settings `given` directly."""
    values = {f.name: getattr(args, f.name) for f in flag_fields() if hasattr(args, f.name)}
    return SearchConfig(**{**values, **given})
