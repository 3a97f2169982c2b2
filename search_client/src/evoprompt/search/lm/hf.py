"""`hf:MODEL`: a local Hugging Face causal LM (a hub id, a local folder, or a `.gguf` file converted
once to safetensors; see weights.py), sampled in batches with the KV cache on CPU or GPU, and
prompt-tuned with PEFT between rounds (the paper's soft prompt: 16 virtual tokens, 5 epochs, batch
16, learning rate 0.1; on a CPU, `max_examples` and `max_length` bound a round's tuning time)."""

from __future__ import annotations

import asyncio
import logging
import math
import os
import random
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import DTYPES, PROMPT_STYLES
from ..prompt import Prompt, chat_messages, chat_tuning_messages, cut_at_stop
from .base import LanguageModel, LMConfigError, LMError, TuneReport, Usage
from .weights import resolve_weights

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class TuningConfig:
    num_virtual_tokens: int = 16
    epochs: int = 5
    batch_size: int = 16
    learning_rate: float = 0.1
    #: at most this many texts per round (the lowest-fitness ones are dropped first); 0: all
    max_examples: int = 0
    #: texts are cut to this many tokens (0: the model's context)
    max_length: int = 0


def default_threads() -> int:
    return max(1, (os.cpu_count() or 2) // 2)


class HuggingFaceLM(LanguageModel):
    tunable = True

    def __init__(self, spec: str, *, device: str = "auto", max_new_tokens: int = 512, batch_size: int = 8,
                 tuning: TuningConfig | None = None, dtype: str = "float32", threads: int = 0,
                 prompt_style: str = "completion", top_p: float = 0.95) -> None:
        super().__init__(spec)
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        name = spec.removeprefix("hf:")
        if not name:
            raise LMConfigError("the hf back-end needs a model: hf:PATH_OR_HUB_ID_OR_GGUF")
        if dtype not in DTYPES:
            raise LMConfigError(f"the hf back-end's dtype must be one of {', '.join(DTYPES)}, not {dtype!r}")
        if prompt_style not in PROMPT_STYLES:
            raise LMConfigError(f"the prompt style must be one of {', '.join(PROMPT_STYLES)}, not {prompt_style!r}")
        # half the cores by default: the search's own evaluator trains children on the same machine,
        # and torch's OpenMP threads degrade badly when oversubscribed (measured on 2 cores with two
        # sandboxes training: 2 threads sampled 0.36 tokens/s, 1 thread 1.7)
        self.threads = threads or default_threads()
        torch.set_num_threads(self.threads)
        try:
            source = resolve_weights(name)
            self.tokenizer = AutoTokenizer.from_pretrained(source)
            model = AutoModelForCausalLM.from_pretrained(source, dtype=getattr(torch, dtype))
        except LMConfigError:
            raise
        except Exception as exc:  # OSError offline, ValueError for unknown architectures, ...
            raise LMConfigError(f"cannot load the language model {name!r}: {exc}".splitlines()[0]) from None
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        self.model: Any = model.to(self.device).eval()
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.tokenizer.padding_side = "left"
        self.has_chat_template = bool(getattr(self.tokenizer, "chat_template", None))
        if prompt_style == "chat" and not self.has_chat_template:
            raise LMConfigError(f"--prompt-style chat needs a model with a chat template; {name!r} has none")
        self.prompt_style = prompt_style
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size
        # nucleus sampling: the paper samples a 62B model by temperature alone; a 0.1-0.5B model's
        # long tail at temperature 0.8-1.0 writes prose instead of code
        self.top_p = top_p
        self.tuning = tuning or TuningConfig()
        self.peft_model: Any = None
        self.sampled_with_soft_prompt: list[bool] = []  # one entry per generate call, for tests and logs
        self._lock = threading.Lock()  # one generate or tune at a time on the weights
        self.context = int(getattr(model.config, "max_position_embeddings", 0)
                           or getattr(model.config, "n_positions", 2048))

    # -- sampling -------------------------------------------------------------------------------
    async def generate(self, prompt: Prompt, num_samples: int, temperature: float, seed: int,
                       usage: Usage | None = None) -> list[str]:
        return await asyncio.to_thread(self._generate, self.render(prompt), num_samples, temperature, seed,
                                       usage if usage is not None else Usage(), prompt.stop)

    def render(self, prompt: Prompt) -> str:
        """The text the model continues: the paper's completion prompt, or the chat template's
        rendering of the same examples and targets (ending where the assistant's answer starts)."""
        if self.prompt_style == "completion":
            return prompt.text
        return str(self.tokenizer.apply_chat_template(chat_messages(prompt), add_generation_prompt=True,
                                                      tokenize=False))

    def _generate(self, text: str, num_samples: int, temperature: float, seed: int, usage: Usage,
                  stop_texts: tuple[str, ...]) -> list[str]:
        import torch

        virtual = self._virtual_tokens()
        # a chat rendering carries its own special tokens
        ids = self.tokenizer(text, return_tensors="pt", add_special_tokens=self.prompt_style != "chat").input_ids
        ids, new_tokens = self._fit(ids, virtual)
        ids = ids.to(self.device)
        soft = self.peft_model is not None
        self.sampled_with_soft_prompt.append(soft)
        outputs: list[str] = []
        with self._lock, torch.no_grad():
            started = time.monotonic()
            torch.manual_seed(seed)
            inputs = self._soft_prompted(ids) if soft else {"input_ids": ids}
            length = next(iter(inputs.values())).shape[1]  # virtual + prompt tokens
            # from inputs_embeds, generate's ids are the new tokens only; from input_ids, prompt + new
            stop = _StopAtText(self.tokenizer, stop_texts, 0 if soft else ids.shape[1])
            while len(outputs) < num_samples:
                count = min(self.batch_size, num_samples - len(outputs))
                try:
                    generated = self.model.generate(
                        **inputs, attention_mask=torch.ones((1, length), dtype=torch.long, device=self.device),
                        do_sample=True, temperature=max(temperature, 1e-3), top_k=0, top_p=self.top_p,
                        max_new_tokens=new_tokens,
                        num_return_sequences=count, pad_token_id=self.tokenizer.pad_token_id,
                        stopping_criteria=[stop],
                    )
                except IndexError as exc:  # an embedding lookup (position or token id) out of range
                    raise LMError(
                        f"sampling failed: an index ran past the model's embeddings ({exc}) with a prompt of "
                        f"{ids.shape[1]} tokens, {virtual} virtual tokens and {new_tokens} new tokens for a "
                        f"context of {self.context} positions") from None
                except (RuntimeError, ValueError) as exc:
                    raise LMError(f"sampling failed: {exc}".splitlines()[0]) from None
                # from input_ids the output repeats the prompt; from inputs_embeds it is the new tokens only
                usage.prompt_tokens += length
                for row in (generated[:, ids.shape[1]:] if not soft else generated):
                    usage.completion_tokens += self._sampled_length(row)
                    outputs.append(cut_at_stop(self.tokenizer.decode(row, skip_special_tokens=True), stop_texts))
            usage.seconds += time.monotonic() - started
        return outputs

    def _sampled_length(self, row: Any) -> int:
        """Tokens sampled for one sequence: up to and including its end token (the rest is padding)."""
        ends = (row == self.tokenizer.pad_token_id).nonzero()
        if self.tokenizer.eos_token_id is not None:
            ends = (row == self.tokenizer.eos_token_id).nonzero() if not len(ends) else ends
        return int(ends[0, 0]) + 1 if len(ends) else int(row.shape[0])

    def _virtual_tokens(self) -> int:
        """How many positions the soft prompt takes (0 without one); a loaded one may differ from the config."""
        if self.peft_model is None:
            return 0
        return int(self.peft_model.active_peft_config.num_virtual_tokens)

    def _fit(self, ids: Any, virtual: int) -> tuple[Any, int]:
        """Cut the prompt (keeping its end) so that the soft prompt's virtual tokens, the prompt and the
        new tokens fit in the model's positions; returns the prompt's ids and how many tokens to sample."""
        room = self.context - virtual  # positions left for the prompt and what is sampled
        if ids.shape[1] == 0:
            raise LMError("nothing to sample from: the prompt is empty")
        if room < 2:
            raise LMError(f"the model's context of {self.context} positions leaves no room for a prompt and new "
                          f"tokens after the soft prompt's {virtual} virtual tokens")
        keep = max(min(16, room - 1), room - self.max_new_tokens)
        ids = ids[:, -keep:]  # keep the end
        new_tokens = min(self.max_new_tokens, room - ids.shape[1])
        if new_tokens <= 0:
            raise LMError(f"the prompt fills the model's context of {self.context} tokens")
        return ids, new_tokens

    def _soft_prompted(self, ids: Any) -> dict[str, Any]:
        """The soft prompt's embeddings followed by the prompt's, for the base model's generate.

        peft's own generate cannot be used for prompt tuning with transformers 5: its
        prepare_inputs_for_generation looks for the KV cache under `past_key_values`, which
        transformers 5 renamed `cache`, so it re-prepends the virtual tokens at every decoding step
        (17 positions a step for 16 virtual tokens) and GPT-2's positions run past its context.
        Embedding the soft prompt once, here, samples as the soft prompt was trained (virtual
        tokens, then the prompt, positions counted from 0) on any version."""
        import torch

        prompt = self.peft_model.get_prompt(batch_size=ids.shape[0])
        embeds = self.model.get_input_embeddings()(ids)
        return {"inputs_embeds": torch.cat((prompt.to(device=embeds.device, dtype=embeds.dtype), embeds), dim=1)}

    # -- prompt-tuning --------------------------------------------------------------------------
    def tuning_text(self, task: str, opening: str, num_params: int, val_accuracy: float, code: str) -> str:
        """In the chat style, a request for the child's metrics answered with its program (the soft
        prompt then learns what the model is asked at sampling); else the paper's format."""
        if self.prompt_style != "chat":
            return super().tuning_text(task, opening, num_params, val_accuracy, code)
        messages = chat_tuning_messages(task, opening, num_params, val_accuracy, code)
        return str(self.tokenizer.apply_chat_template(messages, tokenize=False))

    def _ensure_peft(self) -> Any:
        if self.peft_model is None:
            from peft import PromptTuningConfig, PromptTuningInit, TaskType, get_peft_model

            config = PromptTuningConfig(task_type=TaskType.CAUSAL_LM, prompt_tuning_init=PromptTuningInit.RANDOM,
                                        num_virtual_tokens=self.tuning.num_virtual_tokens)
            self.peft_model = get_peft_model(self.model, config)
        return self.peft_model

    def load_soft_prompt(self, path: Path) -> None:
        from peft import PeftModel

        with self._lock:
            # peft refuses is_trainable=True for prompt-learning adapters; later rounds tune it on
            self.peft_model = PeftModel.from_pretrained(self.model, str(path))
            for param in self.peft_model.prompt_encoder.parameters():
                param.requires_grad_(True)
            self.peft_model.eval()

    def tune(self, texts: list[str], out_dir: Path) -> TuneReport:
        """Train the soft prompt (only it) on `texts` (best first: `max_examples` keeps the head).
        The loss on them is measured before and after each epoch, and the prompt with the lowest is
        kept: a few steps at a prompt-tuning learning rate can overshoot (measured with SmolLM2: 1.687
        -> 1.671 -> 2.113), and a round must not hand on a prompt worse than the one it began with."""
        import torch

        if not texts:
            raise LMError("nothing to prompt-tune on")
        if self.tuning.max_examples:
            texts = texts[: self.tuning.max_examples]
        started = time.monotonic()
        with self._lock:
            model = self._ensure_peft()
            budget = self.context - self.tuning.num_virtual_tokens
            if self.tuning.max_length:
                budget = min(budget, self.tuning.max_length)
            encoded = [self.tokenizer(t, truncation=True, max_length=budget).input_ids for t in texts]
            params = [p for p in model.parameters() if p.requires_grad]
            optimizer = torch.optim.AdamW(params, lr=self.tuning.learning_rate, weight_decay=0.0)
            rng = random.Random(len(texts))
            before = self._mean_loss(model, encoded)
            best, kept = before, [p.detach().clone() for p in params]
            epochs: list[float] = []
            for _ in range(self.tuning.epochs):
                model.train()
                order = list(range(len(encoded)))
                rng.shuffle(order)
                total, batches = 0.0, 0
                for start in range(0, len(order), self.tuning.batch_size):
                    loss = self._batch_loss(model, [encoded[i] for i in order[start:start + self.tuning.batch_size]])
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
                    total, batches = total + float(loss.detach()), batches + 1
                epochs.append(total / batches)
                measured = self._mean_loss(model, encoded)
                if measured < best:
                    best, kept = measured, [p.detach().clone() for p in params]
            with torch.no_grad():
                for param, value in zip(params, kept, strict=True):
                    param.copy_(value)
            after = best
            out_dir.mkdir(parents=True, exist_ok=True)
            model.save_pretrained(str(out_dir))
        seconds = time.monotonic() - started
        log.info("prompt-tuned on %d texts in %.0f s: loss %.3f -> %.3f", len(texts), seconds, before, after)
        return TuneReport(losses=(before, *epochs, after), path=out_dir, examples=len(texts), seconds=seconds)

    def _batch_loss(self, model: Any, batch: list[list[int]]) -> Any:
        import torch

        width = max(len(x) for x in batch)
        pad = self.tokenizer.pad_token_id
        ids = torch.tensor([x + [pad] * (width - len(x)) for x in batch], device=self.device)
        mask = torch.tensor([[1] * len(x) + [0] * (width - len(x)) for x in batch], device=self.device)
        labels = ids.masked_fill(mask == 0, -100)
        return model(input_ids=ids, attention_mask=mask, labels=labels).loss

    def _mean_loss(self, model: Any, encoded: list[list[int]]) -> float:
        import torch

        model.eval()
        with torch.no_grad():
            losses = [float(self._batch_loss(model, encoded[i:i + self.tuning.batch_size]))
                      for i in range(0, len(encoded), self.tuning.batch_size)]
        value = sum(losses) / len(losses)
        return value if math.isfinite(value) else float("inf")


class _StopAtText:
    """Stops each sequence once its new text holds one of `texts` (a completion model starting the
    next example). transformers' own `stop_strings` does the same but made sampling 4x slower here
    (1.5 against 5.9 tokens/s on 2 cores); this decodes only the last few tokens of each sequence."""

    def __init__(self, tokenizer: Any, texts: tuple[str, ...], prompt_length: int, window: int = 8) -> None:
        self.tokenizer, self.texts, self.start, self.window = tokenizer, texts, prompt_length, window

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        new = input_ids[:, self.start:] if input_ids.shape[1] > self.start else input_ids[:, :0]
        tails = self.tokenizer.batch_decode(new[:, -self.window:], skip_special_tokens=True)
        return torch.tensor([any(t in tail for t in self.texts) for tail in tails], dtype=torch.bool,
                            device=input_ids.device)
