"""What a request fixes for a script's unassigned variables, added by the repairs (real Gammapy, astropy)."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys

from conftest import _data_root
from hpc_agent.bench.tasks import load_tasks, reference_script
from hpc_agent.grounding import ground
from hpc_agent.names import name_index
from hpc_agent.prompts import hints_for
from hpc_agent.request_facts import RequestFacts, missing_call_hints, request_definitions, request_position
from hpc_agent.static import static_stage

REQUEST = ("Bin the events of the source at RA = 83.6331 deg, Dec = 22.0145 deg in\n"
           "MapAxis.from_energy_bounds(1.0, 10.0, nbin=10, unit=\"TeV\", name=\"energy\") and use\n"
           "MapAxis.from_energy_bounds(0.3, 100.0, nbin=30, unit=\"TeV\", name=\"energy_true\") for true energies.")


def test_a_request_fixes_its_written_out_calls_and_its_one_position() -> None:
    found = request_definitions(REQUEST)
    assert found["energy_axis"] == "energy_axis = MapAxis.from_energy_bounds(1.0, 10.0, nbin=10, unit='TeV', name='energy')"
    assert found["energy_axis_true"].endswith("name='energy_true')")
    assert found["source_position"] == 'source_position = SkyCoord(83.6331, 22.0145, unit="deg", frame="icrs")'
    assert request_position("RA 329.7169 deg, Dec -30.2256 deg") == (329.7169, -30.2256)
    # two positions: which one a `source` means is not fixed
    assert request_position("RA = 1 deg, Dec = 2 deg or RA = 3 deg, Dec = 4 deg") is None
    assert "source" not in request_definitions("Compare RA = 1 deg, Dec = 2 deg with RA = 3 deg, Dec = 4 deg.")


def test_the_selection_idioms_placeholders_copied_as_they_are_take_the_requests_numbers(tmp_path) -> None:
    """The 0.5B copied the harness's own selection idiom with its placeholders (`SkyCoord(RA_DEG, DEC_DEG, ...)`,
    `< RADIUS_DEG * u.deg`: s31 observation-list-pks2155, two attempts). They are the request's numbers, written
    exactly (329.7169, where `:g` wrote 329.717)."""
    from hpc_agent.prompts import SELECTION_IDIOM

    prompt = load_tasks()["observation-list-pks2155"].prompt
    found = request_definitions(prompt)
    assert (found["RA_DEG"], found["DEC_DEG"], found["RADIUS_DEG"]) == (
        "RA_DEG = 329.7169", "DEC_DEG = -30.2256", "RADIUS_DEG = 2")
    assert found["source_position"] == 'source_position = SkyCoord(329.7169, -30.2256, unit="deg", frame="icrs")'
    code = SELECTION_IDIOM + "\nimport json\nprint('RESULT ' + json.dumps({'n_obs': len(obs_ids)}))\n"  # json last
    assert "RA_DEG" in code and "RADIUS_DEG" in code
    fixed = static_stage(code, facts=RequestFacts(definitions=found))
    assert fixed.errors == () and "defined `RADIUS_DEG = 2` from your request (used but never assigned)" in fixed.repairs
    path = tmp_path / "script.py"
    path.write_text(fixed.script)
    ran = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PHOTON_STORAGE": str(_data_root())})
    reference = subprocess.run([sys.executable, "-c", reference_script(load_tasks()["observation-list-pks2155"])],
                               capture_output=True, text=True, timeout=300,
                               env={**os.environ, "PHOTON_STORAGE": str(_data_root())})
    assert json.loads(ran.stdout.split("RESULT ", 1)[1])["n_obs"] == json.loads(
        reference.stdout.strip().splitlines()[-1].removeprefix("RESULT "))["n_obs"], ran.stderr


def _rule_five_code() -> str:
    """The selection idiom of the system message's rule 5, as a script (imports first, then its lines)."""
    import re

    from hpc_agent.prompts import system_message

    code = re.search(r"```python\n(.*?)```", system_message("2.1"), re.S).group(1)
    return "\n".join(line.strip() for line in code.splitlines())


