"""What a request itself fixes for a script: statements a variable can only mean.

A small model leaves `energy_axis` or `source_position` unassigned while the request writes out the call
(`MapAxis.from_energy_bounds(1.0, 10.0, nbin=10, unit="TeV", name="energy")`) or names the one position
the analysis is about (and the one circle around it that it describes in words). Those definitions have one reading, so the repairs may add them (and say so); the
model's own choices are never overridden, only names it used and never assigned, except for a call the
request writes out in full: that call is the request's, whatever values the script gave it.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from hpc_agent.named_observations import request_obs_ids
from hpc_agent.prompts import IDIOM_DEC, IDIOM_RA, IDIOM_RADIUS
from hpc_agent.sources import named_sources
from hpc_agent.table_questions import table_question
from hpc_agent.tutorial_definitions import from_request, name_keyword, request_calls, tutorial_definitions

# Names a script gives the one sky position a request is about.
POSITION_NAMES = frozenset(f"{who}{what}" for who in ("source", "target", "src")
                           for what in ("", "_position", "_pos", "_coord", "_coords", "_skycoord", "_center", "_centre"))
_RA_DEC = re.compile(r"\bRA\s*=?\s*(-?\d+(?:\.\d+)?)\s*(?:deg|°)?\s*,?\s*(?:and\s+)?Dec(?:l|lination)?\s*=?\s*"
                     r"(-?\d+(?:\.\d+)?)", re.IGNORECASE)


REGION_NAMES = frozenset({"on_region", "region", "on_reg", "circle_region", "source_region", "target_region"})
_CIRCLE = re.compile(r"\bcircle\s+(?:region\s+)?(?:of|with)\s+(?:a\s+)?radius\s+(?:of\s+)?(\d+(?:\.\d+)?)\s*"
                     r"(deg|degrees?|arcmin)\b[^.]*?\bcent(?:er|re)(?:e?d)?\s+(?:on|at)\s+the\s+(?:source|target)",
                     re.IGNORECASE)


_CONE = re.compile(r"\b(?:within|separation\s+(?:of\s+)?(?:strictly\s+)?(?:less\s+than|below|under|<))\s+"
                   r"(\d+(?:\.\d+)?)\s*(?:deg|degrees?|°)", re.IGNORECASE)


def request_cone(prompt: str) -> float | None:
    """The radius (deg) of the one cone a request selects observations in (`point within 2 degrees of`,
    `a separation of strictly less than 2.0 deg`), when it names exactly one. A request that names its
    observations by id selects none: its radius is about their events (`events of observation 23523 within
    0.3 degrees of`)."""
    return None if request_obs_ids(prompt) else request_radius(prompt)


def request_radius(prompt: str) -> float | None:
    """The one angular radius (deg) a request states with "within" or "separation less than", whatever it
    bounds (pointings or events)."""
    found = {float(r) for r in _CONE.findall(prompt)}
    return next(iter(found)) if len(found) == 1 else None


def request_selection(prompt: str, data_root: Path | None = None) -> tuple[float, float, float] | None:
    """(ra, dec, radius) in degrees: the one cone around the one position a request selects observations in."""
    radius, position = request_cone(prompt), request_position(prompt, data_root)
    return (*position, radius) if radius is not None and position is not None else None


def request_circle(prompt: str) -> tuple[float, str] | None:
    """(radius, unit) of the one circle centred on the source that the request describes in words."""
    found = {(float(r), "arcmin" if u.lower() == "arcmin" else "deg") for r, u in _CIRCLE.findall(prompt)}
    return next(iter(found)) if len(found) == 1 else None


def request_position(prompt: str, data_root: Path | None = None) -> tuple[float, float] | None:
    """(ra, dec) in degrees when the request gives exactly one position: written as numbers, or the one
    known source it names."""
    written = {(float(ra), float(dec)) for ra, dec in _RA_DEC.findall(prompt)}
    if written:
        return next(iter(written)) if len(written) == 1 else None
    named = named_sources(prompt, data_root)
    return (named[0].ra, named[0].dec) if len(named) == 1 else None


@lru_cache(maxsize=64)
def request_call_texts(prompt: str) -> tuple[str, ...]:
    """The library calls a request writes out, as code (`MapAxis.from_energy_bounds(1.0, 10.0, nbin=10, ...)`)."""
    return tuple(ast.unparse(c) for c in request_calls(prompt))


def number_text(x: float) -> str:
    """A request's number as code: exact (329.7169, where `:g` wrote 329.717), without `.0` on a whole one."""
    return str(int(x)) if x == int(x) else repr(x)


