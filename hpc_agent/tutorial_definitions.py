"""How Gammapy's own tutorials define a variable, and how they use a class: hints for failed scripts.

Small models copy fragments of worked examples and leave out the cell that made a variable
(`energy_axis`, `dataset_empty`, `on_region`): the feedback then shows the statement the installed
version's tutorials assign it with. They also call classes the way older versions did (`Fit(datasets=...)`,
`fit.result`): a line the grounding rejected gets, for each class it uses, how the tutorials make an instance
and call it (`fit = Fit()`, `result = fit.run(datasets=datasets)`). Read from the cached source distribution
(`hpc-agent rag build` fetches it); without it there are no such hints, never an error.
"""

from __future__ import annotations

import ast
import re
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterator
from importlib.metadata import PackageNotFoundError, version

from hpc_agent.config import cache_root
from hpc_agent.prompts import ERROR_LINE
from hpc_agent.rag._sdist import Sdist, read_sdist, sdist_path
from hpc_agent.syntax_repair import make_it_parse

MAX_CHARS = 200  # one readable statement; longer ones are left out
# plotting, and the tutorials' own data paths (a script reads the release through PHOTON_STORAGE only)
_SKIP = re.compile(r"\bplt\b|\.plot|\.peek\(|display\(|get_ipython|\.show\(|GAMMAPY_DATA|make_path|\.fits|download")
_UNDEFINED = re.compile(r"undefined name '(\w+)'")
MAX_CLASSES = 2  # usage hints per failed attempt


def _made_by_constructor(value: ast.expr) -> bool:
    """`X(...)` or `X.from_...(...)`: a statement that stands on its own, not a read of another object."""
    return isinstance(value, ast.Call) and (isinstance(value.func, ast.Name) or _class_called(value) is not None)


