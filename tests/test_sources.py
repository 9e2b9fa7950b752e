"""Source positions offline: names in a prompt become ICRS positions from the table and the release itself."""

from __future__ import annotations

from pathlib import Path

import pytest

from hpc_agent.sources import named_sources, positions_context, release_objects, without_source_names


@pytest.mark.parametrize(("prompt", "name", "ra", "dec"), [
    ("How many H.E.S.S. DR1 observations point within 2 degrees of MSH 15-52?", "MSH 15-52", 228.529, -59.1575),
    ("livetime of msh15-52 runs", "MSH 15-52", 228.529, -59.1575),
    ("spectrum of the Crab", "Crab Nebula", 83.6331, 22.0145),
    ("light curve of PKS 2155-304 per night", "PKS 2155-304", 329.7169, -30.2256),
    ("RX J1713.7-3946 morphology", "RX J1713.7-3946", 258.1125, -39.6867),
])
def test_table_names_in_any_spelling(prompt: str, name: str, ra: float, dec: float) -> None:
    found = named_sources(prompt)
    assert [(s.name, s.ra, s.dec) for s in found] == [(name, ra, dec)]


def test_no_false_matches() -> None:
    assert named_sources("the crabby old analysis of nothing in particular") == []
    assert positions_context("count all observations") is None


def test_the_releases_own_object_columns_add_names(data_root: Path) -> None:
    objects = {s.name: s for s in release_objects(data_root)}
    assert "SN 1006" in objects and objects["SN 1006"].origin.endswith("obs-index.fits.gz")
    found = named_sources("How many observations of SN 1006 are there?", data_root)
    assert [s.name for s in found] == ["SN 1006"]
    # a release spelling of a table source adds nothing: the table's position is the one given
    assert [s.name for s in named_sources("MSH 15-5-02 runs", data_root)] == ["MSH 15-52"]


def test_context_gives_numbers_and_forbids_selection_by_name(data_root: Path) -> None:
    text = positions_context("observations within 2 degrees of the Crab Nebula", data_root)
    assert text is not None
    assert "Crab Nebula: RA = 83.6331 deg, Dec = 22.0145 deg (ICRS)" in text
    assert 'source = SkyCoord(83.6331, 22.0145, unit="deg", frame="icrs")' in text and "never by" in text
    assert "pointing.separation(source)" in text


def test_retrieval_queries_name_no_source(data_root: Path) -> None:
    text = "Count observations near RX J1713.7-3946, the Crab Nebula and MSH15-52 with a light curve."
    assert without_source_names(text, data_root) == ("Count observations near a source, a source and a source "
                                                     "with a light curve.")
    assert without_source_names("a reflected-region spectrum", data_root) == "a reflected-region spectrum"
