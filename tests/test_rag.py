"""Retrieval for real: the installed Gammapy introspected, the offline MiniLM model, qdrant-client in local mode,
real pip against an unreachable index, the agent over real HTTP (scripted test double) in real bwrap on real data,
and a sweep with `--rag both`.

One small index (the `gammapy.data` and `gammapy.stats` part of the API, ~470 chunks) is built once per session;
builds through `rag.build` index `gammapy.stats` (70 chunks) and a small sdist the tests write themselves.
The full index is what `hpc-agent rag build` makes (benchmarks/rag_recall.py measures it).
"""

from __future__ import annotations

import inspect
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from importlib.metadata import version
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from conftest import REPO, script
from doubles.openai_server import Reply, ScriptedOpenAIServer
from fixtures.bench import run_bench, write_bench_root
from hpc_agent import rag
from hpc_agent.cli import main
from hpc_agent.config import cache_root, load_settings
from hpc_agent.errors import ConfigError, UsageError
from hpc_agent.prompts import REFERENCE_HEADER

PROMPT = "How many H.E.S.S. DR1 observations point within 2 degrees of MSH 15-52?"
# the same count asked for an analysis: its first turn retrieves (a question about the tables alone does not)
ANALYSIS_PROMPT = "How many H.E.S.S. DR1 observations would a spectrum of MSH 15-52 use, those within 2 degrees of it?"
GAMMAPY = version("gammapy")

GALLERY = '''"""
Demo spectrum
=============

Reflected regions on the Crab, step by step.
"""

import astropy.units as u
import matplotlib.pyplot as plt
from gammapy.data import DataStore
from gammapy.maps import MapAxis

# %%
# Open the data store
# -------------------
#
# The `~gammapy.data.DataStore` reads the index tables.

data_store = DataStore.from_dir("$GAMMAPY_DATA/hess-dl3-dr1")

# %%
# Peek at the observation table.

data_store.obs_table.peek()
plt.show()

# %%
# A text cell without code, about the energy axis.

# %%
# Ten bins per decade.

energy_axis = MapAxis.from_energy_bounds(0.5, 10, nbin=10, unit="TeV")
'''

GUIDE = """.. _demo:

Demo guide
==========

.. currentmodule:: gammapy.stats

Significance
------------

The `~gammapy.stats.WStatCountsStatistic` gives the Li & Ma significance, see :ref:`the stats page <stats>`.

.. testcode::

    from gammapy.stats import WStatCountsStatistic
    stat = WStatCountsStatistic(n_on=13, n_off=11, alpha=0.5)
    print(stat.sqrt_ts)

.. testoutput::

    12345.6789

.. figure:: ../_static/fig.png

    A caption that is dropped.

.. plot:: user-guide/demo_plot.py
    :include-source:

Literal example::

    counts = stat.n_on

.. dropdown:: A tip in a dropdown

    Use `~gammapy.stats.CashCountsStatistic` when the background is known.
"""


