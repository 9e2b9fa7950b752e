"""What batch submission costs: submit latency, queue-to-start, and wall time of a sharded oracle sweep.

Needs a running Slurm (`sudo slurm/dev-cluster.sh up`) and the data (PHOTON_STORAGE). Prints figures:

    python benchmarks/slurm_overhead.py [--shards 2] [--tasks 'observation-list-*']

The same sweep runs once in this process (no Slurm) for comparison; reference values are computed
first (cached), so both timings cover the cells only.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from hpc_agent.api import Placement, ShardPlan, make_sweep, submit_bench
from hpc_agent.bench.sweep import SweepOptions
from hpc_agent.config import load_settings


def sacct(job: str, fields: str) -> list[list[str]]:
    out = subprocess.run(["sacct", "-n", "-X", "-P", "-o", fields, "-j", job], capture_output=True, text=True,
                         check=True).stdout
    return [line.split("|") for line in out.splitlines() if line]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shards", type=int, default=2)
    ap.add_argument("--tasks", default="observation-list-*")
    args = ap.parse_args()
    settings = load_settings()
    with tempfile.TemporaryDirectory() as tmp:
        base = SweepOptions(out=Path(tmp) / "inproc", models=("oracle",), tasks=args.tasks, attempts=1)
        sweep = make_sweep(base, settings)
        sweep.expected({c.task for c in sweep.cells})
        t0 = time.perf_counter()
        sweep.run()
        inproc = time.perf_counter() - t0

        options = SweepOptions(out=Path(tmp) / "slurm", models=("oracle",), tasks=args.tasks, attempts=1)
        t0 = time.perf_counter()
        records = submit_bench(settings, options, Placement(cluster="slurm"),
                               ShardPlan(shards=args.shards, cpus_per_task=1, mem_gb=2))
        submit_s = time.perf_counter() - t0
        array = records[0].group or records[0].job_id
        while True:
            rows = sacct(array, "JobID,State")
            if len(rows) >= len(records) and all(r[1] in ("COMPLETED", "FAILED", "CANCELLED") for r in rows):
                break
            time.sleep(0.5)
        total = time.perf_counter() - t0
        rows = sacct(array, "JobID,Submit,Start,End,Elapsed")
        from datetime import datetime

        def ts(s: str) -> float:
            return datetime.fromisoformat(s).timestamp()

        waits = [ts(r[2]) - ts(r[1]) for r in rows]
        runs = [ts(r[3]) - ts(r[2]) for r in rows]
    print(f"cells: {len(sweep.cells)}, shards: {len(records)}")
    print(f"submit (submitit batch, {len(records)} array elements): {submit_s:.2f} s")
    print(f"queue to start, median over elements: {statistics.median(waits):.1f} s (sacct, 1 s resolution)")
    print(f"element run time, median: {statistics.median(runs):.1f} s")
    print(f"whole sharded sweep, submit to last completion: {total:.1f} s; the same cells in this process: "
          f"{inproc:.1f} s")


if __name__ == "__main__":
    main()
