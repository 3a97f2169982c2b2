"""Subcommands of `evoprompt` that the evaluator brings: serve, images."""
