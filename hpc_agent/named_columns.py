"""Columns of the release's tables a request names ("the mean SAFE_ENERGY_LO of ..."): the context that says
where each is read.

A question that names a column is answered by reading that column, but small models reach for the Gammapy
API its name evokes (seen: `SafeMaskMaker` datasets built for the mean `SAFE_ENERGY_LO`, five turns; the
separation from the source computed for the mean `OFFSET_OBJ`). The first turn says which table holds the
column, its unit, and how it is read.
"""

from __future__ import annotations

import re
from pathlib import Path

from hpc_agent.checks import FORBIDDEN_COLUMNS
from hpc_agent.data import column_meanings, release_units
from hpc_agent.request_facts import request_cone
from hpc_agent.table_questions import names_analysis

SPOKEN_MIN = 6  # a column named as a word of at least this many letters counts in any case
_POINTING = ("RA_PNT", "DEC_PNT")  # what a cone selection reads: the selection idiom shows them already

_WHERE = {
    "obs_table": ("the observation index, one value per observation", 'selected["{c}"]',
                  "of the selected rows (`data_store.obs_table` for all observations)"),
    "events": ("each observation's event list, one value per event", 'observation.events.table["{c}"]', ""),
}


def request_columns(prompt: str, data_root: Path, spoken: bool = False) -> list[tuple[str, str, str]]:
    """(table, column, unit) of each release column the request spells out as the tables do (capitals), in the
    tables' order; a name followed by a number is a value given, not a column asked for (`RA 83.6331 deg`), and
    one after "not" is excluded (`NOT ONTIME`). `spoken`: a column whose name is a word (letters only, six or
    more: LIVETIME, ONTIME, ENERGY, QUALITY) counts written in any case too ("the total livetime"), unless it
    is a part of a column the request spells out ("safe energy threshold (SAFE_ENERGY_LO)" names no ENERGY)."""
    def named(column: str, flags: int = 0) -> bool:
        uses = re.finditer(rf"(?<![\w-]){re.escape(column)}(?![\w-])(?!\s*[=:]?\s*[-+]?\d)", prompt, flags)
        return any(not re.search(r"\bnot\s+(?:the\s+)?$", prompt[:m.start()], re.IGNORECASE) for m in uses)

    units = release_units(data_root)
    spelt = {column for table in units.values() for column in table if named(column)}
    parts = {part for column in spelt for part in column.split("_") if part != column}
    return [(table, column, unit) for table, columns in units.items() for column, unit in columns.items()
            if column in spelt or (spoken and column.isalpha() and len(column) >= SPOKEN_MIN
                                   and column not in parts and named(column, re.IGNORECASE))]


# Words a column's meaning shares with no particular question: function words, and the statistics a question asks
# of the column ("the mean muon efficiency" names MUONEFF whether it asks for the mean or the highest).
_FILLER = frozenset("a an and as at by for from in into is of on or per the to with mean median total number".split())


def _words(text: str) -> list[str]:
    """Lower-case content words, hyphens split and plurals made singular (`dead-time` -> dead time)."""
    words = re.findall(r"[a-z0-9]+", text.lower())
    return [w[:-1] if len(w) > 4 and w.endswith("s") and not w.endswith("ss") else w for w in words
            if w not in _FILLER]


def _holds(words: list[str], phrase: list[str]) -> bool:
    n = len(phrase)
    return any(words[i:i + n] == phrase for i in range(len(words) - n + 1))


def described_columns(prompt: str, data_root: Path) -> list[tuple[str, str, str]]:
    """(table, column, unit) of each release column the request describes in the words of its meaning
    (`column_meanings.yaml`: "the median pointing zenith angle" -> ZEN_PNT, "the highest muon efficiency" ->
    MUONEFF): the meaning's content words in a row, or its last two when no other meaning holds that pair
    ("a zenith angle below 30 degrees"; "dead time" is ONTIME's and LIVETIME's, so it names neither)."""
    units = release_units(data_root)
    phrases = {(table, column): _words(meaning.split(",")[0])
               for table, meanings in column_meanings().items() for column, meaning in meanings.items()
               if column in units.get(table, {})}
    asked = _words(prompt)
    found = []
    for (table, column), phrase in phrases.items():
        tail = phrase[-2:]
        unique = sum(_holds(p, tail) for p in phrases.values()) == 1
        if len(phrase) >= 2 and (_holds(asked, phrase) or (len(phrase) > 2 and unique and _holds(asked, tail))):
            found.append((table, column, units[table][column]))
    return found


def columns_context(prompt: str, data_root: Path | None) -> str | None:
    """The context block for the columns the request names (spoken names too, unless it asks for an analysis
    product, where "energy" is an axis, not the events' column); None when it names none."""
    skip = set(FORBIDDEN_COLUMNS) | (set(_POINTING) if request_cone(prompt) is not None else set())
    spoken = not names_analysis(prompt)
    named = request_columns(prompt, data_root, spoken) if data_root is not None else []
    if spoken and data_root is not None:  # a question about the tables: its words may describe a column too
        named += [f for f in described_columns(prompt, data_root) if f not in named]
    found = [f for f in named if f[1] not in skip]
    if not found:
        return None
    lines = []
    for table, column, unit in found:
        where, read, scope = _WHERE[table]
        shown = f"`{column}`" + (f" [{unit}]" if unit else "")
        lines.append(f"- {shown}: a column of {where}: `{read.format(c=column)}`" + (f" {scope}" if scope else ""))
    return ("The request names columns of the release's tables; read them there (makers, datasets and IRFs "
            "are not needed for them):\n" + "\n".join(lines))
