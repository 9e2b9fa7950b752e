"""The request's source model attached for an estimator that needs it (real Gammapy objects)."""

from __future__ import annotations

import ast

import pytest

from hpc_agent.bench.tasks import load_tasks, reference_script
from hpc_agent.model_wiring import attach_source_model, freeze_as_requested, model_for_the_fit
from hpc_agent.request_facts import SourceModel, request_source_model
from hpc_agent.static import static_stage

REQUEST = ('Model: SkyModel named "src" with PowerLawSpectralModel(index=2.3, amplitude=2e-12 cm-2 s-1 TeV-1, '
           "reference=1 TeV) with the index FROZEN. Light curve: LightCurveEstimator(energy_edges=[1, 100] TeV, "
           'source="src").')
SKIPPED = ("import astropy.units as u\n"
           "from gammapy.datasets import Datasets\n"
           "from gammapy.estimators import LightCurveEstimator\n"
           "from gammapy.datasets import SpectrumDataset\n"
           "from gammapy.maps import MapAxis, RegionGeom\n"
           "axis = MapAxis.from_energy_bounds(1, 10, 3, unit='TeV')\n"
           "datasets = Datasets([SpectrumDataset.create(RegionGeom.create('icrs;circle(83.6, 22.0, 0.1)', axes=[axis]))])\n"
           "estimator = LightCurveEstimator(energy_edges=[1, 100] * u.TeV, source='src')\n"
           "lc = estimator.run(datasets)\n")


def test_the_request_names_one_source_model() -> None:
    model = request_source_model(REQUEST)
    assert model == SourceModel("src", "PowerLawSpectralModel(index=2.3, amplitude=2e-12 * u.Unit('cm-2 s-1 TeV-1'), "
                                       "reference=1 * u.Unit('TeV'))", ("index",))
    assert request_source_model(REQUEST.replace('named "src"', "")) is None
    assert request_source_model(REQUEST.replace("the index FROZEN", "nothing frozen")).frozen == ()


def test_a_skipped_model_is_attached_before_the_estimator_runs_and_is_real_gammapy() -> None:
    fixed, notes = attach_source_model(SKIPPED, request_source_model(REQUEST))
    assert len(notes) == 1 and "attached the source model" in notes[0]
    lines = fixed.splitlines()
    assert lines.index("datasets.models = [SkyModel(spectral_model=spectral_model, name=\"src\")]") \
        < lines.index("lc = estimator.run(datasets)")
    static = static_stage(fixed + "print('RESULT {}')\n", require_result=False)
    assert not [e for e in static.errors if "undefined" in e], static.errors  # the imports are added
    namespace: dict[str, object] = {}
    exec(compile(static.script.replace("lc = estimator.run(datasets)\n", ""), "<fixed>", "exec"), namespace)
    model = namespace["datasets"].models["src"]  # type: ignore[attr-defined]
    assert model.spectral_model.index.frozen and model.spectral_model.index.value == 2.3


def test_the_scripts_own_spectral_model_and_a_plain_list_are_used() -> None:
    own = SKIPPED.replace("datasets = Datasets([", "pwl = PowerLawSpectralModel(index=2.0)\ndatasets = list([")
    fixed, _ = attach_source_model(own, request_source_model(REQUEST))
    assert "pwl.index.frozen = True\ndatasets = Datasets(datasets)\n" \
           "datasets.models = [SkyModel(spectral_model=pwl, name=\"src\")]\n" in fixed
    assert "spectral_model = " not in fixed


def test_a_script_that_makes_or_attaches_the_model_is_left_alone() -> None:
    model = request_source_model(REQUEST)
    made = SKIPPED.replace("lc =", "m = SkyModel(spectral_model=PowerLawSpectralModel(), name='src')\nlc =")
    attached = SKIPPED.replace("lc =", "datasets.models = models\nlc =")
    other = SKIPPED.replace("source='src'", "source='other'")
    for script in (made, attached, other):
        assert attach_source_model(script, model) == (script, ())


def test_no_reference_solution_is_changed() -> None:
    for task in load_tasks().values():
        script = reference_script(task)
        assert attach_source_model(script, request_source_model(task.prompt)) == (script, ()), task.id
        ast.parse(script)


def test_a_frozen_keyword_freezes_what_the_request_says() -> None:
    """s26, light-curve-pks2155: `PowerLawSpectralModel(..., frozen=True)` raises in Gammapy; the request says
    the index is frozen, so that is what the keyword meant."""
    made = SKIPPED.replace("estimator =", "if True:\n    pwl = PowerLawSpectralModel(index=2.3, amplitude=2e-12 * "
                           "u.Unit('cm-2 s-1 TeV-1'), frozen=True)\nestimator =")
    fixed, notes = freeze_as_requested(made, request_source_model(REQUEST))
    assert "    pwl = PowerLawSpectralModel(index=2.3, amplitude=2e-12 * u.Unit('cm-2 s-1 TeV-1'))\n" \
           "    pwl.index.frozen = True\n" in fixed
    assert len(notes) == 1 and notes[0].startswith("line 9: `PowerLawSpectralModel` takes no `frozen` keyword")
    namespace: dict[str, object] = {}
    exec(compile("from gammapy.modeling.models import PowerLawSpectralModel\n" + fixed.replace("lc = estimator.run(datasets)\n", ""),
                 "<fixed>", "exec"), namespace)
    pwl = namespace["pwl"]
    assert pwl.index.frozen and not pwl.amplitude.frozen  # type: ignore[attr-defined]
    # no frozen parameter in the request, or no keyword: nothing to read
    assert freeze_as_requested(made, request_source_model(REQUEST.replace("the index FROZEN", "nothing frozen"))) == (made, ())
    assert freeze_as_requested(SKIPPED, request_source_model(REQUEST)) == (SKIPPED, ())


