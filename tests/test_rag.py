"""Retrieval for real: the installed Gammapy introspected, the offline MiniLM model, qdrant-client in local mode,
the agent over real HTTP (scripted test double) in real bwrap on real data, and a sweep with `--rag both`.

One small index (the `gammapy.data` and `gammapy.stats` part of the API, ~470 chunks) is built once per session;
the full index is what `hpc-agent rag build` makes (benchmarks/rag_recall.py measures it).
"""

from __future__ import annotations

import inspect
import json
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from conftest import REPO, script
from doubles.openai_server import Reply, ScriptedOpenAIServer
from hpc_agent import rag
from hpc_agent.cli import main
from hpc_agent.config import load_settings
from hpc_agent.errors import ConfigError, UsageError
from hpc_agent.prompts import REFERENCE_HEADER

PROMPT = "How many H.E.S.S. DR1 observations point within 2 degrees of MSH 15-52?"


@pytest.fixture(scope="session")
def api_docs() -> list[rag.Document]:
    return rag.api_documents()


@pytest.fixture(scope="session")
def small_chunks(api_docs: list[rag.Document]) -> list[rag.Chunk]:
    return rag.chunk_documents([d for d in api_docs if d.symbol.startswith(("gammapy.data", "gammapy.stats"))])


@pytest.fixture(scope="session")
def small_index(tmp_path_factory: pytest.TempPathFactory, small_chunks: list[rag.Chunk]) -> Path:
    folder = tmp_path_factory.mktemp("rag") / "index"
    meta = {"gammapy": "2.1", "sources": ["gammapy-api"], "excluded": [str(rag.REFERENCE_DIR)]}
    rag.build_index(small_chunks, rag.LocalEmbedder(), str(folder), meta)
    return folder


def _copy(index: Path, to: Path, **meta_changes: object) -> Path:
    shutil.copytree(index, to)
    meta = json.loads((to / "meta.json").read_text())
    (to / "meta.json").write_text(json.dumps({**meta, **meta_changes}))
    return to


# --- corpus ------------------------------------------------------------------------------------------------------


def test_api_corpus_is_the_installed_gammapy(api_docs: list[rag.Document]) -> None:
    from gammapy.data import DataStore

    by_symbol = {d.symbol: d for d in api_docs}
    from_dir = by_symbol["gammapy.data.DataStore.from_dir"]
    sig = str(inspect.signature(DataStore.from_dir))  # bound classmethod: no `cls`
    assert from_dir.kind == "method" and sig in from_dir.text
    assert inspect.getdoc(DataStore.from_dir).splitlines()[0] in from_dir.text
    # public names only, under their shortest public path; no test modules
    assert all("._" not in d.symbol and ".tests." not in d.symbol for d in api_docs)
    assert "gammapy.data.data_store.DataStore" not in by_symbol and "gammapy.data.DataStore" in by_symbol
    # members inherited from an undocumented base appear under the public class
    assert "gammapy.stats.WStatCountsStatistic.sqrt_ts" in by_symbol
    # a class chunk doubles as an overview of its members
    assert "- select_sky_circle(): " in by_symbol["gammapy.data.ObservationTable"].text
    assert {"module", "class", "function", "method", "property"} <= {d.kind for d in api_docs}