def test_the_rules_idiom_pasted_as_it_is_takes_the_requests_numbers_or_the_whole_index(data_root) -> None:
    """Rule 5 writes its placeholders in lower case (`ra_deg`, `radius_deg`), which only the upper-case ones of
    the feedback idiom were defined for; a request with no position at all (f44: "which run recorded the most
    events", two turns of undefined `ra_deg`) selects in no cone: the whole index."""
    script = _rule_five_code() + "\nimport json\nprint('RESULT ' + json.dumps({'n_obs': len(selected)}))\n"
    env = {**os.environ, "PHOTON_STORAGE": str(data_root)}
    cone = "How many observations point within 2 degrees of PKS 2155-304 (RA 329.7169 deg, Dec -30.2256 deg)?"
    for prompt, n_obs in ((cone, 21), ("How many observations does the release have?", 105)):
        fixed = static_stage(script, facts=RequestFacts(definitions=request_definitions(prompt, data_root)))
        assert fixed.errors == (), fixed.errors
        ran = subprocess.run([sys.executable, "-c", fixed.script], capture_output=True, text=True, timeout=300, env=env)
        assert json.loads(ran.stdout.split("RESULT ", 1)[1])["n_obs"] == n_obs, ran.stderr
    whole = static_stage(script, facts=RequestFacts()).script
    assert "selected = table\n" in whole and "SkyCoord(ra_deg" not in whole
    # the placeholder position used for anything else: not a selection to drop
    kept = static_stage(script + "print(source.ra)\n", facts=RequestFacts())
    assert any("undefined name 'ra_deg'" in e for e in kept.errors)


def test_unassigned_variables_are_defined_from_the_request_and_the_script_runs(tmp_path) -> None:
    code = ("import json\nprint('RESULT ' + json.dumps({'nbin': energy_axis.nbin, 'nbin_true': energy_axis_true.nbin,\n"
            "    'ra': source_position.ra.deg, 'mine': energy_axis_true.name}))\n")
    fixed = static_stage(code, facts=RequestFacts(definitions=request_definitions(REQUEST)))
    assert fixed.errors == ()
    assert any(r.startswith("defined `source_position = SkyCoord(83.6331") for r in fixed.repairs)
    path = tmp_path / "script.py"
    path.write_text(fixed.script)
    ran = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout.split("RESULT ", 1)[1]) == {"nbin": 10, "nbin_true": 30, "ra": 83.6331,
                                                              "mine": "energy_true"}
    # a variable the script assigns itself is its own; repairs off change nothing
    own = "import json\nenergy_axis = 3\nprint('RESULT ' + json.dumps({'n': energy_axis}))\n"
    assert static_stage(own, facts=RequestFacts(definitions=request_definitions(REQUEST))).script == own
    assert static_stage(code, repairs=False, facts=RequestFacts(definitions=request_definitions(REQUEST))).script == code


def test_the_one_circle_a_request_describes_in_words_defines_an_unassigned_on_region(tmp_path) -> None:
    request = REQUEST + " The ON region is a circle of radius 0.11 deg centred on the source position."
    code = "import json\nprint('RESULT ' + json.dumps({'r': on_region.radius.to_value('arcmin'), 'ra': on_region.center.ra.deg}))\n"
    fixed = static_stage(code, facts=RequestFacts(definitions=request_definitions(request)))
    assert fixed.errors == ()
    path = tmp_path / "script.py"
    path.write_text(fixed.script)
    ran = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout.split("RESULT ", 1)[1]) == {"r": 6.6, "ra": 83.6331}
    # two circles, or none centred on the source: no reading
    two = request + " Compare with a circle of radius 0.2 deg centered on the source."
    assert "on_region" not in request_definitions(two) and "on_region" not in request_definitions(REQUEST)


