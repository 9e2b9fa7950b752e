"""The Qdrant index: `:memory:`, a local folder, or a server URL, through `qdrant-client`.

A folder index holds `meta.json` (Gammapy version, embedder, sources, chunk counts per part, the sdist
version, and the fingerprint of its chunk ids and embedder) beside Qdrant's local storage in `qdrant/`.
A build whose fingerprint equals the folder's is skipped: same chunks, same embedder, same index. Qdrant's local mode locks its folder for one client at a time, so readers never keep
it open: `open_index` copies the points into an in-memory client and closes the folder at once (retrying
while a build or another reader holds the lock), and one opened index is shared by every thread of a
process. Builds go to a temporary folder renamed into place, so a reader never sees half an index.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import threading
import time
import zlib
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

from hpc_agent._files import atomic_write_text
from hpc_agent.errors import ConfigError, UsageError
from hpc_agent.rag._chunks import Chunk
from hpc_agent.rag._corpus import SCRIPT_KIND
from hpc_agent.rag._embed import Embedder

COLLECTION = "gammapy"
DENSE, SPARSE = "dense", "sparse"
META_FILE = "meta.json"
INDEX_VERSION = 1

# --- the sparse (lexical) side: identifier-aware term frequencies, IDF applied by Qdrant --------------------------

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CAMEL = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
_STOP = frozenset("a an and are as at be by for from in is it of on or the to with this that these which "
                  "none default true false if not use used using parameters returns type".split())


def terms(text: str) -> list[str]:
    """Lower-case words: every identifier whole and split at `_`/`.`/camelCase (`DataStore` -> datastore, data, store)."""
    out = []
    for word in _WORD.findall(text):
        low = word.lower()
        if low not in _STOP and len(low) > 1:
            out.append(low)
        parts = [p.lower() for chunk in word.split("_") for p in _CAMEL.findall(chunk)]
        if len(parts) > 1:
            out += [p for p in parts if p not in _STOP and len(p) > 1]
    return out


BM25_K1, BM25_B = 1.2, 0.0  # length normalisation (b = 0.75) measured worse: recall@5 0.675 vs 0.725


def sparse_vector(text: str, avg_len: float | None = None) -> tuple[list[int], list[float]]:
    """Hashed term indices with BM25 term weights (k1 = 1.2, b = BM25_B given the corpus' mean length);
    Qdrant multiplies in the IDF. A query (no `avg_len`) weighs each distinct term 1."""
    words = terms(text)
    counts = Counter(zlib.crc32(t.encode()) & 0x7FFFFFFF for t in words)
    idx = sorted(counts)
    if avg_len is None:
        return idx, [1.0] * len(idx)
    norm = BM25_K1 * (1 - BM25_B + BM25_B * len(words) / max(avg_len, 1.0))
    return idx, [counts[i] * (BM25_K1 + 1) / (counts[i] + norm) for i in idx]


def fingerprint(chunks: Sequence[Chunk], embedder_name: str) -> str:
    """What decides an index's content: its chunk ids (content-addressed), the embedder, the index version."""
    h = hashlib.sha256(f"{INDEX_VERSION}\x1f{embedder_name}".encode())
    for chunk_id in sorted(c.id for c in chunks):
        h.update(f"\x1f{chunk_id}".encode())
    return h.hexdigest()


# --- where an index lives ----------------------------------------------------------------------------------------


def is_url(location: str) -> bool:
    return location.startswith(("http://", "https://"))


def _client(location: str | Path) -> Any:
    from qdrant_client import QdrantClient

    loc = str(location)
    if loc == ":memory:":
        return QdrantClient(location=":memory:")
    if is_url(loc):
        return QdrantClient(url=loc, timeout=60)
    return QdrantClient(path=loc)


def _create(client: Any, dim: int) -> None:
    from qdrant_client import models

    if client.collection_exists(COLLECTION):
        client.delete_collection(COLLECTION)
    client.create_collection(
        COLLECTION,
        vectors_config={DENSE: models.VectorParams(size=dim, distance=models.Distance.COSINE)},
        sparse_vectors_config={SPARSE: models.SparseVectorParams(modifier=models.Modifier.IDF)},
    )


def _points(chunks: Sequence[Chunk], dense: Sequence[Sequence[float]], avg_len: float) -> list[Any]:
    from qdrant_client import models

    points = []
    for c, v in zip(chunks, dense):
        idx, val = sparse_vector(c.text, avg_len)
        points.append(models.PointStruct(id=c.id, payload=c.payload(),
                                         vector={DENSE: list(v), SPARSE: models.SparseVector(indices=idx, values=val)}))
    return points


@dataclass(frozen=True)
class Hit:
    id: str
    score: float  # cosine similarity of query and chunk (also in hybrid mode, where fusion only orders)
    symbol: str
    source: str
    kind: str
    text: str


class Index:
    """An open collection and its metadata; `search` is safe from several threads."""

    def __init__(self, client: Any, meta: dict[str, Any], location: str) -> None:
        self.client = client
        self.meta = meta
        self.location = location
        self._lock = threading.Lock()  # qdrant-client's local mode is not documented as thread-safe

    @property
    def count(self) -> int:
        return int(self.client.count(COLLECTION, exact=True).count)

    def search(self, dense: Sequence[float], query_text: str, k: int, mode: str = "dense",
               kinds: Sequence[str] = ()) -> list[Hit]:
        """The top `k` chunks (of the given `kinds` only, when named) for a query's vector and text.

        Whole tutorial scripts are never among them: one is chosen by the API it uses (`scripts`)."""
        from qdrant_client import models

        kind = models.FieldCondition(key="kind", match=models.MatchAny(any=list(kinds) or [SCRIPT_KIND]))
        only = models.Filter(must=[kind]) if kinds else models.Filter(must_not=[kind])
        if mode == "hybrid":
            idx, val = sparse_vector(query_text)
            prefetch = [models.Prefetch(query=list(dense), using=DENSE, limit=max(20, 4 * k), filter=only)]
            if idx:
                prefetch.append(models.Prefetch(query=models.SparseVector(indices=idx, values=val), using=SPARSE,
                                                limit=max(20, 4 * k), filter=only))
            kwargs: dict[str, Any] = {"prefetch": prefetch, "query": models.FusionQuery(fusion=models.Fusion.RRF)}
        elif mode == "dense":
            kwargs = {"query": list(dense), "using": DENSE}
        else:
            raise UsageError(f"rag_mode {mode!r}: use `dense` or `hybrid`")
        with self._lock:
            res = self.client.query_points(COLLECTION, limit=k, with_payload=True, with_vectors=[DENSE],
                                           query_filter=only, **kwargs)
        hits = []
        for p in res.points:
            vec = p.vector[DENSE] if isinstance(p.vector, dict) else p.vector
            cosine = float(sum(a * b for a, b in zip(dense, vec)))  # both normalised
            pl = p.payload or {}
            hits.append(Hit(str(p.id), cosine, pl.get("symbol", ""), pl.get("source", ""), pl.get("kind", ""),
                            pl.get("text", "")))
        return hits

    def scripts(self) -> list[Hit]:
        """Every tutorial's condensed whole script (score 1.0: chosen by what they use, not by similarity)."""
        from qdrant_client import models

        only = models.Filter(must=[models.FieldCondition(key="kind", match=models.MatchValue(value=SCRIPT_KIND))])
        found: list[Hit] = []
        offset = None
        with self._lock:
            while True:
                points, offset = self.client.scroll(COLLECTION, scroll_filter=only, limit=256, offset=offset,
                                                    with_payload=True)
                for p in points:
                    pl = p.payload or {}
                    found.append(Hit(str(p.id), 1.0, pl.get("symbol", ""), pl.get("source", ""), SCRIPT_KIND,
                                     pl.get("text", "")))
                if offset is None:
                    return sorted(found, key=lambda h: h.symbol)

    def close(self) -> None:
        self.client.close()


def build_index(chunks: Sequence[Chunk], embedder: Embedder, location: str, meta: dict[str, Any], *,
                progress: Callable[[str], None] = lambda _m: None) -> Index:
    """Embed `chunks` and store them at `location`; a folder is written beside and swapped in whole."""
    t0 = time.monotonic()
    dense: list[list[float]] = []
    texts = [c.text for c in chunks]
    step = 256
    for i in range(0, len(texts), step):
        dense += embedder.embed(texts[i:i + step])
        progress(f"embedded {min(i + step, len(texts))}/{len(texts)} chunks")
    meta = {**meta, "index_version": INDEX_VERSION, "embedder": embedder.name, "dim": embedder.dim,
            "chunks": len(chunks), "fingerprint": fingerprint(chunks, embedder.name),
            "built_at": datetime.now(timezone.utc).isoformat(),
            "embed_s": round(time.monotonic() - t0, 1)}
    if location == ":memory:" or is_url(location):
        client = _client(location)
        _create(client, embedder.dim)
        _upsert(client, chunks, dense)
        return Index(client, meta, location)
    target = Path(location).expanduser().resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.building")
    shutil.rmtree(tmp, ignore_errors=True)
    client = _client(tmp / "qdrant")
    try:
        _create(client, embedder.dim)
        _upsert(client, chunks, dense)
    finally:
        client.close()
    atomic_write_text(tmp / META_FILE, json.dumps(meta, indent=2))
    old = target.with_name(f".{target.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    tmp.rename(target)
    shutil.rmtree(old, ignore_errors=True)
    return open_index(str(target), refresh=True)


def _upsert(client: Any, chunks: Sequence[Chunk], dense: Sequence[Sequence[float]]) -> None:
    avg_len = sum(len(terms(c.text)) for c in chunks) / max(1, len(chunks))
    for i in range(0, len(chunks), 512):
        client.upsert(COLLECTION, points=_points(chunks[i:i + 512], dense[i:i + 512], avg_len), wait=True)


_OPEN: dict[str, Index] = {}
_OPEN_LOCK = threading.Lock()


def read_meta(folder: Path) -> dict[str, Any]:
    path = folder / META_FILE
    if not path.is_file():
        raise UsageError(f"{folder}: no retrieval index there ({META_FILE} missing); build it with "
                         f"`hpc-agent rag build --index {folder}`")
    try:
        return json.loads(path.read_text())
    except ValueError as exc:
        raise UsageError(f"{path}: unreadable ({exc}); rebuild with `hpc-agent rag build --index {folder}`") from exc


def folder_meta(location: str) -> dict[str, Any] | None:
    """The meta.json of the folder index at `location`, or None (no folder index there, or unreadable)."""
    if location == ":memory:" or is_url(location):
        return None
    try:
        return read_meta(Path(location).expanduser())
    except UsageError:
        return None


def open_index(location: str, *, refresh: bool = False, lock_wait_s: float = 120.0) -> Index:
    """An index for querying: a folder is loaded into memory (lock released at once) and shared per process."""
    if is_url(location):
        client = _client(location)
        if not client.collection_exists(COLLECTION):
            raise UsageError(f"{location}: no `{COLLECTION}` collection; build it with `hpc-agent rag build "
                             f"--index {location}`")
        return Index(client, {}, location)
    folder = Path(location).expanduser().resolve()
    key = str(folder)
    with _OPEN_LOCK:
        if key in _OPEN and not refresh:
            return _OPEN[key]
        meta = read_meta(folder)
        memory = _client(":memory:")
        _create(memory, int(meta["dim"]))
        deadline = time.monotonic() + lock_wait_s
        while True:
            try:
                disk = _client(folder / "qdrant")
                break
            except RuntimeError as exc:  # "already accessed by another instance": a build or a reader copying
                if time.monotonic() > deadline:
                    raise UsageError(f"{folder}: locked by another process for {lock_wait_s:.0f} s ({exc}); "
                                     "wait for the running `rag build` to finish") from exc
                time.sleep(0.5)
        try:
            offset = None
            while True:
                points, offset = disk.scroll(COLLECTION, limit=1024, offset=offset, with_payload=True,
                                             with_vectors=True)
                if points:
                    from qdrant_client import models

                    memory.upsert(COLLECTION, wait=True, points=[
                        models.PointStruct(id=p.id, payload=p.payload, vector=p.vector) for p in points])
                if offset is None:
                    break
        finally:
            disk.close()
        index = Index(memory, meta, key)
        _OPEN[key] = index
        return index


def check_compatible(index: Index, gammapy_version: str, embedder: Embedder) -> None:
    """One line naming the mismatch and how to rebuild, if the index was built for something else."""
    meta = index.meta
    if not meta:
        return
    where = index.location
    if meta.get("embedder") != embedder.name:
        raise ConfigError(f"{where}: index built with embedder {meta.get('embedder')!r}, queried with "
                          f"{embedder.name!r}; rebuild with `hpc-agent rag build --index {where}` or set rag_embedder")
    if meta.get("gammapy") != gammapy_version:
        raise ConfigError(f"{where}: index built for Gammapy {meta.get('gammapy')}, Gammapy {gammapy_version} is "
                          f"installed; rebuild with `hpc-agent rag build --index {where}`")
