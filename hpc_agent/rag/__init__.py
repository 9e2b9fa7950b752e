"""Retrieval: version-exact Gammapy knowledge in Qdrant, injected into the agent's prompts.

Corpus: the installed Gammapy's public API (introspected) and tutorial sources from folders you name,
cleaned to the prompt contract; never the benchmark reference solutions. Chunks carry stable ids;
embeddings come from the offline local model or an OpenAI-compatible `/v1/embeddings` endpoint.
"""

from hpc_agent.rag._api import (
    REFERENCE_DIR,
    BuildInfo,
    assert_no_references,
    build,
    default_index_dir,
    index_location,
    index_status,
    open_retriever,
    reference_dirs,
)
from hpc_agent.rag._chunks import Chunk, chunk_documents, chunk_id
from hpc_agent.rag._corpus import Document, api_documents, clean_code, tutorial_documents
from hpc_agent.rag._embed import Embedder, LocalEmbedder, OpenAIEmbedder, make_embedder
from hpc_agent.rag._index import Hit, Index, build_index, open_index
from hpc_agent.rag._retrieve import Retrieval, Retriever, error_query, error_symbols, render

__all__ = [
    "REFERENCE_DIR",
    "BuildInfo",
    "Chunk",
    "Document",
    "Embedder",
    "Hit",
    "Index",
    "LocalEmbedder",
    "OpenAIEmbedder",
    "Retrieval",
    "Retriever",
    "api_documents",
    "assert_no_references",
    "build",
    "build_index",
    "chunk_documents",
    "chunk_id",
    "clean_code",
    "default_index_dir",
    "error_query",
    "error_symbols",
    "index_location",
    "index_status",
    "make_embedder",
    "open_index",
    "open_retriever",
    "reference_dirs",
    "render",
    "tutorial_documents",
]
