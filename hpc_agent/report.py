"""Comparison reports from sweep traces (Polars): tables per model and per task, intervals, plots.

`build_report(dirs, out)` merges the `cells.parquet`/`attempts.parquet` of one or more sweep folders and
writes `summary.parquet`, `per_task.parquet`, `report.md`, `report.html` and PNG plots. Infrastructure errors are left out of
every rate: they say nothing about a model.
"""

from __future__ import annotations

import html
import math
from math import comb
from pathlib import Path
from typing import cast

import polars as pl

from hpc_agent.errors import UsageError

Z95 = 1.959963984540054


def wilson(passed: int, n: int, z: float = Z95) -> tuple[float, float]:
    """95% Wilson score interval of a pass rate (sane at 0/n and n/n, unlike the normal approximation)."""
    if n == 0:
        return (math.nan, math.nan)
    p = passed / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    # exact at the ends (0/n has lower bound 0, n/n upper bound 1), not 1e-17 off by rounding
    return (0.0 if passed == 0 else max(0.0, centre - half), 1.0 if passed == n else min(1.0, centre + half))


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples with c correct (Chen et al. 2021): 1 - C(n-c, k) / C(n, k)."""
    if n - c < k:
        return 1.0
    return 1.0 - comb(n - c, k) / comb(n, k)


def configuration(rag: str | None, repairs: str | None, candidates: int | None) -> str:
    """`rag, repairs, 4 candidates`: rows are per model and configuration, so ablations are never mixed."""
    parts = ["rag" if rag == "on" else "no rag", "no repairs" if repairs == "off" else "repairs"]
    if (candidates or 1) > 1:
        parts.append(f"{candidates} candidates")
    return ", ".join(parts)


def load(dirs: list[Path]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Cells and attempts of the sweeps, with each cell's `configuration` and `label` (`model [configuration]`)."""
    cells, attempts = [], []
    for d in dirs:
        if not (d / "cells.parquet").is_file():
            raise UsageError(f"{d}: no cells.parquet; is it a sweep folder (hpc-agent bench --out)?")
        frame = pl.read_parquet(d / "cells.parquet").with_columns(pl.lit(str(d)).alias("sweep"))
        for column, default in (("repairs", "off"), ("candidates", 1)):  # sweeps from before these existed
            if column not in frame.columns:
                frame = frame.with_columns(pl.lit(default).alias(column))
        cells.append(frame)
        attempts.append(pl.read_parquet(d / "attempts.parquet"))
    merged = pl.concat(cells, how="vertical_relaxed")
    configs = [configuration(*row) for row in merged.select("rag", "repairs", "candidates").iter_rows()]
    merged = merged.with_columns(pl.Series("configuration", configs, dtype=pl.Utf8))
    merged = merged.with_columns((pl.col("model") + " [" + pl.col("configuration") + "]").alias("label"))
    return merged, pl.concat(attempts, how="vertical_relaxed")


def _group(open_weight: bool | None) -> str:
    groups: dict[bool | None, str] = {True: "open-weight", False: "proprietary"}
    return groups.get(open_weight, "other")


def summarise(cells: pl.DataFrame, attempts: pl.DataFrame) -> pl.DataFrame:
    """One row per model and configuration: pass rate with its Wilson interval, pass@1/pass@k, attempts, tokens,
    wall time."""
    scored = cells.filter(pl.col("status") != "error")
    tokens = attempts.group_by("cell").agg(
        (pl.col("prompt_tokens") + pl.col("completion_tokens") + pl.col("reasoning_tokens")).sum().alias("tokens"))
    scored = scored.join(tokens, on="cell", how="left").with_columns(pl.col("tokens").fill_null(0))
    rows = []
    for label in sorted(scored["label"].unique().to_list()):
        m = scored.filter(pl.col("label") == label)
        model, config = m["model"][0], m["configuration"][0]
        n, c = m.height, int(m["passed"].sum())
        lo, hi = wilson(c, n)
        per_task = m.group_by("task").agg(pl.len().alias("n"), pl.col("passed").sum().alias("c"))
        k = int(cast(int, per_task["n"].min()))  # a count column (polars types min() as any literal)
        passed = m.filter(pl.col("passed"))
        rows.append({
            "model": model, "configuration": config, "group": _group(m["open_weight"][0]), "cells": n, "passed": c,
            "pass_rate": c / n if n else math.nan, "ci95_low": lo, "ci95_high": hi,
            "pass_at_1": _mean([pass_at_k(r["n"], r["c"], 1) for r in per_task.iter_rows(named=True)]),
            "k": k,
            "pass_at_k": _mean([pass_at_k(r["n"], r["c"], k) for r in per_task.iter_rows(named=True)]),
            "mean_attempts_to_pass": _mean(passed["attempts_to_pass"].to_list()),
            "tokens_per_passed": float(m["tokens"].sum()) / c if c else math.nan,
            "wall_s_per_passed": float(m["wall_s"].sum()) / c if c else math.nan,
            "infra_errors": cells.filter((pl.col("label") == label) & (pl.col("status") == "error")).height,
        })
    return pl.DataFrame(rows)


