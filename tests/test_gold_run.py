"""The oracle gold run over every shipped task: references, sandbox and validators must agree (100%).

Real references on the real release (and on a variant store with observations removed), run in bwrap.
Reference values are cached by reference text, store checksum and Gammapy version, so after the first
run this costs the cells only (two sandbox runs per numeric task).
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
from click.testing import CliRunner

from hpc_agent.bench.tasks import load_tasks
from hpc_agent.cli import main

KINDS = {"observation-list", "reflected-significance", "reflected-spectrum", "source-3d"}


def test_shipped_tasks_cover_the_required_kinds() -> None:
    tasks = load_tasks()
    assert len(tasks) >= 12
    assert KINDS <= {t.kind for t in tasks.values()} and len({t.kind for t in tasks.values()}) >= 6
    for t in tasks.values():
        assert t.numeric == (t.kind != "source-3d")
        # every numeric task has an exact count that a variant store changes (anti-hard-coding)
        if t.numeric:
            assert any(tol.rtol == 0 and tol.atol == 0 for tol in t.outputs.values()), t.id


def test_oracle_passes_every_shipped_task(data_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "gold"
    res = CliRunner().invoke(main, ["bench", "--models", "oracle", "--out", str(out), "--data-root", str(data_root)],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    cells = pl.read_parquet(out / "cells.parquet")
    assert cells.height == len(load_tasks())
    assert cells.filter(~pl.col("passed"))["task"].to_list() == []
    listing = CliRunner().invoke(main, ["bench", "tasks", "--json", "--data-root", str(data_root)])
    expected = {t["id"]: t["expected"] for t in json.loads(listing.output[listing.output.index("["):])}
    assert expected["observation-list-msh1552"]["n_obs"] > 0 and set(expected) == set(load_tasks())
