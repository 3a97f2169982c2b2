"""EvoPrompting: LM-driven neural-architecture search with a sandboxed evaluator."""

__version__ = "0.1.0"