@lru_cache(maxsize=64)
def request_definitions(prompt: str, data_root: Path | None = None) -> dict[str, str]:
    """variable name -> the statement the request fixes for it: the request's own call for each variable
    the tutorials make with that callee, and the one position for the usual names of a source position."""
    calls = request_calls(prompt)
    found = {}
    if calls:
        for name, definition in tutorial_definitions().items():
            asked = from_request(name, definition, calls)
            if asked is not None:
                found[name] = asked
    position = request_position(prompt, data_root)
    if position is not None:
        where = f'SkyCoord({number_text(position[0])}, {number_text(position[1])}, unit="deg", frame="icrs")'
        for name in POSITION_NAMES:
            found.setdefault(name, f"{name} = {where}")
        # the placeholders of the selection idioms the harness shows (`prompts.SELECTION_IDIOM`, and the system
        # message's rule 5 in lower case), copied as they are
        for ra, dec in ((IDIOM_RA, IDIOM_DEC), (IDIOM_RA.lower(), IDIOM_DEC.lower())):  # the rules' own, too
            found.setdefault(ra, f"{ra} = {number_text(position[0])}")
            found.setdefault(dec, f"{dec} = {number_text(position[1])}")
        circle = request_circle(prompt)
        if circle is not None:  # "a circle of radius 0.11 deg centred on the source position"
            for name in REGION_NAMES:
                found.setdefault(name, f"{name} = CircleSkyRegion(center={where}, radius={number_text(circle[0])} * u.{circle[1]})")
    radius = request_cone(prompt)
    if radius is not None:
        for name in (IDIOM_RADIUS, IDIOM_RADIUS.lower()):
            found.setdefault(name, f"{name} = {number_text(radius)}")
    return found


_SENTENCE = re.compile(r"(?<=[.!?:])\s+(?=[A-Z])")
_QUOTED = re.compile(r"[\"']([A-Za-z_][A-Za-z0-9_]*)[\"']")


@lru_cache(maxsize=64)
def returned_keys(prompt: str) -> dict[str, str]:
    """key -> method, for a request sentence saying one method returns the keys it then quotes
    (`... what the stacked dataset's info_dict() returns as "counts", "excess" and "sqrt_ts"`)."""
    found: dict[str, str] = {}
    for sentence in _SENTENCE.split(" ".join(prompt.split())):
        methods = list(dict.fromkeys(re.findall(r"\b([a-z_][a-z0-9_]*)\(\)\s+returns\b", sentence)))
        if len(methods) == 1:
            for key in _QUOTED.findall(sentence.split(f"{methods[0]}()", 1)[1]):
                found.setdefault(key, methods[0])
    return found


def returned_key_hints(script: str | None, prompt: str) -> tuple[str, ...]:
    """For a script that reads `x.counts` where the request says `counts` is a key of what `info_dict()`
    returns, and never calls that method: where the value comes from."""
    keys = returned_keys(prompt)
    if not script or not keys:
        return ()
    try:
        tree = ast.parse(script)
    except SyntaxError:
        return ()
    read = {n.attr: n for n in ast.walk(tree) if isinstance(n, ast.Attribute) and n.attr in keys}
    called = {n.func.attr for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)}
    return tuple(f"line {node.lineno}: your request says `{key}` is what `{keys[key]}()` returns: "
                 f'`{ast.unparse(node.value)}.{keys[key]}()["{key}"]`, not `{ast.unparse(node)}`'
                 for key, node in read.items() if keys[key] not in called) \
        + _elsewhere(tree, keys, called, prompt) + _transformed(tree, keys)


