"""Limits and constants of the API that the server enforces and the SDK respects: one definition,
imported by both sides."""

from __future__ import annotations

MAX_CODE_BYTES = 64 * 1024  # one candidate program's source, UTF-8
MAX_BATCH = 1024  # requests in one EvaluateBatch
# gRPC messages either way; the SDK cuts batches so that their code stays under half of it
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
