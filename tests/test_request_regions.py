"""The request's cone and ON circle kept as it says (real DR1 index, real astropy units)."""

from __future__ import annotations

import ast
from pathlib import Path

import astropy.units as u
from astropy.coordinates import SkyCoord
from gammapy.data import DataStore

from hpc_agent.bindings import bindings
from hpc_agent.request_facts import read_request
from hpc_agent.request_regions import (_degrees, define_the_selection, select_in_the_cone, use_the_circle_radius,
                                      use_the_cone)
from hpc_agent.static import static_stage

MSH = ("Significance of MSH 15-52: select every observation whose pointing is within 2 deg of RA = 228.529 deg, "
       "Dec = -59.1575 deg. ON region: a circle of radius 0.2 deg centred on the source position.")
REUSED = ("import json\nimport os\n"
          "from astropy.coordinates import Angle, SkyCoord\n"
          "from regions import CircleSkyRegion\n"
          "from gammapy.data import DataStore\n"
          "datastore = DataStore.from_dir(os.path.join(os.environ['PHOTON_STORAGE'], 'hess-dl3-dr1'))\n"
          "source_position = SkyCoord(228.529, -59.1575, unit='deg', frame='icrs')\n"
          "radius = Angle('0.2 deg')\n"
          "selection = dict(type='sky_circle', frame='icrs', lon=source_position.ra, lat=source_position.dec, "
          "radius=radius)\n"
          "obs_ids = datastore.obs_table.select_observations(selection)['OBS_ID']\n"
          "on_region = CircleSkyRegion(source_position, radius)\n"
          "print('RESULT ' + json.dumps({'n_obs': len(obs_ids)}))\n")


def _n_obs(script: str, data_root: Path) -> int:
    namespace: dict[str, object] = {}
    exec(compile(script.replace("os.environ['PHOTON_STORAGE']", repr(str(data_root))), "<script>", "exec"), namespace)
    return len(namespace["obs_ids"])  # type: ignore[arg-type]


def test_the_on_regions_radius_reused_for_the_cone_selects_the_requests_cone(data_root: Path) -> None:
    """The 1.5B selected MSH 15-52's observations with its 0.2 deg ON radius: none, then `Info table not
    supported for mixed dataset type` from an empty `Datasets`."""
    assert _n_obs(REUSED, data_root) == 0
    fixed = static_stage(REUSED, facts=read_request(MSH))
    assert fixed.errors == ()
    assert "radius=2 * u.deg)" in fixed.script and "CircleSkyRegion(source_position, radius)" in fixed.script
    assert any("the cone's radius your request gives, 2 deg, not 0.2 deg" in r for r in fixed.repairs)
    t = DataStore.from_dir(data_root / "hess-dl3-dr1").obs_table
    expected = int((SkyCoord(t["RA_PNT"], t["DEC_PNT"], unit="deg").separation(
        SkyCoord(228.529, -59.1575, unit="deg")) < 2 * u.deg).sum())
    assert _n_obs(fixed.script, data_root) == expected == 20
    assert static_stage(fixed.script, facts=read_request(MSH)).repairs == ()  # and it is left alone then


def test_a_separation_of_the_pointings_takes_the_cone_radius_and_other_separations_do_not() -> None:
    code = ("t = ds.obs_table\n"
            "sep = SkyCoord(t['RA_PNT'], t['DEC_PNT'], unit='deg').separation(target)\n"
            "a = sep < 2.5 * u.deg\n"
            "b = sep.deg < 2.5\n"
            "c = events.radec.separation(target) < 0.2 * u.deg\n"
            "d = sep < 2 * u.deg\n")
    fixed, notes = use_the_cone(code, (228.529, -59.1575, 2.0))
    assert "a = sep < 2 * u.deg\nb = sep.deg < 2\nc = events.radec.separation(target) < 0.2 * u.deg\n" in fixed
    assert len(notes) == 2
    assert use_the_cone(code, None) == (code, [])  # no cone asked
    computed = code.replace("2.5 * u.deg", "max_offset").replace("sep.deg < 2.5", "sep.deg < limit")
    assert use_the_cone(computed, (228.529, -59.1575, 2.0))[1] == []  # not a constant: left to the model


