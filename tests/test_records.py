"""The files of a run and of a sweep are written from typed records and read back through them: run.json and
validation.json (bundle.read_run), cell.json (cells.read_cell), the Parquet traces (columns from the fields).
Files of today's schema-less format (version 0, in tests/records_v0/) keep reading."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timezone
from pathlib import Path

import polars as pl
import pytest

from hpc_agent.bench.cells import AttemptRow, CellRecord, read_cell
from hpc_agent.bench.traces import ATTEMPT_COLUMNS, CELL_COLUMNS, polars_dtype, write_traces
from hpc_agent.bundle import Bundle, read_run
from hpc_agent.records import (
    Attempt,
    Check,
    ExecFacts,
    ExecResult,
    RecordError,
    RunFacts,
    RunFile,
    RunResult,
    ServerInfo,
    Usage,
    Validation,
    ValidationFile,
)

V0 = Path(__file__).parent / "records_v0"
RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"


def _attempts() -> tuple[Attempt, ...]:
    ran = ExecResult(backend="bwrap", exit_code=1, stdout="partial\n", stderr="Traceback\nAttributeError: x\n",
                     duration_s=1.5, stdout_bytes=8, stderr_bytes=30, killed=None)
    first = Attempt(index=1, script="print(1)\n", answer="print(1)", usage=Usage(prompt_tokens=900, calls=1),
                    repairs=("added `import json`",), static_s=0.25, candidates=2, candidate=2, execution=ran,
                    validation=Validation(passed=False, checks=(Check(name="runs", passed=False, message="exit 1",
                                                                      detail="for people"),)),
                    failure="runtime", exception="AttributeError", validation_s=0.5, feedback="fix line 1",
                    restart=True, context_ids=("doc:1", "doc:7"))
    static = Attempt(index=2, script="x\n", usage=Usage(completion_tokens=5), static_errors=("undefined name 'x'",),
                     validation=Validation(passed=False), failure="static")
    none = Attempt(index=3, script=None, usage=Usage(), validation=Validation(passed=False), failure="no_code")
    return first, static, none


def _result(out: Path) -> RunResult:
    attempts = _attempts()
    return RunResult(passed=False, prompt="How many?", backend="adhoc", model="m", attempts=attempts,
                     final_script=None, usage=sum((a.usage for a in attempts), Usage()), gammapy_version="2.1",
                     hpc_agent_version="0.1.0", sandbox="bwrap",
                     started_at=datetime(2026, 12, 1, 10, 0, tzinfo=timezone.utc),
                     finished_at=datetime(2026, 12, 1, 10, 1, 30, 500000, tzinfo=timezone.utc), out_dir=str(out),
                     server=ServerInfo(base_url="http://h/v1", models=[{"id": "m"}], engine="vllm"))


def _bundle(out: Path) -> RunResult:
    result = _result(out)
    bundle = Bundle(out)
    for a in result.attempts:
        bundle.write_attempt(a, [{"role": "user", "content": result.prompt}], "raw")
    bundle.write_run(result)
    return result


def test_run_json_and_validation_json_read_back_into_the_run_result(tmp_path: Path) -> None:
    result = _bundle(tmp_path)
    assert read_run(tmp_path) == result
    run = json.loads((tmp_path / "run.json").read_text())
    # the keys readers rely on stay: the number of attempts, the status, one summary per attempt
    assert run["schema"] == RunFile.SCHEMA and run["bundle_version"] == 1
    assert run["attempts"] == 3 and run["status"] == "failed" and run["passed"] is False
    assert [s["restart"] for s in run["attempt_summaries"]] == [True, False, False]
    assert run["attempt_summaries"][0]["repairs"] == ["added `import json`"]
    v1 = json.loads((tmp_path / "attempt-1" / "validation.json").read_text())
    assert v1["schema"] == ValidationFile.SCHEMA and v1["failure"] == "runtime" and v1["execution"]["exit_code"] == 1
    assert "stdout" not in v1["execution"] and v1["checks"][0]["detail"] == "for people"
    assert v1["context_ids"] == ["doc:1", "doc:7"] and v1["static_s"] == 0.25


def test_a_bundle_of_todays_format_reads_back(tmp_path: Path) -> None:
    """run.json and validation.json as written before `schema` existed (version 0)."""
    assert "schema" not in json.loads((V0 / "run.json").read_text())
    run = read_run(V0)
    assert run.status == "failed" and run.model == "m" and run.server and run.server.base_url == "http://h/v1"
    (a,) = run.attempts
    assert a.failure == "runtime" and a.exception == "AttributeError" and a.repairs == ("added `import json`",)
    assert a.execution and a.execution.exit_code == 1 and "AttributeError" in a.execution.stderr
    assert a.script == "print(1)\n" and a.usage.prompt_tokens == 900 and a.feedback == "fix it"
    assert (a.static_s, a.validation_s, a.context_ids) == (0.0, 0.0, ())  # not kept by version 0
    # an early version 0: summaries and validation.json without repairs, candidates, feedback, restart
    old = tmp_path / "old"
    shutil.copytree(V0, old)
    data = json.loads((old / "run.json").read_text())
    for s in data["attempt_summaries"]:
        for key in ("repairs", "candidates", "restart"):
            del s[key]
    (old / "run.json").write_text(json.dumps(data))
    v = json.loads((old / "attempt-1" / "validation.json").read_text())
    for key in ("repairs", "candidate", "candidates", "feedback", "restart"):
        del v[key]
    (old / "attempt-1" / "validation.json").write_text(json.dumps(v))
    (a,) = read_run(old).attempts
    assert (a.repairs, a.candidates, a.feedback, a.restart) == ((), 1, None, False)


def test_unknown_or_bad_schema_versions_are_clear_errors(tmp_path: Path) -> None:
    _bundle(tmp_path)
    path = tmp_path / "run.json"
    data = json.loads(path.read_text())
    for version, words in ((99, "schema 99 is newer than this hpc-agent reads"),
                           ("1", "schema '1' is not a version number"), (-1, "schema -1 is not a version number")):
        path.write_text(json.dumps({**data, "schema": version}))
        with pytest.raises(RecordError, match=words) as err:
            read_run(tmp_path)
        assert str(path) in str(err.value)
    path.write_text(json.dumps({**data, "status": "maybe"}))
    with pytest.raises(RecordError, match="not a valid RunFile"):
        read_run(tmp_path)
    with pytest.raises(RecordError, match="newer"):
        CellRecord.from_json({"schema": CellRecord.SCHEMA + 1}, "cell.json")
    shutil.rmtree(tmp_path / "attempt-2")
    path.write_text(json.dumps(data))
    with pytest.raises(RecordError, match="attempt-2: no validation.json"):
        read_run(tmp_path)


def test_the_file_records_cover_the_run_records() -> None:
    """A field added to Attempt or RunResult must reach the files, or the round trip would silently drop it."""
    own_files = {"index", "script", "answer", "usage"}  # the folder's name and its other files
    assert set(Attempt.model_fields) - own_files - {"validation"} == set(ValidationFile.model_fields) - {
        "passed", "checks"}
    assert set(RunResult.model_fields) - {"attempts"} == set(RunFacts.model_fields) < set(RunFile.model_fields)
    assert set(ExecResult.model_fields) - {"stdout", "stderr"} == set(ExecFacts.model_fields)


def _cell(passed: bool = True) -> CellRecord:
    rows = tuple(AttemptRow.from_attempt(a) for a in _attempts())
    return CellRecord(cell="m__t__seed0__rag-off__repairs-on", model="m", task="observation-list-crab",
                      kind="observation-list", source="crab", seed=0, rag="off", repairs="on", candidates=2,
                      status="passed" if passed else "failed", passed=passed, error=None,
                      attempts_to_pass=3 if passed else None, n_attempts=3, wall_s=12.5, open_weight=True,
                      server=ServerInfo(base_url="http://h/v1", engine="vllm"), code_commit="abc123",
                      finished_at="2026-12-01T10:00:00+00:00", attempt_rows=rows)


def test_cell_json_round_trip_and_attempt_rows(tmp_path: Path) -> None:
    record = _cell()
    path = tmp_path / "cell.json"
    path.write_text(json.dumps(record.to_json()))
    assert read_cell(path) == record and json.loads(path.read_text())["schema"] == CellRecord.SCHEMA
    row = record.attempt_rows[0]
    assert (row.attempt, row.failure, row.sandbox_s, row.rag_snippets, row.n_repairs) == (1, "runtime", 1.5, 2, 1)
    assert json.loads(row.validator_details)[0]["detail"] == "for people"
    assert row.traceback_tail == "Traceback\nAttributeError: x" and record.attempt_rows[2].sandbox_s == 0.0


def test_todays_cell_json_reads_back() -> None:
    """A cell.json of a real sweep (version 0: no schema, written before code_commit and restart existed)."""
    record = read_cell(V0 / "cell.json")
    assert record.status == "passed" and record.code_commit is None and record.server
    assert record.server.engine == "llama.cpp" and all(r.restart is False for r in record.attempt_rows)
    before_repairs = {k: v for k, v in json.loads((V0 / "cell.json").read_text()).items()
                      if k not in ("repairs", "candidates")}
    for row in before_repairs["attempt_rows"]:
        for key in ("repairs_made", "n_repairs", "static_errors", "static_s", "candidates", "validation_s"):
            del row[key]
    old = CellRecord.from_json(before_repairs)
    assert (old.repairs, old.candidates) == ("off", 1)
    assert [(r.n_repairs, r.candidates, r.static_s, r.validation_s) for r in old.attempt_rows] == [(0, 1, None, None)]
    for path in sorted(RESULTS.glob("*/cells/*/cell.json")):  # every stored sweep's cells
        assert read_cell(path).cell == path.parent.name


def test_traces_columns_are_the_record_fields(tmp_path: Path) -> None:
    for i, record in enumerate((_cell(), _cell(passed=False).model_copy(update={"cell": "other", "server": None}))):
        (tmp_path / "cells" / str(i)).mkdir(parents=True)
        (tmp_path / "cells" / str(i) / "cell.json").write_text(json.dumps(record.to_json()))
    shutil.copytree(V0, tmp_path / "cells" / "v0", ignore=shutil.ignore_patterns("attempt-*", "run.json"))
    attempts_path, cells_path = write_traces(tmp_path)
    cells, attempts = pl.read_parquet(cells_path), pl.read_parquet(attempts_path)
    assert cells.columns == [f for f in CellRecord.model_fields if f != "attempt_rows"]
    assert attempts.columns == [*CellRecord.row_keys(), *AttemptRow.model_fields]
    assert dict(cells.schema) == CELL_COLUMNS and dict(attempts.schema) == ATTEMPT_COLUMNS
    assert cells.height == 3 and attempts.height == 3 + 3 + 1
    assert json.loads(cells.filter(pl.col("cell") == _cell().cell)["server"][0])["engine"] == "vllm"
    assert cells.filter(pl.col("cell") == "other")["server"][0] is None
    # the dtypes readers (report, web page) were written against
    assert CELL_COLUMNS == {
        "cell": pl.Utf8, "model": pl.Utf8, "task": pl.Utf8, "kind": pl.Utf8, "source": pl.Utf8, "seed": pl.Int64,
        "rag": pl.Utf8, "repairs": pl.Utf8, "candidates": pl.Int64, "status": pl.Utf8, "passed": pl.Boolean,
        "error": pl.Utf8, "attempts_to_pass": pl.Int64, "n_attempts": pl.Int64, "wall_s": pl.Float64,
        "open_weight": pl.Boolean, "server": pl.Utf8, "code_commit": pl.Utf8, "finished_at": pl.Utf8}
    assert {k: v for k, v in ATTEMPT_COLUMNS.items() if v != pl.Utf8} == {
        "seed": pl.Int64, "attempt": pl.Int64, "passed": pl.Boolean, "prompt_tokens": pl.Int64,
        "cached_prompt_tokens": pl.Int64, "completion_tokens": pl.Int64, "reasoning_tokens": pl.Int64,
        "model_latency_s": pl.Float64, "sandbox_s": pl.Float64, "validation_s": pl.Float64,
        "rag_snippets": pl.Int64, "n_repairs": pl.Int64, "static_s": pl.Float64, "candidates": pl.Int64,
        "restart": pl.Boolean}
    with pytest.raises(TypeError, match="no Parquet column type"):
        polars_dtype(list[int])
