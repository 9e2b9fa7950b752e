"""How the tutorials define a variable, for a script that uses it unassigned (real sdist when cached)."""

from __future__ import annotations

from importlib.metadata import version

import pytest

from hpc_agent.tutorial_definitions import (definitions_in, request_calls, tutorial_definitions, tutorial_usages,
                                            undefined_name_hints, usage_hints, usages_in)

SOURCES = {
    "a.py": ("geom = dataset.geoms['geom']\n"
             "energy_axis = MapAxis.from_energy_bounds(\n    0.1 * u.TeV, 100 * u.TeV, nbin=10\n)\n"
             "plot_axis = plt.gca()\n"
             "data_store = DataStore.from_dir('$GAMMAPY_DATA/hess-dl3-dr1')\n"),
    "b.py": ("geom = RegionGeom.create(on_region, axes=[energy_axis])\n"
             "energy_axis = MapAxis.from_nodes([1, 2], unit='TeV')\n"),
}


def test_a_standalone_one_line_definition_is_kept_per_name() -> None:
    found = definitions_in(SOURCES)
    # the first made by a constructor wins over an earlier read of another object, whatever the file order
    assert found["geom"] == "geom = RegionGeom.create(on_region, axes=[energy_axis])"
    assert found["energy_axis"] == "energy_axis = MapAxis.from_energy_bounds(0.1 * u.TeV, 100 * u.TeV, nbin=10)"
    assert "plot_axis" not in found and "data_store" not in found  # plotting and tutorial data paths


def test_hints_only_for_variables_the_tutorials_assign() -> None:
    errors = ("line 3: undefined name 'energy_axis' (missing import or typo)",
              "line 4: undefined name 'SkyCoord' (missing import or typo)",
              "line 5: undefined name 'my_thing' (missing import or typo)",
              "line 9: undefined name 'energy_axis' (missing import or typo)")
    hints = undefined_name_hints(errors, {"SkyCoord"}, definitions_in(SOURCES))
    assert hints == ("`energy_axis` is used but never assigned; Gammapy's tutorials make it with `energy_axis = "
                     "MapAxis.from_energy_bounds(0.1 * u.TeV, 100 * u.TeV, nbin=10)` (write it with the values your "
                     "request asks for, before its first use)",)


def test_the_installed_versions_tutorials_define_the_usual_analysis_variables() -> None:
    found = tutorial_definitions()
    if not found:
        pytest.skip(f"the Gammapy {version('gammapy')} sdist is not cached here (`hpc-agent rag build` fetches it)")
    for name in ("energy_axis", "energy_axis_true", "on_region", "geom", "dataset_empty", "safe_mask_maker"):
        assert name in found and found[name].startswith(f"{name} = "), name
    assert all("GAMMAPY_DATA" not in v and "plt" not in v for v in found.values())


USES = {"c.py": ("fit = Fit()\nfit = Fit(backend='scipy')\nfor d in datasets:\n    result = fit.run(datasets=[d])\n"
                 "maker = SafeMaskMaker(methods=['offset-max'])\nplt.plot(maker.run(d, obs))\n")}


def test_a_class_usage_pairs_its_instance_with_the_first_method_call_on_it() -> None:
    found = usages_in(USES)
    # the rebound `fit` is the one called; the loop's body line is shown, not the loop
    assert found["Fit"] == ("fit = Fit(backend='scipy')", "result = fit.run(datasets=[d])")
    assert "SafeMaskMaker" not in found  # its only call is plotting


def test_usage_hints_name_the_classes_on_the_rejected_lines() -> None:
    script = ("from gammapy.modeling import Fit\nfit = Fit(datasets=datasets)\nfit.run()\nprint(fit.result)\n"
              "x = Other(1)\n")
    usages = {"Fit": ("fit = Fit()", "result = fit.run(datasets=datasets)"), "Other": ("o = Other()", "o.go()")}
    want = ("Gammapy's tutorials use `Fit` like this: `fit = Fit()`, then `result = fit.run(datasets=datasets)`",)
    assert usage_hints(script, ("line 2: `Fit()` takes no keyword `datasets`",), {"Fit"}, usages) == want
    # a variable's attribute on the rejected line leads to the class it was made from
    assert usage_hints(script, ("line 4: `Fit` has no `result`",), {"Fit"}, usages) == want
    # a class no library exports, or a rejected line that neither calls a class nor uses an instance: nothing
    assert usage_hints(script, ("line 5: something",), {"Fit"}, usages) == ()
    assert usage_hints(script, ("line 1: something",), {"Fit"}, usages) == ()


