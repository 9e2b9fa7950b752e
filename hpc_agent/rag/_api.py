"""Build, open and query the retrieval index from Settings: what the CLI, `api.run` and sweeps call."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from hpc_agent.config import Settings, cache_root
from hpc_agent.errors import ConfigError, UsageError
from hpc_agent.rag._chunks import chunk_documents
from hpc_agent.rag._corpus import api_documents, tutorial_documents
from hpc_agent.rag._embed import Embedder, make_embedder
from hpc_agent.rag._index import Index, build_index, check_compatible, is_url, open_index
from hpc_agent.rag._retrieve import Retriever

REFERENCE_DIR = Path(__file__).resolve().parents[2] / "benchmarks" / "reference"


def reference_dirs() -> tuple[Path, ...]:
    """The benchmark reference solutions: the repository's and the one HPC_AGENT_BENCHMARKS points at."""
    from hpc_agent.bench.tasks import benchmarks_dir

    return tuple(dict.fromkeys((REFERENCE_DIR.resolve(), (benchmarks_dir() / "reference").resolve())))


def gammapy_version() -> str:
    from importlib.metadata import version

    return version("gammapy")


def default_index_dir(embedder_name: str) -> Path:
    """`<cache>/rag/gammapy-<version>-<embedder>`: one index per Gammapy version and embedder."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", embedder_name)
    return cache_root() / "rag" / f"gammapy-{gammapy_version()}-{slug}"


def index_location(settings: Settings, embedder: Embedder, override: str | None = None) -> str:
    loc = override or settings.rag_index
    if loc is None:
        return str(default_index_dir(embedder.name))
    return loc if loc == ":memory:" or is_url(loc) else str(Path(loc).expanduser().resolve())


@dataclass(frozen=True)
class BuildInfo:
    location: str
    chunks: int
    api_chunks: int
    tutorial_chunks: int
    embedder: str
    seconds: float
    size_bytes: int | None


def _size(location: str) -> int | None:
    p = Path(location)
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) if p.is_dir() else None


def build(settings: Settings, *, sources: tuple[Path, ...] = (), index: str | None = None,
          progress: Callable[[str], None] = lambda _m: None) -> tuple[Index, BuildInfo]:
    """Index the installed Gammapy API plus the tutorial folders `sources` (never benchmarks/reference/)."""
    t0 = time.monotonic()
    embedder = make_embedder(settings.rag_embedder, settings.backends)
    location = index_location(settings, embedder, index)
    progress(f"reading the Gammapy {gammapy_version()} API")
    api_chunks = chunk_documents(api_documents())
    tutorial_chunks = []
    for folder in (*settings.rag_sources, *sources):
        progress(f"reading tutorials in {folder}")
        tutorial_chunks += chunk_documents(tutorial_documents(Path(folder), exclude=reference_dirs()))
    chunks = sorted({c.id: c for c in api_chunks + tutorial_chunks}.values(), key=lambda c: (c.source, c.symbol, c.id))
    meta: dict[str, Any] = {
        "gammapy": gammapy_version(),
        "sources": ["gammapy-api", *(str(Path(s).resolve()) for s in (*settings.rag_sources, *sources))],
        "excluded": [str(d) for d in reference_dirs()],
    }
    idx = build_index(chunks, embedder, location, meta, progress=progress)
    info = BuildInfo(location, len(chunks), len(api_chunks), len(tutorial_chunks), embedder.name,
                     round(time.monotonic() - t0, 1), _size(location))
    return idx, info


def index_status(settings: Settings) -> tuple[bool, str]:
    """Whether RAG can be switched on as configured, without loading a model: (ready, location or how to fix)."""
    try:
        embedder = make_embedder(settings.rag_embedder, settings.backends)
    except ConfigError as exc:
        return False, str(exc)
    location = index_location(settings, embedder)
    if location == ":memory:" or is_url(location) or (Path(location) / "meta.json").is_file():
        return True, location
    default = location == str(default_index_dir(embedder.name))
    return False, f"no retrieval index at {location}: build it with `hpc-agent rag build" + (
        "`" if default else f" --index {location}`")


def open_retriever(settings: Settings, *, index: str | None = None, for_benchmark: bool = False,
                   progress: Callable[[str], None] = lambda _m: None) -> Retriever:
    """The configured index, checked against the installed Gammapy and the embedder; `:memory:` is built here.

    `for_benchmark` asserts that no benchmark reference solution is in the corpus (no answer leakage).
    """
    embedder = make_embedder(settings.rag_embedder, settings.backends)
    location = index_location(settings, embedder, index)
    if location == ":memory:":
        idx, _ = build(settings, index=location, progress=progress)
    else:
        if not is_url(location) and not (Path(location) / "meta.json").is_file():
            default = location == str(default_index_dir(embedder.name))
            how = "hpc-agent rag build" + ("" if default else f" --index {location}")
            raise UsageError(f"no retrieval index at {location}; build it with `{how}` (RAG is on)")
        idx = open_index(location)
    check_compatible(idx, gammapy_version(), embedder)
    if for_benchmark:
        assert_no_references(idx)
    return Retriever(idx, embedder, k=settings.rag_k, min_score=settings.rag_min_score, mode=settings.rag_mode)


def assert_no_references(idx: Index) -> None:
    """Benchmark runs refuse an index whose sources hold `benchmarks/reference/` (answer leakage)."""
    for src in idx.meta.get("sources", []):
        if src == "gammapy-api":
            continue
        p = Path(src).resolve()
        if any(p == ref or ref.is_relative_to(p) or p.is_relative_to(ref) for ref in reference_dirs()):
            raise UsageError(f"{idx.location}: its corpus includes {src}, which holds the benchmark reference "
                             "solutions; rebuild it without that --source for benchmark runs")
