"""A run directory's database: every prompt and candidate of a search, and what became of it.

One SQLite file (WAL) in the run directory, written as the run goes, so a run killed at any moment
resumes from it: a prompt marked generated is never sampled again, a candidate with a result is
never evaluated again. Tables:

- `candidates`: seeds (round 0) and children: code, parents, prompt, raw LM output, temperature,
  evaluation result and fitness. `state` is generated -> evaluated | duplicate | invalid. A
  duplicate names the candidate it repeats (`duplicate_of`: same normalised syntax tree); a
  repaired program names the one it mends (`repair_of`).
- `prompts`: the planned prompts of each round (parents, temperature); `state` planned -> generated.
- `rounds`: the parents chosen after each round and the prompt-tuning outcome.
- `lm_calls`: the LM cost ledger, one row per generate call (a round's prompt or a repair):
  prompt and completion tokens and LM seconds.
- `events`: LM and evaluator failures, recorded and survived.

All SQL and all JSON columns live in this module: callers (the loop, the report) get typed rows from
named queries, so the on-disk format has one reader and one writer.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from evoprompt.sdk.types import EvaluationResult

#: A run directory's files (the store owns the layout; the runner, config and report use these names).
DB_NAME = "run.sqlite3"
CONFIG_NAME = "config.json"
SOFT_PROMPTS_DIR = "soft_prompts"
REPORT_DIR = "report"


class CandidateState(StrEnum):
    """A candidate's life: generated -> evaluated | duplicate | invalid."""

    GENERATED = "generated"
    EVALUATED = "evaluated"
    DUPLICATE = "duplicate"  # the same normalised program as an earlier candidate: never evaluated
    INVALID = "invalid"  # no program could be read from the LM's output


class PromptState(StrEnum):
    PLANNED = "planned"
    GENERATED = "generated"
    FAILED = "failed"


class RoundState(StrEnum):
    STARTED = "started"
    EVALUATED = "evaluated"  # every child has its result and the next parents are chosen
    DONE = "done"  # prompt-tuning finished too

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
    structure TEXT,                     -- normalised syntax-tree hash (program_hash.structural_hash)
    duplicate_of INTEGER,               -- a duplicate: the candidate it repeats
    repair_of INTEGER,                  -- a repair: the candidate it mends
    UNIQUE (round, prompt_index, sample_index)
);
CREATE TABLE IF NOT EXISTS lm_calls (
    id INTEGER PRIMARY KEY,
    round INTEGER NOT NULL,
    prompt_index INTEGER,               -- a round's prompt, or NULL for a repair
    repair_of INTEGER,                  -- the candidate a repair prompt was about
    samples INTEGER NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    seconds REAL NOT NULL,
    time REAL NOT NULL
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
    tune_seconds REAL,                  -- how long prompt-tuning took
    soft_prompt TEXT,
    state TEXT NOT NULL,                -- started | evaluated | done
    started REAL NOT NULL,
    finished REAL
);
CREATE TABLE IF NOT EXISTS evaluations (  -- multi-fidelity runs: one row per rung and repeat of a candidate
    candidate_id INTEGER NOT NULL,
    rung INTEGER NOT NULL,              -- index into the config's rungs
    repeat INTEGER NOT NULL,            -- the training seed is the search's seed + repeat
    steps INTEGER NOT NULL,
    request_id TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL,
    val_accuracy REAL,
    size INTEGER,                       -- num_params + num_state
    result TEXT NOT NULL,               -- EvaluateResponse as JSON
    created REAL NOT NULL,
    PRIMARY KEY (candidate_id, rung, repeat)
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    time REAL NOT NULL,
    round INTEGER,
    kind TEXT NOT NULL,
    message TEXT NOT NULL
);
"""

_INSERT_CANDIDATE = (
    "INSERT INTO candidates (round, prompt_index, sample_index, kind, name, code, code_sha256, parents,"
    " lm_output, temperature, request_id, state, message, created, structure, duplicate_of, repair_of)"
    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
)
#: Columns later versions added, per table, for run databases written before them.
_ADDED_COLUMNS = {"structure": "TEXT", "duplicate_of": "INTEGER", "repair_of": "INTEGER", "rung": "INTEGER",
                  "val_ci": "REAL"}
_ADDED = {"candidates": _ADDED_COLUMNS, "rounds": {"tune_seconds": "REAL"}}


def _ids(raw: str) -> tuple[int, ...]:
    return tuple(json.loads(raw))


def _encode_ids(ids: tuple[int, ...]) -> str:
    return json.dumps(list(ids))


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
    message: str | None
    submissions: int
    structure: str | None = None
    duplicate_of: int | None = None
    repair_of: int | None = None
    #: the evaluator's seconds for this candidate (0 for a cached answer or none yet)
    evaluator_seconds: float = 0.0
    #: the steps the evaluator trained for this candidate (0 for a cached answer or none yet)
    trained_steps: int = 0
    #: multi-fidelity runs: the highest rung it was evaluated at, and the half-width of the 95%
    #: interval of its validation accuracy over the repeats there (None in the paper's loop)
    rung: int | None = None
    val_ci: float | None = None
    #: the verifier's count of what the model holds beyond its trained parameters (buffers, constants)
    num_state: int = 0

    @property
    def size(self) -> int:
        """What the search ranks a model's size on: num_params + num_state (loop.fitness)."""
        return (self.num_params or 0) + self.num_state


