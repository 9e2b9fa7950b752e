"""How long the CLI takes to start: `hpc-agent --help` and `hpc-agent models` against a bare interpreter.

Every command and every Slurm array element pays this before doing anything. Goal: both under 0.3 s.
Prints the median of N runs each, side by side in one run, and the ratio to `python -c pass`.

    python benchmarks/cli_start.py [--repeat 7]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

CLI = str(Path(sys.executable).with_name("hpc-agent"))
CASES = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "hpc-agent --help": [CLI, "--help"],
    "hpc-agent models": [CLI, "models"],
    "import hpc_agent.api (the whole loop)": [sys.executable, "-c", "import hpc_agent.api"],
}


def _median(argv: list[str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    base = None
    for label, argv in CASES.items():
        took = _median(argv, args.repeat)
        base = base or took
        print(f"{label:40s} {took * 1000:7.0f} ms  ({took / base:4.1f}x bare python)")


if __name__ == "__main__":
    main()
