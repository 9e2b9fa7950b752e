"""Release columns a request names: read from the words as the tables spell them, and the context saying
where each is read, checked against the real release."""

from __future__ import annotations

from pathlib import Path

from hpc_agent.named_columns import columns_context, described_columns, request_columns


def test_columns_are_read_as_the_tables_spell_them(data_root: Path) -> None:
    def names(prompt: str) -> list[str]:
        return [column for _, column, _ in request_columns(prompt, data_root)]

    assert names("the mean lower safe energy threshold (SAFE_ENERGY_LO) and OFFSET_OBJ") == ["OFFSET_OBJ",
                                                                                         "SAFE_ENERGY_LO"]
    assert names("events with ENERGY above 1 TeV") == ["ENERGY"]
    assert names("within 2 degrees of the Crab (RA 83.6331 deg, Dec 22.0145 deg)") == []  # values, not columns
    assert names('Print RESULT {"obs_id": <int>}, the livetime') == []  # a result key in lower case
    assert names("sum the LIVETIME column (NOT ONTIME and NOT TSTOP-TSTART)") == ["LIVETIME"]


def test_columns_named_as_words_count_in_any_case_for_questions_about_the_tables(data_root: Path) -> None:
    def spoken(prompt: str) -> list[str]:
        return [column for _, column, _ in request_columns(prompt, data_root, spoken=True)]

    # g42: "the total livetime, in hours" and "the longest livetime" sent the 1.5B to livetime maps
    assert spoken("What is the total livetime, in hours, of all observations?") == ["LIVETIME"]
    assert spoken('the median reconstructed energy; print RESULT {"livetime_h": <float>}') == ["ENERGY"]  # no key
    assert spoken("the lower safe energy threshold (SAFE_ENERGY_LO)") == ["SAFE_ENERGY_LO"]  # a part of it
    assert spoken("the mean zenith angle, the dead time") == []  # not the columns' names (ZEN_PNT, DEADC)
    livetime = columns_context("Which observation within 2 degrees of the Crab has the longest livetime?", data_root)
    assert livetime is not None and '`selected["LIVETIME"]`' in livetime
    # in a request for an analysis, "energy" is an axis: no events' column
    assert columns_context("Fit a power law to the spectrum between energy 1 and 10 TeV", data_root) is None


def test_the_context_says_where_each_column_is_read(data_root: Path) -> None:
    context = columns_context("What is the average SAFE_ENERGY_LO, in TeV, of the observations within 2 degrees "
                              "of the source? Select by RA_PNT, DEC_PNT, never by TARGET_NAME.", data_root)
    assert context is not None
    assert '- `SAFE_ENERGY_LO` [TeV]: a column of the observation index, one value per observation: ' \
           '`selected["SAFE_ENERGY_LO"]`' in context
    assert "RA_PNT" not in context and "TARGET_NAME" not in context  # the selection idiom's, and a forbidden one
    events = columns_context("the median ENERGY of the events of observation 23523", data_root)
    assert events is not None and '`observation.events.table["ENERGY"]`' in events and "[TeV]" in events
    assert columns_context("How many observations does the release contain?", data_root) is None
    assert columns_context("the mean DEADC", None) is None  # no data: nothing to check the names against


def test_columns_described_in_the_words_of_their_meaning_are_named(data_root: Path) -> None:
    """Held-out q2 (e20619e): "the median pointing zenith angle" got the median of the separations, five turns."""
    def described(prompt: str) -> list[str]:
        return [column for _, column, _ in described_columns(prompt, data_root)]

    assert described("What is the median pointing zenith angle, in degrees, of the runs?") == ["ZEN_PNT"]
    assert described("runs taken at a zenith angle below 30 degrees") == ["ZEN_PNT"]  # a pair no other meaning has
    assert described("which run has the highest muon efficiency?") == ["MUONEFF"]  # "mean" is no part of the match
    assert described("the lowest dead-time correction factor") == ["DEADC"]
    assert described("the dead time of each run") == []  # ONTIME's and LIVETIME's words both: names neither
    assert described("the right ascension of the target") == []  # three columns hold "right ascension"
    assert described("Count the observations pointing close to the Crab Nebula.") == []
    context = columns_context("What is the median pointing zenith angle of the runs within 2 degrees of the Crab "
                              "(RA 83.6331 deg, Dec 22.0145 deg)?", data_root)
    assert context is not None and '`ZEN_PNT` [deg]: a column of the observation index' in context
    # an analysis request's words are not read for columns
    assert columns_context("Fit the spectrum of the runs at a zenith angle below 30 degrees", data_root) is None
