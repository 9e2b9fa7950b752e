"""Reads of a FluxPoints' numbers as a list of bins, rewritten to its table (real Gammapy names via grounding)."""

from __future__ import annotations

import ast

from hpc_agent.flux_points import bins_as_table, estimated, points_format
from hpc_agent.static import static_stage

LC = ("import json\nimport numpy as np\nfrom gammapy.estimators import LightCurveEstimator\n"
      "lc_maker = LightCurveEstimator(energy_edges=[1, 100], source='source')\n"
      "lc = lc_maker.run([])\n"
      "mean_flux = np.mean([b.flux for b in lc])\n"
      "top = max(b.flux for b in lc)\n"
      "print('RESULT ' + json.dumps({'mean_flux': mean_flux, 'top': top}))\n")


def test_a_comprehension_over_the_bins_of_a_light_curve_reads_its_table() -> None:
    """s35, light-curve-pks2155: `np.mean([bin.flux for bin in lc_1d])` raised "attribute name must be string,
    not 'int'" after a four-minute reduction; the bins are the rows of the light curve's table."""
    fixed = static_stage(LC)
    assert fixed.errors == (), fixed.errors  # the rewritten reads exist in the installed Gammapy
    column = 'np.ravel(lc.to_table(format="lightcurve", sed_type="flux")["flux"])'
    assert f"mean_flux = np.mean({column})\ntop = max({column})\n" in fixed.script
    assert fixed.repairs[0] == ("line 6: `[b.flux for b in lc]` reads the bins of a FluxPoints, which is not a list: "
                                "its numbers are rows of its table, one per time bin, so it reads "
                                f"`{column}`")


def test_an_sed_reads_the_gadf_table_and_anything_else_is_left_alone() -> None:
    sed = LC.replace("LightCurveEstimator", "FluxPointsEstimator").replace("b.flux", "b.e2dnde")
    assert 'np.ravel(lc.to_table(format="gadf-sed", sed_type="e2dnde")["e2dnde"])' in bins_as_table(sed)[0]
    for other in (LC.replace("b.flux for b in lc", "b.norm for b in lc"),  # not a SED quantity
                  LC.replace("lc = lc_maker.run([])", "lc = [1, 2]"),  # not what an estimator made
                  LC.replace("lc = lc_maker.run([])", "lc = lc_maker.run([])\nlc = lc.slice_by_idx({})"),  # rebound
                  LC.replace("lc = lc_maker.run([])", "lc = lc_maker.run([])\nfpe = FluxPointsEstimator()")):  # both
        assert bins_as_table(other) == (other, []), other


def test_what_an_estimator_made_and_its_format() -> None:
    tree = ast.parse(LC + "direct = LightCurveEstimator(energy_edges=[1, 10]).run([])\nother = lc_maker.fit([])\n")
    assert estimated(tree) == {"lc", "direct"}
    assert points_format(tree) == ("lightcurve", "time")
    assert points_format(ast.parse("x = 1\n")) is None


def test_the_length_of_flux_points_is_the_number_of_rows_of_its_table_after_the_run(tmp_path) -> None:
    """s44 light-curve-pks2155: `"n_bins": len(lc_1d)` raised "object of type 'FluxPoints' has no len()" after a
    ten-minute reduction, in two of five turns."""
    import json
    import subprocess
    import sys

    from hpc_agent.names import name_index
    from hpc_agent.repair_after_run import repair_after_run

    code = ("import json\nimport numpy as np\nfrom astropy.table import Table\n"
            "from gammapy.estimators import FluxPoints, FluxPointsEstimator\n"
            "t = Table({'e_ref': [1.0, 3.0, 10.0], 'e_min': [0.5, 2.0, 5.0], 'e_max': [2.0, 5.0, 20.0], "
            "'flux': [3e-11, 2e-11, 1e-11]}, meta={'SED_TYPE': 'flux'})\n"
            "t['e_ref'].unit = t['e_min'].unit = t['e_max'].unit = 'TeV'\nt['flux'].unit = 'cm-2 s-1'\n"
            "estimator = FluxPointsEstimator  # what the scripts run; here the points are made from a table\n"
            "points = FluxPoints.from_table(t, sed_type='flux')\n"
            "print('RESULT ' + json.dumps({'n_bins': len(points), 'max_flux': float(np.max(points.flux))}))\n")
    path = tmp_path / "script.py"
    path.write_text(code)
    failed = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=120)
    assert "object of type 'FluxPoints' has no len()" in failed.stderr
    fixed = repair_after_run(code, failed.stderr, name_index())
    assert fixed is not None and 'len(points.to_table(format="gadf-sed", sed_type="flux"))' in fixed.script
    path.write_text(fixed.script)
    ran = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=120)
    assert json.loads(ran.stdout.split("RESULT ", 1)[1]) == {"n_bins": 3, "max_flux": 3e-11}, ran.stderr
    # a light curve's rows are its time bins
    lc = code.replace("FluxPointsEstimator", "LightCurveEstimator")
    assert 'format="lightcurve"' in repair_after_run(lc, failed.stderr, name_index()).script
