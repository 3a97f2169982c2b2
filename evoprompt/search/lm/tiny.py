"""A tiny GPT-2-style model with random weights and a byte-level BPE tokenizer trained on the seed
programs: a real `hf:` model for tests and offline machines, built in seconds, never downloaded."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def build_tiny_model(out_dir: Path, corpus: list[str], *, vocab_size: int = 512, layers: int = 2,
                     width: int = 64, context: int = 1024, seed: int = 0, train_steps: int = 0) -> Path:
    """Write a loadable model folder (config, weights, tokenizer) to `out_dir`; returns it.

    With `train_steps` > 0 the random weights are first trained a little on `corpus`, enough for the
    model to write Python that often parses (so a test's pipeline gets evaluable children)."""
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    out_dir.mkdir(parents=True, exist_ok=True)
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(corpus, vocab_size=vocab_size, min_frequency=1, special_tokens=["<|endoftext|>"])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<|endoftext|>", eos_token="<|endoftext|>",
                                        unk_token="<|endoftext|>", pad_token="<|endoftext|>")
    tokenizer.save_pretrained(str(out_dir))
    torch.manual_seed(seed)
    config = GPT2Config(vocab_size=len(tokenizer), n_positions=context, n_embd=width, n_layer=layers, n_head=2,
                        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    model = GPT2LMHeadModel(config)
    if train_steps:
        _pretrain(model, tokenizer, corpus, train_steps, context)
    model.save_pretrained(str(out_dir))
    return out_dir


def _pretrain(model: Any, tokenizer: Any, corpus: list[str], steps: int, context: int) -> None:
    import torch

    ids = [tokenizer(text).input_ids[: context] for text in corpus]
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for step in range(steps):
        batch = [ids[(step * 4 + i) % len(ids)] for i in range(4)]
        width = max(len(x) for x in batch)
        pad = tokenizer.pad_token_id
        input_ids = torch.tensor([x + [pad] * (width - len(x)) for x in batch])
        mask = torch.tensor([[1] * len(x) + [0] * (width - len(x)) for x in batch])
        loss = model(input_ids=input_ids, attention_mask=mask, labels=input_ids.masked_fill(mask == 0, -100)).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