def rag_effect(cells: pl.DataFrame) -> pl.DataFrame:
    """Per model, with and without retrieval: pass rate (95% Wilson), mean attempts to pass and per cell."""
    scored = cells.filter(pl.col("status") != "error")
    rows = []
    for (model, rag), m in sorted(scored.group_by("model", "rag"), key=lambda g: (str(g[0][0]), str(g[0][1]))):
        n, c = m.height, int(m["passed"].sum())
        lo, hi = wilson(c, n)
        rows.append({"model": model, "rag": rag, "cells": n, "passed": c, "pass_rate": c / n if n else math.nan,
                     "ci95_low": lo, "ci95_high": hi,
                     "mean_attempts_to_pass": _mean(m.filter(pl.col("passed"))["attempts_to_pass"].to_list()),
                     "mean_attempts": _mean([float(x) for x in m["n_attempts"].to_list()])})
    return pl.DataFrame(rows, schema={"model": pl.Utf8, "rag": pl.Utf8, "cells": pl.Int64, "passed": pl.Int64,
                                      "pass_rate": pl.Float64, "ci95_low": pl.Float64, "ci95_high": pl.Float64,
                                      "mean_attempts_to_pass": pl.Float64, "mean_attempts": pl.Float64})


def _mean(xs: list[float]) -> float:
    xs = [x for x in xs if x is not None]
    return sum(xs) / len(xs) if xs else math.nan


def per_task(cells: pl.DataFrame, attempts: pl.DataFrame) -> pl.DataFrame:
    scored = cells.filter(pl.col("status") != "error")
    tokens = attempts.group_by("cell").agg(
        (pl.col("prompt_tokens") + pl.col("completion_tokens") + pl.col("reasoning_tokens")).sum().alias("tokens"))
    return (scored.join(tokens, on="cell", how="left")
            .group_by("model", "configuration", "task")
            .agg(pl.len().alias("cells"), pl.col("passed").mean().alias("pass_rate"),
                 pl.col("attempts_to_pass").mean().alias("mean_attempts_to_pass"),
                 pl.col("tokens").mean().alias("mean_tokens"))
            .sort("task", "model", "configuration"))