def test_the_installed_versions_tutorials_show_how_fit_and_estimators_are_called() -> None:
    found = tutorial_usages()
    if not found:
        pytest.skip(f"the Gammapy {version('gammapy')} sdist is not cached here (`hpc-agent rag build` fetches it)")
    assert found["Fit"][0].endswith("Fit()") and ".run(datasets=" in found["Fit"][1]
    assert ".run(" in found["FluxPointsEstimator"][1] and ".run(" in found["ReflectedRegionsBackgroundMaker"][1]


def test_an_undefined_variable_gets_the_call_the_request_writes_out_for_it() -> None:
    request = ("Bin energies with MapAxis.from_energy_bounds(0.5, 50, nbin=5, unit=\"TeV\", name=\"energy\") and\n"
               "true energies with MapAxis.from_energy_bounds(0.2, 100, nbin=20,\n unit=\"TeV\", name=\"energy_true\"); "
               "the mask from SafeMaskMaker(methods=[\"aeff-max\"]) (see SafeMaskMaker docs).")
    assert len(request_calls(request)) == 3  # the call split over two lines too; `SafeMaskMaker docs` is no call
    definitions = {"energy_axis": "energy_axis = MapAxis.from_energy_bounds(0.1 * u.TeV, 40 * u.TeV, nbin=10)",
                   "energy_axis_true": "energy_axis_true = MapAxis.from_energy_bounds(0.05, 200, nbin=50, "
                                       "unit='TeV', name='energy_true')",
                   "geom": "geom = RegionGeom.create(on_region, axes=[energy_axis])"}
    errors = tuple(f"line 3: undefined name '{n}' (missing import or typo)" for n in definitions)
    hints = undefined_name_hints(errors, set(), definitions, request)
    # two calls of the same callee: told apart by `name=` (the tutorial's, or the variable's own words)
    assert hints[0] == ("`energy_axis` is used but never assigned; your request specifies it: `energy_axis = "
                        "MapAxis.from_energy_bounds(0.5, 50, nbin=5, unit='TeV', name='energy')` (write it before its "
                        "first use)")
    assert "`energy_axis_true = MapAxis.from_energy_bounds(0.2, 100, nbin=20, unit='TeV', name='energy_true')`" in hints[1]
    assert "Gammapy's tutorials make it with `geom = RegionGeom.create(" in hints[2]  # the request writes none


MADE = {
    "d.py": ("dataset_empty = SpectrumDataset.create(geom=geom, energy_axis_true=energy_axis_true)\n"
             "dataset_empty = SpectrumDataset.create(geom=geom, energy_axis_true=MapAxis.from_nodes([1, 2]))\n"
             "bkg_maker = ReflectedRegionsBackgroundMaker(exclusion_mask=mask)\n"
             "fit = Fit(store_trace=True)\n"),
    "e.py": ("dataset_empty = MapDataset.create(geom=geom)\n"
             "bkg_maker = ReflectedRegionsBackgroundMaker()\n"  # no argument: nothing tells the reading apart
             "fit = Fit()\n"),
}


def test_a_variable_the_tutorials_make_from_variables_has_one_reading_given_the_script() -> None:
    from hpc_agent.tutorial_definitions import made_from_names, made_from_names_in

    made = made_from_names_in(MADE)
    assert made["dataset_empty"] == {
        "SpectrumDataset.create": "dataset_empty = SpectrumDataset.create(geom=geom, energy_axis_true=energy_axis_true)",
        "MapDataset.create": "dataset_empty = MapDataset.create(geom=geom)"}
    assert "fit" not in made  # only ever made with the tutorials' own values (or none)
    assert made["bkg_maker"] == {"ReflectedRegionsBackgroundMaker":
                                 "bkg_maker = ReflectedRegionsBackgroundMaker(exclusion_mask=mask)"}
    # two callees: the one whose class the script has decides; both or neither, no reading
    assert made_from_names("dataset_empty", {"SpectrumDataset", "geom"}, made).startswith(
        "dataset_empty = SpectrumDataset.create(")
    assert made_from_names("dataset_empty", {"SpectrumDataset", "MapDataset"}, made) is None
    assert made_from_names("dataset_empty", set(), made) is None
    assert made_from_names("bkg_maker", set(), made) == "bkg_maker = ReflectedRegionsBackgroundMaker(exclusion_mask=mask)"


