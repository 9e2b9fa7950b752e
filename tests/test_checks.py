"""Static rules reject scripts before they spend a sandbox run."""

from __future__ import annotations

import ast
from importlib.metadata import version

import pytest

from conftest import script
from hpc_agent import rag
from hpc_agent.checks import static_errors, unchained_makers
from hpc_agent.config import cache_root


def test_good_script_passes() -> None:
    assert static_errors(script("msh1552_count_ok.py")) == []


@pytest.mark.parametrize(
    ("code", "needle"),
    [
        ("import json\nprint('RESULT ' + json.dumps({})\n", "SyntaxError at line"),
        ("%matplotlib inline\nprint('RESULT {}')\n", "SyntaxError"),
        ("import matplotlib.pyplot as plt\nplt.plot([1])\nplt.show()\nprint('RESULT {}')\n", "`.show()`"),
        ("display(1)\nprint('RESULT {}')\n", "`display()`"),
        ("t = None\nsel = t['TARGET_NAME'] == 'Crab'\nprint('RESULT {}')\n", "TARGET_NAME column"),
        ("t = None\nsel = t['OBJECT'] == 'Crab'\nprint('RESULT {}')\n", "OBJECT column"),
        ("t = None\nkeep = [n.startswith('Crab') for n in t['OBJECT']]\nprint('RESULT {}')\n", "OBJECT column"),
        ("t = None\nnames = t['OBJECT']\nsel = t[names == 'Crab']\nprint('RESULT {}')\n", "OBJECT column"),
        ("import numpy as np\nt = None\nsel = np.isin(t['TARGET_NAME'], ['Crab'])\nprint('RESULT {}')\n",
         "TARGET_NAME column"),
        ("t = None\nfor i, name in enumerate(t['OBJECT']):\n    if name == 'Crab':\n        print(i)\n"
         "print('RESULT {}')\n", "OBJECT column"),
        ("p = '/data/hess-dl3-dr1'\nprint('RESULT {}')\n", "hard-coded data path"),
        ("print(42)\n", "no `RESULT {json}` line"),
        ("x = os.environ['PHOTON_STORAGE']\nprint('RESULT {}')\n", "undefined name 'os'"),
    ],
)
def test_rule_violations(code: str, needle: str) -> None:
    errors = static_errors(code)
    assert any(needle in e for e in errors), errors


@pytest.mark.parametrize("use", [
    "n = len(set(t['OBJECT']))",  # "how many distinct targets": the unseen question the rule used to reject 5 times
    "n = len(np.unique(t['TARGET_NAME']))",
    "names = sorted(set(t['OBJECT']))\nn = len(names)",
    "n = {'first': str(t['OBJECT'][0])}",
])
def test_reading_a_name_column_without_selecting_by_it_passes(use: str) -> None:
    code = f"import json\nimport numpy as np\nt = None\n{use}\nprint('RESULT ' + json.dumps({{'n': n}}))\n"
    assert static_errors(code) == []


def test_result_not_required_when_not_asked() -> None:
    assert static_errors("print(42)\n", require_result=False) == []


def test_fstring_result_counts() -> None:
    assert static_errors("import json\nprint(f\"RESULT {json.dumps({'a': 1})}\")\n") == []


def test_each_problem_is_reported_once() -> None:
    errors = static_errors("p = os.path.join(os.environ['PHOTON_STORAGE'])\nprint('RESULT {}')\n")
    assert errors == ["line 1: undefined name 'os' (missing import or typo)"]


UNCHAINED = """\
from gammapy.makers import ReflectedRegionsBackgroundMaker, SafeMaskMaker, SpectrumDatasetMaker
bkg_maker = ReflectedRegionsBackgroundMaker()
datasets = []
for observation in observations:
    dataset = SpectrumDatasetMaker().run(empty, observation)
    background = bkg_maker.run(dataset, observation)
    safe = SafeMaskMaker(methods=["aeff-max"]).run(dataset, observation)
    datasets.append(background + safe)
print("RESULT {}")
"""


def test_makers_run_side_by_side_on_one_dataset_are_rejected() -> None:
    """The 1.5B's light-curve reduction (sweep s26): background and safe mask each from the same dataset."""
    errors = [e for e in static_errors(UNCHAINED) if "Maker" in e]
    assert len(errors) == 1
    assert errors[0].startswith("line 7: `SafeMaskMaker` runs on `dataset`, like `ReflectedRegionsBackgroundMaker` on line 6")
    assert "dataset = maker.run(dataset, observation)" in errors[0]