def test_the_on_circle_takes_the_requests_radius_when_it_is_the_only_circle() -> None:
    """The 1.5B drew the ON region with the 2 deg of the cone (`radius=radius_deg * u.deg`)."""
    code = ("radius_deg = 2.0\n"
            "on_region = CircleSkyRegion(center=target_position, radius=radius_deg * u.deg)\n")
    fixed, notes = use_the_circle_radius(code, (0.11, "deg"))
    assert "CircleSkyRegion(center=target_position, radius=0.11 * u.deg)" in fixed
    assert notes and "0.11 deg, not 2 deg" in notes[0]
    assert use_the_circle_radius(fixed, (0.11, "deg")) == (fixed, [])
    assert use_the_circle_radius(code.replace("2.0", "6.6"), (6.6, "arcmin"))[0] == code.replace("2.0", "6.6") \
        .replace("radius_deg * u.deg", "6.6 * u.arcmin")  # 6.6 deg read against 6.6 arcmin
    two = code + "exclusion = CircleSkyRegion(center=target_position, radius=0.3 * u.deg)\n"
    assert use_the_circle_radius(two, (0.11, "deg")) == (two, [])  # which circle is the ON region: not certain


def test_a_radius_is_read_only_from_constants_and_units() -> None:
    def read(expr: str) -> tuple[float, bool] | None:
        tree = ast.parse(f"r = 0.5 * u.deg\nx = {expr}")
        return _degrees(tree.body[1].value, bindings(tree))  # type: ignore[attr-defined]

    assert read("Angle('0.2 deg')") == (0.2, False) and read("u.Quantity(0.2, 'deg')") == (0.2, False)
    assert read("120 * u.arcmin") == (2.0, False) and read("r") == (0.5, False) and read("2") == (2.0, True)
    for harmful in ("'x' * 100000000", "u.__class__", "(1).__class__", "open('f')", "2 ** 2 * u.deg", "t['RADIUS']"):
        assert read(harmful) is None, harmful  # the script is untrusted: never evaluated beyond units


def test_a_loop_over_the_store_or_its_index_runs_on_the_cones_observations() -> None:
    """`for obs in data_store.obs_table:` hands each maker a table row; `for obs in datastore:` fails to
    iterate: for a request about one cone, the loop runs on the cone's observations."""
    code = ("import json\nimport os\nfrom gammapy.data import DataStore\n"
            "ds = DataStore.from_dir(os.path.join(os.environ['PHOTON_STORAGE'], 'hess-dl3-dr1'))\n"
            "for obs in ds.obs_table:\n    dataset = maker.run(empty, obs)\n"
            "print('RESULT ' + json.dumps({}))\n")
    fixed = static_stage(code.replace("maker.run", "print"), facts=read_request(MSH))
    assert fixed.errors and "for obs in ds.obs_table:" in fixed.script  # no maker runs on it: left alone
    for loop in ("ds.obs_table", "ds"):
        fixed = static_stage(code.replace("ds.obs_table:", f"{loop}:"), facts=read_request(MSH))
        assert "for obs in ds.get_observations(list(ds.obs_table[SkyCoord(" in fixed.script, fixed.script
        assert not [e for e in fixed.errors if "selects no observations" in e]


