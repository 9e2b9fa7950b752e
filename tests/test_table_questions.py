"""Which requests are questions about the release's tables (their first turn carries no retrieved API)."""

from __future__ import annotations

from hpc_agent.table_questions import names_analysis, table_question


def test_table_questions_are_those_that_name_no_analysis_product() -> None:
    assert table_question("What is the mean SAFE_ENERGY_LO, in TeV, of the runs within 2 degrees of the Crab?")
    assert table_question("How many events of observation 23523 have an energy between 1 and 10 TeV?")
    assert table_question("What is the lowest dead-time correction factor in the whole observation index?")
    assert table_question("Which run within 2 degrees of MSH 15-52 has the longest livetime?")
    # an analysis asked for: retrieval stays
    assert not table_question("Fit a power-law spectrum to observation 23523 above SAFE_ENERGY_LO.")
    assert not table_question("Make a light curve per night of observations 23523 and 23526.")
    assert not table_question("Compute the significance of the Crab with reflected regions.")


def test_analysis_words_are_whole_words() -> None:
    assert names_analysis("the excess counts map") and names_analysis("a spectral index")
    assert not names_analysis("the mean offset of the pointings") and not names_analysis("mapping of ids")


def test_the_request_facts_say_whether_only_the_tables_are_asked_for() -> None:
    from hpc_agent.prompts import IDIOMS
    from hpc_agent.request_facts import read_request

    assert read_request("How many H.E.S.S. DR1 runs point within 2 degrees of RA 83.6 deg, Dec 22.0 deg?").tables_only
    assert not read_request("Fit a power-law spectrum to observation 23523.").tables_only
    # the rule it drives comes with the idiom that reads the tables
    from hpc_agent.checks import TABLES_ONLY
    assert any(key == TABLES_ONLY and "data_store.obs_table" in idiom for key, idiom in IDIOMS)
