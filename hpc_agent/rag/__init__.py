"""Retrieval: version-exact Gammapy knowledge in Qdrant, injected into the agent's prompts.

Corpus: the installed Gammapy's public API (introspected), the tutorials and user guide of the same
version's sdist (fetched with pip, cached), and tutorial folders you name, cleaned to the prompt contract;
never the benchmark reference solutions. Chunks carry stable ids; an unchanged corpus is not rebuilt.
Embeddings come from the offline local model or an OpenAI-compatible `/v1/embeddings` endpoint.

Public names load on first use (`hpc-agent rag --help` and the rest of the command line start without
Qdrant, the embedder or the settings).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hpc_agent.rag._api import (
        REFERENCE_DIR,
        BuildInfo,
        assert_no_references,
        build,
        default_index_dir,
        describe_parts,
        index_location,
        index_status,
        open_retriever,
        reference_dirs,
    )
    from hpc_agent.rag._chunks import Chunk, chunk_documents, chunk_id
    from hpc_agent.rag._corpus import Document, api_documents
    from hpc_agent.rag._embed import Embedder, LocalEmbedder, OpenAIEmbedder, make_embedder
    from hpc_agent.rag._index import Hit, Index, build_index, fingerprint, open_index
    from hpc_agent.rag._retrieve import (Retrieval, Retriever, concerns_the_library, error_query, error_symbols,
                                          is_example, render)
    from hpc_agent.rag._sdist import Sdist, SdistMissing, fetch_sdist, read_sdist, sdist_path
    from hpc_agent.rag._tutorials import clean_code, sdist_documents, tutorial_documents

_HOMES = {
    "REFERENCE_DIR": "_api",
    "BuildInfo": "_api",
    "assert_no_references": "_api",
    "build": "_api",
    "default_index_dir": "_api",
    "describe_parts": "_api",
    "index_location": "_api",
    "index_status": "_api",
    "open_retriever": "_api",
    "reference_dirs": "_api",
    "Chunk": "_chunks",
    "chunk_documents": "_chunks",
    "chunk_id": "_chunks",
    "Document": "_corpus",
    "api_documents": "_corpus",
    "Embedder": "_embed",
    "LocalEmbedder": "_embed",
    "OpenAIEmbedder": "_embed",
    "make_embedder": "_embed",
    "Hit": "_index",
    "Index": "_index",
    "build_index": "_index",
    "fingerprint": "_index",
    "open_index": "_index",
    "Retrieval": "_retrieve",
    "Retriever": "_retrieve",
    "concerns_the_library": "_retrieve",
    "error_query": "_retrieve",
    "error_symbols": "_retrieve",
    "is_example": "_retrieve",
    "render": "_retrieve",
    "Sdist": "_sdist",
    "SdistMissing": "_sdist",
    "fetch_sdist": "_sdist",
    "read_sdist": "_sdist",
    "sdist_path": "_sdist",
    "clean_code": "_tutorials",
    "sdist_documents": "_tutorials",
    "tutorial_documents": "_tutorials",
}
__all__ = [
    "BuildInfo",
    "Chunk",
    "Document",
    "Embedder",
    "Hit",
    "Index",
    "LocalEmbedder",
    "OpenAIEmbedder",
    "REFERENCE_DIR",
    "Retrieval",
    "Retriever",
    "Sdist",
    "SdistMissing",
    "api_documents",
    "assert_no_references",
    "build",
    "build_index",
    "chunk_documents",
    "chunk_id",
    "clean_code",
    "concerns_the_library",
    "default_index_dir",
    "describe_parts",
    "error_query",
    "error_symbols",
    "fetch_sdist",
    "fingerprint",
    "index_location",
    "index_status",
    "is_example",
    "make_embedder",
    "open_index",
    "open_retriever",
    "read_sdist",
    "reference_dirs",
    "render",
    "sdist_documents",
    "sdist_path",
    "tutorial_documents",
]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"hpc_agent.rag.{_HOMES[name]}"), name)