def _parse(source: str) -> ast.Module:
    """Parse a tutorial, quietly: their regex strings raise invalid-escape warnings that are not ours."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SyntaxWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        return ast.parse(source)


@lru_cache(maxsize=4)
def _lines(source: str) -> tuple[str, ...]:
    """The source's lines with their ends, split as `ast` splits them (no form feed)."""
    return tuple(re.findall(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$", source))


def _segment(source: str, node: ast.AST) -> str:
    """`ast.get_source_segment`, from lines split once per source: the stdlib splits the whole tutorial on
    every call, which was most of the tutorials' parse time."""
    lineno, end = getattr(node, "lineno", None), getattr(node, "end_lineno", None)
    col, end_col = getattr(node, "col_offset", None), getattr(node, "end_col_offset", None)
    if lineno is None or end is None or col is None or end_col is None:
        return ""
    lines = _lines(source)
    if lineno == end:
        return lines[lineno - 1].encode()[col:end_col].decode()
    first = lines[lineno - 1].encode()[col:].decode()
    last = lines[end - 1].encode()[:end_col].decode()
    return "".join([first, *lines[lineno:end - 1], last])


def _one_line(source: str, node: ast.AST) -> str:
    text = " ".join(_segment(source, node).split())
    return re.sub(r"([(\[{]) | ([)\]}])", r"\1\2", text)


def _usable(text: str) -> bool:
    return bool(text) and len(text) <= MAX_CHARS and not _SKIP.search(text)


def _class_called(value: ast.expr) -> str | None:
    """`C(...)` or `C.from_...(...)` with a capitalised `C`: C."""
    if not isinstance(value, ast.Call):
        return None
    func = value.func
    if isinstance(func, ast.Attribute):
        func = func.value
    return func.id if isinstance(func, ast.Name) and func.id[:1].isupper() else None


def _made_as(node: ast.AST) -> tuple[str, str] | None:
    """`v = C(...)` or `v = C.from_...(...)`: (v, C)."""
    if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name) \
            and (cls := _class_called(node.value)):
        return node.targets[0].id, cls
    return None


def _method_call_of(node: ast.stmt, var: str) -> ast.stmt | None:
    """The innermost statement in `node` that calls a method of `var` (a loop's body line, not the loop)."""
    for stmt in [n for n in ast.walk(node) if isinstance(n, ast.stmt)][::-1]:
        if not isinstance(stmt, (ast.For, ast.While, ast.If, ast.With, ast.Try)) and any(
                isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and isinstance(n.func.value, ast.Name)
                and n.func.value.id == var for n in ast.walk(stmt)):
            return stmt
    return None


def usages_in(sources: dict[str, str]) -> dict[str, tuple[str, str]]:
    """class name -> (the statement making an instance, the first later statement calling one of its methods),
    the first such pair in file order whose lines are short and free of plotting and data paths."""
    found: dict[str, tuple[str, str]] = {}
    for path in sorted(sources):
        try:
            body = _parse(sources[path]).body
        except SyntaxError:
            continue
        for i, node in enumerate(body):
            made = _made_as(node)
            if made is None or made[1] in found or not _usable(make := _one_line(sources[path], node)):
                continue
            var, cls = made
            for later in body[i + 1:]:
                if (rebound := _made_as(later)) is not None and rebound[0] == var:
                    break  # the name is rebound: later calls are another object's
                if (call := _method_call_of(later, var)) is not None:
                    use = _one_line(sources[path], call)
                    if _usable(use):
                        found[cls] = (make, use)
                    break
    return found


def definitions_in(sources: dict[str, str]) -> dict[str, str]:
    """name -> a top-level `name = ...` statement (short, written on one line, no plotting or data paths):
    the first made by a
    constructor or class method, else the first, in file order."""
    found: dict[str, str] = {}
    standalone: set[str] = set()
    for source, name, node in _assignments(sources):
        text = _one_line(source, node)
        if name in standalone or name.startswith("_") or not _usable(text):
            continue
        if _made_by_constructor(node.value):
            standalone.add(name)
            found[name] = text
        else:
            found.setdefault(name, text)
    return found


def _assignments(sources: dict[str, str]) -> Iterator[tuple[str, str, ast.Assign]]:
    """(source, name, statement) for each top-level `name = ...` of the tutorials that parse, in file order."""
    for path in sorted(sources):
        try:
            tree = _parse(sources[path])
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                yield sources[path], node.targets[0].id, node


def _names_only(call: ast.Call) -> bool:
    """Every argument a variable (or an attribute of one): the call carries no value of the tutorial's own."""
    values = [*call.args, *(kw.value for kw in call.keywords)]
    return all(isinstance(v, (ast.Name, ast.Attribute)) and isinstance(_root(v), ast.Name) for v in values)


def _root(node: ast.expr) -> ast.expr:
    while isinstance(node, ast.Attribute):
        node = node.value
    return node


def made_from_names_in(sources: dict[str, str]) -> dict[str, dict[str, str]]:
    """name -> {callee: statement}: how the tutorials make `name` with a constructor or class method, for
    each callee they use, when one of its statements passes only variables (`dataset_empty =
    SpectrumDataset.create(geom=geom, energy_axis_true=energy_axis_true)`; `MapDataset.create(...)` too).
    A callee the tutorials use only with values of their own makes the name's reading uncertain: left out."""
    callees: dict[str, set[str]] = {}
    found: dict[str, dict[str, str]] = {}
    for source, name, node in _assignments(sources):
        call = node.value
        if not (_made_by_constructor(call) and isinstance(call, ast.Call)):
            continue
        callee = ast.unparse(call.func)
        callees.setdefault(name, set()).add(callee)
        if _names_only(call) and (call.args or call.keywords) and _usable(_one_line(source, node)):
            found.setdefault(name, {}).setdefault(callee, f"{name} = {ast.unparse(call)}")
    return {n: made for n, made in found.items() if set(made) == callees[n] and not n.startswith("_")}


def made_from_names(name: str, bound: set[str], made: dict[str, dict[str, str]]) -> str | None:
    """The one statement the tutorials make `name` with, given the names a script binds: their only callee,
    or the only one of their callees whose class the script has (`SpectrumDataset` imported, not `MapDataset`)."""
    ways = made.get(name, {})
    if len(ways) == 1:
        return next(iter(ways.values()))
    mine = [stmt for callee, stmt in ways.items() if callee.split(".")[0] in bound]
    return mine[0] if len(mine) == 1 else None


def tutorial_made_from_names() -> dict[str, dict[str, str]]:
    """`made_from_names_in` of the installed Gammapy's tutorials (empty when its sdist is not cached)."""
    return _read(_sdist_key(), "made")


def tutorial_definitions() -> dict[str, str]:
    """The definitions of the installed Gammapy's tutorials (empty when its sdist is not cached)."""
    return _read(_sdist_key(), "definitions")


def tutorial_usages() -> dict[str, tuple[str, str]]:
    """How the installed Gammapy's tutorials make and call each class (empty without its sdist)."""
    return _read(_sdist_key(), "usages")


def _sdist_key() -> tuple[Path, str] | None:
    """(sdist path, version) of the installed Gammapy; None when Gammapy is not installed."""
    gammapy = _gammapy_version()
    return None if gammapy is None else (sdist_path(cache_root(), gammapy), gammapy)


@lru_cache(maxsize=1)
def _gammapy_version() -> str | None:
    try:  # read once: the installed version does not change under a running process (1 ms a lookup)
        return version("gammapy")
    except PackageNotFoundError:
        return None


@lru_cache(maxsize=12)
def _read(key: tuple[Path, str] | None, what: str) -> dict[str, Any]:
    """What the tutorials of one sdist define, made or call, read once per sdist path: a cache folder that
    changes within the process (tests, `HPC_AGENT_CACHE`) is read anew, not answered from another's."""
    tutorials = _tutorials_in(*key) if key is not None else {}
    readers: dict[str, Callable[[dict[str, str]], dict[str, Any]]] = {
        "made": made_from_names_in, "definitions": definitions_in, "usages": usages_in}
    return readers[what](tutorials)


@lru_cache(maxsize=4)
def _tutorials_in(path: Path, gammapy: str) -> dict[str, str]:
    """The tutorial scripts of the sdist at `path` (empty when it is not there)."""
    sdist = read_sdist(path, gammapy)
    if not isinstance(sdist, Sdist):
        return {}
    return {p: t for p, t in sdist.files.items() if p.startswith("examples/tutorials/") and p.endswith(".py")}


def usage_hints(script: str | None, static_errors: tuple[str, ...], importable: set[str],
                usages: dict[str, tuple[str, str]] | None = None) -> tuple[str, ...]:
    """For the classes used on the lines the grounding rejected (called there, or the class of a variable
    used there), how the tutorials make and call them."""
    known = tutorial_usages() if usages is None else usages
    try:
        tree = ast.parse(script or "")
    except SyntaxError:
        return ()
    made = {m[0]: m[1] for node in ast.walk(tree) if (m := _made_as(node))}
    lines = {int(hit.group(1)) for e in static_errors if (hit := ERROR_LINE.match(e))}
    classes: list[str] = []
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) not in lines:
            continue
        if isinstance(node, ast.Call) and (cls := _class_called(node)):
            classes.append(cls)
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in made:
            classes.append(made[node.value.id])
    wanted = [c for c in dict.fromkeys(classes) if c in known and c in importable][:MAX_CLASSES]
    return tuple(f"Gammapy's tutorials use `{c}` like this: `{known[c][0]}`, then `{known[c][1]}`" for c in wanted)


