"""Operators that make children from parents without a language model."""