def test_a_tutorials_cone_copied_whole_selects_the_requests_cone_and_keywords_become_the_dict(data_root: Path) -> None:
    """The 0.5B copied the tutorial's Crab cone (`lon="83.633 deg"`, `radius="5 deg"`) for MSH 15-52, and
    elsewhere called `select_observations(ra_pnt=..., dec_pnt=..., radius_deg=...)`, which takes no keywords."""
    head = ("import json\nimport os\nfrom gammapy.data import DataStore\n"
            "datastore = DataStore.from_dir(os.path.join(os.environ['PHOTON_STORAGE'], 'hess-dl3-dr1'))\n")
    tail = "print('RESULT ' + json.dumps({'n_obs': len(obs_ids)}))\n"
    copied = head + ("selection = dict(type='sky_circle', frame='icrs', lon='83.633 deg', lat='22.014 deg', "
                     "radius='5 deg')\nobs_ids = datastore.obs_table.select_observations(selection)\n") + tail
    keywords = head + ("obs_ids = datastore.obs_table.select_observations(ra_pnt=228.529, dec_pnt=-59.1575, "
                       "radius_deg=2.0)\n") + tail
    galactic = copied.replace("frame='icrs'", "frame='galactic'")
    for code in (copied, keywords):
        fixed = static_stage(code, facts=read_request(MSH))
        assert fixed.errors == (), fixed.errors
        assert _n_obs(fixed.script, data_root) == 20
    assert "lon='83.633 deg'" in static_stage(galactic, facts=read_request(MSH)).script  # not the request's frame


def test_the_cone_keeps_the_scripts_own_cut(data_root: Path) -> None:
    """Practice question 1 at fcc4e36 (zenith below 30 deg in the PKS 2155-304 cone): the script cut on ZEN_PNT
    only, and the cone repair replaced its ids by the whole cone's (21, not 11). The cut is now kept."""
    code = (f"import json\nimport astropy.units as u\nfrom gammapy.data import DataStore\n"
            f"data_store = DataStore.from_dir({str(data_root / 'hess-dl3-dr1')!r})\nobs_table = data_store.obs_table\n"
            "selected = obs_table[obs_table['ZEN_PNT'] < 30 * u.deg]\nobs_ids = selected['OBS_ID']\n"
            "observations = data_store.get_observations(obs_ids)\n"
            "print('RESULT ' + json.dumps({'n_obs': len(observations)}))\n")
    fixed, notes = select_in_the_cone(code, (329.7169, -30.2256, 2.0))
    assert notes[0].endswith("(keeping its own cut, restricted to them)")
    scope: dict[str, object] = {}
    exec(compile(fixed.replace("import json", "import json\nfrom astropy.coordinates import SkyCoord"), "s", "exec"),
         scope)
    assert len(scope["observations"]) == 11  # type: ignore[arg-type]  # the practice question's value
    every = code.replace("obs_ids = selected['OBS_ID']", "obs_ids = obs_table['OBS_ID']")
    assert "for i in" not in select_in_the_cone(every, (329.7169, -30.2256, 2.0))[0]  # all ids: the cone alone


UNDEFINED_LOOP = ("import json\nimport os\n"
                  "from gammapy.data import DataStore\n"
                  "datastore = DataStore.from_dir(os.path.join(os.environ['PHOTON_STORAGE'], 'hess-dl3-dr1'))\n"
                  "names = []\n"
                  "for obs_id, observation in zip(obs_ids, observations):\n"
                  "    events = maker.run(observation)\n"
                  "    names.append(f'obs-{obs_id}')\n"
                  "print('RESULT ' + json.dumps({'n_obs': len(observations)}))\n")


