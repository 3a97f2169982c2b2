"""Subcommands of `evoprompt` that the search client brings: search, report, demo."""
