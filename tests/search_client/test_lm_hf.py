"""The hf back-end on a tiny GPT-2 (learned positions, a hard context): sampling with a soft prompt
near and past the context, and its errors."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import pytest

from evoprompt.search.lm.base import LMConfigError, LMError, Usage
from evoprompt.search.lm.hf import HuggingFaceLM, TuningConfig, _StopAtText
from evoprompt.search.prompt import Prompt, cut_at_stop
from tests.support.tiny_lm import build_tiny_model

CONTEXT = 64
VIRTUAL = 16
CORPUS = [f"def f{i}(x):\n    return x * {i} + {i % 7}\n" for i in range(40)]


def prompt(text: str) -> Prompt:
    return Prompt(text=text, task="mnist1d", examples=(), target_num_params=1000, target_val_accuracy=0.9,
                  preamble="", opening="")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("gpt2"), CORPUS, arch="gpt2", vocab_size=300, layers=1,
                            width=32, context=CONTEXT)


@pytest.fixture(scope="module")
def soft_prompt(model_dir, tmp_path_factory):
    lm = HuggingFaceLM(f"hf:{model_dir}", device="cpu", max_new_tokens=24,
                       tuning=TuningConfig(num_virtual_tokens=VIRTUAL, epochs=1, batch_size=8))
    lm.tune(CORPUS[:8], tmp_path_factory.mktemp("soft"))
    return lm.peft_model


def make_lm(model_dir, soft_prompt, max_new_tokens: int = 24) -> HuggingFaceLM:
    lm = HuggingFaceLM(f"hf:{model_dir}", device="cpu", max_new_tokens=max_new_tokens,
                       tuning=TuningConfig(num_virtual_tokens=VIRTUAL))
    if soft_prompt is not None:
        lm.model, lm.peft_model = soft_prompt.get_base_model(), soft_prompt
    return lm


@contextmanager
def recorded_positions(lm: HuggingFaceLM) -> Iterator[list[int]]:
    """The largest position id GPT-2 looks up in each forward pass."""
    seen: list[int] = []
    hook = lm.model.transformer.wpe.register_forward_pre_hook(lambda _m, args: seen.append(int(args[0].max())))
    try:
        yield seen
    finally:
        hook.remove()


@pytest.mark.parametrize("max_new_tokens", [24, 200])  # 200: more than the context holds
def test_soft_prompt_prompt_and_new_tokens_fit_the_positions(model_dir, soft_prompt, max_new_tokens):
    lm = make_lm(model_dir, soft_prompt, max_new_tokens)
    long = "".join(CORPUS) * 3
    assert len(lm.tokenizer(long).input_ids) > 4 * CONTEXT
    with recorded_positions(lm) as seen:
        outputs = asyncio.run(lm.generate(prompt(long), 3, 0.8, seed=1))
    assert len(outputs) == 3 and lm.sampled_with_soft_prompt == [True]
    kept = max(16, CONTEXT - VIRTUAL - max_new_tokens)  # the end of the prompt
    assert seen[0] == VIRTUAL + kept - 1  # prefill: the soft prompt embedded once, then the prompt's end
    assert seen[1:] == list(range(VIRTUAL + kept, seen[-1] + 1))  # then one position per new token
    assert max(seen) <= CONTEXT - 2  # the last new token is sampled, never looked up: all fits the context


def test_without_soft_prompt_long_prompts_fit_too(model_dir):
    lm = make_lm(model_dir, None)
    with recorded_positions(lm) as seen:
        outputs = asyncio.run(lm.generate(prompt("".join(CORPUS) * 3), 2, 0.8, seed=1))
    assert len(outputs) == 2 and lm.sampled_with_soft_prompt == [False]
    assert seen[0] == CONTEXT - 24 - 1 and max(seen) <= CONTEXT - 2


def test_sampling_sees_the_soft_prompt_as_tuning_did(model_dir, soft_prompt):
    """At every step the sampler scores the next token as peft's own forward pass (the one tuned) does:
    the soft prompt once, before the prompt and what was sampled so far."""
    import torch

    lm = make_lm(model_dir, soft_prompt, max_new_tokens=8)
    ids = lm.tokenizer("".join(CORPUS[:2]), return_tensors="pt").input_ids
    assert VIRTUAL + ids.shape[1] + 8 <= CONTEXT  # nothing cut
    with torch.no_grad():
        out = lm.model.generate(**lm._soft_prompted(ids), attention_mask=torch.ones((1, VIRTUAL + ids.shape[1]),
                                dtype=torch.long), do_sample=True, top_k=0, max_new_tokens=8, min_new_tokens=8,
                                output_logits=True, return_dict_in_generate=True,
                                pad_token_id=lm.tokenizer.pad_token_id)
        new = out.sequences
        assert new.shape == (1, 8)  # from embeddings generate returns the new tokens only
        full = torch.cat((ids, new), dim=1)
        tuned = soft_prompt(input_ids=full, attention_mask=torch.ones_like(full)).logits[0, VIRTUAL:]
    for step, logits in enumerate(out.logits):
        torch.testing.assert_close(logits[0], tuned[ids.shape[1] - 1 + step], rtol=1e-4, atol=1e-4)


def test_a_context_with_no_room_after_the_soft_prompt_is_an_lm_error(model_dir, soft_prompt):
    lm = make_lm(model_dir, soft_prompt)
    lm.context = VIRTUAL + 1
    with pytest.raises(LMError, match="no room"):
        asyncio.run(lm.generate(prompt("def f(x):"), 1, 0.8, seed=0))


def test_an_index_error_in_generate_is_an_lm_error(model_dir, soft_prompt, monkeypatch):
    lm = make_lm(model_dir, soft_prompt)

    def broken(**_kwargs):
        raise IndexError("index out of range in self")

    monkeypatch.setattr(lm.model, "generate", broken)
    with pytest.raises(LMError, match="index ran past the model's embeddings"):
        asyncio.run(lm.generate(prompt("def f(x):"), 1, 0.8, seed=0))


def test_the_chat_style_renders_through_the_models_template(tmp_path):
    """The chat style prompts an instruct model (one with a chat template) through it, and its tuning
    texts are the same conversation answered by the child; the default is the paper's format."""
    from transformers import AutoTokenizer

    from evoprompt.search.prompt import Example, build_prompt
    from evoprompt.search.seeds import list_seeds

    folder = build_tiny_model(tmp_path / "chat", CORPUS, arch="llama", vocab_size=300, layers=1, width=32)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.chat_template = ("{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>{% endfor %}"
                               "{% if add_generation_prompt %}<|assistant|>{% endif %}")
    tokenizer.save_pretrained(folder)
    seeds = {s.name: s.code for s in list_seeds("mnist1d", "torch")}
    p = build_prompt([Example(seeds["cnn"], 5210, 0.918), Example(seeds["mlp"], 15210, 0.65)], "mnist1d")

    chat = HuggingFaceLM(f"hf:{folder}", max_new_tokens=8, prompt_style="chat")
    assert chat.prompt_style == "chat"
    text = chat.render(p)
    assert text.startswith("<|system|>") and text.endswith("<|assistant|>")
    assert "about 4700 parameters" in text and seeds["mlp"].strip() in text
    tuning = chat.tuning_text("mnist1d", "class Model(nn.Module):", 900, 0.8, seeds["mlp"])
    assert "about 900 parameters" in tuning and f"<|assistant|>```python\n{seeds['mlp'].strip()}\n```" in tuning
    assert len(asyncio.run(chat.generate(p, 2, 0.8, seed=0))) == 2

    completion = HuggingFaceLM(f"hf:{folder}", max_new_tokens=8)  # the default, template or not
    assert completion.render(p) == p.text
    assert completion.tuning_text("mnist1d", "", 900, 0.8, "x = 1").startswith('"""Metrics: {\'num_params\': 900')
    with pytest.raises(LMConfigError, match="needs a model with a chat template"):
        HuggingFaceLM(f"hf:{build_tiny_model(tmp_path / 'base', CORPUS, vocab_size=300, layers=1, width=32)}",
                      prompt_style="chat")