def test_a_loop_over_names_never_assigned_loads_the_requests_cone(data_root: Path) -> None:
    """s47 reflected-significance-pks2155, attempt 1: `for obs_id, observation in zip(obs_ids, observations):`
    with neither name assigned and no selection anywhere. Both are defined from the request's cone, before the
    loop: the ids of the pointings in it, and the observations loaded for them."""
    fixed, notes = define_the_selection(UNDEFINED_LOOP, (329.7169, -30.2256, 2.0))
    assert notes == ["defined `obs_ids`, `observations` (used but never assigned): the observations pointing "
                     "within 2 deg of (329.717, -30.2256), as your request asks"]
    lines = fixed.splitlines()
    assert lines[5].startswith("obs_ids = list(datastore.obs_table[SkyCoord(") and lines[6] == \
        "observations = datastore.get_observations(obs_ids)" and lines[7].startswith("for obs_id, observation")
    scope: dict[str, object] = {"maker": type("Maker", (), {"run": staticmethod(lambda obs: obs)})}
    body = fixed.replace("import json", "import json\nimport astropy.units as u\nfrom astropy.coordinates import SkyCoord")
    exec(compile(body.replace("os.environ['PHOTON_STORAGE']", repr(str(data_root))), "s", "exec"), scope)
    assert len(scope["observations"]) == 21  # type: ignore[arg-type]  # PKS 2155-304's cone in DR1
    # the full static stage gets there too, with the imports the selection needs
    request = ("Select every observation whose pointing is within 2 deg of RA = 329.7169 deg, Dec = -30.2256 deg. "
               "ON region: a circle of radius 0.11 deg centred on the source position.")
    staged = static_stage(UNDEFINED_LOOP, facts=read_request(request))
    assert "observations = datastore.get_observations(obs_ids)" in staged.script
    assert not [e for e in staged.errors if "obs_ids" in e or "observations" in e], staged.errors
    # a loop whose names are assigned, a script that selects, or a request without a cone: unchanged
    assigned = UNDEFINED_LOOP.replace("names = []\n", "names = []\nobs_ids = [1]\nobservations = [2]\n")
    assert define_the_selection(assigned, (329.7169, -30.2256, 2.0)) == (assigned, [])
    assert define_the_selection(UNDEFINED_LOOP, None) == (UNDEFINED_LOOP, [])


INVENTED_CONE = ("import json\nimport os\nimport numpy as np\nimport astropy.units as u\n"
                 "from astropy.coordinates import SkyCoord\nfrom gammapy.data import DataStore\n"
                 "data_store = DataStore.from_dir(os.path.join(os.environ['PHOTON_STORAGE'], 'hess-dl3-dr1'))\n"
                 "table = data_store.obs_table\n"
                 "pointing = SkyCoord(table['RA_PNT'], table['DEC_PNT'], unit='deg', frame='icrs')\n"
                 "selected = table[pointing.separation(SkyCoord(0.1, 0.2, unit='deg')) < 0.5 * u.deg]\n"
                 "value = float(np.median(selected['MUONEFF']))\n"
                 "print('RESULT ' + json.dumps({'median_muoneff': value}))\n")


def test_a_cone_around_a_position_the_request_never_gives_becomes_the_whole_index(data_root: Path) -> None:
    """An unseen question ("the median muon efficiency over all runs"), attempt 1: a cone of 0.5 deg around
    (0.1, 0.2), which holds no run, and a NaN median."""
    import json
    import os
    import subprocess
    import sys

    facts = read_request("What is the median muon efficiency (MUONEFF) over all runs of the H.E.S.S. DR1 release? "
                         "Print RESULT {\"median_muoneff\": <float>}.", data_root)
    fixed = static_stage(INVENTED_CONE, facts=facts)
    assert fixed.errors == ()
    assert fixed.script.splitlines()[9] == "selected = table"
    assert any("the cone around (0.1, 0.2) is invented" in r for r in fixed.repairs)
    ran = subprocess.run([sys.executable, "-c", fixed.script], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PHOTON_STORAGE": str(data_root)})
    assert abs(json.loads(ran.stdout.split("RESULT ", 1)[1])["median_muoneff"] - 1.01344) < 1e-4, ran.stderr
    # a request that gives a position or a radius, one whose numbers the script uses, or no request read: kept
    for prompt in ("The median MUONEFF of the runs within 2 degrees of RA 83.6331 deg, Dec 22.0145 deg?",
                   "The median MUONEFF of the runs near the Crab Nebula?",
                   "The median MUONEFF of the runs pointing within 0.5 degrees of (0.1, 0.2)?"):
        kept = static_stage(INVENTED_CONE, facts=read_request(prompt, data_root))
        assert not any("is invented" in r for r in kept.repairs), prompt
    assert not any("is invented" in r for r in static_stage(INVENTED_CONE).repairs)