def _plots(cells: pl.DataFrame, summary: pl.DataFrame, tasks: pl.DataFrame, out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = []
    models = [f"{m} [{c}]" for m, c in zip(summary["model"], summary["configuration"])]  # one per row
    scored = cells.filter(pl.col("status") != "error")
    fig, axes = plt.subplots(1, max(1, len(models)), figsize=(3.2 * max(1, len(models)), 2.8), squeeze=False)
    top = int(cast(int, scored["n_attempts"].max()) or 1)  # a count column, as above
    for ax, model in zip(axes[0], models):
        m = scored.filter(pl.col("label") == model)
        counts = [m.filter(pl.col("attempts_to_pass") == a).height for a in range(1, top + 1)]
        counts.append(m.filter(~pl.col("passed")).height)
        ax.bar([str(a) for a in range(1, top + 1)] + ["never"], counts, color="#4477aa")
        ax.set_title(model, fontsize=9)
        ax.set_xlabel("attempts to pass")
    axes[0][0].set_ylabel("cells")
    fig.tight_layout()
    fig.savefig(out / "attempts_to_pass.png", dpi=110)
    names.append("attempts_to_pass.png")
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(max(4, 1.2 * len(models)), 3))
    rates = summary["pass_rate"].to_list()
    err = [[max(0.0, r - lo) for r, lo in zip(rates, summary["ci95_low"])],
           [max(0.0, hi - r) for r, hi in zip(rates, summary["ci95_high"])]]
    colours = ["#228833" if g == "open-weight" else "#aa3377" if g == "proprietary" else "#bbbbbb"
               for g in summary["group"]]
    ax.bar(models, rates, yerr=err, capsize=4, color=colours)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("pass rate (95% Wilson)")
    ax.tick_params(axis="x", rotation=30, labelsize=8)
    fig.tight_layout()
    fig.savefig(out / "pass_rate.png", dpi=110)
    names.append("pass_rate.png")
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(max(5, 0.6 * tasks["task"].n_unique() * max(1, len(models))), 3.2))
    task_ids = sorted(tasks["task"].unique().to_list())
    width = 0.8 / max(1, len(models))
    for i, model in enumerate(models):
        m = tasks.filter(pl.col("model") + " [" + pl.col("configuration") + "]" == model)
        vals = [float((m.filter(pl.col("task") == t)["mean_tokens"].to_list() or [0])[0] or 0) for t in task_ids]
        ax.bar([j + i * width for j in range(len(task_ids))], vals, width=width, label=model)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(task_ids))], task_ids, rotation=35, ha="right", fontsize=7)
    ax.set_ylabel("tokens per cell")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "tokens_per_task.png", dpi=110)
    names.append("tokens_per_task.png")
    plt.close(fig)
    return names


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return "–" if math.isnan(v) else f"{v:.3g}"
    return "–" if v is None else str(v)


def _markdown(df: pl.DataFrame) -> str:
    head = "| " + " | ".join(df.columns) + " |\n|" + "---|" * len(df.columns) + "\n"
    return head + "".join("| " + " | ".join(_fmt(v) for v in row) + " |\n" for row in df.iter_rows())


def _html_table(df: pl.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in df.columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in row) + "</tr>" for row in df.iter_rows())
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def build_report(dirs: list[Path], out: Path) -> Path:
    cells, attempts = load(dirs)
    out.mkdir(parents=True, exist_ok=True)
    summary = summarise(cells, attempts)
    tasks = per_task(cells, attempts)
    rag = rag_effect(cells)
    summary.write_parquet(out / "summary.parquet")
    tasks.write_parquet(out / "per_task.parquet")
    plots = _plots(cells, summary, tasks, out)
    sources = ", ".join(str(d) for d in dirs)
    md = [f"# Benchmark report\n\nSweeps: {sources}. Cells ending in an infrastructure error are excluded from "
          "every rate (column `infra_errors`). Pass rates carry 95% Wilson intervals; pass@k uses the unbiased "
          "estimator over seeds (k = seeds per task).\n",
          "## Configurations\n\nOne row per model and configuration: retrieval on or off, the harness's "
          "deterministic repairs on or off, candidates per turn.\n", _markdown(summary),
          "\n## Retrieval (RAG) effect\n\nPer model, cells run without (`off`) and with (`on`) retrieved "
          "documentation snippets.\n", _markdown(rag),
          "\n## Per task\n", _markdown(tasks), "\n## Plots\n"]
    md += [f"![{p}]({p})\n" for p in plots]
    (out / "report.md").write_text("\n".join(md))
    page = ["<!doctype html><meta charset=utf-8><title>hpc-agent benchmark report</title>",
            "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse;"
            "font-size:13px}td,th{border:1px solid #ccc;padding:3px 6px}</style>",
            f"<h1>Benchmark report</h1><p>Sweeps: {html.escape(sources)}</p>",
            "<h2>Models</h2>", _html_table(summary), "<h2>Retrieval (RAG) effect</h2>", _html_table(rag),
            "<h2>Per task</h2>", _html_table(tasks), "<h2>Plots</h2>"]
    page += [f'<p><img src="{p}" alt="{p}"></p>' for p in plots]
    (out / "report.html").write_text("\n".join(page))
    return out
