"""Source positions offline: a prompt that names a source ("MSH 15-52") gets its ICRS position as context.

The sandbox has no network (name resolvers such as `SkyCoord.from_name` fail) and small models do not
know coordinates, so the harness supplies them: a small shipped table (`sources.yaml`) of the H.E.S.S. DR1
targets and well-known TeV sources with their spellings, plus the data release's own `OBJECT`, `RA_OBJ`,
`DEC_OBJ` columns. The context says to use the numbers and select by position, never by name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from hpc_agent.data import RELEASE
from hpc_agent.named_observations import request_obs_ids
from hpc_agent.prompts import POINTING

TABLE = Path(__file__).with_name("sources.yaml")


@dataclass(frozen=True)
class Source:
    name: str
    ra: float  # ICRS, degrees
    dec: float
    origin: str  # "table" or the obs-index file it was read from


@lru_cache(maxsize=1024)
def _pattern(alias: str) -> re.Pattern[str]:
    """`MSH 15-52` also matches `MSH15-52`, `msh 15 52`: separators between letter/digit runs are optional."""
    tokens = re.findall(r"[A-Za-z]+|\d+|[^\sA-Za-z\d_\-]", alias)
    body = r"[\s_\-]*".join(re.escape(t) for t in tokens)
    return re.compile(rf"(?<![A-Za-z0-9]){body}(?![A-Za-z0-9])", re.IGNORECASE)


@lru_cache(maxsize=1)
def _table() -> tuple[tuple[Source, tuple[re.Pattern[str], ...]], ...]:
    rows = yaml.safe_load(TABLE.read_text())
    return tuple((Source(r["name"], float(r["ra"]), float(r["dec"]), "table"),
                  tuple(_pattern(a) for a in {r["name"], *r.get("aliases", [])})) for r in rows)


@lru_cache(maxsize=8)
def release_objects(data_root: Path) -> tuple[Source, ...]:
    """(OBJECT, mean RA_OBJ, mean DEC_OBJ) of the release's observation index; empty when unreadable."""
    path = data_root / RELEASE / "obs-index.fits.gz"
    try:
        from astropy.table import Table

        table = Table.read(path, hdu=1)
        names = [str(n).strip() for n in table["OBJECT"]]
        ra, dec = table["RA_OBJ"], table["DEC_OBJ"]
    except Exception:  # no release or no such columns: the shipped table alone
        return ()
    found: dict[str, list[tuple[float, float]]] = {}
    for name, r, d in zip(names, ra, dec):
        if name and name.lower() not in ("custom", "unknown", "none"):
            found.setdefault(name, []).append((float(r), float(d)))
    return tuple(Source(n, sum(p[0] for p in ps) / len(ps), sum(p[1] for p in ps) / len(ps), str(path))
                 for n, ps in sorted(found.items()))


def named_sources(prompt: str, data_root: Path | None = None) -> list[Source]:
    """Sources the prompt names, table first; release names only where the table has none for that text."""
    hits = [src for src, patterns in _table() if any(p.search(prompt) for p in patterns)]
    if data_root is not None:
        for src in release_objects(data_root):
            close = any(abs(src.ra - h.ra) < 0.5 and abs(src.dec - h.dec) < 0.5 for h in hits)
            if not close and _pattern(src.name).search(prompt):
                hits.append(src)
    return hits


def without_source_names(text: str, data_root: Path | None = None) -> str:
    """`text` with every source name it contains removed: what retrieval searches with. Which source is
    analysed does not change which API to use, and a tutorial about the same source but another analysis
    misleads a small model (seen: counting observations near RX J1713.7-3946 retrieved that source's
    extended-source spectrum tutorial, and the model wrote a spectrum analysis)."""
    patterns = [p for _, ps in _table() for p in ps]
    if data_root is not None:
        patterns += [_pattern(src.name) for src in release_objects(data_root)]
    for p in sorted(patterns, key=lambda p: len(p.pattern), reverse=True):  # "Crab Nebula" before "Crab"
        text = p.sub("a source", text)
    return re.sub(r"\bthe a source\b", "a source", text, flags=re.IGNORECASE)


def positions_context(prompt: str, data_root: Path | None = None) -> str | None:
    """The context block for the first turn, or None when the prompt names no known source."""
    found = named_sources(prompt, data_root)
    if not found:
        return None
    lines = [f"- {s.name}: RA = {s.ra:g} deg, Dec = {s.dec:g} deg (ICRS)" for s in found]
    first = found[0]
    positions = ("Source positions (the sandbox has no network, so name resolvers such as SkyCoord.from_name "
                 "fail; use these numbers):\n" + "\n".join(lines))
    if request_obs_ids(prompt):  # the observations are given: `named_observations` shows how to load them
        return positions
    return (positions + "\n"
            "Observations near a source are selected by the angular separation of their pointing (RA_PNT, "
            "DEC_PNT) from its position, never by the OBJECT or TARGET_NAME columns:\n```python\n"
            f"source = SkyCoord({first.ra:g}, {first.dec:g}, unit=\"deg\", frame=\"icrs\")\n"
            f"{POINTING}\n"
            "selected = table[pointing.separation(source) < radius_deg * u.deg]\n```")