def write_sdist(path: Path, pkg_version: str = GAMMAPY) -> Path:
    """A small Gammapy sdist: PKG-INFO, one gallery script, one user-guide page (with the script it plots),
    and files the corpus must leave out (release notes, the models gallery)."""
    members = {
        "PKG-INFO": f"Metadata-Version: 2.4\nName: gammapy\nVersion: {pkg_version}\n",
        "examples/tutorials/data/demo.py": GALLERY,
        "examples/models/spectral/plot_demo.py": '"""\nModel\n=====\n"""\n# %%\nx = 1\n',
        "docs/user-guide/demo.rst": GUIDE,
        "docs/user-guide/demo_plot.py": "from gammapy.maps import Map\nm = Map.create(width=1)\nm.plot()\n",
        "docs/release-notes/v0.1.rst": "Old\n===\n\n.. code-block:: python\n\n    from gammapy.old import gone\n",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name, text in members.items():
            data = text.encode()
            info = tarfile.TarInfo(f"gammapy-{pkg_version}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


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
    # a default value's long repr gives way to the parameters (AnalysisConfig's ran to 2,000 characters)
    config = by_symbol["gammapy.analysis.AnalysisConfig"].text.splitlines()[0]
    assert len(config) < 700 and "observations: gammapy.analysis.config.ObservationsConfig = ..." in config
    assert "offset_max='3 deg'" in by_symbol["gammapy.makers.SafeMaskMaker"].text  # a short one stays


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
    assert all(d.kind in ("tutorial", "script") and d.symbol.startswith(d.source + "#") for d in docs)
    assert sorted(d.symbol for d in docs if d.kind == "script") == ["analysis/spectrum.py#script",
                                                                  "light_curve.ipynb#script"]
    (src / "broken.ipynb").write_text("{not json")
    with pytest.raises(UsageError, match=r"broken\.ipynb: not a readable notebook"):
        rag.tutorial_documents(src)


def test_sdist_tutorials_and_guide_are_read_in_cells(tmp_path: Path) -> None:
    sdist = rag.read_sdist(write_sdist(tmp_path / "gammapy.tar.gz"), GAMMAPY)
    assert isinstance(sdist, rag.Sdist) and sdist.label == f"gammapy-{GAMMAPY}-sdist"
    docs = rag.sdist_documents(sdist.files, sdist.label, max_chars=200)  # small pieces: one cell each
    assert {d.source for d in docs} == {f"{sdist.label}:examples/tutorials/data/demo.py",
                                        f"{sdist.label}:docs/user-guide/demo.rst"}  # no release notes, no models
    tutorial = [d for d in docs if d.kind == "tutorial"]
    assert [d.symbol for d in tutorial] == [f"tutorials/data/demo.py#{i}" for i in range(len(tutorial))]
    assert all(d.text.startswith("Tutorial: Demo spectrum") and "```python" in d.text for d in tutorial)
    text = "\n".join(d.text for d in tutorial)
    for gone in ("plt.", "matplotlib", ".peek(", "Peek at the observation table"):  # a plot-only cell goes whole
        assert gone not in text, gone
    # each code cell comes with the text cells before it, and with the imports it uses from elsewhere
    axis = next(d.text for d in tutorial if "MapAxis.from_energy_bounds(" in d.text)
    assert axis.index("A text cell without code") < axis.index("Ten bins per decade") < axis.index("```python")
    assert "from gammapy.maps import MapAxis\n" in axis and "DataStore" not in axis
    store = next(d.text for d in tutorial if "DataStore.from_dir(" in d.text)
    assert "## Open the data store\nThe `gammapy.data.DataStore` reads the index tables." in store
    guide = "\n".join(d.text for d in docs if d.kind == "guide")
    for kept in ("Guide: Demo guide", "## Significance", "WStatCountsStatistic(n_on=13, n_off=11, alpha=0.5)",
                 "The `gammapy.stats.WStatCountsStatistic` gives the Li & Ma significance, see the stats page.",
                 "m = Map.create(width=1)", "counts = stat.n_on", "A tip in a dropdown",
                 "Use `gammapy.stats.CashCountsStatistic` when the background is known."):
        assert kept in guide, kept
    for gone in ("12345.6789", "caption that is dropped", "m.plot()", "currentmodule", ".. ", ":ref:"):
        assert gone not in guide, gone
    other = rag.read_sdist(write_sdist(tmp_path / "old.tar.gz", "1.3"), GAMMAPY)
    assert isinstance(other, rag.SdistMissing) and f"PKG-INFO says version 1.3, Gammapy {GAMMAPY}" in other.reason
    (tmp_path / "broken.tar.gz").write_bytes(b"not a tarball")
    assert "unreadable" in rag.read_sdist(tmp_path / "broken.tar.gz", GAMMAPY).reason  # type: ignore[union-attr]


def test_real_sdist_tutorials_and_guide() -> None:
    path = rag.sdist_path(cache_root(), GAMMAPY)
    if not path.is_file():
        pytest.skip(f"no Gammapy {GAMMAPY} sdist at {path} (`hpc-agent rag build` fetches it)")
    sdist = rag.read_sdist(path, GAMMAPY)
    assert isinstance(sdist, rag.Sdist)
    docs = rag.sdist_documents(sdist.files, sdist.label)
    files = {d.source.split(":", 1)[1] for d in docs}
    assert len({f for f in files if f.startswith("examples/tutorials/")}) >= 40
    assert len({f for f in files if f.startswith("docs/user-guide/")}) >= 20
    assert not any("release-notes" in f or "development" in f for f in files)
    assert all("```" in d.text and "%matplotlib" not in d.text for d in docs)
    code = "\n".join(part for d in docs for part in d.text.split("```")[1::2])
    assert "plt." not in code and ".peek(" not in code
    cone = [d for d in docs if d.source.endswith("starting/analysis_2.py") and "select_observations(" in d.text]
    assert cone and "cone search" in cone[0].text and "from gammapy.data import DataStore" in cone[0].text
    # every tutorial is also one whole script that compiles; the reflected-regions one keeps its loop and fit
    whole = {d.source.split(":", 1)[1]: d.text.split("```python\n", 1)[1].rsplit("```", 1)[0]
             for d in docs if d.kind == "script"}
    assert len(whole) >= 40
    for path, code in whole.items():
        compile(code, path, "exec")
    spectrum = whole["examples/tutorials/analysis-1d/spectral_analysis.py"]
    assert "bkg_maker.run(dataset, observation)" in spectrum and "fit_joint.run(datasets=datasets)" in spectrum
    # cut for a request: the light-curve tutorial keeps its estimator's run, loses its rebinning tail
    from hpc_agent.rag._trim import trim_code

    flare = trim_code(whole["examples/tutorials/analysis-time/light_curve_flare.py"],
                      "A light curve with LightCurveEstimator from SpectrumDatasetMaker, SafeMaskMaker and "
                      "ReflectedRegionsBackgroundMaker datasets of a SkyModel with a PowerLawSpectralModel")
    compile(flare, "flare.py", "exec")
    assert "lc_maker_1d.run(datasets)" in flare and "resample_axis" not in flare and "Fit()" not in flare


LIGHT_CURVE = """from gammapy.data import DataStore
from gammapy.datasets import Datasets
from gammapy.estimators import LightCurveEstimator
from gammapy.estimators.utils import get_rebinned_axis
from gammapy.modeling import Fit

data_store = DataStore.from_dir("$GAMMAPY_DATA/hess-dl3-dr1/")
observations = data_store.get_observations([1, 2])
datasets = Datasets()
for obs in observations:
    datasets.append(obs)
fit = Fit()
result = fit.run(datasets)
lc_maker_1d = LightCurveEstimator(source="pks2155")
lc_maker_1d.norm.scan_max = 10
lc_1d = lc_maker_1d.run(datasets)
sliced_lc = lc_1d.slice_by_idx({"energy": slice(0, 1)})
axis_new = get_rebinned_axis(sliced_lc, method="fixed-bins", group_size=3, axis_name="time")
lc_new = sliced_lc.resample_axis(axis_new)"""


def test_a_whole_script_is_cut_to_the_part_the_request_asks_for() -> None:
    """The 1.5B copied the light-curve tutorial's rebinning tail (`resample_axis`: "Stat profiles not
    present") into a request that never asked for it, after a reduction that ran."""
    from hpc_agent.rag._trim import for_request, trim_code

    request = "Open the DataStore, then run a LightCurveEstimator on the per-observation datasets."
    code = trim_code(LIGHT_CURVE, request)
    compile(code, "trimmed.py", "exec")
    # kept: the reduction, the estimator and its run (a variable the estimator's statement made)
    for kept in ("datasets = Datasets()", "    datasets.append(obs)", "lc_maker_1d.norm.scan_max = 10",
                 "lc_1d = lc_maker_1d.run(datasets)", "from gammapy.datasets import Datasets"):
        assert kept in code, kept
    # gone: the tail after the request's part, and the fit nothing uses (Fit is not asked for)
    for gone in ("slice_by_idx", "get_rebinned_axis", "resample_axis", "Fit", "result ="):
        assert gone not in code, gone
    # a request that names the fit keeps it; one naming no Gammapy name of the script changes nothing
    assert "result = fit.run(datasets)" in trim_code(LIGHT_CURVE, request + " Fit the model first.")
    assert trim_code(LIGHT_CURVE, "how many observations are there?") == LIGHT_CURVE
    # a model set on the datasets for a request that fits none goes, and with it what made the model
    with_model = LIGHT_CURVE.replace("fit = Fit()", "from gammapy.modeling.models import SkyModel\n"
                                     "model = SkyModel(spectral_model=None)\ndatasets.models = [model]\nfit = Fit()")
    counted = trim_code(with_model, "Stack the datasets of the DataStore and run a LightCurveEstimator")
    assert "model" not in counted and "lc_1d = lc_maker_1d.run(datasets)" in counted
    assert "datasets.models = [model]" in trim_code(with_model, request + " with a SkyModel")
    text = f"Tutorial: Light curves (the whole script)\n```python\n{LIGHT_CURVE}\n```"
    assert for_request(text, request) == f"Tutorial: Light curves (the whole script)\n```python\n{code}\n```"


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
    # another process gives the same ids: no memory address or import time of a default value in a signature
    code = ("from hpc_agent import rag; print(sorted(c.id for c in rag.chunk_documents("
            "rag.api_documents('gammapy.datasets'))))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    here = rag.chunk_documents(rag.api_documents("gammapy.datasets"))
    assert res.returncode == 0 and res.stdout.strip() == str(sorted(c.id for c in here)), res.stderr[-500:]
    meta = next(d.text for d in api_docs if d.symbol == "gammapy.datasets.MapDatasetMetaData")
    assert "creation: Optional[gammapy.utils.metadata.CreatorMetaData] = ...," in meta  # its date: the import time
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


def test_first_turn_gets_a_worked_example(small_chunks: list[rag.Chunk], tmp_path: Path) -> None:
    sdist = rag.read_sdist(write_sdist(tmp_path / "gammapy.tar.gz"), GAMMAPY)
    assert isinstance(sdist, rag.Sdist)
    examples = rag.chunk_documents(rag.sdist_documents(sdist.files, sdist.label, max_chars=200))  # a piece a cell
    api = [c for c in small_chunks if c.symbol.startswith(("gammapy.data.DataStore", "gammapy.data.Observation"))]
    index = rag.build_index(api + examples, rag.LocalEmbedder(), ":memory:", {"gammapy": GAMMAPY})
    # hits are distinct: at most two pieces of one page, though its third outranks the API entries
    page = "Demo spectrum: open the H.E.S.S. data store, make an energy axis with ten bins per decade"
    wide = rag.Retriever(index, rag.LocalEmbedder(), k=4, min_score=-1.0)
    raw = index.search(rag.LocalEmbedder().embed([page])[0], page, 4, "hybrid")
    assert sum(h.source.endswith("demo.py") for h in raw) == 3
    assert sum(h.source.endswith("demo.py") for h in wide.search(page).hits) == 2
    query = "Signature and parameters of the DataStore.from_dir classmethod"
    retriever = rag.Retriever(index, rag.LocalEmbedder(), k=3, min_score=0.1)
    plain = retriever.search(query)
    assert len(plain.hits) == 3 and not any(rag.is_example(h) for h in plain.hits)  # API fragments only ...
    first = retriever.for_prompt(query)
    assert [h.id for h in first.hits[:2]] == [h.id for h in plain.hits[:2]]
    added = first.hits[2]  # ... so the best worked example takes the last place
    assert rag.is_example(added) and added.source.endswith("demo.py") and added.score >= 0.1
    strict = rag.Retriever(index, rag.LocalEmbedder(), k=3, min_score=added.score + 0.01)
    assert not any(rag.is_example(h) for h in strict.for_prompt(query).hits)  # never below the threshold
    # a worked example keeps a longer budget in the prompt than an API snippet; a cut fence is closed
    code = "```python\n" + "\n".join(f"x{i} = {i}" for i in range(300)) + "\n```"
    long = [rag.Hit("a", 0.5, "tutorials/x.py#0", "s", "tutorial", "Tutorial: x\n" + code),
            rag.Hit("b", 0.5, "gammapy.x", "gammapy-api", "method", "gammapy.x()\n" + "\n".join(["word " * 10] * 40))]
    shown = rag.render(rag.Retrieval("q", tuple(long))).split("--- end of snippet 1 ---")
    assert 1700 < len(shown[0]) < 1900 and shown[0].rstrip().endswith("```\n...")
    assert 800 < len(shown[1]) < 1000


def _build(tmp_path: Path, **kwargs: object) -> tuple[rag.BuildInfo, list[str]]:
    said: list[str] = []
    info = rag.build(load_settings(), index=str(tmp_path / "index"), api_package="gammapy.stats",
                     progress=said.append, **kwargs)  # type: ignore[arg-type]
    return info, said


def test_rebuild_with_unchanged_sources_is_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HPC_AGENT_CACHE", str(tmp_path / "cache"))
    write_sdist(rag.sdist_path(tmp_path / "cache", GAMMAPY))  # cached: no pip call
    first, said = _build(tmp_path)
    assert not first.skipped and first.sdist == GAMMAPY and not any("fetching" in m for m in said)
    api = len(rag.chunk_documents(rag.api_documents("gammapy.stats")))
    assert first.parts["api"] == api and first.parts["tutorials"] >= 1 and first.parts["guide"] >= 1
    meta = json.loads((tmp_path / "index" / "meta.json").read_text())
    assert meta["parts"] == first.parts and meta["sdist"]["label"] == f"gammapy-{GAMMAPY}-sdist"
    assert f"gammapy-{GAMMAPY}-sdist" in meta["sources"]
    ready, where = rag.index_status(load_settings(rag_index=str(tmp_path / "index")))
    assert sum(first.parts.values()) == first.chunks and first.parts["scripts"] == 1
    assert ready and f"api {api}, tutorials {first.parts['tutorials']}, guide {first.parts['guide']}, scripts 1 chunks; " \
                     f"gammapy-{GAMMAPY}-sdist" in where
    t0 = time.monotonic()
    again, said = _build(tmp_path)
    assert again.skipped and time.monotonic() - t0 < first.seconds
    assert any("is up to date" in m and "--force rebuilds it" in m for m in said)
    assert json.loads((tmp_path / "index" / "meta.json").read_text())["built_at"] == meta["built_at"]
    forced, _ = _build(tmp_path, force=True)
    assert not forced.skipped and json.loads((tmp_path / "index" / "meta.json").read_text())["built_at"] != meta["built_at"]
    src = tmp_path / "more"
    src.mkdir()
    (src / "extra.py").write_text("# %%\n# Another step.\nfrom gammapy.stats import cash\n")
    changed, _ = _build(tmp_path, sources=(src,))
    assert not changed.skipped and changed.chunks == first.chunks + 2  # its piece and its whole script
    rag.assert_no_references(rag.open_index(str(tmp_path / "index"), refresh=True))  # the sdist label is no path


def test_offline_build_says_so_in_one_line_and_indexes_the_api(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HPC_AGENT_CACHE", str(tmp_path / "cache"))  # no sdist cached: pip must fetch it
    (tmp_path / "no-wheels").mkdir()
    for key, value in {"PIP_INDEX_URL": "http://127.0.0.1:9/simple", "PIP_CONFIG_FILE": os.devnull,
                       "PIP_FIND_LINKS": str(tmp_path / "no-wheels"), "PIP_EXTRA_INDEX_URL": "",
                       "PIP_RETRIES": "0"}.items():
        monkeypatch.setenv(key, value)
    info, said = _build(tmp_path)
    left_out = [m for m in said if "tutorials and user guide left out" in m]
    assert len(left_out) == 1 and "\n" not in left_out[0] and "pip download" in left_out[0], said
    api = len(rag.chunk_documents(rag.api_documents("gammapy.stats")))
    assert info.parts == {"api": api, "tutorials": 0, "guide": 0, "scripts": 0} and info.sdist is None and not info.skipped
    meta = json.loads((tmp_path / "index" / "meta.json").read_text())
    assert meta["sdist"] is None and meta["sources"] == ["gammapy-api"]
    assert not rag.sdist_path(tmp_path / "cache", GAMMAPY).exists()
    skipped, said = _build(tmp_path, docs=False)  # --no-docs: no pip call at all, and the same API-only index
    assert skipped.skipped and not any("pip" in m for m in said)


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


def test_a_run_failing_in_the_scripts_own_python_gets_no_snippets() -> None:
    """json refusing a Quantity is no API question: the request's nearest snippets (s27: `DataStore.copy_obs`)
    only led the 1.5B off. An error through library code, one naming a symbol, and static findings still may."""
    own = ('Traceback (most recent call last):\n  File "/w/script.py", line 31, in <module>\n'
           '  File "/usr/lib/python3.11/json/encoder.py", line 180, in default\n'
           "TypeError: Object of type Quantity is not JSON serializable")
    assert not rag.concerns_the_library(own)
    assert not rag.concerns_the_library(own.replace("TypeError: Object of type Quantity is not JSON serializable",
                                                    "ZeroDivisionError: division by zero"))
    library = own.replace("/usr/lib/python3.11/json/encoder.py", "/venv/site-packages/gammapy/data/data_store.py")
    assert rag.concerns_the_library(library)
    assert rag.concerns_the_library('  File "/w/script.py", line 3\nAttributeError: \'Observation\' object has '
                                    "no attribute 'livetime'")
    assert rag.concerns_the_library("line 34: `Observations` has no `livetime`")
    # nor a column missing from an astropy table: the feedback names the real columns (f43: `KeyError:
    # 'EVENT_COUNT'` fetched `get_observation_groups("EVENT_TYPE")`)
    column = ('  File "/w/script.py", line 13, in <module>\n  File "/venv/site-packages/astropy/table/table.py", '
              "line 2104, in __getitem__\nKeyError: 'EVENT_COUNT'")
    assert not rag.concerns_the_library(column)
    assert rag.concerns_the_library(column.replace("astropy/table/table.py", "gammapy/data/hdu_index_table.py"))
    # an attribute asked of a numpy number is no API question either (s27: the snippets then offered
    # `make_observation_time_map`, and the 1.5B invented `ObservationTimeMap`)
    assert not rag.concerns_the_library('  File "/w/script.py", line 22, in <module>\n'
                                        "AttributeError: 'numpy.float32' object has no attribute 'to'")
    # nor is a script that does not parse (the 0.5B pasted the snippets' reprs and numpydoc into its next one)
    syntax = ("SyntaxError at line 10: invalid syntax (return plain Python, no notebook magics or prose)\n"
              "SyntaxError at line 10: invalid syntax (return plain Python, no notebook magics or prose)")
    assert not rag.concerns_the_library(syntax)
    assert rag.concerns_the_library(syntax + "\nline 4: undefined name 'DataStore'")


# --- the agent and sweeps --------------------------------------------------------------------------------------------


def test_agent_injects_snippets_per_turn_and_records_them(small_index: Path, tmp_path: Path, data_root: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HPC_AGENT_RAG_INDEX", str(small_index))
    monkeypatch.setenv("HPC_AGENT_RAG_MIN_SCORE", "0.1")
    out = tmp_path / "bundle"
    replies = [Reply(code=script("msh1552_count_broken.py")), Reply(code=script("msh1552_count_ok.py"))]
    with ScriptedOpenAIServer(replies) as srv:
        res = CliRunner().invoke(main, ["run", ANALYSIS_PROMPT, "--base-url", srv.base_url, "--model", srv.model,
                                        "--out", str(out), "--data-root", str(data_root), "--sandbox", "bwrap", "--rag"],
                                 catch_exceptions=False)
        requests = srv.requests
    assert res.exit_code == 0, res.output
    ctx1 = json.loads((out / "attempt-1" / "context.json").read_text())
    ctx2 = json.loads((out / "attempt-2" / "context.json").read_text())
    # retrieval searches without the source's name (which source does not change the API to use)
    assert ctx1["query"] == ANALYSIS_PROMPT.replace("MSH 15-52", "a source") and 1 <= len(ctx1["snippets"]) <= 4
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


def test_a_table_question_gets_its_columns_not_retrieval_in_the_first_turn(
        small_index: Path, tmp_path: Path, data_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a request naming a release column is answered from the tables: the first turn says where the column is read
    # and carries no retrieved API (its words evoke makers and IRFs); a failed run still retrieves for its error
    monkeypatch.setenv("HPC_AGENT_RAG_INDEX", str(small_index))
    monkeypatch.setenv("HPC_AGENT_RAG_MIN_SCORE", "0.1")
    prompt = PROMPT.replace("?", " with a pointing zenith angle ZEN_PNT below 40 degrees?")
    out = tmp_path / "bundle"
    replies = [Reply(code=script("msh1552_count_broken.py")), Reply(code=script("msh1552_count_ok.py"))]
    with ScriptedOpenAIServer(replies) as srv:
        res = CliRunner().invoke(main, ["run", prompt, "--base-url", srv.base_url, "--model", srv.model, "--out",
                                        str(out), "--data-root", str(data_root), "--sandbox", "bwrap", "--rag"],
                                 catch_exceptions=False)
        requests = srv.requests
    assert res.exit_code == 0, res.output
    ctx1 = json.loads((out / "attempt-1" / "context.json").read_text())
    assert ctx1["snippets"] == [] and "tables" in ctx1["withheld"]
    first = "\n".join(m["content"] for m in requests[0]["messages"])
    assert REFERENCE_HEADER not in first and '`selected["ZEN_PNT"]`' in first
    ctx2 = json.loads((out / "attempt-2" / "context.json").read_text())
    assert ctx2["snippets"] and "withheld" not in ctx2
    assert REFERENCE_HEADER in requests[1]["messages"][-1]["content"]


def test_run_without_rag_sends_no_reference_material(tmp_path: Path, data_root: Path) -> None:
    out = tmp_path / "bundle"
    with ScriptedOpenAIServer([Reply(code=script("msh1552_count_ok.py"))]) as srv:
        res = CliRunner().invoke(main, ["run", PROMPT, "--base-url", srv.base_url, "--model", srv.model, "--out",
                                        str(out), "--data-root", str(data_root), "--sandbox", "bwrap"])
        sent = "\n".join(m["content"] for m in srv.requests[0]["messages"])
    assert res.exit_code == 0, res.output
    assert REFERENCE_HEADER not in sent and not (out / "attempt-1" / "context.json").exists()


def _one_task_benchmarks(tmp_path: Path, data_root: Path, index: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = write_bench_root(tmp_path / "benchmarks")
    task = root / "tasks" / "observation-list-crab.yaml"  # asked for an analysis, so that its first turn retrieves
    task.write_text(task.read_text().replace("How many H.E.S.S. DR1 observations point",
                                             "For a spectrum, how many H.E.S.S. DR1 observations point"))
    for k, v in {"HPC_AGENT_BENCHMARKS": str(root), "HPC_AGENT_CACHE": str(tmp_path / "cache"),
                 "PHOTON_STORAGE": str(data_root), "HPC_AGENT_RAG_INDEX": str(index)}.items():
        monkeypatch.setenv(k, v)
    return root


def test_sweep_rag_both_traces_snippets_and_reports_the_effect(small_index: Path, tmp_path: Path, data_root: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    root = _one_task_benchmarks(tmp_path, data_root, small_index, monkeypatch)
    out = tmp_path / "sweep"
    code, output = run_bench(["--models", "oracle", "--rag", "both", "--seeds", "2", "--out", str(out)])
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
    code, output = run_bench(["--models", "oracle", "--rag", "on", "--out", str(tmp_path / "sweep2")])
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
    from hpc_agent.report import wilson

    assert wilson(0, 3)[0] == 0.0 and wilson(10, 10)[1] == 1.0
    _one_task_benchmarks(tmp_path, data_root, small_index, monkeypatch)
    out = tmp_path / "sweep"
    with ScriptedOpenAIServer([Reply(text="no idea", mode="text")] * 6) as srv:
        code, output = run_bench(["--base-url", srv.base_url, "--model", srv.model, "--rag", "both", "--seeds", "3",
                               "--attempts", "1", "--out", str(out)])
        first_on = [r for r in srv.requests if REFERENCE_HEADER in json.dumps(r)]
    assert code == 0, output
    assert len(first_on) == 3  # the three rag=on cells, and only those, sent snippets
    res = CliRunner().invoke(main, ["report", str(out)])
    assert res.exit_code == 0, res.output
    md = (out / "report" / "report.md").read_text()
    assert "| adhoc-scripted-model | off | 3 | 0 | 0 | 0 |" in md and "| adhoc-scripted-model | on | 3 | 0 | 0 | 0 |" in md


def test_a_tutorial_piece_of_imports_only_is_never_retrieved() -> None:
    from hpc_agent.rag._index import Hit
    from hpc_agent.rag._retrieve import imports_only

    def hit(kind: str, code: str) -> Hit:
        return Hit(id="x", score=0.9, kind=kind, symbol="t#0", source="t.py", text=f"Title\n```python\n{code}```\n")

    assert imports_only(hit("tutorial", "import logging\nimport numpy as np\nfrom gammapy.data import DataStore\n"
                                        "log = logging.getLogger(__name__)\n"))
    assert not imports_only(hit("tutorial", "from gammapy.data import DataStore\nds = DataStore.from_dir(p)\n"))
    assert not imports_only(hit("function", "import numpy as np\n"))  # an API entry is not a worked example


def test_a_worked_example_is_shown_without_its_cells_of_imports_only() -> None:
    from hpc_agent.rag._index import Hit
    from hpc_agent.rag._retrieve import Retrieval, render

    text = ("Tutorial: light curves\n```python\nimport logging\nfrom gammapy.data import DataStore\n"
            "log = logging.getLogger(__name__)\n```\n\n## Select the data\n```python\n"
            "data_store = DataStore.from_dir(path)\n```\n")
    shown = render(Retrieval("q", (Hit(id="x", score=0.9, kind="tutorial", symbol="t#0", source="t.py", text=text),
                                   Hit(id="y", score=0.9, kind="function", symbol="f", source="f.py", text=text))))
    example, api = shown.split("--- snippet 2")
    assert "getLogger" not in example and "## Select the data" in example and "DataStore.from_dir(path)" in example
    assert "getLogger" in api  # an API entry is shown as written


WHOLE = '''"""
Reduce and fit
==============

A reduction loop, then a fit.
"""

import astropy.units as u
import matplotlib.pyplot as plt
from pathlib import Path
from gammapy.data import DataStore
from gammapy.datasets import Datasets

# %%
# Open the store and loop.

data_store = DataStore.from_dir("$GAMMAPY_DATA/hess-dl3-dr1")
observations = data_store.get_observations([23523])
data_store.obs_table
print(observations)
datasets = Datasets()
for obs in observations:
    datasets.append(obs)

# %%
# A round trip through a local folder, then a figure.

path = Path("analysis")
path.mkdir(exist_ok=True)
datasets.write(filename=path / "datasets.yaml", overwrite=True)
datasets = Datasets.read(filename=path / "datasets.yaml")
fig, ax = plt.subplots()
plot_kwargs = {"ax": ax}

# %%
# Fit, after the round trip.

from gammapy.modeling import Fit

result = Fit().run(datasets=datasets)
energy = 1 * u.TeV
'''


def test_a_tutorial_is_also_one_condensed_whole_script() -> None:
    docs = rag.sdist_documents({"examples/tutorials/analysis-1d/fit.py": WHOLE}, "gammapy-2.1-sdist")
    (whole,) = [d for d in docs if d.kind == "script"]
    assert whole.symbol == "tutorials/analysis-1d/fit.py#script" and whole.text.startswith("Tutorial: Reduce and fit")
    code = whole.text.split("```python\n", 1)[1].rsplit("```", 1)[0]
    lines = code.splitlines()
    # imports merged at the top (the late `from gammapy.modeling import Fit` too), only those used
    assert lines[:4] == ["import astropy.units as u", "from gammapy.data import DataStore",
                         "from gammapy.datasets import Datasets", "from gammapy.modeling import Fit"]
    # displays, prints, the local-file round trip and figure leftovers are gone; every computing step stays,
    # the fit after the round trip included (a read-back variable is not a path)
    for gone in ("data_store.obs_table\n", "print(", "Path(", "mkdir", ".write(", ".read(", "plt", "ax"):
        assert gone not in code, gone
    for kept in ("observations = data_store.get_observations([23523])", "    datasets.append(obs)",
                 "result = Fit().run(datasets=datasets)", "energy = 1 * u.TeV"):
        assert kept in code, kept
    compile(code, "whole.py", "exec")
    # shown whole: chunking never cuts it
    assert [c.text for c in rag.chunk_documents([whole], max_chars=200)] == [whole.text]


OTHER = '''"""
Energy axes
===========
"""

from gammapy.data import DataStore
from gammapy.maps import MapAxis

# %%
# An axis.

data_store = DataStore.from_dir("$GAMMAPY_DATA/hess-dl3-dr1")
energy_axis = MapAxis.from_energy_bounds(0.5, 10, nbin=10, unit="TeV")
'''


def test_the_first_turn_shows_the_tutorial_using_the_named_api_as_its_whole_script() -> None:
    whole = WHOLE.replace("datasets = Datasets()", "maker = SpectrumDatasetMaker()\ndatasets = Datasets()").replace(
        "from gammapy.datasets import Datasets", "from gammapy.datasets import Datasets\n"
        "from gammapy.makers import SpectrumDatasetMaker\n"
        "from gammapy.modeling.models import PowerLawSpectralModel, SkyModel").replace(
        "energy = 1 * u.TeV", "model = SkyModel(spectral_model=PowerLawSpectralModel())")
    docs = rag.sdist_documents({"examples/tutorials/analysis-1d/fit.py": whole,
                                "examples/tutorials/details/axes.py": OTHER}, "gammapy-2.1-sdist", max_chars=200)
    assert sum(d.kind == "script" for d in docs) == 2
    index = rag.build_index(rag.chunk_documents(docs), rag.LocalEmbedder(), ":memory:", {"gammapy": GAMMAPY})
    query = ("Open the DataStore, fill a SpectrumDatasetMaker per observation, collect the datasets "
             "and fit a SkyModel with a PowerLawSpectralModel to them")
    on = rag.Retriever(index, rag.LocalEmbedder(), k=4, min_score=-1.0)
    assert not any(h.kind == "script" for h in on.search(query, k=10).hits)  # never a search result itself
    first = on.for_prompt(query)
    assert first.hits[-1].kind == "script" and first.hits[-1].symbol == "tutorials/analysis-1d/fit.py#script"
    assert len(first.hits) <= 4 and not any(h.source.endswith("fit.py") and h.kind == "tutorial" for h in first.hits)
    shown = rag.render(first)
    assert "a whole tutorial script" in shown and "result = Fit().run(datasets=datasets)" in shown
    off = rag.Retriever(index, rag.LocalEmbedder(), k=4, min_score=-1.0, whole_script=False)
    assert not any(h.kind == "script" for h in off.for_prompt(query).hits)
    # a request in a user's words, naming no classes, keeps the pieces similarity finds
    assert not any(h.kind == "script" for h in on.for_prompt("fit the spectrum of every observation").hits)
    # the agent's repair turns never show pieces of a page already shown whole
    from hpc_agent.agent import RunSpec, _retrieve
    from hpc_agent.records import Attempt, Usage, Validation

    spec = RunSpec(prompt=query, data_root=Path("/nonexistent"), out_dir=Path("/nonexistent"), retriever=on)
    shown: set[str] = set()
    assert _retrieve(spec, None, shown).hits[-1].kind == "script"
    failed = Attempt(index=1, script="x = 1", usage=Usage(), validation=Validation(passed=False, checks=()),
                     failure="static", static_errors=("line 3: `Datasets` has no `reduce`: loop and fit",))
    error = failed.static_errors[0]
    assert any(h.source.endswith("fit.py") for h in on.for_error(query, error).hits)  # that page's pieces come...
    later = _retrieve(spec, failed, shown)
    assert not any(h.source.endswith("fit.py") for h in later.hits)  # ... but are left out


def test_the_whole_script_is_chosen_by_the_rare_classes_the_request_names() -> None:
    from hpc_agent.rag._retrieve import best_script

    def script(name: str, classes: str, pad: int = 0) -> rag.Hit:
        return rag.Hit(name, 1.0, f"tutorials/{name}.py#script", name, "script", classes + " x" * pad)

    common = "DataStore MapAxis"  # in every script: they tell nothing apart
    scripts = [script("reflected", f"{common} ReflectedRegionsBackgroundMaker SpectrumDatasetMaker SafeMaskMaker"),
               script("reflected_long", f"{common} ReflectedRegionsBackgroundMaker SpectrumDatasetMaker "
                                         "SafeMaskMaker LightCurveEstimator", pad=500),
               script("maps", f"{common} MapDatasetMaker SafeMaskMaker FoVBackgroundMaker"),
               script("catalog", f"{common} SourceCatalogHGPS")]
    request = ("Use DataStore, MapAxis, ReflectedRegionsBackgroundMaker, SpectrumDatasetMaker and SafeMaskMaker "
               "with TeV units")
    assert best_script(request, scripts).symbol == "tutorials/reflected.py#script"  # the shorter of two equals
    assert best_script(request + " and a LightCurveEstimator", scripts).symbol == "tutorials/reflected_long.py#script"
    assert best_script("FoVBackgroundMaker, MapDatasetMaker and SafeMaskMaker", scripts).symbol == \
        "tutorials/maps.py#script"
    assert best_script("Use DataStore and MapAxis to count observations", scripts) is None  # nothing rare named
    assert best_script("SpectrumDatasetMaker and SourceCatalogHGPS and MapDatasetMaker", scripts) is None  # split
