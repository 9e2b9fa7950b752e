"""Harness overhead per attempt and sweep throughput at concurrency 1 vs 4, against the same server.

The server is the scripted OpenAI-compatible test double (tests/doubles) answering every request with
the task's reference script after a fixed delay that stands in for generation time, so the figures are
about the harness, not about a model. Each cell runs one attempt: model call, sandbox run on the real
data, validation (including the variant-store re-run for numeric tasks).

    PHOTON_STORAGE=/path/to/data .venv/bin/python benchmarks/sweep_overhead.py [--cells 8] [--delay 1.0]

Overhead per attempt = cell wall time - model latency - sandbox run - validation (validation, shown on its
own, is mostly the variant-store re-run of numeric tasks; what is left is message building, static checks,
bundle and trace writing).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from doubles.openai_server import Reply, ScriptedOpenAIServer  # noqa: E402

from hpc_agent.api import make_sweep  # noqa: E402
from hpc_agent.bench.sweep import SweepOptions  # noqa: E402
from hpc_agent.bench.tasks import load_tasks, reference_script  # noqa: E402
from hpc_agent.config import load_settings  # noqa: E402


def sweep_once(task_id: str, cells: int, concurrency: int, delay: float, out: Path) -> tuple[float, pl.DataFrame]:
    script = reference_script(load_tasks()[task_id])
    with ScriptedOpenAIServer([Reply(code=script, delay_s=delay)] * (cells + 2)) as srv:
        options = SweepOptions(out=out, tasks=task_id, seeds=cells, attempts=1, concurrency=concurrency,
                               base_url=srv.base_url, model=srv.model)
        sweep = make_sweep(options, load_settings())
        sweep.expected({c.task for c in sweep.cells})  # reference values first (cached), so timing covers cells only
        t0 = time.perf_counter()
        sweep.run()
        wall = time.perf_counter() - t0
    cells_df = pl.read_parquet(out / "cells.parquet")
    attempts = pl.read_parquet(out / "attempts.parquet").join(cells_df.select("cell", "wall_s"), on="cell")
    return wall, attempts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", default="observation-list-crab")
    ap.add_argument("--cells", type=int, default=8)
    ap.add_argument("--delay", type=float, default=1.0, help="seconds the server takes per answer")
    args = ap.parse_args()
    results = {}
    for c in (1, 4):
        with tempfile.TemporaryDirectory() as tmp:
            wall, attempts = sweep_once(args.task, args.cells, c, args.delay, Path(tmp) / "sweep")
        overhead = (attempts["wall_s"] - attempts["model_latency_s"] - attempts["sandbox_s"]
                    - attempts["validation_s"]) * 1000
        results[c] = (wall, attempts, overhead)
        print(f"concurrency {c}: {args.cells} cells in {wall:.1f} s = {args.cells / wall * 60:.1f} cells/min; "
              f"per attempt median: model {attempts['model_latency_s'].median():.2f} s, sandbox "
              f"{attempts['sandbox_s'].median():.2f} s, validation {attempts['validation_s'].median():.2f} s, harness overhead {statistics.median(overhead.to_list()):.0f} ms")
    speedup = results[1][0] / results[4][0]
    print(f"throughput concurrency 4 vs 1: x{speedup:.2f} (task {args.task}, server delay {args.delay} s, 2 cores)")


if __name__ == "__main__":
    main()
