"""A cold sandbox run of Gammapy's imports with the seeded font list against one without, interleaved.

Usage: python benchmarks/font_seed.py [--runs 8] [--backend bwrap]

Each run starts cold in a fresh workspace (HOME) and imports what every analysis script imports
(`gammapy.data`, `gammapy.maps`: matplotlib comes with them). "unseeded" is the launch as it was before the
seed (matplotlib builds its font list in the workspace); "seeded" copies the list built once per backend and
interpreter (`hpc_agent/sandbox/_seed.py`). Prints the medians and their ratio.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings
from pathlib import Path

from hpc_agent.records import Limits
from hpc_agent.sandbox import get_sandbox
from hpc_agent.sandbox._exec import SCRIPT_NAME, run_launch

LIMITS = Limits(wall_s=120)
SCRIPT = "import gammapy.data, gammapy.maps\nprint('ok')\n"


def one(sb, ws: Path, seed: bool) -> float:
    ws.mkdir(parents=True)
    (ws / SCRIPT_NAME).write_text(SCRIPT)
    t0 = time.perf_counter()
    result = run_launch(sb.launch(ws.resolve(), env={}, limits=LIMITS, seed=seed), cwd=ws, limits=LIMITS,
                        backend=sb.name, isolated=sb.isolated)
    elapsed = time.perf_counter() - t0
    assert result.stdout == "ok\n", result.stderr[-500:]
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--backend", default="bwrap", choices=("bwrap", "process"))
    args = parser.parse_args()
    sb = get_sandbox(args.backend)
    times: dict[str, list[float]] = {"unseeded": [], "seeded": []}
    with warnings.catch_warnings(), tempfile.TemporaryDirectory(prefix="font-seed-") as tmp:
        warnings.simplefilter("ignore")
        one(sb, Path(tmp) / "first", True)  # builds the seed (once per backend and interpreter) and warms the page cache
        for i in range(args.runs):
            for label in times:
                times[label].append(one(sb, Path(tmp) / f"{label}-{i}", label == "seeded"))
    medians = {k: statistics.median(v) for k, v in times.items()}
    print(f"{args.backend}, cold runs of `import gammapy.data, gammapy.maps`, {args.runs} interleaved rounds")
    for label, median in medians.items():
        print(f"{label:10s} median {median:6.3f} s")
    print(f"seeded / unseeded: {medians['seeded'] / medians['unseeded']:.2f} "
          f"(saved {1000 * (medians['unseeded'] - medians['seeded']):.0f} ms per cold run)")


if __name__ == "__main__":
    main()