def test_tutorials_are_cleaned_to_the_prompt_contract(tmp_path: Path) -> None:
    src = tmp_path / "tutorials"
    (src / "analysis").mkdir(parents=True)
    (src / "analysis" / "spectrum.py").write_text('''"""
Spectral analysis
=================

Reflected regions on the Crab.
"""
# %%
# Open the data store.
import matplotlib.pyplot as plt
from gammapy.data import DataStore
data_store = DataStore.from_dir("$GAMMAPY_DATA/hess-dl3-dr1")
data_store.info()

# %%
# Look at it.
data_store.obs_table[:3].peek()
ax = plt.subplot()
dataset.plot_fit(
    ax=ax,
)
plt.show()
n = len(data_store.obs_ids)
''')
    nb = {"cells": [
        {"cell_type": "markdown", "source": ["# Light curve\n", "Flux in time bins."]},
        {"cell_type": "code", "source": ["%matplotlib inline\n", "!ls\n", "from gammapy.estimators import LightCurveEstimator\n",
                                         "display(table)\n", "lc = LightCurveEstimator(energy_edges=[1, 10] * u.TeV)"],
         "outputs": [{"output_type": "stream", "text": ["NOISE-IN-OUTPUT\n"]}], "execution_count": 3},
    ], "metadata": {"kernelspec": {"name": "python3"}}, "nbformat": 4, "nbformat_minor": 5}
    (src / "light_curve.ipynb").write_text(json.dumps(nb))
    docs = rag.tutorial_documents(src)
    text = "\n".join(d.text for d in docs)
    for gone in ("plt.show", ".peek(", "plot_fit", "ax=ax", "matplotlib", "%matplotlib", "!ls", "display(",
                 "NOISE-IN-OUTPUT", "execution_count"):
        assert gone not in text, gone
    for kept in ("DataStore.from_dir", "data_store.info()", "n = len(data_store.obs_ids)", "Open the data store.",
                 "Reflected regions on the Crab.", "LightCurveEstimator(energy_edges", "Flux in time bins."):
        assert kept in text, kept
    assert {d.source for d in docs} == {"analysis/spectrum.py", "light_curve.ipynb"}
    assert all(d.kind == "tutorial" and d.symbol.startswith(d.source + "#") for d in docs)
    (src / "broken.ipynb").write_text("{not json")
    with pytest.raises(UsageError, match=r"broken\.ipynb: not a readable notebook"):
        rag.tutorial_documents(src)


def test_benchmark_reference_solutions_never_enter_the_corpus(small_index: Path, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="benchmark reference solutions"):
        rag.tutorial_documents(REPO / "benchmarks", exclude=rag.reference_dirs())
    with pytest.raises(UsageError, match="benchmark reference solutions"):
        rag.tutorial_documents(rag.REFERENCE_DIR, exclude=rag.reference_dirs())
    leaky = _copy(small_index, tmp_path / "leaky", sources=["gammapy-api", str(REPO / "benchmarks")])
    with pytest.raises(UsageError, match="holds the benchmark reference solutions"):
        rag.assert_no_references(rag.open_index(str(leaky)))
    rag.assert_no_references(rag.open_index(str(small_index)))  # the API-only index passes


def test_chunk_ids_are_stable_and_content_addressed(api_docs: list[rag.Document]) -> None:
    docs = [d for d in api_docs if d.symbol.startswith("gammapy.maps.MapAxis")]
    first, again = rag.chunk_documents(docs), rag.chunk_documents(list(docs))
    assert [c.id for c in first] == [c.id for c in again] and len({c.id for c in first}) == len(first)
    base = rag.chunk_documents([docs[0]])
    changed = rag.chunk_documents([rag.Document(docs[0].source, docs[0].symbol, docs[0].kind, docs[0].text + " x")])
    assert changed[-1].id != base[-1].id  # the edited piece gets a new id ...
    assert [c.id for c in changed[:-1]] == [c.id for c in base[:-1]]  # ... untouched pieces keep theirs
    long = rag.Document("x", "gammapy.x", "class", "class gammapy.x()\n" + "\n\n".join(["word " * 100] * 10))
    pieces = rag.chunk_documents([long])
    assert len(pieces) > 1 and all(len(p.text) <= 1700 for p in pieces)
    assert all(p.text.startswith("class gammapy.x()") for p in pieces)


# --- index and retrieval -------------------------------------------------------------------------------------------


def _ids(index: rag.Index) -> list[str]:
    return sorted(str(p.id) for p in index.client.scroll("gammapy", limit=100_000)[0])


