"""Questions in a user's words, run through the whole agent with a real model: does a change generalise?

Usage: python benchmarks/practice_questions.py QUESTIONS.yaml [--backend qwen2.5-coder-1.5b] [--attempts 5]
       [--rag] [--no-repairs] [--out DIR]

QUESTIONS.yaml is a list of {prompt, key, expected, tolerance}. Each question is one `hpc_agent.run` (the
local model is started once and shared); a question counts as answered when the run passed and its
RESULT `key` is within `tolerance` of `expected`. Prints one line per question, then the totals.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import yaml

from hpc_agent import load_settings, run
from hpc_agent.serve.session import open_backend
from hpc_agent.validate import parse_results


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("questions", type=Path)
    ap.add_argument("--backend", default="qwen2.5-coder-1.5b")
    ap.add_argument("--attempts", type=int, default=5)
    ap.add_argument("--rag", action="store_true")
    ap.add_argument("--no-repairs", action="store_true")
    ap.add_argument("--out", type=Path, default=None, help="bundles folder (default: a new practice-runs/<time>/)")
    args = ap.parse_args()
    questions = yaml.safe_load(args.questions.read_text())
    args.out = args.out or Path("practice-runs") / time.strftime("%Y%m%d-%H%M%S")  # never an earlier run's
    settings = load_settings(attempts=args.attempts, repairs=not args.no_repairs)
    right, t0 = 0, time.monotonic()
    with open_backend(settings, args.backend) as backend:
        for i, q in enumerate(questions, 1):
            out = args.out / f"q{i}"
            result = run(q["prompt"], backend=backend, settings=settings, out_dir=out, rag=args.rag)
            last = result.attempts[-1] if result.attempts else None
            values = parse_results(last.execution.stdout)[0] if last and last.execution else {}
            got = values.get(q["key"])
            ok = result.passed and isinstance(got, (int, float)) and abs(got - q["expected"]) <= q["tolerance"]
            right += ok
            print(f"q{i}: {'RIGHT' if ok else 'wrong'}  {q['key']}={json.dumps(got)} (expected {q['expected']}) "
                  f"after {len(result.attempts)} attempt(s) — {q['prompt'][:70]}", flush=True)
    print(f"{right}/{len(questions)} right with {args.backend} (repairs {'off' if args.no_repairs else 'on'}, "
          f"rag {'on' if args.rag else 'off'}) in {time.monotonic() - t0:.0f} s")


if __name__ == "__main__":
    main()
