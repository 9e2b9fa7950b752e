"""Build, open and query the retrieval index from Settings: what the CLI, `api.run` and sweeps call."""

from __future__ import annotations

import re
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from hpc_agent._shipped import shipped
from hpc_agent.config import Settings, cache_root
from hpc_agent.errors import ConfigError, UsageError
from hpc_agent.rag._chunks import Chunk, chunk_documents
from hpc_agent.rag._corpus import SCRIPT_KIND, api_documents
from hpc_agent.rag._embed import Embedder, make_embedder
from hpc_agent.rag._index import Index, build_index, check_compatible, fingerprint, folder_meta, is_url, open_index
from hpc_agent.rag._retrieve import Retriever
from hpc_agent.rag._sdist import SdistMissing, fetch_sdist
from hpc_agent.rag._tutorials import sdist_documents, tutorial_documents

REFERENCE_DIR = shipped("benchmarks") / "reference"


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


API_KINDS = ("module", "class", "function", "method", "property")


@dataclass(frozen=True)
class BuildInfo:
    location: str
    chunks: int
    parts: dict[str, int]  # chunks per part: api, tutorials, guide
    sdist: str | None  # the Gammapy version whose sdist gave the tutorials and guide; None when left out
    embedder: str
    seconds: float
    size_bytes: int | None
    skipped: bool = False  # the index there already held exactly these chunks: nothing was embedded


def _size(location: str) -> int | None:
    p = Path(location)
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) if p.is_dir() else None


def parts(chunks: list[Chunk]) -> dict[str, int]:
    named = {"tutorial": "tutorials", SCRIPT_KIND: "scripts"}  # scripts: each tutorial's whole code, once
    kinds = Counter("api" if c.kind in API_KINDS else named.get(c.kind, c.kind) for c in chunks)
    return {part: kinds.get(part, 0) for part in ("api", "tutorials", "guide", "scripts")}


def describe_parts(meta: dict[str, Any]) -> str:
    """`api 2489, tutorials 400, guide 300 chunks; gammapy 2.1 sdist` from an index's meta.json."""
    counts = meta.get("parts")
    if not counts:
        return f"{meta.get('chunks', '?')} chunks"
    sdist = meta.get("sdist") or {}
    where = f"; {sdist['label']}" if sdist.get("label") else "; no sdist (API and --source only)"
    return ", ".join(f"{k} {v}" for k, v in counts.items()) + f" chunks{where}"


def _corpus(settings: Settings, sources: tuple[Path, ...], docs: bool, api_package: str,
            progress: Callable[[str], None]) -> tuple[list[Chunk], dict[str, Any]]:
    """The chunks to index and what meta.json says of their origin."""
    version = gammapy_version()
    progress(f"reading the Gammapy {version} API")
    chunks = chunk_documents(api_documents(api_package))
    origin: dict[str, Any] = {"gammapy": version, "sources": ["gammapy-api"], "sdist": None}
    if docs:
        got = fetch_sdist(version, cache_root(), progress)
        if isinstance(got, SdistMissing):
            progress(f"tutorials and user guide left out: {got.reason}")
        else:
            progress(f"reading the tutorials and user guide in {got.path}")
            chunks += chunk_documents(sdist_documents(got.files, got.label))
            origin["sources"].append(got.label)
            origin["sdist"] = {"version": got.version, "label": got.label, "path": str(got.path)}
    for folder in (*settings.rag_sources, *sources):
        progress(f"reading tutorials in {folder}")
        chunks += chunk_documents(tutorial_documents(Path(folder), exclude=reference_dirs()))
        origin["sources"].append(str(Path(folder).resolve()))
    unique = sorted({c.id: c for c in chunks}.values(), key=lambda c: (c.source, c.symbol, c.id))
    origin["excluded"] = [str(d) for d in reference_dirs()]
    origin["parts"] = parts(unique)
    return unique, origin


