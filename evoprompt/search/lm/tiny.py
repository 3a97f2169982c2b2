"""A tiny GPT-2-style model with random weights and a byte-level BPE tokenizer trained on the seed
programs: a real `hf:` model for tests and offline machines, built in seconds, never downloaded."""

from __future__ import annotations

from pathlib import Path


def build_tiny_model(out_dir: Path, corpus: list[str], *, vocab_size: int = 512, layers: int = 2,
                     width: int = 64, context: int = 1024, seed: int = 0) -> Path:
    """Write a loadable model folder (config, weights, tokenizer) to `out_dir`; returns it."""
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
    GPT2LMHeadModel(config).save_pretrained(str(out_dir))
    return out_dir
