"""Whether a request is a question about the release's tables, answered without any analysis API.

A request that names table columns ("the mean SAFE_ENERGY_LO of ...") or observations by id ("events of
observation 23523 above 1 TeV") already gets, from the harness, where those values are read. Retrieval by
meaning then hands a small model the API its words evoke instead (seen with qwen2.5-coder-1.5b: a
`SafeMaskMaker` tutorial for the mean SAFE_ENERGY_LO, five turns building datasets; `MapDatasetEventSampler`
for events in an energy range), and it builds an analysis around it. For such a request the first turn
carries the harness's table context alone; a request that also names an analysis product keeps retrieval.
"""

from __future__ import annotations

from pathlib import Path

from hpc_agent.named_columns import columns_context, names_analysis
from hpc_agent.named_observations import request_obs_ids

TABLE_QUESTION = "a question about the release's tables: the first turn carries where its values are read"


def table_question(prompt: str, data_root: Path | None) -> bool:
    """True when the harness's own context answers where the request's values are read (columns it names, or
    observations it names by id) and the request asks for no analysis product."""
    named = bool(request_obs_ids(prompt)) or columns_context(prompt, data_root) is not None
    return named and not names_analysis(prompt)