def test_rebuild_gives_the_same_index_and_queries_find_the_symbol(small_index: Path, small_chunks: list[rag.Chunk],
                                                                   tmp_path: Path) -> None:
    meta = json.loads((small_index / "meta.json").read_text())
    assert meta["embedder"] == "local-all-MiniLM-L6-v2" and meta["dim"] == 384 and meta["chunks"] == len(small_chunks)
    again = rag.build_index(list(reversed(small_chunks)), rag.LocalEmbedder(), str(tmp_path / "again"),
                            {"gammapy": "2.1"})
    first = rag.open_index(str(small_index))
    assert _ids(again) == _ids(first) == sorted(c.id for c in small_chunks)
    for mode in ("dense", "hybrid"):
        retriever = rag.Retriever(first, rag.LocalEmbedder(), k=3, min_score=0.0, mode=mode)
        found = retriever.for_prompt("open the data store of a DL3 release from its directory")
        assert {"gammapy.data.DataStore", "gammapy.data.DataStore.from_dir"} & {h.symbol for h in found.hits}, mode
        assert all(-1 <= h.score <= 1 for h in found.hits) and len(found.hits) <= 3
    strict = rag.Retriever(first, rag.LocalEmbedder(), k=3, min_score=0.99)
    assert strict.for_prompt("open the data store").hits == ()  # the threshold drops weak snippets


