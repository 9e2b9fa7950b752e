"""How Gammapy's own tutorials define a variable: for a script that uses a name it never assigns.

Small models copy fragments of worked examples and leave out the cell that made a variable
(`energy_axis`, `dataset_empty`, `on_region`): the feedback then shows the statement the installed
version's tutorials assign it with. Read from the cached source distribution (`hpc-agent rag build`
fetches it); without it there are no such hints, never an error.
"""

from __future__ import annotations

import ast
import re
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version

from hpc_agent.config import cache_root
from hpc_agent.rag._sdist import Sdist, read_sdist, sdist_path

MAX_CHARS = 200  # one readable statement; longer ones are left out
# plotting, and the tutorials' own data paths (a script reads the release through PHOTON_STORAGE only)
_SKIP = re.compile(r"\bplt\b|\.plot|\.peek\(|display\(|get_ipython|\.show\(|GAMMAPY_DATA|make_path|\.fits|download")
_UNDEFINED = re.compile(r"undefined name '(\w+)'")


def _made_by_constructor(value: ast.expr) -> bool:
    """`X(...)` or `X.from_...(...)`: a statement that stands on its own, not a read of another object."""
    if not isinstance(value, ast.Call):
        return False
    func = value.func
    return isinstance(func, ast.Name) or (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name)
                                          and func.value.id[:1].isupper())


def definitions_in(sources: dict[str, str]) -> dict[str, str]:
    """name -> a top-level `name = ...` statement (short, written on one line, no plotting or data paths):
    the first made by a
    constructor or class method, else the first, in file order."""
    found: dict[str, str] = {}
    standalone: set[str] = set()
    for path in sorted(sources):
        try:
            tree = ast.parse(sources[path])
        except SyntaxError:
            continue
        for node in tree.body:
            if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
                continue
            name = node.targets[0].id
            text = " ".join((ast.get_source_segment(sources[path], node) or "").split())  # one line
            text = re.sub(r"([(\[{]) | ([)\]}])", r"\1\2", text)
            if name in standalone or name.startswith("_") or not text or len(text) > MAX_CHARS \
                    or _SKIP.search(text):
                continue
            if _made_by_constructor(node.value):
                standalone.add(name)
                found[name] = text
            else:
                found.setdefault(name, text)
    return found


@lru_cache(maxsize=1)
def tutorial_definitions() -> dict[str, str]:
    """The definitions of the installed Gammapy's tutorials (empty when its sdist is not cached)."""
    try:
        gammapy = version("gammapy")
    except PackageNotFoundError:
        return {}
    sdist = read_sdist(sdist_path(cache_root(), gammapy), gammapy)
    if not isinstance(sdist, Sdist):
        return {}
    return definitions_in({p: t for p, t in sdist.files.items()
                           if p.startswith("examples/tutorials/") and p.endswith(".py")})


def undefined_name_hints(static_errors: tuple[str, ...], importable: set[str],
                         definitions: dict[str, str] | None = None) -> tuple[str, ...]:
    """One hint per undefined variable (not an import) that the tutorials assign."""
    known = tutorial_definitions() if definitions is None else definitions
    names = dict.fromkeys(n for e in static_errors for n in _UNDEFINED.findall(e) if n not in importable)
    return tuple(f"`{n}` is used but never assigned; Gammapy's tutorials make it with `{known[n]}` (write it "
                 "with the values your request asks for, before its first use)" for n in names if n in known)