def _elsewhere(tree: ast.AST, keys: dict[str, str], called: set[str], prompt: str) -> tuple[str, ...]:
    """`counts_on = info_table["counts"][0]` where the request says `info_dict()` returns "counts" and the script
    never calls it: the key is read from another table (s45 reflected-significance-crab read the first row of a
    cumulative `info_table`, one observation's counts). One hint per method, naming each such read."""
    reads: dict[str, dict[str, ast.Subscript]] = {}
    for n in ast.walk(tree):
        if isinstance(n, ast.Subscript) and isinstance(n.slice, ast.Constant) and n.slice.value in keys \
                and keys[n.slice.value] not in called:
            reads.setdefault(keys[n.slice.value], {}).setdefault(n.slice.value, n)
    out = []
    for method, by_key in reads.items():
        found = dict(sorted(by_key.items(), key=lambda kv: (kv[1].lineno, kv[1].col_offset)))
        owner = re.search(rf"((?:[A-Za-z]+ ){{0,2}}[A-Za-z]+)'s\s+{method}\(\)", " ".join(prompt.split()))
        whose = f"{owner.group(1)}'s " if owner else ""
        named = ", ".join(f'`….{method}()["{k}"]` for `{ast.unparse(n)}` (line {n.lineno})' for k, n in found.items())
        out.append(f"your request says {', '.join(f'`{k}`' for k in found)} come from {whose}`{method}()`, which "
                   f"your script never calls: read {named}")
    return tuple(out)


def _transformed(tree: ast.AST, keys: dict[str, str]) -> tuple[str, ...]:
    """`excess = counts_on - info["excess"]`, `significance = excess / np.sqrt(info["sqrt_ts"])`, or the same in
    the result's dict (`"significance": stacked.info_dict()["sqrt_ts"] / np.sqrt(10)`): a value the request says
    the method returns, put through arithmetic before it is kept. The request's value is the read itself (s45
    reflected-significance-crab: wrong excess and significance for two turns; s47 the same, four turns of a
    made-up `/ np.sqrt(10)` in the RESULT dict)."""
    from_method = {t.id for a in ast.walk(tree) if isinstance(a, ast.Assign) and isinstance(a.value, ast.Call)
                   and isinstance(a.value.func, ast.Attribute) and a.value.func.attr in keys.values()
                   for t in a.targets if isinstance(t, ast.Name)}  # `info = stacked.info_dict()`
    kept: list[tuple[str, str, ast.expr]] = []  # (what holds the value as written, its name, the value)
    for a in ast.walk(tree):
        if isinstance(a, ast.Assign) and len(a.targets) == 1 and isinstance(a.targets[0], ast.Name):
            kept.append((a.targets[0].id, a.targets[0].id, a.value))
        elif isinstance(a, ast.Dict):
            kept.extend((f'"{k.value}":', k.value, v) for k, v in zip(a.keys, a.values)
                        if isinstance(k, ast.Constant) and isinstance(k.value, str))
    out = []
    for holder, name, value in kept:
        if not isinstance(value, (ast.BinOp, ast.UnaryOp, ast.Call)):
            continue
        reads = [n for n in ast.walk(value) if isinstance(n, ast.Subscript) and isinstance(n.slice, ast.Constant)
                 and n.slice.value in keys and (isinstance(n.value, ast.Name) and n.value.id in from_method
                                                or isinstance(n.value, ast.Call) and isinstance(n.value.func, ast.Attribute)
                                                and n.value.func.attr == keys[n.slice.value])]
        plain = isinstance(value, ast.Call) and ast.unparse(value.func) in ("float", "int")
        if len(reads) == 1 and not plain:
            key = ast.literal_eval(reads[0].slice)
            # `sqrt_ts = np.sqrt(info["counts"])`: a variable named for another of the keys is that key's read
            read = ast.unparse(reads[0]) if name not in keys or name == key else \
                f'{ast.unparse(reads[0].value)}["{name}"]'
            key = key if name not in keys else name
            sep = " " if holder.endswith(":") else " = "
            out.append(f"line {value.lineno}: your request says `{key}` is what `{keys[key]}()` returns, the value "
                       f"itself: keep `{holder}{sep}{read}`, not `{ast.unparse(value)}`")
    return tuple(out)


_NAMED = re.compile(r"\b([A-Z][A-Za-z0-9]*)\s+(?:named|called)\s+[\"']([^\"']+)[\"']")
MAX_MISSING = 3


def _callee(call: ast.Call) -> str:
    return call.func.attr if isinstance(call.func, ast.Attribute) else ast.unparse(call.func)


