"""Observations a request names by id ("events of observation 23523"): reading the ids, and the context
that shows how one observation and its events are loaded.

A question about given observations is not a cone selection: its "within 0.3 degrees of the Crab" is about
the events, not the pointings. Small models read every radius as the selection idiom they were shown (seen:
a count of one run's events near a source answered by selecting observations in a 0.3 deg cone, then by
building datasets), so such a request gets the single-observation idiom instead, written with its own ids.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from hpc_agent.data import release_obs_ids
from hpc_agent.prompts import OPEN_RELEASE

# "observation 23523", "run 23523", "OBS_ID 23523", "observations 23523 and 23526", "obs id #23523"; an id has
# at least three digits, so "observations within 2 degrees" and "the 4 runs" are never read as ids.
_NAMED = re.compile(r"\b(?:observations?|obs|runs?|obs_ids?)(?:[\s_-]*(?:ids?|numbers?|no\.?))?\s*[#:=]?\s*"
                    r"(\d{3,}(?:\s*(?:,|and|&|or)\s*\d{3,})*)", re.IGNORECASE)


@lru_cache(maxsize=64)
def request_obs_ids(prompt: str) -> tuple[int, ...]:
    """The observation ids a request names, in order of first mention."""
    ids: list[int] = []
    for group in _NAMED.findall(prompt):
        ids += [int(n) for n in re.findall(r"\d+", group)]
    return tuple(dict.fromkeys(ids))


def observations_context(prompt: str, data_root: Path | None = None,
                         position: tuple[float, float] | None = None, radius: float | None = None) -> str | None:
    """How the request's named observations and their events are loaded (the events within `radius` deg of
    `position` too, when the request is about a position); None when it names no observation id."""
    ids = request_obs_ids(prompt)
    if not ids:
        return None
    known = release_obs_ids(data_root) if data_root is not None else frozenset()
    missing = [i for i in ids if known and i not in known]
    lines = []
    if missing:
        lines.append(f"Not in the release's observation index: {', '.join(map(str, missing))} (its ids run from "
                     f"{min(known)} to {max(known)}); say so in the script's output rather than guessing.")
    ids = tuple(i for i in ids if i not in missing) or ids
    one = len(ids) == 1
    lines.append(("The request names one observation by its id; load it by that id (no selection by position)"
                  if one else "The request names its observations by id; load them by those ids (no selection by "
                  "position)") + ". An observation's events are a table, one row per event (`ENERGY` in TeV):")
    code = [OPEN_RELEASE]
    if one:
        code += [f"observation = data_store.obs({ids[0]})", "events = observation.events.table"]
    else:
        code += [f"observations = data_store.get_observations([{', '.join(map(str, ids))}])",
                 "for observation in observations:", "    events = observation.events.table"]
    pad = "" if one else "    "
    if position is not None:
        code += [f'{pad}source = SkyCoord({position[0]:g}, {position[1]:g}, unit="deg", frame="icrs")',
                 f'{pad}event_positions = SkyCoord(events["RA"], events["DEC"], unit="deg", frame="icrs")',
                 f"{pad}near = events[event_positions.separation(source) < {radius if radius is not None else 'radius_deg'}"
                 " * u.deg]"]
    code.append(f'# its row of the observation index: data_store.obs_table[data_store.obs_table["OBS_ID"] == {ids[0]}]')
    return "\n".join(lines) + "\n```python\n" + "\n".join(code) + "\n```"