def test_a_sequence_stops_at_any_of_the_prompts_stop_texts(model_dir):
    """Each text of `Prompt.stop` ends a sequence (a repair prompt adds its own headers to the metrics
    docstring); the other sequences of the batch go on."""
    lm = make_lm(model_dir, None)
    stop = _StopAtText(lm.tokenizer, ("\ndef", "return x * 3"), prompt_length=0)

    def stops(text: str) -> bool:
        return bool(stop(lm.tokenizer(text, return_tensors="pt").input_ids, None)[0])

    assert stops("def f1(x):\n    return x * 1\n\ndef") and stops("def f3(x):\n    return x * 3")
    assert not stops("def f1(x):\n    return x * 1\n") and not stops("def f4(x):\n    return x * 4")


def test_sampling_stops_at_the_prompts_stop_texts(model_dir):
    """A sequence that writes a stop text is cut there and sampled no further (fewer tokens); the
    random tiny model writes gibberish, so the stop text is a piece of its own first sample."""
    lm = make_lm(model_dir, None, max_new_tokens=40)
    base = prompt("def f1(x):\n")
    free_usage, cut_usage = Usage(), Usage()
    free = asyncio.run(lm.generate(base, 4, 1.0, 7, free_usage))
    text = next(m.group(0) for m in re.finditer(r"[0-9a-z]{2,}", free[0][:20]))
    stopped = replace(base, stop=("never written", text))
    cut = asyncio.run(lm.generate(stopped, 4, 1.0, 7, cut_usage))  # same seed: the same samples, shorter
    assert cut == [cut_at_stop(f, stopped.stop) for f in free] and cut[0] != free[0]
    assert cut_usage.completion_tokens < free_usage.completion_tokens



def test_tuning_keeps_the_soft_prompt_with_the_lowest_loss(model_dir, tmp_path, monkeypatch):
    """Steps that make the loss worse (a prompt-tuning learning rate can overshoot; here the optimizer
    climbs the loss on purpose) are not handed on: the prompt saved, and sampled with, is the one whose
    measured loss the report gives last, never worse than the prompt tuning began with."""
    import functools

    import torch

    monkeypatch.setattr(torch.optim, "AdamW", functools.partial(torch.optim.AdamW, maximize=True))
    lm = HuggingFaceLM(f"hf:{model_dir}", device="cpu", max_new_tokens=24,
                       tuning=TuningConfig(num_virtual_tokens=VIRTUAL, epochs=3, batch_size=8, learning_rate=1.0))
    report = lm.tune(CORPUS[:8], tmp_path / "soft")
    before, *epochs, after = report.losses
    assert epochs[-1] > before + 0.01, report.losses  # the steps did make it worse
    assert after == before, report.losses
    encoded = [lm.tokenizer(t).input_ids for t in CORPUS[:8]]
    assert lm._mean_loss(lm.peft_model, encoded) == pytest.approx(before)
    reloaded = make_lm(model_dir, None)
    reloaded.load_soft_prompt(tmp_path / "soft")
    assert reloaded._mean_loss(reloaded.peft_model, encoded) == pytest.approx(before)