def test_the_repairs_define_it_before_its_first_use_when_the_script_has_what_it_is_made_from() -> None:
    from hpc_agent.as_requested import define_as_tutorials_do
    from hpc_agent.tutorial_definitions import made_from_names_in

    made = made_from_names_in(MADE)
    script = ("from gammapy.datasets import SpectrumDataset\ngeom = make_geom()\nenergy_axis_true = make_axis()\n"
              "datasets = []\nfor obs in observations:\n    d = maker.run(dataset_empty.copy(), obs)\n")
    fixed, notes = define_as_tutorials_do(script, made)
    assert fixed.splitlines()[4] == "dataset_empty = SpectrumDataset.create(geom=geom, energy_axis_true=energy_axis_true)"
    assert fixed.splitlines()[5] == "for obs in observations:"
    assert notes == ["defined `dataset_empty = SpectrumDataset.create(geom=geom, energy_axis_true=energy_axis_true)` "
                     "before line 5, as Gammapy's tutorials make it (used but never assigned)"]
    late = script.replace("energy_axis_true = make_axis()\n", "") + "energy_axis_true = make_axis()\n"
    assert define_as_tutorials_do(late, made) == (late, [])  # made from a variable not there before its first use


def test_the_installed_versions_tutorials_make_the_reflected_regions_empty_dataset_one_way() -> None:
    from hpc_agent.tutorial_definitions import made_from_names, tutorial_made_from_names

    made = tutorial_made_from_names()
    if not made:
        pytest.skip(f"the Gammapy {version('gammapy')} sdist is not cached here (`hpc-agent rag build` fetches it)")
    assert made_from_names("dataset_empty", {"SpectrumDataset", "geom", "energy_axis_true"}, made) == \
        "dataset_empty = SpectrumDataset.create(geom=geom, energy_axis_true=energy_axis_true)"


def test_source_segments_are_the_stdlibs_for_every_node() -> None:
    """The segments come from lines split once per source; they must be exactly `ast.get_source_segment`'s
    (multi-byte text, CRLF and CR line ends, a form feed, nodes over several lines)."""
    import ast

    from hpc_agent.tutorial_definitions import _segment

    source = ("# Überblick\r\nname = 'Ωμέγα'; x = f(a,\r\n      b=\"é\")\rif x:\n    y = [1,\n\x0c 2]\n"
              "z = {'k': (x\n     + 1)}\n")
    nodes = [n for n in ast.walk(ast.parse(source)) if hasattr(n, "end_col_offset")]
    assert len(nodes) > 20
    assert [_segment(source, n) for n in nodes] == [ast.get_source_segment(source, n) for n in nodes]


def test_a_tutorial_keyword_the_script_never_has_is_left_to_its_default() -> None:
    """The 1.5B used `bkg_maker` without making it, in a script with no exclusion mask at all: the tutorials'
    `ReflectedRegionsBackgroundMaker(exclusion_mask=exclusion_mask)` is the maker with its default, no mask."""
    from hpc_agent.names import name_index
    from hpc_agent.as_requested import define_as_tutorials_do
    from hpc_agent.tutorial_definitions import made_from_names_in

    made = made_from_names_in(MADE)
    script = ("from gammapy.makers import ReflectedRegionsBackgroundMaker\n"
              "for obs in observations:\n    d = bkg_maker.run(d, obs)\n")
    fixed, notes = define_as_tutorials_do(script, made, name_index())
    assert fixed.splitlines()[1] == "bkg_maker = ReflectedRegionsBackgroundMaker()", fixed
    assert define_as_tutorials_do(script, made) == (script, [])  # no index: the signature is unknown
    later = script + "mask = make_mask()\n"  # the script has the variable, after the first use: its own slip
    assert define_as_tutorials_do(later, made, name_index()) == (later, [])