LIGHT_CURVE_REQUEST = ("Model: SkyModel named \"source\" with PowerLawSpectralModel(index=2.6, amplitude=1e-12 cm-2 s-1 "
                       "TeV-1, reference=1 TeV).\nLight curve: LightCurveEstimator(energy_edges=[1, 100] TeV, "
                       "source=\"source\") on the datasets.")


def test_steps_the_request_writes_out_and_the_script_never_takes_are_named() -> None:
    skipped = "from gammapy.estimators import LightCurveEstimator\nlc = LightCurveEstimator(source='source').run(d)\n"
    hints = missing_call_hints(skipped, LIGHT_CURVE_REQUEST)
    assert len(hints) == 2
    assert "PowerLawSpectralModel(index=2.6, amplitude=1e-12 * u.Unit('cm-2 s-1 TeV-1')" in hints[0]
    assert hints[1].startswith('your request asks for a `SkyModel` named "source"')
    taken = ("model = SkyModel(spectral_model=PowerLawSpectralModel(index=2.6), name='source')\n" + skipped)
    assert missing_call_hints(taken, LIGHT_CURVE_REQUEST) == ()
    # a SkyModel under another name is not the one asked for
    other = taken.replace("name='source'", "name='crab'")
    assert missing_call_hints(other, LIGHT_CURVE_REQUEST) == (hints[1],)


def test_no_reference_solution_is_told_it_skips_a_step() -> None:
    for task in load_tasks().values():
        assert missing_call_hints(reference_script(task), task.prompt) == (), task.id


def test_an_estimator_source_the_datasets_lack_gets_the_model_wiring_hint() -> None:
    """The real traceback of Gammapy's model lookup by a name that is not there."""
    run = subprocess.run([sys.executable, "-c", "from gammapy.modeling.models import Models; Models([])['source']"],
                         capture_output=True, text=True, timeout=120)
    assert "is not in list" in run.stderr
    assert any("datasets.models = [model]" in h for h in hints_for(run.stderr))