@dataclass(frozen=True)
class Evaluation:
    """One training run of a candidate in a multi-fidelity run: its rung, repeat and outcome."""

    candidate_id: int
    rung: int
    repeat: int
    steps: int
    request_id: str
    status: str
    val_accuracy: float | None
    size: int | None
    result: dict[str, Any]

    @property
    def ok(self) -> bool:
        return self.status == "OK"

    @property
    def trained_steps(self) -> int:
        """Steps the evaluator reports it trained (none for a cached answer, or a failure that never
        reached a sandbox: `steps` is only what was asked for)."""
        return _facts(self.result)[1]

    @property
    def evaluator_seconds(self) -> float:
        """The evaluator's wall seconds for it (none when its answer came from the evaluator's cache)."""
        return _facts(self.result)[0]


def _count(value: Any) -> int:
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else 0


def _result_facts(raw: str | None) -> tuple[float, int, int]:
    """(wall seconds, steps trained, num_state) of a stored result's JSON (nothing when unreadable)."""
    try:
        result = json.loads(raw) if raw else {}
    except ValueError:
        return 0.0, 0, 0
    return _facts(result) if isinstance(result, dict) else (0.0, 0, 0)


def _facts(result: dict[str, Any]) -> tuple[float, int, int]:
    """(wall seconds, steps trained, num_state) of a result; no cost for a cached answer or none yet."""
    num_state = _count(result.get("num_state"))
    if result.get("cached"):
        return 0.0, 0, num_state
    seconds = result.get("wall_seconds")
    return float(seconds) if isinstance(seconds, int | float) else 0.0, _count(result.get("steps")), num_state


def _candidate(row: sqlite3.Row) -> Candidate:
    added = {k: row[k] for k in _ADDED_COLUMNS if k in row.keys()}  # absent in older run databases
    seconds, steps, num_state = _result_facts(row["result"])
    return Candidate(row["id"], row["round"], row["kind"], row["name"], row["code"], _ids(row["parents"]),
                     row["state"], row["status"], row["val_accuracy"], row["test_accuracy"], row["num_params"],
                     row["fitness"], row["request_id"], row["temperature"], row["prompt_index"],
                     row["sample_index"], row["message"], row["submissions"], **added,
                     evaluator_seconds=seconds, trained_steps=steps, num_state=num_state)


