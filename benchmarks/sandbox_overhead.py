"""Start-up overhead of the sandboxes: ``python -c pass`` bare vs through each backend.

Usage: python benchmarks/sandbox_overhead.py [--runs 30]

"bare" is a plain subprocess.run of the interpreter; the backends run the same program as their
script.py (``pass``) with all limits applied (cgroups, rlimits, capped pipes, bwrap namespaces).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

from hpc_agent.records import Limits
from hpc_agent.sandbox import get_sandbox

LIMITS = Limits(wall_s=30, memory_mb=1024, max_procs=64)


def _stats(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
    return statistics.median(ordered) * 1000, p90 * 1000


def bare(runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        out.append(time.perf_counter() - t0)
    return out


def sandboxed(name: str, runs: int, root: Path) -> list[float]:
    sb = get_sandbox(name)
    ok, why = sb.available()
    if not ok:
        raise SystemExit(f"{name}: {why}")
    out = []
    for i in range(runs):
        ws = root / f"{name}-{i}"
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = sb.run("pass", ws, env={}, limits=LIMITS)
        out.append(time.perf_counter() - t0)
        assert result.ok, result
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--backends", default="bwrap,process")
    args = parser.parse_args()
    import logging

    logging.disable(logging.WARNING)  # the process backend warns on every run
    with tempfile.TemporaryDirectory(prefix="sandbox-bench-") as tmp:
        rows = {"bare": bare(args.runs)}
        for name in args.backends.split(","):
            sandboxed(name, 2, Path(tmp) / "warmup")
            rows[name] = sandboxed(name, args.runs, Path(tmp))
    base_median, _ = _stats(rows["bare"])
    print(f"python -c pass, {args.runs} runs each ({sys.executable})")
    print(f"{'':10s} {'median ms':>10s} {'p90 ms':>10s} {'overhead ms':>12s}")
    for name, samples in rows.items():
        median, p90 = _stats(samples)
        overhead = "" if name == "bare" else f"{median - base_median:+12.1f}"
        print(f"{name:10s} {median:10.1f} {p90:10.1f} {overhead:>12s}")


if __name__ == "__main__":
    main()
