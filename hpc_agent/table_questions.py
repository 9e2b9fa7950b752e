"""Whether a request is a question about the release's tables, answered without any analysis API.

A request that names no analysis product (no spectrum, flux, fit, map, light curve, IRF, ...) asks for values
the release's tables hold: how many observations or events, a total, mean or extreme of a column, which run.
The harness already gives where those are read: the tables with every column, its unit and meaning, the
selection idiom with each event's values, and the columns or observations the request names. Retrieval by
meaning then hands a small model the API its words evoke instead, and it builds an analysis around it (seen
with qwen2.5-coder-1.5b: a `SafeMaskMaker` tutorial for the mean SAFE_ENERGY_LO; `MapDatasetEventSampler` for
events in an energy range; livetime maps and `select_time` for the run with the longest livetime;
`observation_dead_time_fraction` for the lowest DEADC). For such a request the first turn carries the harness's
context alone; repair turns still retrieve for their errors.
"""

from __future__ import annotations

import re

# Words that name an analysis product or instrument response: a request using them needs the API.
_ANALYSIS = re.compile(
    r"\b(?:spectr\w*|flux\w*|fit\w*|light[\s-]?curves?|lightcurves?|significan\w*|excess\w*|sqrt[\s_-]?ts|"
    r"ts\s+maps?|maps?|sky\s*maps?|cubes?|exposures?|backgrounds?|datasets?|models?|seds?|reflected|on[\s-]?off|"
    r"likelihood|aperture|effective\s+areas?|psf|point[\s-]spread|energy\s+dispersion|edisp|irfs?|"
    r"instrument\s+response|simulat\w*|sampl\w*|makers?|estimat\w*)\b",
    re.IGNORECASE)


def names_analysis(prompt: str) -> bool:
    """True when the request's words name an analysis product or instrument response."""
    return _ANALYSIS.search(prompt) is not None


TABLE_QUESTION = "a question about the release's tables: the first turn carries where its values are read"


def table_question(prompt: str) -> bool:
    """True when the request asks for no analysis product."""
    return not names_analysis(prompt)