@dataclass(frozen=True)
class ChildDraft:
    """A sampled child before it has an id: what add_generation stores for one sample."""

    sample_index: int
    code: str
    code_sha256: str
    parents: tuple[int, ...]
    lm_output: str
    temperature: float
    state: str
    message: str | None
    request_id: str
    structure: str | None = None
    duplicate_of: int | None = None


@dataclass(frozen=True)
class LMCall:
    """One generate call's cost (the ledger's row)."""

    round: int
    prompt_index: int | None
    repair_of: int | None
    samples: int
    prompt_tokens: int
    completion_tokens: int
    seconds: float


def _lm_call(row: sqlite3.Row) -> LMCall:
    return LMCall(row["round"], row["prompt_index"], row["repair_of"], row["samples"], row["prompt_tokens"],
                  row["completion_tokens"], row["seconds"])


@dataclass(frozen=True)
class PlannedPrompt:
    round: int
    index: int
    parents: tuple[int, ...]
    temperature: float
    text: str
    state: str
    generations: int


def _prompt(row: sqlite3.Row) -> PlannedPrompt:
    return PlannedPrompt(row["round"], row["prompt_index"], _ids(row["parents"]), row["temperature"],
                         row["text"], row["state"], row["generations"])


@dataclass(frozen=True)
class Round:
    round: int
    parents_in: tuple[int, ...]
    parents_out: tuple[int, ...] | None
    tune_losses: list[float] | None
    soft_prompt: str | None
    state: str
    started: float
    finished: float | None
    tune_seconds: float | None = None


def _tune_losses(raw: str | None) -> list[float] | None:
    """Lenient: odd losses are informative only and must not stop a report."""
    if raw is None:
        return None
    try:
        losses = json.loads(raw)
    except ValueError:
        return None
    return losses if isinstance(losses, list) else None


def _round(row: sqlite3.Row) -> Round:
    parents_out = None if row["parents_out"] is None else _ids(row["parents_out"])
    return Round(row["round"], _ids(row["parents_in"]), parents_out, _tune_losses(row["tune_losses"]),
                 row["soft_prompt"], row["state"], row["started"], row["finished"],
                 row["tune_seconds"] if "tune_seconds" in row.keys() else None)


@dataclass(frozen=True)
class Event:
    id: int
    time: float
    round: int | None
    kind: str
    message: str


def _event(row: sqlite3.Row) -> Event:
    return Event(row["id"], row["time"], row["round"], row["kind"], row["message"])


@dataclass(frozen=True)
class ChildCounts:
    """What the progress bar restarts from on resume."""

    samples: int
    evaluations: int
    best_fitness: float | None


@dataclass(frozen=True)
class Snapshot:
    """Candidates, rounds and events as of one instant."""

    candidates: list[Candidate]
    rounds: list[Round]
    events: list[Event]
    lm_calls: list[LMCall]
    evaluations: list[Evaluation]


def _connect_readonly(path: Path) -> sqlite3.Connection:
    """A connection that cannot write, so a report never changes the run it describes.

    mode=rw + query_only rather than mode=ro: a read-only connection leaves the WAL's -wal/-shm files
    behind in a finished run's directory, a read-write one tidies them on close like a writer does.
    mode=ro remains for run directories this user cannot write to.
    """
    uri = path.resolve().as_uri()
    conn = sqlite3.connect(f"{uri}?mode=rw", uri=True, isolation_level=None, check_same_thread=False)
    try:
        conn.execute("PRAGMA query_only=ON")
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.OperationalError:
        conn.close()
        conn = sqlite3.connect(f"{uri}?mode=ro", uri=True, isolation_level=None, check_same_thread=False)
    return conn


