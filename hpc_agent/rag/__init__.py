"""Retrieval: version-exact Gammapy knowledge in Qdrant, injected into the agent's prompts.

Corpus: the installed Gammapy's public API (introspected), the tutorials and user guide of the same
version's sdist (fetched with pip, cached), and tutorial folders you name, cleaned to the prompt contract;
never the benchmark reference solutions. Chunks carry stable ids; an unchanged corpus is not rebuilt.
Embeddings come from the offline local model or an OpenAI-compatible `/v1/embeddings` endpoint.
"""

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
    "Sdist",
    "SdistMissing",
    "api_documents",
    "assert_no_references",
    "build",
    "build_index",
    "chunk_documents",
    "chunk_id",
    "clean_code",
    "default_index_dir",
    "describe_parts",
    "error_query",
    "error_symbols",
    "concerns_the_library",
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