def _build(settings: Settings, *, sources: tuple[Path, ...] = (), index: str | None = None, docs: bool | None = None,
           force: bool = False, api_package: str = "gammapy", progress: Callable[[str], None] = lambda _m: None
           ) -> tuple[Index | None, BuildInfo]:
    t0 = time.monotonic()
    embedder = make_embedder(settings.rag_embedder, settings.backends)
    location = index_location(settings, embedder, index)
    chunks, meta = _corpus(settings, sources, settings.rag_docs if docs is None else docs, api_package, progress)
    current = None if force else folder_meta(location)
    if current is not None and current.get("fingerprint") == fingerprint(chunks, embedder.name):
        progress(f"{location} is up to date ({len(chunks)} chunks, {embedder.name}); --force rebuilds it")
        return None, BuildInfo(location, len(chunks), meta["parts"], (meta["sdist"] or {}).get("version"),
                               embedder.name, round(time.monotonic() - t0, 1), _size(location), skipped=True)
    idx = build_index(chunks, embedder, location, meta, progress=progress)
    return idx, BuildInfo(location, len(chunks), meta["parts"], (meta["sdist"] or {}).get("version"), embedder.name,
                          round(time.monotonic() - t0, 1), _size(location))


def build(settings: Settings, *, sources: tuple[Path, ...] = (), index: str | None = None, docs: bool | None = None,
          force: bool = False, api_package: str = "gammapy",
          progress: Callable[[str], None] = lambda _m: None) -> BuildInfo:
    """Index the installed Gammapy: its API, and (unless `docs` is off) its tutorials and user guide from the
    sdist, plus the folders `sources` (never benchmarks/reference/). Skipped when the folder index there
    already holds the same chunks with the same embedder, unless `force`. `api_package` narrows the API
    part to a subpackage (`gammapy.stats`: a small index in seconds).
    """
    return _build(settings, sources=sources, index=index, docs=docs, force=force, api_package=api_package,
                  progress=progress)[1]


def index_status(settings: Settings) -> tuple[bool, str]:
    """Whether RAG can be switched on as configured, without loading a model: (ready, location or how to fix)."""
    try:
        embedder = make_embedder(settings.rag_embedder, settings.backends)
    except ConfigError as exc:
        return False, str(exc)
    location = index_location(settings, embedder)
    if location == ":memory:" or is_url(location):
        return True, location
    meta = folder_meta(location)
    if meta is not None:
        return True, f"{location} ({describe_parts(meta)})"
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
        idx, _ = _build(settings, index=location, force=True, progress=progress)
        assert idx is not None  # a forced build always gives the index
    else:
        if not is_url(location) and not (Path(location) / "meta.json").is_file():
            default = location == str(default_index_dir(embedder.name))
            how = "hpc-agent rag build" + ("" if default else f" --index {location}")
            raise UsageError(f"no retrieval index at {location}; build it with `{how}` (RAG is on)")
        idx = open_index(location)
    check_compatible(idx, gammapy_version(), embedder)
    if for_benchmark:
        assert_no_references(idx)
    return Retriever(idx, embedder, k=settings.rag_k, min_score=settings.rag_min_score, mode=settings.rag_mode,
                     whole_script=settings.rag_whole_script)


def assert_no_references(idx: Index) -> None:
    """Benchmark runs refuse an index whose sources hold `benchmarks/reference/` (answer leakage)."""
    own = {"gammapy-api", (idx.meta.get("sdist") or {}).get("label")}
    for src in idx.meta.get("sources", []):
        if src in own:  # the introspected API and the installed version's sdist: no benchmark in them
            continue
        p = Path(src).resolve()
        if any(p == ref or ref.is_relative_to(p) or p.is_relative_to(ref) for ref in reference_dirs()):
            raise UsageError(f"{idx.location}: its corpus includes {src}, which holds the benchmark reference "
                             "solutions; rebuild it without that --source for benchmark runs")
