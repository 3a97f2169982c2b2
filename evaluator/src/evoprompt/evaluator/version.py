"""The installed evoprompt-evaluator's version (GetServerInfo reports it)."""

from importlib import metadata

EVALUATOR_VERSION = metadata.version("evoprompt-evaluator")
