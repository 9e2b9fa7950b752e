"""Cost of the static stage (repairs, grounding, rules) on the 17 reference solutions.

Usage: python benchmarks/static_stage.py [--repeat 5]

Prints the one-off cost of building the name index (imports Gammapy's public modules), then, per task,
the median time of `static_stage` over --repeat calls after the first. Goal: under 100 ms each.
"""

from __future__ import annotations

import argparse
import statistics
import time

from hpc_agent.bench.tasks import load_tasks, reference_script
from hpc_agent.names import name_index
from hpc_agent.static import static_stage


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    t0 = time.perf_counter()
    name_index()
    print(f"name index built once per process: {time.perf_counter() - t0:.2f} s")
    medians = []
    for task in load_tasks().values():
        code = reference_script(task)
        first = static_stage(code)
        assert first.ok and not first.repairs, f"{task.id}: {first.errors or first.repairs}"
        times = [static_stage(code).seconds for _ in range(args.repeat)]
        medians.append(statistics.median(times))
        print(f"{task.id:36} first {first.seconds * 1000:7.1f} ms   median after {medians[-1] * 1000:6.1f} ms")
    print(f"median over {len(medians)} tasks: {statistics.median(medians) * 1000:.1f} ms; "
          f"max {max(medians) * 1000:.1f} ms (goal < 100 ms)")


if __name__ == "__main__":
    main()