def test_flux_points_used_as_a_list_or_a_number_get_the_table_idiom() -> None:
    """Real tracebacks: `len()` of Gammapy's FluxPoints and json of a map; the hint reads values from the table."""
    code = ("import json\nfrom astropy.table import Table\nimport astropy.units as u\n"
            "from gammapy.estimators import FluxPoints\n"
            "t = Table({'e_ref': [1.0] * u.TeV, 'dnde': [1e-12] * u.Unit('cm-2 s-1 TeV-1')})\n"
            "fp = FluxPoints.from_table(t, sed_type='dnde')\n"
            "import sys\n"
            "try:\n    len(fp)\nexcept TypeError as e:\n    print(repr(e), file=sys.stderr)\n"
            "json.dumps({'flux': fp.dnde})\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "has no len" in run.stderr and "is not JSON serializable" in run.stderr
    for line in ("TypeError: " + run.stderr.split("TypeError(\"")[1].split("\")")[0], run.stderr.splitlines()[-1]):
        assert any('to_table(format="lightcurve", sed_type="flux")' in h for h in hints_for(line)), line


def test_an_invented_flux_points_attribute_gets_the_table_idiom() -> None:
    """Grounding's own message for `lc.flux_points` (a 1.5B answer) carries the table idiom as a hint."""
    script = ("from gammapy.estimators import LightCurveEstimator\n"
              "lc = LightCurveEstimator(energy_edges=[1, 100], source='source').run([])\n"
              "n = len(lc.flux_points.energy)\n")
    found = [str(f) for f in ground(ast.parse(script), name_index())]
    assert any("`FluxPoints` has no `flux_points`" in f for f in found), found
    assert any('to_table(format="lightcurve"' in h for h in hints_for("\n".join(found)))


def test_the_grounding_message_itself_reads_the_scripts_own_flux_points() -> None:
    """s26, light-curve-pks2155: told "did you mean `get_flux_points`", the 1.5B kept `lc_1d.flux_points` for
    three turns. A guessed attribute now gets the table idiom on the script's own variable; a misspelling
    keeps its "did you mean"."""
    script = ("from gammapy.estimators import LightCurveEstimator\n"
              "lc_1d = LightCurveEstimator(energy_edges=[1, 100], source='source').run([])\n"
              "n = len(lc_1d.flux_points)\nerr = lc_1d.flux_erro\n")
    guessed, misspelt = (str(f) for f in ground(ast.parse(script), name_index()))
    assert guessed.startswith("line 3: `FluxPoints` has no `flux_points`; its numbers are rows of its table: "
                              '`table = lc_1d.to_table(format="lightcurve", sed_type="flux")`')
    assert "get_flux_points" not in guessed
    assert "did you mean `FluxPoints.flux_err`" in misspelt and "lc_1d.to_table(" in misspelt


def test_a_guessed_flux_points_attribute_read_as_a_table_reads_the_table() -> None:
    """s34, light-curve-crab: `len(lc_1d.flux_points)` and `np.mean(lc_1d.flux_points["flux"])`. Read as a table
    (a length, a SED column), the guess has one reading: the table of the estimator the script uses."""
    from hpc_agent.static import static_stage

    script = ("import json\nimport numpy as np\nfrom gammapy.estimators import LightCurveEstimator\n"
              "lc_1d = LightCurveEstimator(energy_edges=[1, 100], source='source').run([])\n"
              "n = len(lc_1d.flux_points)\nm = np.mean(lc_1d.flux_points['flux'])\n"
              "print('RESULT ' + json.dumps({'n': n, 'm': m}))\n")
    fixed = static_stage(script)
    assert fixed.errors == ()
    table = 'lc_1d.to_table(format="lightcurve", sed_type="flux")'
    assert f"n = len({table})\nm = np.mean({table}['flux'])\n" in fixed.script
    assert f"line 5: read `lc_1d.flux_points` from `{table}`: the numbers of a FluxPoints are rows of its table, " \
           "one per time bin" in fixed.repairs
    sed = static_stage(script.replace("LightCurveEstimator", "FluxPointsEstimator").replace("'flux'", "'e2dnde'"))
    assert 'len(lc_1d.to_table(format="gadf-sed", sed_type="e2dnde"))' in sed.script, sed.errors
    # no table read, or no one estimator to tell the format: the message with the idiom, no edit
    for other in (script.replace("len(lc_1d.flux_points)", "lc_1d.flux_points.energy").replace("['flux']", ".flux"),
                  script.replace("import LightCurveEstimator\n", "import FluxPointsEstimator, LightCurveEstimator\n"
                                 "fpe = FluxPointsEstimator(energy_edges=[1, 10])\n")):
        left = static_stage(other)
        assert any("`FluxPoints` has no `flux_points`" in e for e in left.errors), left.errors


def test_a_table_read_inside_a_double_quoted_f_string_is_rewritten_with_single_quotes() -> None:
    """s40, light-curve-crab attempt 3: the table idiom inserted with double quotes inside `f"RESULT {...}"` is a
    syntax error before Python 3.12 (the cell ended as an infrastructure error). The edit takes the other quotes."""
    from hpc_agent.static import static_stage

    script = ("import json\nfrom gammapy.estimators import LightCurveEstimator\n"
              "lc_1d = LightCurveEstimator(energy_edges=[1, 100], source='source').run([])\n"
              "print(f\"RESULT {json.dumps({'n': len(lc_1d.flux_points)})}\")\n")
    fixed = static_stage(script)
    assert "len(lc_1d.to_table(format='lightcurve', sed_type='flux'))" in fixed.script, fixed
    ast.parse(fixed.script)
    assert any(r.startswith("line 4: read `lc_1d.flux_points` from") for r in fixed.repairs)