def test_folder_lock_is_released_and_a_second_process_can_query(small_index: Path, tmp_path: Path) -> None:
    from qdrant_client import QdrantClient

    copy = _copy(small_index, tmp_path / "copy")
    held = QdrantClient(path=str(copy / "qdrant"))  # another process building or reading keeps the lock
    try:
        with pytest.raises(UsageError, match="locked by another process"):
            rag.open_index(str(copy), lock_wait_s=1.0)
    finally:
        held.close()
    index = rag.open_index(str(copy))  # copied into memory: the folder is free again at once
    assert rag.open_index(str(copy)) is index  # shared within a process
    cmd = [sys.executable, "-m", "hpc_agent.cli", "rag", "query", "significance from ON and OFF counts",
           "--index", str(copy), "--k", "5", "--json"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert any(s["symbol"].startswith("gammapy.stats.") for s in out["snippets"])
    assert len(out["snippets"]) == len(out["texts"]) and out["query"] == "significance from ON and OFF counts"


def test_mismatched_or_missing_index_says_how_to_rebuild(small_index: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    old = _copy(small_index, tmp_path / "old", gammapy="1.3")
    with pytest.raises(ConfigError, match=r"built for Gammapy 1\.3, Gammapy 2\.1 is installed; rebuild with "
                                          r"`hpc-agent rag build --index "):
        rag.open_retriever(load_settings(rag_index=str(old)))
    other = _copy(small_index, tmp_path / "other", embedder="blablador-alias-embeddings")
    with pytest.raises(ConfigError, match="built with embedder 'blablador-alias-embeddings'"):
        rag.open_retriever(load_settings(rag_index=str(other)))
    monkeypatch.setenv("HPC_AGENT_CACHE", str(tmp_path / "cache"))
    with pytest.raises(UsageError, match=r"no retrieval index at .*; build it with `hpc-agent rag build`"):
        rag.open_retriever(load_settings())
    with pytest.raises(ConfigError, match="neither `local` nor a backend"):
        rag.make_embedder("nope")


def test_repair_query_leads_with_what_the_error_names() -> None:
    err = ("Traceback (most recent call last):\n  File \"script.py\", line 10, in <module>\n"
           "AttributeError: 'Column' object has no attribute 'separation'")
    assert rag.error_symbols(err) == ["Column", "separation"]
    q = rag.error_query(PROMPT, err)
    assert q.splitlines()[0] == "AttributeError: 'Column' object has no attribute 'separation'"
    assert "Look up: Column separation" in q and q.endswith(PROMPT)
    assert rag.error_symbols("ImportError: cannot import name 'read_hess' from 'gammapy.io'") == ["read_hess", "gammapy.io"]
    assert rag.error_symbols("undefined name 'SkyCoord'") == ["SkyCoord"]


# --- the agent and sweeps --------------------------------------------------------------------------------------------


def test_agent_injects_snippets_per_turn_and_records_them(small_index: Path, tmp_path: Path, data_root: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HPC_AGENT_RAG_INDEX", str(small_index))
    monkeypatch.setenv("HPC_AGENT_RAG_MIN_SCORE", "0.1")
    out = tmp_path / "bundle"
    replies = [Reply(code=script("msh1552_count_broken.py")), Reply(code=script("msh1552_count_ok.py"))]
    with ScriptedOpenAIServer(replies) as srv:
        res = CliRunner().invoke(main, ["run", PROMPT, "--base-url", srv.base_url, "--model", srv.model, "--out",
                                        str(out), "--data-root", str(data_root), "--sandbox", "bwrap", "--rag"],
                                 catch_exceptions=False)
        requests = srv.requests
    assert res.exit_code == 0, res.output
    ctx1 = json.loads((out / "attempt-1" / "context.json").read_text())
    ctx2 = json.loads((out / "attempt-2" / "context.json").read_text())
    assert ctx1["query"] == PROMPT and 1 <= len(ctx1["snippets"]) <= 4
    first = "\n".join(m["content"] for m in requests[0]["messages"])
    assert REFERENCE_HEADER in first
    for i, s in enumerate(ctx1["snippets"], 1):  # what the bundle records is what the model got
        assert f"--- snippet {i}: {s['symbol']} ({s['kind']}) ---" in first
        assert s["source"] == "gammapy-api" and s["score"] >= 0.1
    # the repair turn searched with the error and sent only snippets not shown before
    assert ctx2["query"].startswith("AttributeError: 'Column' object has no attribute 'separation'")
    repair = requests[1]["messages"][-1]["content"]
    assert "Exception: AttributeError" in repair
    assert {s["id"] for s in ctx1["snippets"]}.isdisjoint({s["id"] for s in ctx2["snippets"]})
    for i, s in enumerate(ctx2["snippets"], 1):
        assert f"--- snippet {i}: {s['symbol']} ({s['kind']}) ---" in repair
    assert (REFERENCE_HEADER in repair) == bool(ctx2["snippets"])
    run = json.loads((out / "run.json").read_text())
    assert run["passed"] is True and run["attempts"] == 2


def test_run_without_rag_sends_no_reference_material(tmp_path: Path, data_root: Path) -> None:
    out = tmp_path / "bundle"
    with ScriptedOpenAIServer([Reply(code=script("msh1552_count_ok.py"))]) as srv:
        res = CliRunner().invoke(main, ["run", PROMPT, "--base-url", srv.base_url, "--model", srv.model, "--out",
                                        str(out), "--data-root", str(data_root), "--sandbox", "bwrap"])
        sent = "\n".join(m["content"] for m in srv.requests[0]["messages"])
    assert res.exit_code == 0, res.output
    assert REFERENCE_HEADER not in sent and not (out / "attempt-1" / "context.json").exists()


def _one_task_benchmarks(tmp_path: Path, data_root: Path, index: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    from test_bench_tasks import REFERENCE, TASK

    root = tmp_path / "benchmarks"
    (root / "tasks").mkdir(parents=True)
    (root / "reference").mkdir()
    (root / "reference" / "observation_list.py").write_text(REFERENCE)
    (root / "tasks" / "observation-list-crab.yaml").write_text(TASK)
    for k, v in {"HPC_AGENT_BENCHMARKS": str(root), "HPC_AGENT_CACHE": str(tmp_path / "cache"),
                 "PHOTON_STORAGE": str(data_root), "HPC_AGENT_RAG_INDEX": str(index)}.items():
        monkeypatch.setenv(k, v)
    return root


def test_sweep_rag_both_traces_snippets_and_reports_the_effect(small_index: Path, tmp_path: Path, data_root: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    root = _one_task_benchmarks(tmp_path, data_root, small_index, monkeypatch)
    out = tmp_path / "sweep"
    from test_bench_sweep import _bench

    code, output = _bench(["--models", "oracle", "--rag", "both", "--seeds", "2", "--out", str(out)])
    assert code == 0, output
    attempts = pl.read_parquet(out / "attempts.parquet")
    on, off = attempts.filter(pl.col("rag") == "on"), attempts.filter(pl.col("rag") == "off")
    assert on.height == 2 and off.height == 2
    assert (on["rag_snippets"] > 0).all() and (off["rag_snippets"] == 0).all()
    for row in on.iter_rows(named=True):
        ctx = json.loads((out / "cells" / row["cell"] / "attempt-1" / "context.json").read_text())
        assert json.loads(row["rag_ids"]) == [s["id"] for s in ctx["snippets"]]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["rag_index"]["location"] == str(small_index) and manifest["rag_index"]["mode"] == "hybrid"
    res = CliRunner().invoke(main, ["report", str(out)])
    assert res.exit_code == 0, res.output
    md = (out / "report" / "report.md").read_text()
    assert "## Retrieval (RAG) effect" in md
    assert "| oracle | off | 2 | 2 | 1 |" in md and "| oracle | on | 2 | 2 | 1 |" in md
    # an index whose corpus holds the references is refused before any cell runs
    leaky = _copy(small_index, tmp_path / "leaky", sources=["gammapy-api", str(root)])
    monkeypatch.setenv("HPC_AGENT_RAG_INDEX", str(leaky))
    code, output = _bench(["--models", "oracle", "--rag", "on", "--out", str(tmp_path / "sweep2")])
    assert code == 2 and "holds the benchmark reference solutions" in output


def test_openai_compatible_embeddings_endpoint_builds_and_queries(api_docs: list[rag.Document], tmp_path: Path) -> None:
    from doubles.embeddings_server import EmbeddingsServer

    from hpc_agent.config import Backend
    from hpc_agent.errors import InfrastructureError

    chunks = rag.chunk_documents([d for d in api_docs if d.symbol.startswith(("gammapy.data.DataStore",
                                                                               "gammapy.data.ObservationTable"))])
    with EmbeddingsServer() as srv:
        backends = {"emb": Backend(name="emb", base_url=srv.base_url, model="chat", embedding_model="minilm")}
        embedder = rag.make_embedder("emb", backends)
        assert embedder.name == "emb-minilm" and embedder.dim == 384
        index = rag.build_index(chunks, embedder, str(tmp_path / "remote"), {"gammapy": "2.1"})
        settings = load_settings(backends={"emb": backends["emb"].model_dump()}, rag_embedder="emb",
                                 rag_index=str(tmp_path / "remote"), rag_min_score=0.0)
        found = rag.open_retriever(settings).search("open the data store from a directory")
        assert srv.requests and all(r["model"] == "minilm" for r in srv.requests)
    assert index.meta["embedder"] == "emb-minilm"
    assert {"gammapy.data.DataStore", "gammapy.data.DataStore.from_dir"} & {h.symbol for h in found.hits}
    assert all(h.score <= 1.0001 for h in found.hits)  # the endpoint's unnormalised vectors were normalised
    with pytest.raises(ConfigError, match="built with embedder 'emb-minilm', queried with 'local-all-MiniLM-L6-v2'"):
        rag.open_retriever(load_settings(rag_index=str(tmp_path / "remote")))
    with pytest.raises(InfrastructureError, match="embeddings at .* failed"):
        rag.make_embedder("emb", backends)  # the server is gone
    with pytest.raises(ConfigError, match="field `embedding_model` is empty"):
        rag.make_embedder("chat-only", {"chat-only": Backend(name="chat-only", base_url=srv.base_url, model="m")})


def test_report_of_a_model_that_never_passes(small_index: Path, tmp_path: Path, data_root: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """0 of 3 per group: the Wilson interval starts at exactly 0 (rounding once made a negative error bar)."""
    from test_bench_sweep import _bench

    from hpc_agent.report import wilson

    assert wilson(0, 3)[0] == 0.0 and wilson(10, 10)[1] == 1.0
    _one_task_benchmarks(tmp_path, data_root, small_index, monkeypatch)
    out = tmp_path / "sweep"
    with ScriptedOpenAIServer([Reply(text="no idea", mode="text")] * 6) as srv:
        code, output = _bench(["--base-url", srv.base_url, "--model", srv.model, "--rag", "both", "--seeds", "3",
                               "--attempts", "1", "--out", str(out)])
        first_on = [r for r in srv.requests if REFERENCE_HEADER in json.dumps(r)]
    assert code == 0, output
    assert len(first_on) == 3  # the three rag=on cells, and only those, sent snippets
    res = CliRunner().invoke(main, ["report", str(out)])
    assert res.exit_code == 0, res.output
    md = (out / "report" / "report.md").read_text()
    assert "| adhoc-scripted-model | off | 3 | 0 | 0 | 0 |" in md and "| adhoc-scripted-model | on | 3 | 0 | 0 | 0 |" in md
