"""Requests that name observations by id: the ids read from the words, no cone selection demanded, and the
context's loading idiom run as written on the real release."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hpc_agent.data import release_obs_ids
from hpc_agent.named_observations import observations_context, request_obs_ids
from hpc_agent.request_facts import read_request, request_cone, request_radius
from hpc_agent.sources import positions_context

EVENTS_NEAR = ("How many events of H.E.S.S. DR1 observation 23523 were reconstructed within 0.3 degrees of the "
               "Crab Nebula (RA 83.6331 deg, Dec 22.0145 deg)? Print RESULT {\"n_events\": <int>}.")


@pytest.mark.parametrize(("prompt", "ids"), [
    ("How many events does observation 23523 hold?", (23523,)),
    ("the event lists of runs 23523, 23526 and 23559", (23523, 23526, 23559)),
    ("OBS_ID 47802: its livetime", (47802,)),
    ("for obs id #23592 only", (23592,)),
    ("How many observations point within 2 degrees of the Crab?", ()),
    ("the 4 runs nearest the source, 2 degrees", ()),
])
def test_ids_are_read_from_the_words(prompt: str, ids: tuple[int, ...]) -> None:
    assert request_obs_ids(prompt) == ids


def test_a_radius_about_events_is_no_observation_cone() -> None:
    assert request_radius(EVENTS_NEAR) == 0.3
    assert request_cone(EVENTS_NEAR) is None  # no "selects no observations by position" for it
    facts = read_request(EVENTS_NEAR)
    assert facts.cone is None and facts.cone_radius is None
    assert request_cone("How many observations point within 2 degrees of the Crab?") == 2.0


def test_positions_drop_the_pointing_idiom_when_observations_are_named() -> None:
    named = positions_context(EVENTS_NEAR)
    cone = positions_context("How many observations point within 2 degrees of the Crab Nebula?")
    assert named is not None and cone is not None
    assert "83.6331" in named and "RA_PNT" not in named
    assert "RA_PNT" in cone


def test_the_context_idiom_counts_the_events_on_the_real_release(data_root: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    context = observations_context(EVENTS_NEAR, data_root, (83.6331, 22.0145), 0.3)
    assert context is not None and "data_store.obs(23523)" in context and "0.3 * u.deg" in context
    code = re.search(r"```python\n(.*?)```", context, re.DOTALL)
    assert code is not None
    monkeypatch.setenv("PHOTON_STORAGE", str(data_root))
    scope: dict[str, object] = {}
    exec("import os\nimport astropy.units as u\nfrom astropy.coordinates import SkyCoord\n"  # noqa: S102
         "from gammapy.data import DataStore\n" + code.group(1), scope)
    assert len(scope["events"]) == 7613  # type: ignore[arg-type]
    assert len(scope["near"]) == 425  # type: ignore[arg-type]


def test_an_id_outside_the_release_is_said_and_left_out_of_the_code(data_root: Path) -> None:
    assert 23523 in release_obs_ids(data_root) and len(release_obs_ids(data_root)) == 105
    context = observations_context("events of runs 23523 and 99999", data_root)
    assert context is not None
    assert "Not in the release's observation index: 99999" in context
    assert "data_store.obs(23523)" in context and "99999])" not in context
