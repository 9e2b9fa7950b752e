"""Warm vs cold sandboxes on real reference solutions: sandbox time / bare cold python, side by side.

Usage: PHOTON_STORAGE=/path/to/data python benchmarks/warm_sandbox.py [--runs 3] [--sandbox bwrap]
       [--tasks observation-list-crab,reflected-spectrum-crab]

For each task's reference script, interleaved round by round: ``bare`` is ``python script.py`` as a plain
subprocess (no sandbox, no limits: the cold interpreter importing the stack itself); ``cold`` is the sandbox
started for the script; ``warm`` is a warm sandbox started earlier (as the agent does while the model
answers) and handed the script once its warm-up is over: the time from the hand-over to the result. Goals
(issue 14): warm / bare <= 0.5 for the observation list, <= 0.8 for the reflected spectrum.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

from hpc_agent.bench.tasks import load_tasks, reference_script
from hpc_agent.data import contract_env, data_binds
from hpc_agent.records import Limits
from hpc_agent.sandbox import default_sandbox_name, get_sandbox
from hpc_agent.sandbox._env import python_path_env, scrubbed_env
from hpc_agent.sandbox.warm import DEFAULT_MODULES, WarmSandbox

GOALS = {"observation-list": 0.5, "reflected-spectrum": 0.8}


def bare(script: str, ws: Path, data_root: Path) -> float:
    ws.mkdir(parents=True)
    (ws / "script.py").write_text(script)
    env = scrubbed_env(ws, contract_env(data_root), path=python_path_env(sys.executable))
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "script.py"], cwd=ws, env=env, check=True, capture_output=True)
    return time.perf_counter() - t0


def cold(sb, script: str, ws: Path, data_root: Path, limits: Limits) -> float:
    t0 = time.perf_counter()
    r = sb.run(script, ws, env=contract_env(data_root), limits=limits, ro_binds=data_binds(data_root))
    took = time.perf_counter() - t0
    assert r.ok and r.start == "cold", r
    return took


def warm(sb, script: str, ws: Path, data_root: Path, limits: Limits) -> float:
    w = WarmSandbox(sb, ws, env=contract_env(data_root), limits=limits, ro_binds=data_binds(data_root),
                    modules=DEFAULT_MODULES).start()
    assert w.ready(), w.failure  # the model's answer arrives after the warm-up (the usual case)
    t0 = time.perf_counter()
    r = w.run(script)
    took = time.perf_counter() - t0
    assert r.ok and r.start == "warm", r
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sandbox", default=None, help="bwrap | process | apptainer (default: best available)")
    parser.add_argument("--tasks", default="observation-list-crab,reflected-spectrum-crab")
    args = parser.parse_args()
    data_root = Path(os.environ.get("PHOTON_STORAGE", "/work/shared/data"))
    name = args.sandbox or default_sandbox_name()
    sb = get_sandbox(name)
    tasks = load_tasks()
    warnings.simplefilter("ignore")  # the process backend warns on every run
    import logging

    logging.disable(logging.WARNING)
    print(f"{name} sandbox, {args.runs} rounds (bare, cold, warm interleaved), medians; {sys.executable}")
    print(f"{'task':28s} {'bare s':>8s} {'cold s':>8s} {'warm s':>8s} {'cold/bare':>10s} {'warm/bare':>10s} "
          f"{'goal':>6s}")
    with tempfile.TemporaryDirectory(prefix="warm-bench-") as tmp:
        for task_id in args.tasks.split(","):
            task = tasks[task_id]
            script = reference_script(task)
            limits = Limits(wall_s=max(task.time_limit_s, 600))
            rows: dict[str, list[float]] = {"bare": [], "cold": [], "warm": []}
            for i in range(args.runs):
                base = Path(tmp) / f"{task_id}-{i}"
                rows["bare"].append(bare(script, base / "bare", data_root))
                rows["cold"].append(cold(sb, script, base / "cold", data_root, limits))
                rows["warm"].append(warm(sb, script, base / "warm", data_root, limits))
            b, c, w = (statistics.median(rows[k]) for k in ("bare", "cold", "warm"))
            goal = next((g for k, g in GOALS.items() if task_id.startswith(k)), None)
            mark = "" if goal is None else f"{goal:.1f} {'ok' if w / b <= goal else 'MISSED'}"
            print(f"{task_id:28s} {b:8.2f} {c:8.2f} {w:8.2f} {c / b:10.2f} {w / b:10.2f} {mark:>6s}")


if __name__ == "__main__":
    main()
