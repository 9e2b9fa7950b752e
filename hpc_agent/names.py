"""The name index: what the installed Gammapy, astropy and friends really export, built once per process.

One source of truth for the three places that need it: repairs (an undefined `SkyCoord` becomes
`from astropy.coordinates import SkyCoord`), grounding (`DataStore.from_directory` does not exist; the
closest real names are listed) and the retrieval corpus (every public Gammapy name under its shortest
public dotted path). Everything is read by importing and introspecting the installed packages, never from
a hand-written list of Gammapy names, so the index follows the installed versions.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import inspect
import pkgutil
import sys
import threading
import warnings
from dataclasses import dataclass, field
from types import ModuleType
from typing import Iterator

# Conventional aliases: the name a script uses -> the import line that defines it.
ALIASES: dict[str, str] = {
    "np": "import numpy as np",
    "u": "import astropy.units as u",
    "plt": "import matplotlib.pyplot as plt",
    "fits": "from astropy.io import fits",
    "WCS": "from astropy.wcs import WCS",
    "Path": "from pathlib import Path",
    "Quantity": "from astropy.units import Quantity",
}
# Other packages whose public classes a script may use without importing them (a name in two is left alone).
THIRD_PARTY: tuple[str, ...] = ("astropy.coordinates", "astropy.table", "astropy.time", "astropy.io.fits", "regions")
# Standard-library modules small models use without importing them. Only modules, imported whole:
# `json.dumps` needs `import json`. (`datetime` is left out: module or class, it cannot be told apart.)
STDLIB: tuple[str, ...] = ("os", "sys", "json", "math", "re", "time", "glob", "shutil", "warnings", "logging",
                           "itertools", "functools", "collections", "statistics", "pathlib", "argparse", "random",
                           "copy", "textwrap", "subprocess", "tempfile", "csv", "gzip", "pickle", "string", "operator")
GAMMAPY = "gammapy"
SKIP_PARTS = ("tests", "conftest", "scripts")


def _public(name: str) -> bool:
    return not name.startswith("_")


def walk_modules(package: str) -> Iterator[ModuleType]:
    """The package and its public submodules (no `_private`, tests or scripts), imported quietly."""
    root = importlib.import_module(package)
    yield root
    for info in pkgutil.walk_packages(root.__path__, prefix=f"{package}."):
        parts = info.name.split(".")
        if any(p.startswith("_") or p in SKIP_PARTS for p in parts[1:]):
            continue
        module = import_quietly(info.name)  # None: an optional dependency missing, not usable here either
        if module is not None:
            yield module


def import_quietly(module: str) -> ModuleType | None:
    """The module, or None when it cannot be imported here (warnings of the import are not shown)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return importlib.import_module(module)
    except Exception:  # any failure of an import means: not usable here
        return None


def module_exists(dotted: str) -> bool:
    """Whether `dotted` names an importable module (imports its parent packages, not the module)."""
    try:
        return importlib.util.find_spec(dotted) is not None
    except (ImportError, ValueError):
        return False


def exported(module: ModuleType) -> list[str]:
    """A module's public names: its `__all__`, else what it defines itself."""
    names = getattr(module, "__all__", None)
    if names is None:
        names = [n for n, obj in vars(module).items()
                 if _public(n) and getattr(obj, "__module__", "") == module.__name__]
    return [n for n in names if _public(n)]


def public_names(package: str = GAMMAPY, modules: list[ModuleType] | None = None) -> dict[int, tuple[str, object]]:
    """id(object) -> (shortest public dotted name, object): every public class and function of `package`
    (`modules`: its walked modules, when the caller has them already)."""
    found: dict[int, tuple[str, object]] = {}
    for module in modules if modules is not None else walk_modules(package):
        for name in exported(module):
            obj = getattr(module, name, None)
            if obj is None or not (inspect.isclass(obj) or inspect.isfunction(obj)):
                continue
            if not getattr(obj, "__module__", "").startswith(package):
                continue  # re-exported astropy/numpy names are not this package's
            dotted = f"{module.__name__}.{name}"
            best = found.get(id(obj))
            if best is None or (dotted.count("."), len(dotted)) < (best[0].count("."), len(best[0])):
                found[id(obj)] = (dotted, obj)
    return found


def flat_name(name: str) -> str:
    """A name without case or underscores: `selectObsId`, `select_obs_id` and `datastore`/`data_store` meet."""
    return name.lower().replace("_", "")


