"""A sweep cell's records: `CellRecord` is what `DIR/cells/<cell-id>/cell.json` holds, `AttemptRow` one attempt
as `attempts.parquet` holds it.

One definition each, so cell.json, its reader and the Parquet schemas of the traces (derived from these fields
in `traces.py`) cannot drift apart. cell.json carries a `schema` version; files written before it existed
(version 0) are read through `CellRecord.MIGRATIONS`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, ClassVar

from hpc_agent.records import Attempt, FailureClass, Migration, Record, RunStatus, ServerInfo, Versioned


class RowKey:
    """Marks a `CellRecord` field that every attempt row repeats, so attempts.parquet reads without a join."""

    def __repr__(self) -> str:
        return "ROW_KEY"


ROW_KEY = RowKey()


class AttemptRow(Record):
    """One attempt of a cell, flat: lists are kept as JSON text so every Parquet column is a plain type.

    `None` in `validation_s`, `static_s` and `static_errors` only in cells written before they were recorded.
    """

    attempt: int
    passed: bool
    failure: FailureClass
    exception: str | None
    traceback_tail: str  # the last 30 lines of stderr
    prompt_tokens: int
    cached_prompt_tokens: int
    completion_tokens: int
    reasoning_tokens: int
    model_latency_s: float
    sandbox_s: float
    validation_s: float | None
    validator_details: str  # JSON: every check (name, passed, message, detail)
    rag_snippets: int
    rag_ids: str  # JSON list of chunk ids
    repairs_made: str  # JSON list, one line per deterministic repair
    n_repairs: int
    static_errors: str | None  # JSON list
    static_s: float | None
    candidates: int
    restart: bool

    @classmethod
    def from_attempt(cls, a: Attempt) -> AttemptRow:
        ex = a.execution
        return cls(
            attempt=a.index, passed=a.passed, failure=a.failure, exception=a.exception,
            traceback_tail="\n".join((ex.stderr if ex else "").strip().splitlines()[-30:]),
            prompt_tokens=a.usage.prompt_tokens, cached_prompt_tokens=a.usage.cached_prompt_tokens,
            completion_tokens=a.usage.completion_tokens, reasoning_tokens=a.usage.reasoning_tokens,
            model_latency_s=a.usage.latency_s, sandbox_s=ex.duration_s if ex else 0.0, validation_s=a.validation_s,
            validator_details=json.dumps([c.model_dump() for c in a.validation.checks]),
            rag_snippets=len(a.context_ids), rag_ids=json.dumps(list(a.context_ids)),
            repairs_made=json.dumps(list(a.repairs)), n_repairs=len(a.repairs),
            static_errors=json.dumps(list(a.static_errors)), static_s=a.static_s,
            candidates=a.candidates, restart=a.restart,
        )


def _cell_v0(data: dict[str, Any]) -> dict[str, Any]:
    """Version 0 (no `schema`): keys added over time get the value they had before they existed (no repairs,
    one candidate, no retrieval, no restart); times and static errors not yet recorded stay unknown (None)."""
    rows = [{"validation_s": None, "rag_snippets": 0, "rag_ids": "[]", "repairs_made": "[]", "n_repairs": 0,
             "static_errors": None, "static_s": None, "candidates": 1, "restart": False, **row}
            for row in data.get("attempt_rows", [])]
    return {"repairs": "off", "candidates": 1, "code_commit": None, **data, "attempt_rows": rows}


class CellRecord(Versioned):
    """One finished cell: what it was (model x task x seed x rag x repairs x candidates), how it ended, where it
    ran, and one `AttemptRow` per attempt. Fields marked `ROW_KEY` are repeated on every attempt row."""

    cell: Annotated[str, ROW_KEY]
    model: Annotated[str, ROW_KEY]
    task: Annotated[str, ROW_KEY]
    kind: str
    source: str
    seed: Annotated[int, ROW_KEY]
    rag: Annotated[str, ROW_KEY]
    repairs: Annotated[str, ROW_KEY]
    candidates: int
    status: RunStatus  # "error": an infrastructure failure, retried on resume
    passed: bool
    error: str | None
    attempts_to_pass: int | None
    n_attempts: int
    wall_s: float
    open_weight: bool | None  # None: the oracle, ad hoc endpoints, configured backends
    server: ServerInfo | None
    code_commit: str | None  # None outside a git checkout
    finished_at: str  # ISO 8601, UTC
    attempt_rows: tuple[AttemptRow, ...]

    MIGRATIONS: ClassVar[dict[int, Migration]] = {0: _cell_v0}

    @classmethod
    def row_keys(cls) -> tuple[str, ...]:
        return tuple(name for name, f in cls.model_fields.items() if ROW_KEY in f.metadata)


def read_cell(path: Path) -> CellRecord:
    """A cell.json of any version; a newer or malformed one is a `RecordError` naming the file."""
    return CellRecord.read(path)