def test_a_model_made_once_and_never_frozen_gets_what_the_request_says_is_frozen() -> None:
    """s34, light-curve-crab: the 1.5B made the request's PowerLawSpectralModel and froze nothing, so the light
    curve would fit the index per bin too. The request says the index is frozen: it is frozen after the model."""
    made = SKIPPED.replace("estimator =", "pwl = PowerLawSpectralModel(\n    index=2.3, amplitude=2e-12 * "
                           "u.Unit('cm-2 s-1 TeV-1'))\nestimator =")
    fixed, notes = freeze_as_requested(made, request_source_model(REQUEST))
    assert "u.Unit('cm-2 s-1 TeV-1'))\npwl.index.frozen = True\nestimator =" in fixed
    assert notes == ("line 8: froze what your request says is frozen, after `pwl` is made: `pwl.index.frozen = True`",)
    namespace: dict[str, object] = {}
    exec(compile("from gammapy.modeling.models import PowerLawSpectralModel\n" + fixed.replace("lc = estimator.run(datasets)\n", ""),
                 "<fixed>", "exec"), namespace)
    assert namespace["pwl"].index.frozen and not namespace["pwl"].amplitude.frozen  # type: ignore[attr-defined]
    # the script freezes something itself, or makes two such models: its own reading stands
    for own in (made.replace("estimator =", "pwl.amplitude.frozen = False\nestimator ="),
                made.replace("estimator =", "other = PowerLawSpectralModel()\nestimator =")):
        assert freeze_as_requested(own, request_source_model(REQUEST)) == (own, ())


FIT_WITHOUT_MODEL = ("import astropy.units as u\n"
                     "from gammapy.datasets import SpectrumDataset\n"
                     "from gammapy.maps import MapAxis, RegionGeom\n"
                     "from gammapy.modeling import Fit\n"
                     "axis = MapAxis.from_energy_bounds(1, 10, 3, unit='TeV')\n"
                     "dataset = SpectrumDataset.create(RegionGeom.create('icrs;circle(83.6, 22.0, 0.1)', axes=[axis]))\n"
                     "dataset.counts.data += 5\n"
                     "dataset.exposure.data += 1e10\n"
                     "datasets = []\n"
                     "datasets.append(dataset)\n"
                     "fit = Fit()\n"
                     "result = fit.run(datasets=datasets)\n")
FIT_REQUEST = ("PowerLawSpectralModel(index=2, amplitude=1e-12 * u.Unit('cm-2 s-1 TeV-1'), reference=1.0 * u.Unit('TeV'))",)


def test_a_fit_on_datasets_without_a_model_gets_the_requests_model_and_runs() -> None:
    """The 1.5B fitted reflected-region datasets it never gave a model: `No free parameters for fitting`."""
    with pytest.raises(ValueError, match="No free parameters"):
        exec(compile(FIT_WITHOUT_MODEL, "<as written>", "exec"), {})
    fixed, notes = model_for_the_fit(FIT_WITHOUT_MODEL, FIT_REQUEST)
    assert len(notes) == 1 and "never gets a model" in notes[0]
    assert "datasets = Datasets(datasets)\ndatasets.models = [SkyModel(spectral_model=spectral_model)]\n" \
           "result = fit.run(datasets=datasets)" in fixed  # right before the fit, a list made a Datasets
    static = static_stage(fixed, require_result=False)
    assert static.errors == (), static.errors  # `Datasets` and `SkyModel` imported by the repairs
    namespace: dict[str, object] = {}
    exec(compile(static.script, "<fixed>", "exec"), namespace)
    assert namespace["result"].nfev > 0  # type: ignore[attr-defined]  # the fit ran, on the request's model
    assert namespace["datasets"].models[0].spectral_model.tag[0] == "PowerLawSpectralModel"  # type: ignore[attr-defined]


def test_the_scripts_own_sky_model_is_used_and_a_model_put_anywhere_is_left_alone() -> None:
    own = FIT_WITHOUT_MODEL.replace("fit = Fit()", "sky = SkyModel(spectral_model=PowerLawSpectralModel())\nfit = Fit()")
    fixed, _ = model_for_the_fit(own, FIT_REQUEST)
    assert "datasets.models = [sky]\n" in fixed and "spectral_model = Power" not in fixed
    put = FIT_WITHOUT_MODEL.replace("datasets.append(dataset)", "dataset.models = [m]\ndatasets.append(dataset)")
    assert model_for_the_fit(put, FIT_REQUEST) == (put, ())
    assert model_for_the_fit(FIT_WITHOUT_MODEL, ()) == (FIT_WITHOUT_MODEL, ())  # no model to read: the model's
    cube = FIT_WITHOUT_MODEL.replace("SpectrumDataset", "MapDataset")
    assert model_for_the_fit(cube, FIT_REQUEST) == (cube, ())  # a cube's model needs more than a spectrum
