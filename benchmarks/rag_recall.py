"""Retrieval quality on the labelled queries in rag_queries.yaml: recall@k and MRR, dense vs hybrid.

Usage: python benchmarks/rag_recall.py [--index DIR] [--k 5] [--modes dense,hybrid] [--misses]

Uses the index `hpc-agent rag build` made (default location) or --index; a query is found at rank r when
the r-th retrieved chunk's symbol is one of the query's labelled symbols. No score threshold applies here
(recall of the ranking itself). Also prints the query latency (embedding + search, warm model).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import yaml

from hpc_agent.config import load_settings
from hpc_agent.rag import open_retriever

QUERIES = Path(__file__).with_name("rag_queries.yaml")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--index")
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--modes", default="dense,hybrid")
    ap.add_argument("--misses", action="store_true", help="print the queries not found in the top k")
    args = ap.parse_args()
    labelled = yaml.safe_load(QUERIES.read_text())["queries"]
    for mode in args.modes.split(","):
        retriever = open_retriever(load_settings(rag_mode=mode), index=args.index)
        known = {p.payload["symbol"] for p in retriever.index.client.scroll(
            "gammapy", limit=100_000, with_payload=["symbol"])[0]}
        absent = sorted({s for q in labelled for s in q["symbols"]} - known)
        if absent:
            raise SystemExit(f"{QUERIES}: labelled symbols not in the index: {', '.join(absent)}")
        retriever.search("warm-up")
        found, rr, took = 0, 0.0, []
        for q in labelled:
            t0 = time.perf_counter()
            hits = retriever.search(q["q"], k=args.k, min_score=-1.0).hits
            took.append(time.perf_counter() - t0)
            ranks = [i for i, h in enumerate(hits, 1) if h.symbol in q["symbols"]]
            if ranks:
                found += 1
                rr += 1 / ranks[0]
            elif args.misses:
                print(f"  miss [{mode}] {q['q']!r}: got {[h.symbol for h in hits]}")
        n = len(labelled)
        print(f"{mode:7} queries={n} recall@{args.k}={found / n:.3f} MRR@{args.k}={rr / n:.3f} "
              f"latency median={statistics.median(took) * 1000:.0f} ms max={max(took) * 1000:.0f} ms "
              f"chunks={retriever.index.count}")


if __name__ == "__main__":
    main()
