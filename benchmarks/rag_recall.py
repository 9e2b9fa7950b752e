"""Retrieval quality on the labelled queries in rag_queries.yaml: recall@k and MRR, dense vs hybrid.

Usage: python benchmarks/rag_recall.py [--index DIR] [--k 5] [--modes dense,hybrid] [--first-turn] [--misses]

Uses the index `hpc-agent rag build` made (default location) or --index; a query is found at rank r when
the r-th retrieved chunk is one of its labels: an API chunk whose symbol is in `symbols`, or a tutorial or
guide piece from one of the `examples` files whose text shows the labelled call. An API question is also
answered by a worked example whose code uses one of its labelled symbols (the class called or used, the
function called, the method or property used beside its class's name): column `api+ex`; column `api`
counts API chunks alone, as before tutorials were indexed. `all` = `api+ex` and `how-to` questions.
No score threshold applies here (recall of the ranking itself). `--first-turn` measures what the agent's
first turn gets instead (`Retriever.for_prompt`: the top k with a worked example guaranteed). Also prints the query latency
(embedding + search, warm model).
"""

from __future__ import annotations

import argparse
import re
import statistics
import time
from pathlib import Path
from typing import Any

import yaml

from hpc_agent.config import load_settings
from hpc_agent.rag import Hit, open_retriever

QUERIES = Path(__file__).with_name("rag_queries.yaml")


def relative(source: str) -> str:
    """A chunk's file as labels name it: `gammapy-2.1-sdist:examples/tutorials/x.py` -> `tutorials/x.py`."""
    path = source.split(":", 1)[-1]
    for prefix in ("examples/", "docs/"):
        if path.startswith(prefix):
            return path[len(prefix):]
    return path


def answers(hit: Hit, query: dict[str, Any]) -> bool:
    if hit.symbol in query.get("symbols", []):
        return True
    return any(relative(hit.source) == ex["file"] and ex["shows"] in hit.text for ex in query.get("examples", []))


def uses(text: str, symbol: str, kind: str | None) -> bool:
    """Whether the code of a worked example uses `symbol` (a dotted API name of the given chunk kind)."""
    code = "\n".join(re.findall(r"```python\n(.*?)```", text, re.DOTALL))
    *_, owner, name = ["", *symbol.split(".")]
    if kind == "class":
        return re.search(rf"\b{name}\s*[(.]", code) is not None
    if kind == "function":
        return re.search(rf"\b{name}\s*\(", code) is not None
    if kind in ("method", "property"):
        return re.search(rf"\b{owner}\b", code) is not None and re.search(rf"\.{name}\b", code) is not None
    return False


def check_labels(labelled: list[dict[str, Any]], chunks: list[dict[str, Any]]) -> None:
    """Every label names something the index holds (a typo would silently lower recall)."""
    symbols = {c["symbol"] for c in chunks}
    absent = sorted({s for q in labelled for s in q.get("symbols", [])} - symbols)
    for q in labelled:
        for ex in q.get("examples", []):
            if not any(relative(c["source"]) == ex["file"] and ex["shows"] in c["text"] for c in chunks):
                absent.append(f"{ex['file']} showing {ex['shows']!r}")
    if absent:
        raise SystemExit(f"{QUERIES}: labels the index does not hold: {', '.join(absent)}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--index")
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--modes", default="dense,hybrid")
    ap.add_argument("--first-turn", action="store_true", help="rank as the first turn does (a worked example in)")
    ap.add_argument("--misses", action="store_true", help="print the queries not found in the top k")
    args = ap.parse_args()
    labelled = yaml.safe_load(QUERIES.read_text())["queries"]
    for mode in args.modes.split(","):
        retriever = open_retriever(load_settings(rag_mode=mode, rag_k=args.k, rag_min_score=-1.0), index=args.index)
        chunks = [p.payload for p in retriever.index.client.scroll("gammapy", limit=100_000, with_payload=True)[0]]
        has_examples = any(c["kind"] in ("tutorial", "guide") for c in chunks)
        asked = [q for q in labelled if q.get("symbols") or has_examples]  # how-to questions need examples
        check_labels(asked, chunks)
        retriever.search("warm-up")
        kind = {c["symbol"]: c["kind"] for c in chunks}
        found: dict[str, list[float]] = {"api": [], "api+ex": [], "how-to": []}  # reciprocal ranks (0: missed)
        took = []
        for q in asked:
            t0 = time.perf_counter()
            hits = (retriever.for_prompt(q["q"]) if args.first_turn else retriever.search(q["q"])).hits
            took.append(time.perf_counter() - t0)
            ranks = [i for i, h in enumerate(hits, 1) if answers(h, q)]
            if q.get("symbols"):
                found["api"].append(1 / ranks[0] if ranks else 0.0)
                ranks = [i for i, h in enumerate(hits, 1) if answers(h, q) or (
                    h.kind in ("tutorial", "guide") and any(uses(h.text, s, kind.get(s)) for s in q["symbols"]))]
                found["api+ex"].append(1 / ranks[0] if ranks else 0.0)
            else:
                found["how-to"].append(1 / ranks[0] if ranks else 0.0)
            if not ranks and args.misses:
                print(f"  miss [{mode}] {q['q']!r}: got {[h.symbol for h in hits]}")
        groups = {**{k: v for k, v in found.items() if v}, "all": found["api+ex"] + found["how-to"]}
        scores = " ".join(f"{name}: n={len(rr)} recall@{args.k}={sum(r > 0 for r in rr) / len(rr):.3f} "
                          f"MRR={sum(rr) / len(rr):.3f} |" for name, rr in groups.items())
        print(f"{mode:7} {scores} latency median={statistics.median(took) * 1000:.0f} ms "
              f"max={max(took) * 1000:.0f} ms chunks={retriever.index.count}")


if __name__ == "__main__":
    main()