def signature(obj: object) -> str:
    """`(a, b=1)` without `self`/`cls`; `(...)` when Python cannot tell."""
    if not callable(obj):  # what inspect.signature refuses with a TypeError
        return "(...)"
    try:
        sig = str(inspect.signature(obj))
    except (TypeError, ValueError):
        return "(...)"
    for first in ("(self, ", "(cls, "):
        if sig.startswith(first):
            return "(" + sig[len(first):]
    return "()" if sig in ("(self)", "(cls)") else sig


def first_doc_line(obj: object) -> str:
    doc = inspect.getdoc(obj) or ""
    return doc.strip().split("\n", 1)[0].strip()


def describe(owner: str, name: str, obj: object) -> str:
    """`` `owner.name(sig)` (first doc line)`` for a callable, `` `owner.name` (first doc line)`` otherwise."""
    callable_ = inspect.isroutine(obj) or inspect.isclass(obj)
    text = f"`{owner}.{name}{signature(obj) if callable_ else ''}`"
    doc = first_doc_line(obj).replace("`", "") if callable_ or isinstance(obj, property) else ""
    return f"{text} ({doc.rstrip('.')})" if doc else text


@dataclass
class NameIndex:
    """Where each public name lives, and which import line brings an undefined name in."""

    homes: dict[str, set[str]] = field(default_factory=dict)  # name -> modules exporting it (shortest paths)
    imports: dict[str, str] = field(default_factory=dict)  # undefined name -> the one import line that defines it
    modules: set[str] = field(default_factory=set)  # every importable public module walked

    def home(self, name: str) -> str | None:
        """The one module exporting `name` (None when unknown or ambiguous)."""
        found = self.homes.get(name, set())
        return next(iter(found)) if len(found) == 1 else None

    def import_for(self, name: str) -> str | None:
        return self.imports.get(name)

    def contained_class(self, name: str) -> str | None:
        """The longest public class name an invented one is built on (`EventListMaker` -> `EventList`): small
        models glue a real class to a word (Maker, Table, Reader); None when no class name of 5+ letters is in it."""
        flat = flat_name(name)
        inside = [c for c in self.homes if c[:1].isupper() and len(c) >= 5 and c != name and flat_name(c) in flat]
        return max(inside, key=len, default=None)

    def close_names(self, name: str, n: int = 3) -> list[str]:
        """Public names spelt like `name` (an invented class is often one letter or one word off)."""
        return difflib.get_close_matches(name, list(self.homes), n=n, cutoff=0.75)


def _add(index: NameIndex, name: str, module: str, objects: dict[str, int], obj: object) -> None:
    index.homes.setdefault(name, set()).add(module)
    objects.setdefault(name, id(obj))
    if objects[name] != id(obj):
        objects[name] = -1  # two different objects share the name: never auto-imported


def build_index() -> NameIndex:
    index = NameIndex()
    objects: dict[str, int] = {}  # name -> id of the one object it names (-1 when ambiguous)
    modules = list(walk_modules(GAMMAPY))  # walked once: the names and the module list come from it
    for dotted, obj in public_names(GAMMAPY, modules).values():
        module_name, name = dotted.rsplit(".", 1)
        _add(index, name, module_name, objects, obj)
    index.modules = {m.__name__ for m in modules}
    for package in THIRD_PARTY:
        module = import_quietly(package)
        if module is None:
            continue
        index.modules.add(package)
        top = package.split(".")[0]
        # classes only (functions such as `info` or `concatenate` are too generic to guess); star-imported
        # from private submodules, so there is no __all__ to read
        for name, obj in vars(module).items():
            if _public(name) and inspect.isclass(obj) and getattr(obj, "__module__", "").startswith(top):
                _add(index, name, package, objects, obj)
    for name, ident in objects.items():
        if ident != -1:
            index.imports[name] = f"from {sorted(index.homes[name], key=len)[0]} import {name}"
    for stdlib_module in STDLIB:
        if stdlib_module in sys.stdlib_module_names:
            index.imports.setdefault(stdlib_module, f"import {stdlib_module}")
    index.imports.update(ALIASES)
    for pkg in ("numpy", "astropy", "gammapy", "regions", "scipy", "matplotlib"):
        if module_exists(pkg):
            index.imports[pkg] = f"import {pkg}"
    return index


_INDEX: NameIndex | None = None
_LOCK = threading.Lock()


def name_index() -> NameIndex:
    """The process-wide index (built on first use: imports Gammapy's public modules, a few seconds)."""
    global _INDEX
    with _LOCK:
        if _INDEX is None:
            _INDEX = build_index()
        return _INDEX
