"""Sweep traces: `attempts.parquet` (one row per attempt) and `cells.parquet` (one row per cell).

Rebuilt from the cells' `cell.json` files every time, so a resumed sweep never duplicates a row.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl

CELL_COLUMNS: dict[str, Any] = {
    "cell": pl.Utf8, "model": pl.Utf8, "task": pl.Utf8, "kind": pl.Utf8, "source": pl.Utf8, "seed": pl.Int64,
    "rag": pl.Utf8, "repairs": pl.Utf8, "candidates": pl.Int64, "status": pl.Utf8, "passed": pl.Boolean,
    "error": pl.Utf8, "attempts_to_pass": pl.Int64,
    "n_attempts": pl.Int64, "wall_s": pl.Float64, "open_weight": pl.Boolean, "server": pl.Utf8, "code_commit": pl.Utf8,
    "finished_at": pl.Utf8,
}
ATTEMPT_COLUMNS: dict[str, Any] = {
    "cell": pl.Utf8, "model": pl.Utf8, "task": pl.Utf8, "seed": pl.Int64, "rag": pl.Utf8, "repairs": pl.Utf8,
    "attempt": pl.Int64,
    "passed": pl.Boolean, "failure": pl.Utf8, "exception": pl.Utf8, "traceback_tail": pl.Utf8,
    "prompt_tokens": pl.Int64, "cached_prompt_tokens": pl.Int64, "completion_tokens": pl.Int64,
    "reasoning_tokens": pl.Int64, "model_latency_s": pl.Float64, "sandbox_s": pl.Float64, "validation_s": pl.Float64,
    "validator_details": pl.Utf8, "rag_snippets": pl.Int64, "rag_ids": pl.Utf8,
    "repairs_made": pl.Utf8, "n_repairs": pl.Int64, "static_errors": pl.Utf8, "static_s": pl.Float64,
    "candidates": pl.Int64, "restart": pl.Boolean,
}


def read_cells(out: Path) -> list[dict[str, Any]]:
    records = []
    for path in sorted((out / "cells").glob("*/cell.json")):
        try:
            records.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue  # a cell being written right now; the next rebuild sees it
    return records


def write_traces(out: Path) -> tuple[Path, Path]:
    records = read_cells(out)
    defaults = {"repairs": "off", "candidates": 1}  # cells written before these existed ran without them
    cells = [{k: (json.dumps(r[k]) if k == "server" and r.get(k) is not None else r.get(k, defaults.get(k)))
              for k in CELL_COLUMNS} for r in records]
    attempts = [{**{k: r.get(k, defaults.get(k)) for k in ("cell", "model", "task", "seed", "rag", "repairs")}, **row}
                for r in records for row in r.get("attempt_rows", [])]
    cells_path, attempts_path = out / "cells.parquet", out / "attempts.parquet"
    for rows, schema, path in ((cells, CELL_COLUMNS, cells_path), (attempts, ATTEMPT_COLUMNS, attempts_path)):
        tmp = path.with_name(f".{path.name}.tmp")
        pl.DataFrame(rows, schema=schema).write_parquet(tmp)
        tmp.replace(path)
    return attempts_path, cells_path