def test_chained_makers_pass() -> None:
    chained = UNCHAINED.replace("background = bkg_maker.run(dataset", "dataset = bkg_maker.run(dataset").replace(
        "safe = SafeMaskMaker(methods=[\"aeff-max\"]).run(dataset", "dataset = SafeMaskMaker().run(dataset").replace(
        "background + safe", "dataset")
    assert not [e for e in static_errors(chained) if "Maker" in e]
    # the same empty dataset given to the first maker again, after the name was reassigned, is fine too
    again = chained.replace("    datasets.append(dataset)\n", "    datasets.append(dataset)\n    dataset = empty\n"
                            "    other = SafeMaskMaker().run(dataset, observation)\n")
    assert not [e for e in static_errors(again) if "Maker" in e]


def _sdist_scripts() -> dict[str, str]:
    """Every Python file (tutorials and modules) of the installed Gammapy's sdist; the test skips without it."""
    path = rag.sdist_path(cache_root(), version("gammapy"))
    if not path.exists():
        pytest.skip(f"no Gammapy sdist at {path} (`hpc-agent rag build` fetches it)")
    sdist = rag.read_sdist(path, version("gammapy"))
    assert isinstance(sdist, rag.Sdist)
    return {name: text for name, text in sdist.files.items() if name.endswith(".py")}


def test_gammapy_tutorials_chain_their_makers() -> None:
    """No false alarm on Gammapy's own code: every tutorial and module of the installed version's sdist."""
    scripts = _sdist_scripts()
    assert len([n for n in scripts if n.startswith("examples/tutorials/")]) >= 40
    runs = sum(text.count("maker.run(") for text in scripts.values())
    assert runs >= 20  # the tutorials do chain makers: the check below has something to pass
    assert {name: unchained_makers(ast.parse(text)) for name, text in scripts.items()
            if unchained_makers(ast.parse(text))} == {}


def test_a_maker_result_left_aside_is_rejected_even_when_the_next_one_chains() -> None:
    """s26, reflected-significance-crab: `background = bkg_maker.run(dataset, obs)`, then
    `dataset = safe_mask_maker.run(dataset, obs)`: the background never reaches the stacked dataset."""
    aside = UNCHAINED.replace("safe = SafeMaskMaker(", "dataset = SafeMaskMaker(").replace("background + safe", "dataset")
    errors = [e for e in static_errors(aside) if "Maker" in e]
    assert len(errors) == 1 and "step `ReflectedRegionsBackgroundMaker` added is lost" in errors[0]


COUNTS = """\
import json, os
from gammapy.data import DataStore
data_store = DataStore.from_dir(os.environ["PHOTON_STORAGE"])
table = data_store.obs_table
selected = table[table["ZEN_PNT"] < 30]
observations = data_store.get_observations(list(selected["OBS_ID"]))
events = observations[0].events.table
n_events = len(selected)
print("RESULT " + json.dumps({KEYS}))
"""


@pytest.mark.parametrize(("keys", "counted"), [
    ('{"n_events": n_events}', "selected"),
    ('{"total_events": int(len(observations))}', "observations"),
    ('{"event_count": len(list(selected["OBS_ID"]))}', "list(selected['OBS_ID'])"),
    ('{"n_obs": len(selected), "events": len(data_store.obs_table)}', "data_store.obs_table"),
])
def test_a_count_of_events_that_counts_observations_is_rejected(keys: str, counted: str) -> None:
    """Seen: "how many events in total were recorded in the observations near the Crab" answered with
    `len(selected)` (4 runs for 30129 events)."""
    errors = [e for e in static_errors(COUNTS.replace("{KEYS}", keys)) if "not of events" in e]
    assert len(errors) == 1 and f"is `len({counted})`, the number of observations" in errors[0]
    assert "EVENT_COUNT" in errors[0] and "observation.events.table" in errors[0]


@pytest.mark.parametrize("keys", [
    '{"n_events": len(events)}',
    '{"n_events": int(selected["EVENT_COUNT"].sum())}',
    '{"n_obs": len(selected)}',
    '{"n_events": len(observations[0].events.table)}',
])
def test_counts_of_what_their_key_names_pass(keys: str) -> None:
    assert not [e for e in static_errors(COUNTS.replace("{KEYS}", keys)) if "not of events" in e]