class RunStore:
    """Thread-safe access to one run's database."""

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        self.path = path
        self._lock = threading.RLock()  # re-entrant: snapshot() runs the named queries inside its transaction
        if readonly:
            self._db = _connect_readonly(path)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(SCHEMA)
            self._add_missing_columns()
        self._db.row_factory = sqlite3.Row

    def _add_missing_columns(self) -> None:
        """A run written by an older version resumes: its tables gain the new columns."""
        for table, columns in _ADDED.items():
            have = {r[1] for r in self._db.execute(f"PRAGMA table_info({table})")}
            for name, kind in columns.items():
                if name not in have:
                    self._db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")

    @classmethod
    def open_readonly(cls, path: Path) -> RunStore:
        """For reports: never creates or changes the file, and reads a run still being written (WAL)."""
        if not path.is_file():
            raise FileNotFoundError(f"no {path.name} in {path.parent}")
        return cls(path, readonly=True)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _write(self, sql: str, args: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        with self._lock:
            return self._db.execute(sql, args)

    def _read(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def snapshot(self) -> Snapshot:
        """Everything from one read transaction, so a run still being written reads consistently.

        A table an older or half-created database lacks reads as empty.
        """
        with self._lock:
            self._db.execute("BEGIN")
            try:
                tables = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
                return Snapshot(self.candidates() if "candidates" in tables else [],
                                self.rounds() if "rounds" in tables else [],
                                self.events() if "events" in tables else [],
                                self.lm_calls() if "lm_calls" in tables else [],
                                self.evaluations() if "evaluations" in tables else [])
            finally:
                self._db.execute("ROLLBACK")

    # -- candidates -----------------------------------------------------------------------------
    def add_candidate(self, *, round: int, kind: str, code: str, code_sha256: str, request_id: str | None,
                      state: str = CandidateState.GENERATED, name: str | None = None, parents: tuple[int, ...] = (),
                      prompt_index: int | None = None, sample_index: int | None = None,
                      lm_output: str | None = None, temperature: float | None = None,
                      message: str | None = None, structure: str | None = None, duplicate_of: int | None = None,
                      repair_of: int | None = None) -> int:
        """Insert a candidate; one whose request id is already stored is not inserted again (a
        repair written before a kill), and that one's id is returned."""
        with self._lock:
            cur = self._db.execute(
                _INSERT_CANDIDATE.replace("INSERT", "INSERT OR IGNORE", 1),
                (round, prompt_index, sample_index, kind, name, code, code_sha256, _encode_ids(parents), lm_output,
                 temperature, request_id, state, message, time.time(), structure, duplicate_of, repair_of))
            if cur.rowcount == 1 and cur.lastrowid is not None:
                return cur.lastrowid
            return int(self._db.execute("SELECT id FROM candidates WHERE request_id=?", (request_id,)).fetchone()[0])

    def record_result(self, candidate_id: int, result: EvaluationResult, fitness: float | None) -> None:
        """Write an evaluation's result once; a second write for the same candidate is a bug."""
        cur = self._write(
            f"UPDATE candidates SET state='{CandidateState.EVALUATED}', status=?, val_accuracy=?, test_accuracy=?,"
            f" num_params=?, fitness=?, result=?, message=?, evaluated=? WHERE id=? AND"
            f" state='{CandidateState.GENERATED}'",
            (result.status.name, result.val_accuracy, result.test_accuracy, result.num_params, fitness,
             json.dumps(result.to_dict()), result.message[:2000], time.time(), candidate_id),
        )
        if cur.rowcount != 1:
            raise RuntimeError(f"candidate {candidate_id} was already evaluated")

    def record_evaluation(self, candidate_id: int, rung: int, repeat: int, steps: int,
                          result: EvaluationResult) -> None:
        """Write one rung's (and repeat's) result of a candidate; written once, kept for the report."""
        self._write("INSERT OR IGNORE INTO evaluations (candidate_id, rung, repeat, steps, request_id, status,"
                    " val_accuracy, size, result, created) VALUES (?,?,?,?,?,?,?,?,?,?)",
                    (candidate_id, rung, repeat, steps, result.request_id, result.status.name, result.val_accuracy,
                     result.num_params + result.num_state, json.dumps(result.to_dict()), time.time()))

    def evaluations(self, candidate_ids: list[int] | tuple[int, ...] | None = None) -> list[Evaluation]:
        """Stored rung evaluations (of these candidates, or all), by candidate, rung and repeat."""
        where, args = "1", ()
        if candidate_ids is not None:
            if not candidate_ids:
                return []
            where, args = f"candidate_id IN ({','.join('?' * len(candidate_ids))})", tuple(candidate_ids)
        rows = self._read(f"SELECT candidate_id, rung, repeat, steps, request_id, status, val_accuracy, size, result"
                          f" FROM evaluations WHERE {where} ORDER BY candidate_id, rung, repeat", args)
        return [Evaluation(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], json.loads(r[8])) for r in rows]

    def set_rung(self, candidate_id: int, rung: int, val_ci: float | None) -> None:
        self._write("UPDATE candidates SET rung=?, val_ci=? WHERE id=?", (rung, val_ci, candidate_id))

    def candidates(self, *, kind: str | None = None, round: int | None = None, up_to_round: int | None = None,
                   state: str | None = None, status: str | None = None, scored: bool = False) -> list[Candidate]:
        """Candidates matching every filter given, oldest first; scored: only those with a fitness."""
        filters = {"kind=?": kind, "round=?": round, "round<=?": up_to_round, "state=?": state, "status=?": status}
        terms = [term for term, value in filters.items() if value is not None]
        if scored:
            terms.append("fitness IS NOT NULL")
        args = tuple(value for value in filters.values() if value is not None)
        where = " AND ".join(terms) or "1"
        return [_candidate(r) for r in self._read(f"SELECT * FROM candidates WHERE {where} ORDER BY id", args)]

    def by_ids(self, ids: tuple[int, ...] | list[int]) -> dict[int, Candidate]:
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self._read(f"SELECT * FROM candidates WHERE id IN ({marks}) ORDER BY id", tuple(ids))
        return {c.id: c for c in map(_candidate, rows)}

    def known_structures(self) -> dict[str, int]:
        """Each program seen so far (its normalised hash, else its text's sha256) and its first candidate."""
        rows = self._read("SELECT COALESCE(structure, code_sha256), MIN(id) FROM candidates GROUP BY 1")
        return {r[0]: r[1] for r in rows}

    def repairs_of(self, candidate_id: int) -> list[Candidate]:
        return [_candidate(r) for r in self._read("SELECT * FROM candidates WHERE repair_of=? ORDER BY id",
                                                  (candidate_id,))]

    def result(self, candidate_id: int) -> dict[str, Any] | None:
        rows = self._read("SELECT result FROM candidates WHERE id=?", (candidate_id,))
        return json.loads(rows[0][0]) if rows and rows[0][0] else None

    def child_counts(self) -> ChildCounts:
        count, evaluated, best = self._read(f"SELECT COUNT(*), SUM(state='{CandidateState.EVALUATED}'), MAX(fitness)"
                                            " FROM candidates WHERE kind='child'")[0]
        return ChildCounts(count, evaluated or 0, best)

    def mark_submitted(self, candidate_id: int) -> None:
        self._write("UPDATE candidates SET submissions=submissions+1 WHERE id=?", (candidate_id,))

    # -- prompts --------------------------------------------------------------------------------
    def plan_prompt(self, round: int, index: int, parents: tuple[int, ...], temperature: float, text: str) -> None:
        self._write("INSERT OR IGNORE INTO prompts (round, prompt_index, parents, temperature, text, state)"
                    f" VALUES (?,?,?,?,?, '{PromptState.PLANNED}')",
                    (round, index, _encode_ids(parents), temperature, text))

    def prompts(self, round: int | None = None) -> list[PlannedPrompt]:
        """One round's prompts, or every round's, in order."""
        where, args = ("round=?", (round,)) if round is not None else ("1", ())
        return [_prompt(r) for r in self._read(f"SELECT * FROM prompts WHERE {where} ORDER BY round, prompt_index",
                                               args)]

    def mark_prompt(self, round: int, index: int, state: str) -> None:
        self._write("UPDATE prompts SET state=? WHERE round=? AND prompt_index=?", (state, round, index))

    def begin_generation(self, round: int, index: int) -> None:
        self._write("UPDATE prompts SET generations=generations+1 WHERE round=? AND prompt_index=?", (round, index))

    def add_generation(self, round: int, index: int, children: list[ChildDraft]) -> list[int]:
        """Store a prompt's children and mark it generated, atomically: a crash leaves neither.

        A child's `duplicate_of` below 0 names an earlier child of this list (-1 - its position)."""
        ids: list[int] = []
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for child in children:
                    duplicate_of = child.duplicate_of
                    if duplicate_of is not None and duplicate_of < 0:
                        duplicate_of = ids[-1 - duplicate_of]
                    cur = self._db.execute(_INSERT_CANDIDATE, (
                        round, index, child.sample_index, "child", None, child.code, child.code_sha256,
                        _encode_ids(child.parents), child.lm_output, child.temperature, child.request_id,
                        child.state, child.message, time.time(), child.structure, duplicate_of, None))
                    assert cur.lastrowid is not None
                    ids.append(cur.lastrowid)
                self._db.execute(f"UPDATE prompts SET state='{PromptState.GENERATED}' WHERE round=? AND prompt_index=?",
                                 (round, index))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return ids

    # -- rounds ---------------------------------------------------------------------------------
    def start_round(self, round: int, parents_in: tuple[int, ...]) -> None:
        self._write("INSERT OR IGNORE INTO rounds (round, parents_in, state, started)"
                    f" VALUES (?,?, '{RoundState.STARTED}', ?)",
                    (round, _encode_ids(parents_in), time.time()))

    def round(self, round: int) -> Round | None:
        rows = self._read("SELECT * FROM rounds WHERE round=?", (round,))
        return _round(rows[0]) if rows else None

    def finish_evaluation(self, round: int, parents_out: tuple[int, ...]) -> None:
        self._write(f"UPDATE rounds SET parents_out=?, state='{RoundState.EVALUATED}' WHERE round=?",
                    (_encode_ids(parents_out), round))

    def finish_round(self, round: int, tune_losses: list[float] | None, soft_prompt: str | None,
                     tune_seconds: float | None = None) -> None:
        self._write("UPDATE rounds SET tune_losses=?, soft_prompt=?, tune_seconds=?,"
                    f" state='{RoundState.DONE}', finished=?"
                    " WHERE round=?", (json.dumps(tune_losses) if tune_losses is not None else None, soft_prompt,
                                       tune_seconds, time.time(), round))

    def rounds(self) -> list[Round]:
        return [_round(r) for r in self._read("SELECT * FROM rounds ORDER BY round")]

    def used_parents(self) -> set[int]:
        """Every candidate some round has drawn its prompts from."""
        used: set[int] = set()
        for r in self.rounds():
            used.update(r.parents_in)
        return used

    # -- the LM cost ledger ---------------------------------------------------------------------
    def record_lm_call(self, *, round: int, prompt_index: int | None, repair_of: int | None, samples: int,
                       prompt_tokens: int, completion_tokens: int, seconds: float) -> None:
        self._write("INSERT INTO lm_calls (round, prompt_index, repair_of, samples, prompt_tokens,"
                    " completion_tokens, seconds, time) VALUES (?,?,?,?,?,?,?,?)",
                    (round, prompt_index, repair_of, samples, prompt_tokens, completion_tokens, seconds, time.time()))

    def lm_calls(self) -> list[LMCall]:
        return [_lm_call(r) for r in self._read("SELECT * FROM lm_calls ORDER BY id")]

    # -- events ---------------------------------------------------------------------------------
    def event(self, kind: str, message: str, round: int | None = None) -> None:
        self._write("INSERT INTO events (time, round, kind, message) VALUES (?,?,?,?)",
                    (time.time(), round, kind, message[:4000]))

    def events(self) -> list[Event]:
        return [_event(r) for r in self._read("SELECT * FROM events ORDER BY id")]
