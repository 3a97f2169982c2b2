"""LM back-ends behind one interface, chosen by a spec string:

- `hf:MODEL_PATH_OR_ID`: a local Hugging Face causal LM (tunable with PEFT prompt-tuning);
- `openai:BASE_URL#MODEL`: an OpenAI-compatible completions/chat server (vLLM, llama.cpp, Ollama);
- `mutation`: a syntax-tree mutation and crossover operator (no LM; baseline and offline fallback).
"""

from __future__ import annotations

from .base import LanguageModel, LMConfigError, LMError, TuneReport


def make_lm(spec: str, **options: object) -> LanguageModel:
    spec = spec.strip()
    if spec == "mutation" or spec.startswith("mutation:"):
        from ..operators.mutation import MutationLM

        return MutationLM(spec)
    if spec.startswith("hf:"):
        from .hf import HuggingFaceLM

        return HuggingFaceLM(spec, **options)  # type: ignore[arg-type]
    if spec.startswith("openai:"):
        from .openai_backend import OpenAICompatibleLM

        return OpenAICompatibleLM(spec, **options)  # type: ignore[arg-type]
    raise LMConfigError(f"unknown LM spec {spec!r}; use hf:MODEL_PATH_OR_ID, openai:BASE_URL#MODEL or mutation")


__all__ = ["LMConfigError", "LMError", "LanguageModel", "TuneReport", "make_lm"]
