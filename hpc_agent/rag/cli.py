"""`hpc-agent rag build|query`: parse, call hpc_agent.rag, print."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

import click

from hpc_agent._cli_common import settings as load_settings


def _progress(message: str) -> None:
    click.echo(message, err=True)


@click.group()
def rag() -> None:
    """Build and query the retrieval index (the installed Gammapy's API, tutorials and user guide)."""


@rag.command("build")
@click.option("--source", "sources", multiple=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="a folder of sphinx-gallery .py / .ipynb tutorials to add (repeatable)")
@click.option("--index", help="index folder, `:memory:` or a Qdrant URL (default: <cache>/rag/gammapy-<version>-<embedder>)")
@click.option("--embedder", help="`local` (offline all-MiniLM-L6-v2, the default) or a backend with embedding_model")
@click.option("--docs/--no-docs", default=None,
              help="add the tutorials and user guide of the installed Gammapy's sdist (default: rag_docs, on)")
@click.option("--force", is_flag=True, help="rebuild even when the index already holds the same chunks")
@click.option("--json", "as_json", is_flag=True)
def build_cmd(sources: tuple[Path, ...], index: str | None, embedder: str | None, docs: bool | None, force: bool,
              as_json: bool) -> None:
    """Index the installed Gammapy's API, tutorials and user guide (and --source folders); skipped when unchanged."""
    from hpc_agent import rag as r

    settings = load_settings(rag_embedder=embedder, rag_docs=docs)
    info = r.build(settings, sources=sources, index=index, force=force, progress=_progress)
    if as_json:
        click.echo(json.dumps(asdict(info), indent=2))
        return
    size = f", {info.size_bytes / 1e6:.1f} MB" if info.size_bytes is not None else ""
    counts = ", ".join(f"{v} {k}" for k, v in info.parts.items())
    verb = "up to date" if info.skipped else "indexed"
    click.echo(f"{verb}: {info.chunks} chunks ({counts}) with {info.embedder} in {info.seconds:.0f} s: "
               f"{info.location}{size}")


@rag.command("query")
@click.argument("text")
@click.option("--index", help="index folder, `:memory:` or a Qdrant URL (default: the default index)")
@click.option("--k", "k", type=click.IntRange(min=1), help="how many snippets (default: rag_k)")
@click.option("--min-score", type=float, help="cosine threshold (default: rag_min_score)")
@click.option("--embedder", help="the embedder the index was built with (default: rag_embedder)")
@click.option("--json", "as_json", is_flag=True)
def query_cmd(text: str, index: str | None, k: int | None, min_score: float | None, embedder: str | None,
              as_json: bool) -> None:
    """The top-k snippets for TEXT, with their symbols and scores."""
    from hpc_agent import rag as r

    settings = load_settings(rag_embedder=embedder, rag_k=k, rag_min_score=min_score)
    retriever = r.open_retriever(settings, index=index, progress=_progress)
    t0 = time.monotonic()
    found = retriever.search(text)
    took = time.monotonic() - t0
    if as_json:
        click.echo(json.dumps({**found.record(), "texts": [h.text for h in found.hits], "seconds": round(took, 3)},
                              indent=2))
        return
    for i, h in enumerate(found.hits, 1):
        first = h.text.splitlines()[0] if h.text else ""
        click.echo(f"{i}. {h.score:.3f}  {h.symbol}  [{h.kind}]\n   {first[:160]}")
    if not found.hits:
        click.echo(f"no snippet above score {retriever.min_score}")
    click.echo(f"({took * 1000:.0f} ms)", err=True)
