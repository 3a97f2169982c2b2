"""Tiny causal LMs built here, never downloaded: for tests and offline machines.

A byte-level BPE tokenizer is trained on a corpus (e.g. the seed programs) and a model is made from
a config with random weights: GPT-2 style (learned absolute positions) or Llama style (rotary
positions). Random weights never write code that parses; `train_texts` trains the model briefly
on the ends of those texts (e.g. prompts in the search's format followed by a program's body), so
that it writes programs that parse and train, as a real code model would.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

EOT = "<|endoftext|>"


def build_tiny_model(out_dir: Path, corpus: list[str], *, arch: str = "gpt2", vocab_size: int = 512,
                     layers: int = 2, width: int = 64, context: int = 1024, seed: int = 0,
                     train_texts: list[str] | None = None, train_steps: int = 200, window: int = 256,
                     lr: float = 3e-3) -> Path:
    """Write a loadable model folder (config, weights, tokenizer) to `out_dir`; returns it."""
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast

    out_dir.mkdir(parents=True, exist_ok=True)
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(corpus, vocab_size=vocab_size, min_frequency=1, special_tokens=[EOT])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token=EOT, eos_token=EOT, unk_token=EOT,
                                        pad_token=EOT)
    tokenizer.save_pretrained(str(out_dir))
    torch.manual_seed(seed)
    model = _make_model(arch, len(tokenizer), tokenizer.eos_token_id, layers, width, context)
    if train_texts:
        _train_on_endings(model, tokenizer, train_texts, train_steps, window, lr, seed)
    model.save_pretrained(str(out_dir))
    return out_dir


def _make_model(arch: str, vocab: int, eos: int, layers: int, width: int, context: int) -> Any:
    if arch == "gpt2":
        from transformers import GPT2Config, GPT2LMHeadModel

        return GPT2LMHeadModel(GPT2Config(vocab_size=vocab, n_positions=context, n_embd=width, n_layer=layers,
                                          n_head=2, bos_token_id=eos, eos_token_id=eos))
    if arch == "llama":
        from transformers import LlamaConfig, LlamaForCausalLM

        return LlamaForCausalLM(LlamaConfig(vocab_size=vocab, hidden_size=width, intermediate_size=2 * width,
                                            num_hidden_layers=layers, num_attention_heads=2, num_key_value_heads=2,
                                            max_position_embeddings=context, bos_token_id=eos, eos_token_id=eos,
                                            pad_token_id=eos))
    raise ValueError(f"unknown tiny architecture {arch!r}; use gpt2 or llama")


def _train_on_endings(model: Any, tokenizer: Any, texts: list[str], steps: int, window: int, lr: float,
                      seed: int) -> None:
    """Next-token training on the last `window` tokens of the texts, 4 texts a step."""
    import torch

    rng = random.Random(seed)
    endings = [tokenizer(text).input_ids[-window:] for text in texts]
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    model.train()
    for _ in range(steps):
        batch = [rng.choice(endings) for _ in range(4)]
        width = min(len(b) for b in batch)
        x = torch.tensor([b[-width:] for b in batch])
        loss = model(input_ids=x, labels=x).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
