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
