"""Sweep overlap and harness overhead per cell, against a latency-model server, measured in one run.

The server is the scripted OpenAI-compatible test double (tests/doubles) answering every request after a fixed
delay that stands in for generation time, so the figures are about the harness, not about a model. The same
sweep (N cells of one task, one attempt each) runs at concurrency 1 and at concurrency C:

- overlap: the speed-up of C over 1, against the ideal N / ceil(N / C) (every cell costing the delay alone);
- overhead per cell at concurrency 1: the cell's wall time minus the model's latency (static stage, sandbox
  run, validation, bundle and record writing), median over the cells; and the sweep's fixed start-up (wall
  time minus the cells' own).

By default the task is a trivial one written into a temporary benchmarks folder ("print the number one") and
the answer a two-line script, so the sandbox run is the interpreter's start; `--task ID` answers a shipped
task with its reference solution instead (the sandbox run is then the analysis).

    PHOTON_STORAGE=/path/to/data .venv/bin/python benchmarks/sweep_overhead.py [--cells 17] [--delay 2]
        [--concurrency 8] [--task ID] [--no-warm]
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from doubles.openai_server import Reply, ScriptedOpenAIServer  # noqa: E402

TRIVIAL_TASK = """\
id: echo-one
kind: echo
source: one
prompt: |
  Print the number one. As its output, print exactly one line of the form
  print("RESULT " + json.dumps({...})) with the key "answer" (int).
outputs:
  answer: {rtol: 0.0, atol: 0, why: "exact integer"}
reference: echo.py
time_limit_s: 60
numeric: false
"""
TRIVIAL_SCRIPT = 'import json\n\nPARAMS = json.loads(\'{}\')\nprint("RESULT " + json.dumps({"answer": 1}))\n'


def trivial_benchmarks(root: Path) -> Path:
    """A benchmarks folder holding the one trivial task and its reference."""
    (root / "tasks").mkdir(parents=True)
    (root / "reference").mkdir()
    (root / "tasks" / "echo-one.yaml").write_text(TRIVIAL_TASK)
    (root / "reference" / "echo.py").write_text(TRIVIAL_SCRIPT)
    return root


def sweep_once(task_id: str, script: str, cells: int, concurrency: int, delay: float, warm: bool,
               out: Path) -> tuple[float, pl.DataFrame]:
    """Wall time of the sweep's run (reference values computed before) and its attempts joined to cell walls."""
    from hpc_agent.api import make_sweep
    from hpc_agent.bench.options import SweepOptions
    from hpc_agent.config import load_settings

    with ScriptedOpenAIServer([Reply(code=script, delay_s=delay)] * (cells + 2)) as srv:
        options = SweepOptions(out=out, tasks=task_id, seeds=cells, attempts=1, concurrency=concurrency,
                               base_url=srv.base_url, model=srv.model)
        sweep = make_sweep(options, load_settings().model_copy(update={"warm_sandbox": warm}))
        sweep.expected({c.task for c in sweep.cells})  # reference values first (cached): timing covers cells
        t0 = time.perf_counter()
        sweep.run()
        wall = time.perf_counter() - t0
    cells_df = pl.read_parquet(out / "cells.parquet")
    return wall, pl.read_parquet(out / "attempts.parquet").join(cells_df.select("cell", "wall_s"), on="cell")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", type=int, default=17)
    ap.add_argument("--delay", type=float, default=2.0, help="seconds the server takes per answer")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--task", help="a shipped task answered with its reference solution (default: a trivial task)")
    ap.add_argument("--no-warm", action="store_true", help="cold sandboxes (default: the warm_sandbox setting)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.task:
            from hpc_agent.bench.tasks import load_tasks, reference_script

            task_id, script = args.task, reference_script(load_tasks()[args.task])
        else:
            os.environ["HPC_AGENT_BENCHMARKS"] = str(trivial_benchmarks(Path(tmp) / "benchmarks"))
            task_id, script = "echo-one", TRIVIAL_SCRIPT
        walls: dict[int, float] = {}
        for c in (1, args.concurrency):
            wall, attempts = sweep_once(task_id, script, args.cells, c, args.delay, not args.no_warm,
                                        Path(tmp) / f"sweep-c{c}")
            walls[c] = wall
            overhead = (attempts["wall_s"] - attempts["model_latency_s"]) * 1000
            fixed = wall - attempts["wall_s"].sum() if c == 1 else None
            print(f"concurrency {c}: {args.cells} cells in {wall:.2f} s; per cell median: model "
                  f"{attempts['model_latency_s'].median():.3f} s, sandbox {attempts['sandbox_s'].median() * 1000:.0f} ms, "
                  f"static {attempts['static_s'].median() * 1000:.0f} ms, validation "
                  f"{attempts['validation_s'].median() * 1000:.0f} ms, cell wall - model "
                  f"{statistics.median(overhead.to_list()):.0f} ms"
                  + (f"; sweep start-up and end {fixed * 1000:.0f} ms" if fixed is not None else ""))
    ideal = args.cells / math.ceil(args.cells / args.concurrency)
    speedup = walls[1] / walls[args.concurrency]
    print(f"overlap: concurrency {args.concurrency} vs 1 = x{speedup:.2f} of an ideal x{ideal:.2f} "
          f"({speedup / ideal:.0%}; task {task_id}, server delay {args.delay} s, "
          f"{'cold' if args.no_warm else 'warm-sandbox setting'}, {os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