_CALL_START = re.compile(r"\b[A-Z]\w*(?:\.\w+)*\(")


def request_calls(request: str) -> list[ast.Call]:
    """The library calls a request writes out (`MapAxis.from_energy_bounds(1.0, 10.0, nbin=10, ...)`):
    each capitalised callee with its balanced arguments, kept when it parses as one Python call."""
    found = []
    for m in _CALL_START.finditer(request):
        depth, end = 0, None
        for i in range(m.end() - 1, len(request)):
            depth += {"(": 1, ")": -1}.get(request[i], 0)
            if depth == 0:
                end = i + 1
                break
        if end is None:
            continue
        written = " ".join(request[m.start():end].split())
        try:
            node = ast.parse(written, mode="eval").body
        except SyntaxError:  # `amplitude=1e-12 cm-2 s-1 TeV-1`: units in words, made code as in a script
            fixed, _ = make_it_parse(f"_ = {written}")
            try:
                node = ast.parse(fixed.removeprefix("_ = "), mode="eval").body
            except SyntaxError:
                continue
        if isinstance(node, ast.Call):
            found.append(node)
    return found


_KIND_WORDS = {"axis", "geom", "region", "map"}  # what a variable is, not which one: `energy_axis` -> `energy`


def name_keyword(call: ast.Call) -> object:
    return next((kw.value.value for kw in call.keywords if kw.arg == "name" and isinstance(kw.value, ast.Constant)),
                None)


def from_request(name: str, definition: str, calls: list[ast.Call]) -> str | None:
    """`name = <the request's call>` when the request writes out exactly one call of the callee the
    tutorials define `name` with (told apart by its `name=` keyword when several): the request's values."""
    try:
        first = _parse(definition).body[0]
    except (SyntaxError, IndexError):
        return None
    value = getattr(first, "value", None)  # an assignment's or expression's value
    if not isinstance(value, ast.Call):
        return None
    same = [c for c in calls if ast.unparse(c.func) == ast.unparse(value.func)]
    if len(same) > 1:  # told apart by `name=`: the tutorial's, or the variable's own words (`energy_axis_true`)
        own = "_".join(w for w in name.split("_") if w not in _KIND_WORDS)
        same = [c for c in same if name_keyword(c) == name_keyword(value)] or \
            [c for c in same if name_keyword(c) == own]
    return f"{name} = {ast.unparse(same[0])}" if len(same) == 1 else None


def undefined_name_hints(static_errors: tuple[str, ...], importable: set[str],
                         definitions: dict[str, str] | None = None, request: str = "") -> tuple[str, ...]:
    """One hint per undefined variable (not an import) that the tutorials assign: with the request's own
    call when it writes one out for it, else with the tutorial's statement."""
    known = tutorial_definitions() if definitions is None else definitions
    names = dict.fromkeys(n for e in static_errors for n in _UNDEFINED.findall(e) if n not in importable)
    calls = request_calls(request)
    hints = []
    for n in names:
        if n not in known:
            continue
        asked = from_request(n, known[n], calls)
        hints.append(f"`{n}` is used but never assigned; your request specifies it: `{asked}` (write it before "
                     "its first use)" if asked else
                     f"`{n}` is used but never assigned; Gammapy's tutorials make it with `{known[n]}` (write it "
                     "with the values your request asks for, before its first use)")
    return tuple(hints)
