"""A run directory's database: every prompt and candidate of a search, and what became of it.

One SQLite file (WAL) in the run directory, written as the run goes, so a run killed at any moment
resumes from it: a prompt marked generated is never sampled again, a candidate with a result is
never evaluated again. Tables:

- `candidates`: seeds (round 0) and children: code, parents, prompt, raw LM output, temperature,
  evaluation result and fitness. `state` is generated -> evaluated | duplicate | invalid.
- `prompts`: the planned prompts of each round (parents, temperature); `state` planned -> generated.
- `rounds`: the parents chosen after each round and the prompt-tuning outcome.
- `events`: LM and evaluator failures, recorded and survived.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evoprompt.sdk.types import EvaluationResult

SCHEMA = """
CREATE TABLE IF NOT EXISTS candidates (
    id INTEGER PRIMARY KEY,
    round INTEGER NOT NULL,
    prompt_index INTEGER,
    sample_index INTEGER,
    kind TEXT NOT NULL,                 -- seed | child
    name TEXT,                          -- seeds: their name
    code TEXT NOT NULL,
    code_sha256 TEXT NOT NULL,
    parents TEXT NOT NULL DEFAULT '[]', -- JSON list of candidate ids
    lm_output TEXT,
    temperature REAL,
    request_id TEXT UNIQUE,
    state TEXT NOT NULL,                -- generated | evaluated | duplicate | invalid
    status TEXT,
    val_accuracy REAL,
    test_accuracy REAL,
    num_params INTEGER,
    fitness REAL,                       -- NULL unless OK and val_error < alpha
    result TEXT,                        -- EvaluateResponse as JSON
    message TEXT,
    created REAL NOT NULL,
    evaluated REAL,
    submissions INTEGER NOT NULL DEFAULT 0, -- times sent to the evaluator (resume re-sends unfinished ones)
    UNIQUE (round, prompt_index, sample_index)
);
CREATE TABLE IF NOT EXISTS prompts (
    round INTEGER NOT NULL,
    prompt_index INTEGER NOT NULL,
    parents TEXT NOT NULL,
    temperature REAL NOT NULL,
    text TEXT NOT NULL,
    state TEXT NOT NULL,                -- planned | generated | failed
    generations INTEGER NOT NULL DEFAULT 0, -- times sampling started (resume re-samples unfinished ones)
    PRIMARY KEY (round, prompt_index)
);
CREATE TABLE IF NOT EXISTS rounds (
    round INTEGER PRIMARY KEY,
    parents_in TEXT NOT NULL,           -- parents the round's prompts drew from
    parents_out TEXT,                   -- parents chosen for the next round
    tune_losses TEXT,                   -- JSON list, per epoch
    soft_prompt TEXT,
    state TEXT NOT NULL,                -- started | evaluated | done
    started REAL NOT NULL,
    finished REAL
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    time REAL NOT NULL,
    round INTEGER,
    kind TEXT NOT NULL,
    message TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class Candidate:
    id: int
    round: int
    kind: str
    name: str | None
    code: str
    parents: tuple[int, ...]
    state: str
    status: str | None
    val_accuracy: float | None
    test_accuracy: float | None
    num_params: int | None
    fitness: float | None
    request_id: str | None
    temperature: float | None
    prompt_index: int | None
    sample_index: int | None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Candidate:
        return cls(row["id"], row["round"], row["kind"], row["name"], row["code"], tuple(json.loads(row["parents"])),
                   row["state"], row["status"], row["val_accuracy"], row["test_accuracy"], row["num_params"],
                   row["fitness"], row["request_id"], row["temperature"], row["prompt_index"], row["sample_index"])


class RunStore:
    """Thread-safe access to one run's database."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _write(self, sql: str, args: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        with self._lock:
            return self._db.execute(sql, args)

    def _read(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    # -- candidates -----------------------------------------------------------------------------
    def add_candidate(self, *, round: int, kind: str, code: str, code_sha256: str, request_id: str | None,
                      state: str = "generated", name: str | None = None, parents: tuple[int, ...] = (),
                      prompt_index: int | None = None, sample_index: int | None = None,
                      lm_output: str | None = None, temperature: float | None = None,
                      message: str | None = None) -> int:
        cur = self._write(
            "INSERT INTO candidates (round, prompt_index, sample_index, kind, name, code, code_sha256, parents,"
            " lm_output, temperature, request_id, state, message, created) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (round, prompt_index, sample_index, kind, name, code, code_sha256, json.dumps(list(parents)),
             lm_output, temperature, request_id, state, message, time.time()),
        )
        assert cur.lastrowid is not None
        return cur.lastrowid

    def record_result(self, candidate_id: int, result: EvaluationResult, fitness: float | None) -> None:
        """Write an evaluation's result once; a second write for the same candidate is a bug."""
        cur = self._write(
            "UPDATE candidates SET state='evaluated', status=?, val_accuracy=?, test_accuracy=?, num_params=?,"
            " fitness=?, result=?, message=?, evaluated=? WHERE id=? AND state='generated'",
            (result.status.name, result.val_accuracy, result.test_accuracy, result.num_params, fitness,
             json.dumps(result.to_dict()), result.message[:2000], time.time(), candidate_id),
        )
        if cur.rowcount != 1:
            raise RuntimeError(f"candidate {candidate_id} was already evaluated")

    def candidates(self, where: str = "1", args: tuple[Any, ...] = ()) -> list[Candidate]:
        return [Candidate.from_row(r) for r in self._read(f"SELECT * FROM candidates WHERE {where} ORDER BY id", args)]

    def by_ids(self, ids: tuple[int, ...] | list[int]) -> dict[int, Candidate]:
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        return {c.id: c for c in self.candidates(f"id IN ({marks})", tuple(ids))}

    def known_hashes(self) -> set[str]:
        return {r[0] for r in self._read("SELECT code_sha256 FROM candidates")}

    def result(self, candidate_id: int) -> dict[str, Any] | None:
        rows = self._read("SELECT result FROM candidates WHERE id=?", (candidate_id,))
        return json.loads(rows[0][0]) if rows and rows[0][0] else None

    def raw(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        """Read-only queries for reports and tests."""
        return self._read(sql, args)

    # -- prompts --------------------------------------------------------------------------------
    def plan_prompt(self, round: int, index: int, parents: tuple[int, ...], temperature: float, text: str) -> None:
        self._write("INSERT OR IGNORE INTO prompts (round, prompt_index, parents, temperature, text, state)"
                    " VALUES (?,?,?,?,?, 'planned')",
                    (round, index, json.dumps(list(parents)), temperature, text))

    def prompts(self, round: int) -> Iterator[sqlite3.Row]:
        yield from self._read("SELECT * FROM prompts WHERE round=? ORDER BY prompt_index", (round,))

    def mark_prompt(self, round: int, index: int, state: str) -> None:
        self._write("UPDATE prompts SET state=? WHERE round=? AND prompt_index=?", (state, round, index))

    def begin_generation(self, round: int, index: int) -> None:
        self._write("UPDATE prompts SET generations=generations+1 WHERE round=? AND prompt_index=?", (round, index))

    def add_generation(self, round: int, index: int, children: list[dict[str, Any]]) -> list[int]:
        """Store a prompt's children and mark it generated, atomically: a crash leaves neither."""
        ids = []
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for child in children:
                    cur = self._db.execute(
                        "INSERT INTO candidates (round, prompt_index, sample_index, kind, code, code_sha256, parents,"
                        " lm_output, temperature, request_id, state, message, created)"
                        " VALUES (?,?,?,'child',?,?,?,?,?,?,?,?,?)",
                        (round, index, child["sample_index"], child["code"], child["code_sha256"],
                         json.dumps(list(child["parents"])), child["lm_output"], child["temperature"],
                         child["request_id"], child["state"], child.get("message"), time.time()),
                    )
                    ids.append(cur.lastrowid)
                self._db.execute("UPDATE prompts SET state='generated' WHERE round=? AND prompt_index=?",
                                 (round, index))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return ids

    def mark_submitted(self, candidate_id: int) -> None:
        self._write("UPDATE candidates SET submissions=submissions+1 WHERE id=?", (candidate_id,))

    # -- rounds ---------------------------------------------------------------------------------
    def start_round(self, round: int, parents_in: tuple[int, ...]) -> None:
        self._write("INSERT OR IGNORE INTO rounds (round, parents_in, state, started) VALUES (?,?, 'started', ?)",
                    (round, json.dumps(list(parents_in)), time.time()))

    def round(self, round: int) -> sqlite3.Row | None:
        rows = self._read("SELECT * FROM rounds WHERE round=?", (round,))
        return rows[0] if rows else None

    def finish_evaluation(self, round: int, parents_out: tuple[int, ...]) -> None:
        self._write("UPDATE rounds SET parents_out=?, state='evaluated' WHERE round=?",
                    (json.dumps(list(parents_out)), round))

    def finish_round(self, round: int, tune_losses: list[float] | None, soft_prompt: str | None) -> None:
        self._write("UPDATE rounds SET tune_losses=?, soft_prompt=?, state='done', finished=? WHERE round=?",
                    (json.dumps(tune_losses) if tune_losses is not None else None, soft_prompt, time.time(), round))

    def rounds(self) -> list[sqlite3.Row]:
        return self._read("SELECT * FROM rounds ORDER BY round")

    def used_parents(self) -> set[int]:
        used: set[int] = set()
        for row in self._read("SELECT parents_in FROM rounds"):
            used.update(json.loads(row[0]))
        return used

    # -- events ---------------------------------------------------------------------------------
    def event(self, kind: str, message: str, round: int | None = None) -> None:
        self._write("INSERT INTO events (time, round, kind, message) VALUES (?,?,?,?)",
                    (time.time(), round, kind, message[:4000]))

    def events(self) -> list[sqlite3.Row]:
        return self._read("SELECT * FROM events ORDER BY id")