def test_models_read_from_a_dataset_that_never_got_them_are_rejected() -> None:
    """s37 reflected-spectrum-pks2155, two turns: `reduced = datasets.stack_reduce()`, then `reduced.models[0]`."""
    from hpc_agent.checks import models_never_set

    code = ("from gammapy.datasets import Datasets, SpectrumDataset\ndatasets = Datasets([])\n"
            "reduced = datasets.stack_reduce()\nmodel = reduced.models[0]\nindex = reduced.models.parameters\n")
    errors = models_never_set(ast.parse(code))
    assert len(errors) == 2 and errors[0].startswith("line 4: `reduced.models` is None: `reduced` comes from "
                                                     "`datasets.stack_reduce()` (line 3)")
    assert not models_never_set(ast.parse(code + "reduced.models = [model]\n"))  # set before or after: the model's order
    assert not models_never_set(ast.parse(code.replace("stack_reduce()", "stack_reduce(models=m)")))
    assert not models_never_set(ast.parse(code + "reduced = datasets[0]\n"))  # bound twice: not known


def test_gammapys_tutorials_read_no_models_they_never_set() -> None:
    """No false alarm on Gammapy's own code (tutorials and modules of the installed version's sdist), which
    reads `.models` of stacked and created datasets after setting them."""
    from hpc_agent.checks import models_never_set

    scripts = _sdist_scripts()
    assert sum(text.count("stack_reduce()") for text in scripts.values()) >= 3  # something to pass
    assert {name: found for name, text in scripts.items() if (found := models_never_set(ast.parse(text)))} == {}


COUNT_THROUGH_AN_ANALYSIS = """\
import json
import os
import gammapy.estimators
from gammapy.data import DataStore
from gammapy.makers import SpectrumDatasetMaker
from gammapy.modeling import Fit as Fitter

data_store = DataStore.from_dir(os.path.join(os.environ["PHOTON_STORAGE"], "hess-dl3-dr1"))
maker = SpectrumDatasetMaker(selection=["counts"])
fit = Fitter()
est = gammapy.estimators.FluxPointsEstimator
print("RESULT " + json.dumps({"n_obs": len(data_store.obs_table)}))
"""


def test_a_table_question_answered_through_an_analysis_is_rejected_with_the_names_to_remove() -> None:
    """s45 observation-list-msh1552: an invented event-list maker and a fit around a count, three turns."""
    errors = [e for e in static_errors(COUNT_THROUGH_AN_ANALYSIS, tables_only=True) if "tables hold" in e]
    assert len(errors) == 1
    assert "`SpectrumDatasetMaker` (line 9), `Fitter` (line 10), `gammapy.estimators.FluxPointsEstimator` (line 11)" \
        in errors[0]
    assert "data_store.obs_table" in errors[0]
    # the same script for a request that names an analysis product: no such finding
    assert not [e for e in static_errors(COUNT_THROUGH_AN_ANALYSIS) if "tables hold" in e]


@pytest.mark.parametrize("reference", ["observation_list.py", "total_livetime.py"])
def test_the_table_references_pass_the_tables_only_rule(reference: str) -> None:
    from pathlib import Path

    text = (Path(__file__).parents[1] / "benchmarks" / "reference" / reference).read_text()
    assert not [e for e in static_errors(text, tables_only=True) if "tables hold" in e]


def test_rows_selected_and_never_used_are_rejected_when_the_request_selects() -> None:
    """An unseen question at f78dca8: `selected` made, then `np.max(pointing.separation(source))` over every run."""
    code = ("import json\nimport numpy as np\nimport astropy.units as u\nfrom astropy.coordinates import SkyCoord\n"
            "table = None\nsource = SkyCoord(83.6331, 22.0145, unit='deg')\n"
            "pointing = SkyCoord(table['RA_PNT'], table['DEC_PNT'], unit='deg')\n"
            "selected = table[pointing.separation(source) < 2 * u.deg]\n"
            "far = float(np.max(pointing.separation(source)).deg)\nprint('RESULT ' + json.dumps({'far': far}))\n")
    errors = static_errors(code, cone_radius=2.0)
    assert errors == ["line 8: `selected` holds the rows the request selects but is never used after it: compute the "
                      "answer from `selected` (e.g. `selected[\"COLUMN\"]`), not from the whole table"]
    used = code.replace("np.max(pointing.separation(source))", "np.max(pointing[pointing.separation(source) < 2 * u.deg]"
                        ".separation(source)) + 0 * len(selected)")
    assert static_errors(used, cone_radius=2.0) == []
    assert static_errors(code) == []  # a request without a cone: not this rule's business
