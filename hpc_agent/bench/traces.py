"""Sweep traces: `attempts.parquet` (one row per attempt) and `cells.parquet` (one row per cell).

Rebuilt from the cells' `cell.json` files every time, so a resumed sweep never duplicates a row. The columns
and their dtypes are derived from the records' fields (`CellRecord`, `AttemptRow`), never listed by hand: a
field added to a record is a column of its table.
"""

from __future__ import annotations

import json
import types
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import polars as pl
from pydantic import BaseModel

from hpc_agent.bench.cells import AttemptRow, CellRecord, read_cell

_PLAIN: dict[type, Any] = {bool: pl.Boolean, int: pl.Int64, float: pl.Float64, str: pl.Utf8}


def _optional_of(annotation: Any) -> Any:
    """`X | None` -> X (every column is nullable anyway)."""
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _is_table(annotation: Any) -> bool:
    """A tuple of records is another table's rows (a cell's attempt rows), not a column."""
    return get_origin(annotation) is tuple


def _is_json(annotation: Any) -> bool:
    """A nested record (a cell's server) is stored as its JSON text."""
    inner = _optional_of(annotation)
    return isinstance(inner, type) and issubclass(inner, BaseModel)


def polars_dtype(annotation: Any) -> Any:
    """The Polars dtype of a record field's type: bool/int/float/str, their Literals and Optionals; a nested
    record is Utf8 (JSON text)."""
    inner = _optional_of(annotation)
    if get_origin(inner) is Literal:
        kinds = {type(v) for v in get_args(inner)}
        inner = kinds.pop() if len(kinds) == 1 else inner
    if _is_json(inner):
        return pl.Utf8
    if inner in _PLAIN:
        return _PLAIN[inner]
    raise TypeError(f"no Parquet column type for {annotation!r}")


def columns(record: type[BaseModel]) -> dict[str, Any]:
    """Column name -> Polars dtype, one per field of `record` in field order (nested tables left out)."""
    return {name: polars_dtype(f.annotation) for name, f in record.model_fields.items() if not _is_table(f.annotation)}


CELL_COLUMNS = columns(CellRecord)
ATTEMPT_COLUMNS = {**{k: CELL_COLUMNS[k] for k in CellRecord.row_keys()}, **columns(AttemptRow)}
_JSON_FIELDS = {name for name, f in CellRecord.model_fields.items() if _is_json(f.annotation)}


def cell_row(record: CellRecord) -> dict[str, Any]:
    data = record.model_dump(mode="json")
    return {k: json.dumps(data[k]) if k in _JSON_FIELDS and data[k] is not None else data[k] for k in CELL_COLUMNS}


def attempt_rows(record: CellRecord) -> list[dict[str, Any]]:
    key = {k: getattr(record, k) for k in CellRecord.row_keys()}
    return [{**key, **row.model_dump(mode="json")} for row in record.attempt_rows]


def read_cells(out: Path) -> list[CellRecord]:
    """Every finished cell of a sweep folder (any cell.json version; a newer one is a RecordError)."""
    records = []
    for path in sorted((out / "cells").glob("*/cell.json")):
        try:
            records.append(read_cell(path))
        except (OSError, ValueError):
            continue  # a cell being written right now; the next rebuild sees it
    return records


def write_traces(out: Path) -> tuple[Path, Path]:
    records = read_cells(out)
    cells = [cell_row(r) for r in records]
    attempts = [row for r in records for row in attempt_rows(r)]
    cells_path, attempts_path = out / "cells.parquet", out / "attempts.parquet"
    for rows, schema, path in ((cells, CELL_COLUMNS, cells_path), (attempts, ATTEMPT_COLUMNS, attempts_path)):
        tmp = path.with_name(f".{path.name}.tmp")
        pl.DataFrame(rows, schema=schema).write_parquet(tmp)
        tmp.replace(path)
    return attempts_path, cells_path