def makes_named(tree: ast.AST, cls: str, name: str) -> bool:
    """Whether the script calls `cls(..., name="<name>")` somewhere."""
    return any(isinstance(n, ast.Call) and _callee(n) == cls and name_keyword(n) == name for n in ast.walk(tree))


def missing_call_hints(script: str | None, prompt: str) -> tuple[str, ...]:
    """Steps the request writes out that the script never takes: a call it spells out (`PowerLawSpectralModel(
    index=2.6, ...)`) whose callee the script never calls, or an object it names (`SkyModel named "source"`)
    that the script never makes. A small model drops such a step and then fails far downstream of it
    (`'source' is not in list`), where the traceback no longer points at what is missing."""
    if not script:
        return ()
    try:
        tree = ast.parse(script)
    except SyntaxError:
        return ()
    called = {_callee(n) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    hints: list[str] = []
    for call in request_calls(prompt):
        name = _callee(call)
        if name not in called and not any(name in h for h in hints):
            hints.append(f"your request asks for `{ast.unparse(call)}`; your script never calls `{name}`")
    for cls, name in dict.fromkeys(_NAMED.findall(" ".join(prompt.split()))):
        if not makes_named(tree, cls, name):
            hints.append(f'your request asks for a `{cls}` named "{name}"; your script never makes one: '
                         f'`{cls}(..., name="{name}")`')
    return tuple(hints[:MAX_MISSING])


@dataclass(frozen=True)
class SourceModel:
    """The one named source model a request writes out: `SkyModel named "source" with
    PowerLawSpectralModel(index=2.6, ...) with the index FROZEN`."""

    name: str
    spectral: str  # the request's spectral-model call, as code
    frozen: tuple[str, ...] = ()  # parameters the request says are frozen


_FROZEN = re.compile(r"\bthe\s+([a-z_][a-z0-9_]*)\s+(?:parameter\s+)?(?:is\s+|kept\s+)?frozen\b", re.IGNORECASE)


@lru_cache(maxsize=64)
def request_source_model(prompt: str) -> SourceModel | None:
    """The request's source model when it names exactly one `SkyModel` and writes out exactly one spectral
    model call; frozen parameters are those it says are frozen that the call sets."""
    text = " ".join(prompt.split())
    named = {name for cls, name in _NAMED.findall(text) if cls == "SkyModel"}
    spectral = [c for c in request_calls(prompt) if _callee(c).endswith("SpectralModel")]
    if len(named) != 1 or len(spectral) != 1:
        return None
    keywords = {kw.arg for kw in spectral[0].keywords}
    frozen = tuple(dict.fromkeys(p.lower() for p in _FROZEN.findall(text) if p.lower() in keywords))
    return SourceModel(next(iter(named)), ast.unparse(spectral[0]), frozen)


@dataclass(frozen=True)
class RequestFacts:
    """Everything the static stage reads from a request, read once: the RESULT keys it names, the statements
    it fixes for variables, the cone it selects observations in (its radius alone, and with the one position),
    the ON circle it describes, the library calls it writes out, its named source model, and whether it asks
    only for values the release's tables hold (`tables_only`: it names no analysis product)."""

    result_keys: tuple[str, ...] = ()
    definitions: dict[str, str] = field(default_factory=dict)
    cone_radius: float | None = None
    cone: tuple[float, float, float] | None = None
    circle: tuple[float, str] | None = None
    calls: tuple[str, ...] = ()
    source_model: SourceModel | None = None
    tables_only: bool = False
    numbers: frozenset[float] | None = None  # every number the request writes (absolute values); None: unread

    @property
    def positioned(self) -> bool:
        """The request gives a sky position (numbers or a known source) or a cone radius."""
        return self.cone_radius is not None or any(name in self.definitions for name in POSITION_NAMES)


def read_request(prompt: str, data_root: Path | None = None, result_keys: tuple[str, ...] = ()) -> RequestFacts:
    """The facts of one request (each reader is cached per prompt)."""
    return RequestFacts(result_keys=result_keys, definitions=request_definitions(prompt, data_root),
                        cone_radius=request_cone(prompt), cone=request_selection(prompt, data_root),
                        circle=request_circle(prompt), calls=request_call_texts(prompt),
                        source_model=request_source_model(prompt), tables_only=table_question(prompt),
                        numbers=frozenset(float(n) for n in re.findall(r"\d+(?:\.\d+)?", prompt)))
