"""Which requests are questions about the release's tables (their first turn carries no retrieved API)."""

from __future__ import annotations

from pathlib import Path

from hpc_agent.named_columns import names_analysis
from hpc_agent.table_questions import table_question


def test_table_questions_are_those_naming_columns_or_observations_and_no_analysis(data_root: Path) -> None:
    assert table_question("What is the mean SAFE_ENERGY_LO, in TeV, of the runs within 2 degrees of the Crab?",
                          data_root)
    assert table_question("How many events of observation 23523 have an energy between 1 and 10 TeV?", data_root)
    # named columns or ids, but an analysis asked for: retrieval stays
    assert not table_question("Fit a power-law spectrum to observation 23523 above SAFE_ENERGY_LO.", data_root)
    assert not table_question("Make a light curve per night of observations 23523 and 23526.", data_root)
    # neither columns nor ids named: the harness gives no table context, so retrieval stays
    assert not table_question("What is the mean zenith angle of the runs within 2 degrees of the Crab?", data_root)
    # the selection idiom's columns are shown already: naming them makes no table question by itself
    assert not table_question("How many observations within 2 degrees of the Crab by RA_PNT and DEC_PNT?",
                              data_root)


def test_analysis_words_are_whole_words() -> None:
    assert names_analysis("the excess counts map") and names_analysis("a spectral index")
    assert not names_analysis("the mean offset of the pointings") and not names_analysis("mapping of ids")
