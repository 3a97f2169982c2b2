"""Result store: every finished evaluation, by request_id and by content key (SQLite, WAL mode).

Contract: `put` is atomic; a request_id maps to exactly one result forever (the first one written
wins, so a retried request can never get a second, different answer). Lookups by content key only
return results whose status is deterministic (status_policy.CACHEABLE). Thread-safe: one connection behind
a lock; SQLite's WAL keeps readers of other processes (reports, tests) off the writer's back.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

from evoprompt.sdk.proto import evaluator_pb2 as pb
from evoprompt.sdk.types import EvaluationResult

from .status_policy import is_cacheable

_SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    request_id TEXT PRIMARY KEY,
    cache_key  TEXT NOT NULL,
    status     TEXT NOT NULL,
    cacheable  INTEGER NOT NULL,
    response   BLOB NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS results_by_key ON results (cache_key, cacheable);
"""


class ResultStore:
    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def get(self, request_id: str) -> EvaluationResult | None:
        with self._lock:
            row = self._db.execute("SELECT response FROM results WHERE request_id = ?", (request_id,)).fetchone()
        return _decode(row[0]) if row else None

    def get_cached(self, cache_key: str) -> EvaluationResult | None:
        with self._lock:
            row = self._db.execute(
                "SELECT response FROM results WHERE cache_key = ? AND cacheable = 1 ORDER BY created_at LIMIT 1",
                (cache_key,),
            ).fetchone()
        return _decode(row[0]) if row else None

    def put(self, cache_key: str, result: EvaluationResult) -> EvaluationResult:
        """Store `result` under its request_id unless one is there; returns the stored result."""
        blob = result.to_proto().SerializeToString()
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO results VALUES (?, ?, ?, ?, ?, ?)",
                (result.request_id, cache_key, result.status.name, int(is_cacheable(result.status)), blob, time.time()),
            )
            row = self._db.execute("SELECT response FROM results WHERE request_id = ?", (result.request_id,)).fetchone()
        return _decode(row[0])

    def matching(self, code_sha256: str, status: str = "") -> list[EvaluationResult]:
        """Stored results whose program's sha256 starts with `code_sha256` (and of `status`, if given)."""
        with self._lock:
            rows = self._db.execute("SELECT response FROM results WHERE status = ? OR ? = ''",
                                    (status, status)).fetchall()
        found = [_decode(row[0]) for row in rows]
        return [r for r in found if r.code_sha256.startswith(code_sha256.lower())]

    def forget(self, request_ids: list[str]) -> int:
        """Drop these results: a request for the same work runs again (a result stored wrongly, say a
        sandbox killed from outside by an older evaluator). Returns how many were dropped."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                dropped = sum(self._db.execute("DELETE FROM results WHERE request_id = ?", (rid,)).rowcount
                              for rid in request_ids)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return dropped

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM results").fetchone()[0])

    def integrity_ok(self) -> bool:
        with self._lock:
            return self._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _decode(blob: bytes) -> EvaluationResult:
    msg = pb.EvaluateResponse()
    msg.ParseFromString(blob)
    return EvaluationResult.from_proto(msg)
