"""API grounding: every import and attribute chain of a script resolved against the *installed* packages.

Resolution happens in the harness's own process by importing and introspecting (never by running the
script). A chain is followed from a name the script binds exactly once: an import of a known package
(`from gammapy.data import DataStore`), or a variable assigned once from a constructor or a `from_*`/`read`/
`create` class method of a known class (`ds = DataStore.from_dir(...)`, so `ds.get_obs` is caught). Whatever
cannot be typed that way is left alone: grounding only reports what is certainly missing, so a correct
script is never rejected. Each finding names the closest real names, with the best match's signature and
the first line of its docstring.
"""

from __future__ import annotations

import ast
import builtins
import difflib
import inspect
import re
from dataclasses import dataclass
from functools import lru_cache
from types import ModuleType
from typing import Any

from hpc_agent.data import column_meanings
from hpc_agent.flux_points import points_format, table_reads
from hpc_agent.names import NameIndex, describe, first_doc_line, signature
from hpc_agent.names import flat_name as _flat
from hpc_agent.names import import_quietly as _import
from hpc_agent.names import module_exists as _module_exists

# Top-level packages whose modules may be imported here to resolve names (installed, import without side
# effects). Anything else is only checked for existence.
RESOLVABLE = ("gammapy", "astropy", "numpy", "regions", "scipy", "os", "json", "math", "sys", "pathlib",
              "collections", "itertools", "functools", "re", "time", "datetime", "glob", "warnings", "statistics")
CONSTRUCTOR_PREFIXES = ("from_", "read", "create")
LITERALS: dict[type, type] = {ast.Tuple: tuple, ast.List: list, ast.Dict: dict, ast.Set: set, ast.ListComp: list,
                              ast.DictComp: dict, ast.SetComp: set, ast.JoinedStr: str}
NO_NETWORK = "the sandbox has no network"
NETWORK_FUNCTIONS = {  # module-level functions that fetch from the internet
    "astropy.utils.data.download_file": f"{NO_NETWORK}; read the data from PHOTON_STORAGE only",
    "astropy.utils.data.download_files_in_parallel": f"{NO_NETWORK}; read the data from PHOTON_STORAGE only",
    "astropy.coordinates.get_icrs_coordinates": f"{NO_NETWORK} (name resolvers fail); write the position as "
                                                "numbers, e.g. `SkyCoord(ra_deg, dec_deg, unit='deg')`",
}
NETWORK_MODULES = {
    "requests": f"{NO_NETWORK}; read the data from PHOTON_STORAGE only",
    "urllib.request": f"{NO_NETWORK}; read the data from PHOTON_STORAGE only",
    "astroquery": f"{NO_NETWORK}; write source positions as numbers, e.g. SkyCoord(ra, dec, unit='deg')",
}


@dataclass(frozen=True)
class Rename:
    """An attribute the script spells wrong with exactly one reading: where it ends and what it should be."""

    line: int  # of the attribute's end (1-based)
    end_col: int  # UTF-8 byte column where the attribute name ends
    old: str
    new: str
    note: str = ""  # what the edit does, when it is not a plain rename (`old` empty: `new` is inserted)


@dataclass(frozen=True)
class Finding:
    line: int
    message: str
    rename: Rename | None = None  # set when the fix has one reading (the static stage applies it)

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass(frozen=True)
class _Ref:
    """What an expression is known to be: a module, a class, an instance of a class, or a callable."""

    kind: str  # module | class | instance | callable | method (of an instance) | column | literal | none
    obj: Any
    label: str  # how the script spells it, for messages


def _network_calls() -> list[tuple[type, str, str]]:
    from astropy.coordinates import SkyCoord

    return [(SkyCoord, "from_name", f"{NO_NETWORK} (name resolvers fail); write the position as numbers, e.g. "
             "`SkyCoord(ra_deg, dec_deg, unit='deg', frame='icrs')`")]


@lru_cache(maxsize=1)
def _column_like() -> tuple[type, ...]:
    """What `table["UPPER_CASE"]` may be: a column, or (a table's meta is a dict too) a plain value."""
    import numpy as np
    from astropy.table import Column, MaskedColumn
    from astropy.units import Quantity

    return (Column, MaskedColumn, Quantity, np.ndarray, np.generic, str, int, float, bytes)


@lru_cache(maxsize=1)
def _network_functions() -> dict[int, tuple[str, str]]:
    """id(function) -> (name, why) for NETWORK_FUNCTIONS, however the script reaches them."""
    found = {}
    for dotted, why in NETWORK_FUNCTIONS.items():
        module, name = dotted.rsplit(".", 1)
        obj = getattr(_import(module), name, None)
        if obj is not None:
            found[id(obj)] = (name, why)
    return found


def _is_resolvable(module: str) -> bool:
    return module.split(".")[0] in RESOLVABLE


def _public_dir(obj: Any) -> list[str]:
    try:
        return [n for n in dir(obj) if not n.startswith("_")]
    except Exception:
        return []


ABSTRACT_BASES = ("collections.abc", "_collections_abc", "abc", "typing")


@lru_cache(maxsize=None)
def _instance_attrs(cls: type) -> frozenset[str] | None:
    """Attributes instances get in methods (`self.x = ...`), slots and annotations; None when unknowable
    (a dynamic `__getattr__`, or a base whose source Python cannot read, such as a C extension)."""
    names: set[str] = set()
    for klass in cls.__mro__:
        if klass is object or klass.__module__ in ABSTRACT_BASES:
            continue  # abstract bases define no instance attributes
        if "__getattr__" in vars(klass) or "__getattribute__" in vars(klass):
            return None
        names.update(getattr(klass, "__slots__", ()) if not isinstance(getattr(klass, "__slots__", ()), str) else ())
        names.update(getattr(klass, "__annotations__", {}) or {})
        try:
            source = inspect.getsource(klass)
        except (OSError, TypeError):
            return None
        names.update(re.findall(r"self\.(\w+)\s*(?::[^=\n]+)?=(?!=)", source))
        names.update(re.findall(r"setattr\(\s*self\s*,\s*[\"'](\w+)", source))
    return frozenset(names)


def _library_subclasses(cls: type) -> list[type]:
    """Every public subclass defined in a library module, breadth first."""
    seen: list[type] = []
    todo: list[type] = list(cls.__subclasses__())
    while todo:
        sub = todo.pop(0)
        if sub not in seen and not sub.__name__.startswith("_") and _library_class(sub):
            seen.append(sub)
        todo.extend(sub.__subclasses__())
    return seen


def _subclasses_with(cls: type, attr: str, limit: int = 3) -> str:
    """`Dataset.create` does not exist but `SpectrumDataset.create` does: name the subclasses that have it
    (a model reaching for the base class of what it means)."""
    found = [f"`{sub.__name__}.{attr}`" for sub in _library_subclasses(cls) if attr in vars(sub)][:limit]
    return f"; subclasses that have it: {', '.join(found)}" if found else ""


def _only_reading(attr: str, candidates: list[str]) -> str | None:
    """The one real name an invented one can only mean: the same name spelled in another case or without
    underscores (`getObservations`), else in the other grammatical number (`fluxes` -> `flux`), else the only
    name it is the start of (`select_obs_i` -> `select_obs_id`, at least 5 characters: shorter starts are too
    ambiguous); the same words in another order count as the same name."""
    same = [c for c in candidates if _flat(c) == _flat(attr)]
    if len(same) == 1:
        return same[0]
    words = sorted(attr.lower().split("_"))  # `safe_mask` -> `mask_safe`: the same words in another order
    reordered = [c for c in candidates if "_" in attr and c != attr and sorted(c.lower().split("_")) == words]
    if len(reordered) == 1:
        return reordered[0]
    number = {attr + "s", attr[:-1] if attr.endswith("s") else "", attr[:-2] if attr.endswith("es") else ""} - {""}
    plural = [c for c in candidates if c in number]  # `fluxes` -> `flux`, `obs_id` -> `obs_ids`
    if len(plural) == 1:
        return plural[0]
    starts = [c for c in candidates if c.startswith(attr)] if len(attr) >= 5 else []
    return starts[0] if len(starts) == 1 else None


_REDUCED = re.compile(r"^(mean|average|avg|median|min|max|sum|total|std|n|num|number_of)_(\w+)$")
_REDUCERS = {"mean": "np.mean", "average": "np.mean", "avg": "np.mean", "median": "np.median", "min": "np.min",
             "max": "np.max", "sum": "np.sum", "total": "np.sum", "std": "np.std", "n": "len",
             "num": "len", "number_of": "len"}


# The observation index columns of the GADF DL3 format (what `DataStore.obs_table` holds per observation).
OBS_INDEX_COLUMNS = ("OBS_ID", "RA_PNT", "DEC_PNT", "GLON_PNT", "GLAT_PNT", "ZEN_PNT", "ALT_PNT", "AZ_PNT",
                     "ONTIME", "LIVETIME", "DEADC", "TSTART", "TSTOP", "N_TELS", "OBJECT", "RA_OBJ", "DEC_OBJ",
                     "EVENT_COUNT", "QUALITY")


def _column_meaning(attr: str) -> str | None:
    """The one index column whose meaning has every word of `attr` (`zenith_angle` -> ZEN_PNT, "pointing zenith
    angle"; `column_meanings.yaml`); None when no column, or several, do."""
    words = {w.lower() for w in re.split(r"_|(?<=[a-z])(?=[A-Z])", attr) if w}
    if not words or all(len(w) < 4 for w in words):
        return None
    found = [c for c, meaning in column_meanings().get("obs_table", {}).items()
             if words <= set(re.findall(r"[a-z]+", meaning.lower()))]
    return found[0] if len(found) == 1 else None


def _elsewhere(owner: Any, attr: str) -> str:
    """Where a value a script asked a Gammapy object for does live: in each item of a collection
    (`Observations` -> each `Observation`'s `observation_live_time_duration`), and in the observation index
    when a column is named like it (`livetime` -> `LIVETIME`)."""
    out = ""
    item = _item_class(owner)
    if item is not None:
        names = [n for n in _public_dir(item) if _flat(attr) in _flat(n)]
        if names:
            out += (f"; it is a list of `{item.__name__}`, and each one has `.{names[0]}`: "
                    f"`[o.{names[0]} for o in ...]`")
    column = next((c for c in OBS_INDEX_COLUMNS if _flat(c) == _flat(attr)), None) or _column_meaning(attr)
    if column is not None:
        out += (f"; the observation index holds it per observation as the column `{column}`: "
                f"`selected[\"{column}\"]` of the selected rows of `data_store.obs_table`")
    return out


def _close_method(attr: str, cls: type, wanted: str = "") -> str | None:
    """The method of `cls` whose name the value's own name contains (`energy_flux_1_10tev =
    fit_result.integrate_model(...)` -> `energy_flux`: what the script calls the value says what it asked for),
    else the one spelt like `attr`, or sharing its first word (`integrate_model` -> `integral`)."""
    named = _named_method(cls, wanted)
    if named:
        return named
    names = [n for n in _public_dir(cls) if inspect.isroutine(getattr(cls, n, None))]
    close = difflib.get_close_matches(attr, names, n=1, cutoff=0.6)
    if close:
        return close[0]
    word = attr.split("_")[0]
    if len(word) < 5:
        return None
    first = difflib.get_close_matches(word, [n.split("_")[0] for n in names], n=1, cutoff=0.8)
    return next(n for n in names if n.split("_")[0] == first[0]) if first else None


def _in_words(name: str, wanted: str) -> bool:
    """Whether `name`'s words are whole consecutive words of `wanted` (`energy_flux` in `energy_flux_1_10tev`;
    `round` is in `background_irf` only as letters)."""
    words, inside = name.lower().split("_"), wanted.lower().split("_")
    return any(inside[i:i + len(words)] == words for i in range(len(inside) - len(words) + 1))


def _named_method(cls: type, wanted: str) -> str | None:
    """The longest method of `cls` (5 characters or more) whose name is words of the value's own name."""
    names = [n for n in _public_dir(cls) if len(n) >= 5 and _in_words(n, wanted) and inspect.isroutine(getattr(cls, n, None))]
    return max(names, key=len) if names else None


def _script_classes_with(attr: str, owner: type, classes: list[type], wanted: str = "", limit: int = 2) -> str:
    """`FitResult` has no `integrate_model`, and nothing on it is spelt like it, but the script's
    `PowerLawSpectralModel` has `integral`: a name invented on one object is often a method of another object
    the script made (the fit result asked for what the best-fit model computes)."""
    found = sorted(((_named_method(cls, wanted) is None, describe(cls.__name__, name, getattr(cls, name)))
                    for cls in dict.fromkeys(classes)
                    if cls is not owner and _library_class(cls) and (name := _close_method(attr, cls, wanted))),
                   key=lambda pair: pair[0])  # the classes with the method the value is named for first
    texts = [text for _, text in found]
    return f"; your script's other objects have {', '.join(texts[:limit])}" if texts else ""


def _script_classes_named(owner: type, classes: list[type], wanted: str, limit: int = 2) -> str:
    """`energy_flux_1_10tev = result.results["flux"][1] - ...`: `results` is spelt like `FitResult`'s
    `optimize_result`, but the value is named for `energy_flux`, a method of the script's spectral model (s46
    reflected-spectrum-crab, two turns). The methods of the script's other objects the value's name names."""
    found = [describe(cls.__name__, name, getattr(cls, name)) for cls in dict.fromkeys(classes)
             if cls is not owner and _library_class(cls) and (name := _named_method(cls, wanted))]
    return f"; `{wanted}` is named for {', '.join(found[:limit])}" if found else ""


def _parts_with(label: str, cls: type, attr: str, wanted: str = "") -> str:
    """`SkyModel` has no `integrate`, but its `spectral_model` (documented as a `SpectralModel`) has
    `integral`: Gammapy objects are made of parts, and a method asked of the whole is often one of a part."""
    found = [f"`{label}.{part}.{name}{signature(getattr(part_cls, name))}` (its `{part}` is a `{part_cls.__name__}`)"
             for part, part_cls in _parts(cls) if (name := _close_method(attr, part_cls, wanted))]
    return f"; a part of it has it: {', '.join(found[:2])}" if found else ""


def _parts(cls: type) -> list[tuple[str, type]]:
    """(attribute, documented class) of each part of a Gammapy object (`SkyModel.spectral_model`)."""
    found = []
    for part in _public_dir(cls):
        dotted = _attribute_doc_class(cls, part)
        part_cls = _class_named(dotted) if dotted and "." in dotted else None
        if part_cls is not None:
            found.append((part, part_cls))
    return found


def _named_part(label: str, cls: type, attr: str, wanted: str) -> str | None:
    """The whole message when a part's method is what the value is called (`energy_flux_1_10tev =
    model.integrate(...)`: `model.spectral_model.energy_flux`): one answer, before names spelt like `attr`
    that would compute something else (`integrate_geom`)."""
    for part, part_cls in _parts(cls):
        name = _named_method(part_cls, wanted)
        if name:
            shown = describe(f"{label}.{part}", name, getattr(part_cls, name))
            return (f"`{cls.__name__}` has no `{attr}`; `{wanted}` is what a part of it computes: {shown} (its "
                    f"`{part}` is a `{part_cls.__name__}`)")
    return None


def _item_class(owner: Any) -> type | None:
    """The item class of a library collection (`Observations` -> `Observation`)."""
    if not inspect.isclass(owner) or not owner.__name__.endswith("s"):
        return None
    item = getattr(_import(owner.__module__), owner.__name__[:-1], None)
    return item if inspect.isclass(item) and _collection_of(owner, item) else None


# How a result object's numbers are read, for an attribute invented on one: small models guess a list-like
# attribute (`lc.flux_points`, `lc.bins`), and a name spelt like theirs (`get_flux_points`) sends them further off.
READING: dict[str, str] = {
    "gammapy.estimators.points.core.FluxPoints":
        'its numbers are rows of its table: `table = {var}.to_table(format="lightcurve", sed_type="flux")` (one row per '
        'time bin; `format="gadf-sed"` for flux points, one row per energy bin), then `len(table)` and '
        '`np.ravel(table["flux"].quantity.to_value("cm-2 s-1"))`',
}


def _contains(attr: str, name: str) -> bool:
    """One name inside the other, ignoring case and underscores; a name of one or two letters (`SkyCoord.T`)
    is inside too many words to mean anything (the 1.5B, told `T`, wrote `Tzenith_angle`)."""
    a, n = _flat(attr), _flat(name)
    return len(n) >= 3 and (a in n or n in a)


def _suggest(owner_label: str, owner: Any, attr: str, candidates: list[str]) -> str:
    elsewhere = _elsewhere(owner, attr)
    if elsewhere and not any(_contains(attr, c) for c in candidates):
        return f"`{owner_label}` has no `{attr}`{elsewhere}"  # where it is, not names spelt a bit like it
    return _suggest_names(owner_label, owner, attr, candidates) + elsewhere


def _suggest_names(owner_label: str, owner: Any, attr: str, candidates: list[str]) -> str:
    m = _REDUCED.match(attr)
    if m and m.group(2) in candidates:  # `lc.mean_flux`: no attribute reduces for you
        reducer = _REDUCERS[m.group(1)]
        return (f"`{owner_label}` has no `{attr}`: no attribute computes it for you; take `.{m.group(2)}` and "
                f"reduce its values yourself (`{reducer}(...)`)")
    only = _only_reading(attr, candidates)
    contained = [c for c in candidates if _contains(attr, c)]  # `livetime` -> `observation_live_time_duration` first
    contained.sort(key=lambda c: -difflib.SequenceMatcher(None, attr, c).ratio())
    close = list(dict.fromkeys(([only] if only else []) + contained
                               + difflib.get_close_matches(attr, candidates, n=3, cutoff=0.5)))[:3]
    if not close:
        listed = ", ".join(sorted(candidates)[:25])
        return f"`{owner_label}` has no `{attr}`; its public names: {listed}" if listed else \
            f"`{owner_label}` has no `{attr}`"
    best = close[0]
    try:
        obj = inspect.getattr_static(owner, best)
        obj = getattr(owner, best) if not isinstance(obj, property) else obj
    except AttributeError:
        obj = None
    shown = describe(owner_label, best, obj) if obj is not None else f"`{owner_label}.{best}`"
    more = f"; or {', '.join('`' + c + '`' for c in close[1:])}" if close[1:] else ""
    return f"`{owner_label}` has no `{attr}`; did you mean {shown}{more}"


class _Grounder(ast.NodeVisitor):
    def __init__(self, tree: ast.Module, index: NameIndex | None) -> None:
        self.index = index
        self.findings: list[Finding] = []
        self.bound = _binding_counts(tree)
        self.refs: dict[str, _Ref] = {}
        self.network = _network_calls()
        self._reported: set[tuple[int, str]] = set()
        self.table_reads = table_reads(tree)
        self.points_format = points_format(tree)
        self.wanted = _value_names(tree)
        # id of an attribute node -> the attribute read from it next (`r.result` -> `models` in `r.result.models`)
        self.next_attr = {id(n.value): n.attr for n in ast.walk(tree)
                          if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Attribute)}

    def report(self, line: int, message: str, rename: Rename | None = None) -> None:
        if (line, message) not in self._reported:
            self._reported.add((line, message))
            self.findings.append(Finding(line, message, rename))

    # --- bindings -----------------------------------------------------------------------------------------

    def _bind(self, name: str, ref: _Ref | None) -> None:
        if ref is not None and self.bound.get(name, 0) == 1:
            self.refs[name] = ref

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._check_network(node.lineno, alias.name)
            if not _is_resolvable(alias.name):
                if not _module_exists(alias.name.split(".")[0]):
                    self.report(node.lineno, f"no module named `{alias.name}` is installed")
                continue
            if _import(alias.name) is None:
                self.report(node.lineno, self._missing_module(alias.name))
                continue
            top = alias.name if alias.asname else alias.name.split(".")[0]
            module = _import(top)
            self._bind(alias.asname or top, _Ref("module", module, alias.asname or top))

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level or not node.module:
            return
        self._check_network(node.lineno, node.module)
        if not _is_resolvable(node.module):
            if not _module_exists(node.module.split(".")[0]):
                self.report(node.lineno, f"no module named `{node.module}` is installed")
            return
        module = _import(node.module)
        if module is None:
            self.report(node.lineno, self._missing_module(node.module))
            return
        for alias in node.names:
            if alias.name == "*":
                continue
            name = alias.asname or alias.name
            if hasattr(module, alias.name):
                obj = getattr(module, alias.name)
            elif _module_exists(f"{node.module}.{alias.name}"):
                obj = _import(f"{node.module}.{alias.name}")
            else:
                self.report(node.lineno, self._missing_import(node.module, module, alias.name))
                continue
            for cls, attr, why in self.network:
                if getattr(cls, attr, None) is obj:
                    self.report(node.lineno, f"`{alias.name}`: {why}")
            self._check_network_function(node.lineno, f"{node.module}.{alias.name}", obj)
            self._bind(name, _ref_for(obj, name))

    def _missing_module(self, dotted: str) -> str:
        parent, _, leaf = dotted.rpartition(".")
        known = sorted(self.index.modules) if self.index else []
        close = difflib.get_close_matches(dotted, known, n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join('`' + c + '`' for c in close)}" if close else ""
        if self.index and self.index.home(leaf):
            hint = f"; `{leaf}` is in `{self.index.home(leaf)}`"
        return f"no module named `{dotted}`{hint}"

    def _missing_import(self, module_name: str, module: ModuleType, name: str) -> str:
        candidates = _public_dir(module)
        built_on = self.index.contained_class(name) if self.index else None
        home = self.index.home(built_on) if self.index and built_on else None
        if built_on and home and built_on not in candidates and len(built_on) >= 0.6 * len(name) \
                and not any(len(c) >= len(built_on) and _flat(c) in _flat(name) for c in candidates):
            # `from gammapy.makers import EventListMaker`: the real class in its name, not the module's `Maker`
            shown = describe(home, built_on, getattr(_import(home), built_on, None))
            return f"`{module_name}` has no `{name}`; the real class in that name is {shown}: `from {home} import {built_on}`"
        message = _suggest(module_name, module, name, candidates)
        if self.index:
            elsewhere = [f"`from {h} import {c}`" for c in self.index.close_names(name) for h in self.index.homes[c]
                         if c != name][:3]
            if elsewhere and "did you mean" not in message:
                message += f"; close names elsewhere: {', '.join(elsewhere)}"
        return message

    def _check_network_function(self, line: int, label: str, obj: Any) -> None:
        found = _network_functions().get(id(obj))
        if found is not None:
            self.report(line, f"`{found[0]}`: {found[1]}")

    def _check_network(self, line: int, module: str) -> None:
        for bad, why in NETWORK_MODULES.items():
            if module == bad or module.startswith(bad + "."):
                self.report(line, f"`{module}`: {why}")

    def visit_Assign(self, node: ast.Assign) -> None:
        ref = self.resolve(node.value)
        for target in node.targets:
            self.visit(target)
        if len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            literal = LITERALS.get(type(node.value))
            if literal is None and isinstance(node.value, ast.Constant) and node.value.value is not None:
                literal = type(node.value.value)
            if literal is not None:  # `x = a, b` is a tuple whatever a and b are
                ref = _Ref("literal", literal, node.targets[0].id)
            self._bind(node.targets[0].id, ref if ref is not None and ref.kind in ("instance", "literal") else None)

    # --- uses ---------------------------------------------------------------------------------------------

    def visit_Attribute(self, node: ast.Attribute) -> None:
        self.resolve(node)

    def visit_Call(self, node: ast.Call) -> None:
        self.resolve(node)

    def visit_Subscript(self, node: ast.Subscript) -> None:
        self.resolve(node)

    def resolve(self, node: ast.AST) -> _Ref | None:
        """What `node` is, when it can be known for certain; reports what certainly does not exist.
        Visits every sub-expression once."""
        if isinstance(node, ast.Name):
            ref = self.refs.get(node.id)
            return ref if ref is None or ref.kind != "instance" else _Ref(ref.kind, ref.obj, node.id)
        if isinstance(node, ast.Attribute):
            base = self.resolve(node.value)
            return None if base is None else self._attribute(node, base)
        if isinstance(node, ast.Call):
            if isinstance(node.func, ast.Name) and node.func.id == "print" and "print" not in self.bound:
                for arg in node.args:
                    self.visit(arg)
                return _Ref("none", None, "print(...)")
            func = self.resolve(node.func)
            for arg in node.args:
                self.visit(arg)
            for kw in node.keywords:
                self.visit(kw.value)
            if func is None:
                return None
            if func.kind in ("class", "callable", "method"):
                self._check_call(node, func)
            if func.kind == "class":
                return _Ref("instance", func.obj, f"{func.label}(...)")
            owner = getattr(func.obj, "__self__", None)
            name = getattr(func.obj, "__name__", "")
            if inspect.isclass(owner) and name.startswith(CONSTRUCTOR_PREFIXES):
                return _Ref("instance", owner, f"{func.label}(...)")
            returned = _doc_return(func.obj, self.index) if func.kind in ("method", "callable") else None
            return _Ref("instance", returned, f"{func.label}(...)") if returned is not None else None
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant) \
                and isinstance(node.slice.value, str) and re.fullmatch(r"[A-Z][A-Z0-9_\-]*", node.slice.value):
            # `table["RA_PNT"]`: a column, when the subscripted thing is a table (typed, or named like one)
            base = self.resolve(node.value)
            from astropy.table import Table

            typed = base is not None and base.kind == "instance" and issubclass(base.obj, Table)
            if base is not None and base.kind == "instance" and not typed \
                    and base.obj.__module__.startswith("gammapy") and len(node.slice.value) >= 3:
                self.report(node.lineno, f"`{base.label}` is a `{base.obj.__name__}` ({first_doc_line(base.obj).rstrip('.')}), "
                            f"not a table: it has no column {node.slice.value!r}. Columns are read from an astropy "
                            "Table such as `data_store.obs_table` (per selected observation: "
                            f"`selected[{node.slice.value!r}]`)")
                return None
            if typed or re.search(r"table|events", ast.unparse(node.value), re.IGNORECASE):
                return _Ref("column", None, f"{ast.unparse(node.value)}[{node.slice.value!r}]")
            return None
        self.generic_visit(node)
        return None

    def _attribute(self, node: ast.Attribute, base: _Ref) -> _Ref | None:
        attr, label = node.attr, f"{base.label}.{node.attr}"
        obj = base.obj
        if not isinstance(node.ctx, ast.Load):
            return None  # setting a new attribute is legal
        if base.kind == "none":
            self.report(node.lineno, f"`print(...)` returns None, so it has no `{attr}`; format the text first, "
                        "e.g. `print(\"RESULT \" + json.dumps(result))`")
            return None
        if base.kind == "literal":
            if not hasattr(obj, attr):
                hint = (" (build a SkyCoord from the columns: `pointing = SkyCoord(table['RA_PNT'], table['DEC_PNT'], "
                        "unit='deg', frame='icrs')`)" if attr == "separation" else "")
                self.report(node.lineno, f"`{base.label}` is a {obj.__name__}, which has no `{attr}`{hint}")
            return None
        if base.kind == "column":
            if attr in ("quantity", "data", "value"):  # the column's numbers, still an array: no sky methods
                return _Ref("column", None, label)
            if not any(hasattr(t, attr) for t in _column_like()):
                numpy = _import("numpy")
                fix = (f"numpy computes it: `np.{attr}({base.label})`" if callable(getattr(numpy, attr, None)) else
                       "wrap columns first, e.g. `SkyCoord(table['RA_PNT'], table['DEC_PNT'], unit='deg')"
                       ".separation(source)`, or `table['LIVETIME'].quantity`")
                self.report(node.lineno, f"a table column such as `{base.label}` is an array (astropy Column) and "
                            f"has no `{attr}`; {fix}")
            return None
        if base.kind == "module":
            if hasattr(obj, attr):
                found = getattr(obj, attr)
                self._check_network_function(node.lineno, f"{obj.__name__}.{attr}", found)
                return _ref_for(found, label)
            sub = f"{obj.__name__}.{attr}"
            if _is_resolvable(sub) and _module_exists(sub):
                return _ref_for(_import(sub), label)  # imported by the repairs when the script did not
            self.report(node.lineno, _suggest(base.label, obj, attr, _public_dir(obj)))
            return None
        if base.kind in ("class", "instance"):
            cls = obj
            for net_cls, net_attr, why in self.network:
                if attr == net_attr and issubclass(cls, net_cls):
                    self.report(node.lineno, f"`{label}`: {why}")
            try:
                static = inspect.getattr_static(cls, attr)
            except AttributeError:
                static = None
            forward = next((to for frm, to in _forwards() if issubclass(cls, frm)), None)
            if static is None and forward is not None and base.kind == "instance":
                try:  # `SkyCoord.__getattr__` hands the frame's methods on: `pos.separation`
                    static, cls = inspect.getattr_static(forward, attr), forward
                except AttributeError:
                    return None
            if static is not None and base.kind == "class" and isinstance(static, property) \
                    and self.next_attr.get(id(node)) is not None:
                # `SkyModel.spectral_model.energy_flux(...)`: the class hands out the property object itself
                mine = [name for name, r in self.refs.items() if r.kind == "instance" and r.obj is cls]
                yours = f"`{mine[0]}.{attr}`" if mine else f"`<your {cls.__name__}>.{attr}`"
                self.report(node.lineno, f"`{label}` is read from the class, where `{attr}` is a property, not a "
                            f"value: read it from the `{cls.__name__}` object the script made, {yours}")
                return None
            if static is not None:
                value = getattr(cls, attr, None)
                if base.kind == "instance" and inspect.isroutine(value) \
                        and not isinstance(static, (classmethod, staticmethod)):
                    return _Ref("method", value, label)  # called through an instance: `self` is bound
                if inspect.isroutine(value) or inspect.isclass(value):
                    return _ref_for(value, label)
                return None  # a property or attribute: its type is not known here
            known = _instance_attrs(cls)
            if known is None:
                return None
            if attr in known:
                typed = _attribute_class(cls, attr, self.index) if base.kind == "instance" else None
                return _Ref("instance", typed, label) if typed is not None else None
            owner = cls.__name__
            if base.kind == "class" and attr in _public_dir(cls):
                return None
            candidates = sorted(set(_public_dir(cls)) | {k for k in known if not k.startswith("_")})
            only = _only_reading(attr, candidates)
            rename = Rename(node.end_lineno or node.lineno, node.end_col_offset or 0, attr, only) if only else None
            after = self.next_attr.get(id(node))
            if only is None and after in candidates and after not in ("copy", "to_dict", "write"):
                # `fit_result.result.models`: the invented link stands before what the owner itself has
                rename = Rename(node.end_lineno or node.lineno, node.end_col_offset or 0, f".{attr}", "",
                                note=f"line {node.lineno}: `{owner}` has no `{attr}` but has `{after}` itself: "
                                     f"read `{base.label}.{after}`")
            reading = READING.get(f"{cls.__module__}.{cls.__qualname__}") if only is None else None
            message = _suggest(owner, cls, attr, candidates) + _subclasses_with(cls, attr)
            wanted, holder = self.wanted.get(id(node), ""), base.label if base.kind == "instance" else owner
            if only is None:
                message = _named_part(holder, cls, attr, wanted) or message + _parts_with(holder, cls, attr, wanted)
            classes = [r.obj for r in self.refs.values() if r.kind == "class"]
            if only is None and not difflib.get_close_matches(attr, candidates, cutoff=0.5):
                message += _script_classes_with(attr, cls, classes, wanted)
            elif only is None and wanted:  # spelt like a real name, but the value is named for another object's method
                message += _script_classes_named(cls, classes, wanted)
            if reading and base.kind == "instance":  # a misspelling keeps its "did you mean"; a guess gets the idiom
                idiom = reading.format(var=base.label)
                spelt = [c for c in difflib.get_close_matches(attr, candidates, cutoff=0.8) if abs(len(c) - len(attr)) <= 2]
                reduced = _REDUCED.match(attr)
                if spelt:
                    message += f"; or, {idiom}"
                elif reduced:  # `lc.mean_flux`: computed by no attribute, so say where the numbers are
                    message = (f"`{owner}` has no `{attr}`: no attribute computes it for you; {idiom}, reduced "
                               f"yourself (`{_REDUCERS[reduced.group(1)]}(...)`)")
                else:
                    message = f"`{owner}` has no `{attr}`; {idiom}"
                sed = self.table_reads.get(id(node))
                if sed is not None and self.points_format is not None and not spelt and not reduced:
                    fmt, rows = self.points_format
                    new = f'to_table(format="{fmt}", sed_type="{sed}")'
                    rename = Rename(node.end_lineno or node.lineno, node.end_col_offset or 0, attr, new,
                                    note=f"line {node.lineno}: read `{label}` from `{base.label}.{new}`: the numbers "
                                         f"of a FluxPoints are rows of its table, one per {rows} bin")
            self.report(node.lineno, message, rename)
            return None
        return None

    def _check_call(self, node: ast.Call, func: _Ref) -> None:
        """Keywords the callee does not take, arguments it needs and did not get, and a typed object passed
        where the docstring asks for a plain list/number/string."""
        try:
            sig = inspect.signature(func.obj)
        except (TypeError, ValueError):
            return
        params = list(sig.parameters.values())
        if func.kind == "method" and params:
            sig = sig.replace(parameters=params[1:])
        shown = f"`{func.label}{signature(func.obj)}`"
        params = list(sig.parameters.values())
        names = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        takes_any = any(p.kind is p.VAR_KEYWORD for p in params)
        model_parameters = _model_parameters(func.obj) if func.kind == "class" else None
        if model_parameters is not None:  # `PowerLawSpectralModel(**kwargs)` takes its parameters only
            names, takes_any = names | set(model_parameters), False
        given = {kw.arg for kw in node.keywords}
        unknown = [kw for kw in node.keywords if kw.arg is not None and kw.arg not in names]
        for kw in ([] if takes_any else unknown):
            arg = kw.arg or ""
            close = difflib.get_close_matches(arg, sorted(names), n=1, cutoff=0.5)
            hint = f"; did you mean `{close[0]}`" if close else ""
            if model_parameters is not None:
                first = next(iter(model_parameters), "index")
                hint += (f"; its parameters are {', '.join(f'`{n}`' for n in model_parameters[:-1])}"
                         + (f"; to freeze one, set it after: `model.{first}.frozen = True`" if arg == "frozen" else ""))
            only = _only_reading(arg, sorted(names - given))  # `selection=` -> `selections=`
            rename = Rename(kw.lineno, kw.col_offset + len(arg.encode()), arg, only) if only else None
            self.report(node.lineno, f"`{func.label}()` takes no keyword `{arg}`{hint}; signature: {shown}", rename)
        if (unknown and not takes_any) or any(isinstance(a, ast.Starred) for a in node.args) \
                or any(kw.arg is None for kw in node.keywords):
            return
        try:
            bound = sig.bind(*node.args, **{kw.arg: kw.value for kw in node.keywords if kw.arg})
        except TypeError as e:
            self.report(node.lineno, f"`{func.label}()` cannot be called like this ({e}); signature: {shown}")
            return
        for name, value in bound.arguments.items():
            if isinstance(value, ast.expr):  # an argument's node (not a tuple of *args, a dict of **kwargs)
                self._check_argument_type(node.lineno, func, name, value, shown)

    def _check_argument_type(self, line: int, func: _Ref, param: str, value: ast.expr, shown: str) -> None:
        if isinstance(value, ast.Subscript):
            ref = self.resolve(value)
            if ref is not None and ref.kind == "column":
                self._check_column_argument(line, func, param, value, shown)
            return
        ref = self.resolve(value) if isinstance(value, (ast.Name, ast.Call)) else None
        if ref is None or ref.kind != "instance" or not _library_class(ref.obj):
            return
        wanted = _doc_type(func.obj, param)
        if wanted is None:
            return
        one = _ONE_CLASS.fullmatch(re.sub(r",?\s*optional$", "", wanted.strip()))
        item = _class_named(one.group(1)) if one else None
        if item is not None and _collection_of(ref.obj, item):  # `maker.run(dataset, observations)`
            shown_value = ast.unparse(value)
            single = _asks_for_one(value)  # `get_observations([obs_id])`: the one item it holds is meant
            fix = Rename(value.end_lineno or line, value.end_col_offset or 0, "", "[0]",
                         f"took the one `{item.__name__}` of `{shown_value}` on line {line} (`{shown_value}[0]`): "
                         f"`{func.label}()` takes one") if single else None
            self.report(line, f"`{func.label}()` takes `{param}` as one `{item.__name__}`, not a "
                        f"`{ref.obj.__name__}` (`{shown_value}` holds several): call it once per item, "
                        f"`for {param} in {shown_value}:`; signature: {shown}", fix)
            return
        if isinstance(value, ast.Call):
            return
        if one:  # exactly one class documented: an instance of an unrelated library class is wrong
            named = _class_named(one.group(1))
            if named is None or issubclass(ref.obj, named) or issubclass(named, ref.obj) \
                    or ref.obj.__module__.split(".")[0] == named.__module__.split(".")[0]:
                return  # the same package converts its own kinds often enough (a Map for a geom...): not certain
        else:
            words = {w.lower() for w in re.findall(r"[A-Za-z_][\w.]*", wanted)}
            plain = words <= PLAIN_TYPE_WORDS and words & PLAIN_TYPES.keys()
            if not plain or issubclass(ref.obj, tuple(PLAIN_TYPES[w] for w in words if w in PLAIN_TYPES)) \
                    or hasattr(ref.obj, "__iter__"):
                return
        wanted = re.sub(r",?\s*optional\b", "", wanted).strip(" ,")
        self.report(line, f"`{func.label}()` takes `{param}` as {wanted}, not a `{ref.obj.__name__}` "
                    f"(`{ast.unparse(value)}`); signature: {shown}")

    def _check_column_argument(self, line: int, func: _Ref, param: str, value: ast.expr, shown: str) -> None:
        """A table column (an array) passed where the docstring names only non-array classes."""
        wanted = _doc_type(func.obj, param)
        if wanted is None or re.search(ARRAY_WORDS, re.sub(r"`[^`]*`", "", wanted), re.IGNORECASE):
            return
        named = [_class_named(d) for d in re.findall(r"`~?([\w.]+)`", wanted)]
        import numpy as np

        if not named or any(c is None or issubclass(c, np.ndarray) for c in named):
            return
        hint = (" Build a SkyCoord from the columns first: `pointing = SkyCoord(table['RA_PNT'], table['DEC_PNT'], "
                "unit='deg', frame='icrs')`." if any("Coord" in c.__name__ or "Frame" in c.__name__
                                                    for c in named if c is not None) else "")
        wanted = re.sub(r",?\s*optional\b", "", wanted).strip(" ,")
        self.report(line, f"`{func.label}()` takes `{param}` as {wanted}, not a table column (`{ast.unparse(value)}` "
                    f"is an array of numbers).{hint} Signature: {shown}")


def _model_parameters(cls: Any) -> tuple[str, ...] | None:
    """The keywords a Gammapy model class takes when its constructor is `ModelBase.__init__`, which raises
    `NameError: Unknown Parameter name` for any other: its parameters' names (and `covariance_data`)."""
    try:
        from gammapy.modeling.models.core import ModelBase
    except ImportError:
        return None
    if not (inspect.isclass(cls) and issubclass(cls, ModelBase) and cls.__init__ is ModelBase.__init__):
        return None
    try:
        # getattr: narrowed by the checks above, mypy sees `cls` as type[object], without the attribute
        return (*getattr(cls, "default_parameters").names, "covariance_data")
    except AttributeError:
        return None


def _asks_for_one(call: ast.AST) -> bool:
    """A call on one line whose only argument is a list or tuple of one element: it makes a collection
    of exactly one item."""
    return (isinstance(call, ast.Call) and call.lineno == call.end_lineno and len(call.args) == 1
            and not call.keywords and isinstance(call.args[0], (ast.List, ast.Tuple)) and len(call.args[0].elts) == 1
            and not isinstance(call.args[0].elts[0], ast.Starred))


def _collection_of(collection: type, item: type) -> bool:
    """A library collection of `item`s (`Observations` of `Observation`, `Datasets` of `Dataset`): named as
    their plural, indexable, and not an item itself."""
    return (collection.__name__ == f"{item.__name__}s" and hasattr(collection, "__getitem__")
            and not issubclass(collection, item))


ARRAY_WORDS = r"\b(array|like|float|int|number|quantity|column|list|str|sequence|scalar|angle|ndarray)"


@lru_cache(maxsize=None)
def _forwards() -> tuple[tuple[type, type], ...]:
    """Classes whose `__getattr__` hands on another class's methods."""
    from astropy.coordinates import BaseCoordinateFrame, SkyCoord

    return ((SkyCoord, BaseCoordinateFrame),)


def _class_named(dotted: str) -> type | None:
    module, _, name = dotted.rpartition(".")
    found = getattr(_import(module), name, None) if module and _is_resolvable(module) else None
    return found if inspect.isclass(found) else None


# Docstring type words of a plain Python value, and what satisfies them.
PLAIN_TYPES: dict[str, type | tuple[type, ...]] = {
    "list": (list, tuple), "tuple": (list, tuple), "int": int, "integer": int, "float": (int, float),
    "str": str, "string": str, "bool": bool, "dict": dict}
PLAIN_TYPE_WORDS = set(PLAIN_TYPES) | {"of", "or", "optional", "none", "default"}


_RETURNS = re.compile(r"^Returns\n-+\n(?:\w+\s*:\s*)?`~?([\w.]+)`\s*$", re.MULTILINE)


def _doc_return(obj: Any, index: NameIndex | None) -> type | None:
    """The class a function's numpydoc `Returns` section names as its only type (`observations :
    `~gammapy.data.Observations``), when that resolves to an installed class that has no subclasses."""
    m = _RETURNS.search(inspect.getdoc(obj) or "")
    return _certain_class(m.group(1), index) if m else None


def _certain_class(dotted: str, index: NameIndex | None) -> type | None:
    """A documented class name (`~gammapy.data.Observations`, or a bare `Observations`) as the installed
    class, when it has no subclasses: a documented base class (`Dataset`, `Geom`) often stands for a
    subclass with more names, so only a leaf class says what the object certainly is."""
    if "." not in dotted and index is not None:
        dotted = f"{index.home(dotted) or ''}.{dotted}"
    found = _class_named(dotted)
    return found if found is not None and not found.__subclasses__() else None


_ONE_CLASS = re.compile(r"`~?([\w.]+)`")  # a numpydoc type naming exactly one class (with `fullmatch`)


@lru_cache(maxsize=None)
def _attribute_doc_class(cls: type, attr: str) -> str | None:
    """The class name the class docstring documents for the constructor parameter that `__init__` stores as
    the instance attribute of the same name (`DataStore.obs_table` -> `~gammapy.data.ObservationTable`)."""
    for klass in cls.__mro__:
        if not _library_class(klass) or "__init__" not in vars(klass):
            continue
        try:
            constructor = getattr(klass, "__init__")  # not `klass.__init__`: mypy calls that unsound on a `type`
            init = inspect.getsource(constructor)
            params = inspect.signature(constructor).parameters
        except (OSError, TypeError, ValueError):
            continue
        if attr not in params or not re.search(rf"self\.{attr}\s*=(?!=)", init):
            continue
        m = _ONE_CLASS.fullmatch(_doc_type(klass, attr) or "")
        return m.group(1) if m else None
    return None


def _attribute_class(cls: type, attr: str, index: NameIndex | None) -> type | None:
    """That documented class, when it is certain (`_certain_class`)."""
    dotted = _attribute_doc_class(cls, attr)
    return _certain_class(dotted, index) if dotted else None


def _library_class(cls: Any) -> bool:
    return inspect.isclass(cls) and cls.__module__.split(".")[0] in ("gammapy", "astropy", "regions")


def _doc_type(obj: Any, param: str) -> str | None:
    """The numpydoc type of `param` (`obs_id : list` -> `list`), from the callee's or its class's docstring."""
    doc = inspect.getdoc(obj) or ""
    m = re.search(rf"^\s*{re.escape(param)}\s*:\s*(.+)$", doc, re.MULTILINE)
    if m is None:
        return None
    return re.sub(r"\bdefault\b.*$", "", m.group(1)).strip(" ,")


_NO_ATTRIBUTE = re.compile(r"AttributeError: '(\w+)' object has no attribute '(\w+)'")


_SENTENCE = re.compile(r"(?<=[.!?:])\s+(?=[A-Z])")


def request_source(owner: str, cls: type, attr: str, request: str) -> str | None:
    """Where the request itself says `attr` comes from: a sentence naming `attr` and a method of `cls`
    (`... the stacked dataset's info_dict() returns as "counts", "excess" and "sqrt_ts"`): that method, with
    the key read from what it returns when the request quotes `attr`."""
    for sentence in _SENTENCE.split(" ".join(request.split())):
        if not re.search(rf"\b{re.escape(attr)}\b", sentence):
            continue
        methods = [m for m in dict.fromkeys(re.findall(r"\b([a-z_][a-z0-9_]*)\(\)", sentence))
                   if m != attr and callable(getattr(cls, m, None)) and not m.startswith("_")]
        if len(methods) != 1:
            continue
        quoted = re.search(rf"[\"']{re.escape(attr)}[\"']", sentence) is not None
        code = f'`.{methods[0]}()["{attr}"]`' if quoted else f"`.{methods[0]}()`"
        at = sentence.index(f"{methods[0]}()")  # the words around the method: what it is said to return
        return (f"`{owner}` has no `{attr}`; your request says where it comes from: {code} "
                f"(\"...{sentence[max(0, at - 60):at + 120].strip()}...\")")
    return None


def real_attribute(owner: str, attr: str, index: NameIndex) -> str | None:
    """The one real attribute of the known library class `owner` that `attr` can only mean (`_only_reading`:
    another case, number or word order, `SpectrumDatasetOnOff.safe_mask` -> `mask_safe`), or None."""
    cls = library_class(owner, index)
    if cls is None:
        return None
    names = set(_public_dir(cls)) | {k for k in (_instance_attrs(cls) or ()) if not k.startswith("_")}
    return None if attr in names else _only_reading(attr, sorted(names))


def runtime_suggestion(stderr: str, index: NameIndex, request: str = "") -> str | None:
    """For `AttributeError: 'Observation' object has no attribute 'livetime'` from a run: where the request
    says that value comes from, else the closest real names of that class (a known public Gammapy/astropy
    class)."""
    found = _NO_ATTRIBUTE.findall(stderr)
    if not found:
        return None
    owner, attr = found[-1]
    cls = library_class(owner, index)
    if cls is None:
        return None
    said = request_source(owner, cls, attr, request) if request else None
    if said is not None:
        return said
    names = set(_public_dir(cls)) | {k for k in (_instance_attrs(cls) or ()) if not k.startswith("_")}
    from astropy.table import Table

    if issubclass(cls, Table) and not difflib.get_close_matches(attr, sorted(names), cutoff=0.8):
        # `selected.index`, `obs_table.obs_ids`: a table's values are its columns; `add_index` would mislead
        return (f"`{owner}` is an astropy Table and has no `{attr}`: its values are columns, "
                f"`table[\"COLUMN\"]`, and the rows a boolean mask picks are `table[mask]`")
    wanted, holder = _failed_value_name(stderr), _receiver(stderr, attr) or owner
    return _named_part(holder, cls, attr, wanted) or \
        _suggest(owner, cls, attr, sorted(names)) + _parts_with(holder, cls, attr, wanted)


_SCRIPT_LINE = re.compile(r'File "[^"]*script\.py", line \d+, in <module>\n(.*)\n')
_VALUE_NAME = re.compile(r'^\s*(?:(\w+)\s*=[^=]|["\'](\w+)["\']\s*:)')


def _receiver(stderr: str, attr: str) -> str | None:
    """How the failing script line spells the object it asked for `attr` (`model` in `model.integrate(`)."""
    lines = _SCRIPT_LINE.findall(stderr)
    m = re.search(rf"([A-Za-z_][\w.]*(?:\[[^\]]*\])?)\.{re.escape(attr)}\b", lines[-1]) if lines else None
    return m.group(1) if m else None


def _failed_value_name(stderr: str) -> str:
    """The name the failing script line gives its value (`energy_flux = model.integrate(...)` or a
    `"energy_flux": ...` dict entry), read off the traceback's last line of the script."""
    lines = _SCRIPT_LINE.findall(stderr)
    m = _VALUE_NAME.match(lines[-1]) if lines else None
    return (m.group(1) or m.group(2)) if m else ""


_NO_COLUMN = re.compile(r"^KeyError: ['\"]([^'\"]+)['\"]\s*$", re.MULTILINE)


# How a column of each release table is read (f43: EVENT_COUNT asked of every event list, then grouped by an
# invented EVENT_TYPE key after "a column of obs_table only" alone).
_READ_COLUMN = {
    "obs_table": ('read it from the index, one value per observation: `data_store.obs_table["{c}"]` (row i is '
                  'observation `data_store.obs_table["OBS_ID"][i]`; `selected["{c}"]` for rows you selected)'),
    "events": 'read it from an observation\'s event list, one value per event: `observation.events.table["{c}"]`',
}


def _per_event(column: str) -> str | None:
    """An event list property named by a word of an index column (`OFFSET_OBJ` -> `EventList.offset`): a script
    that read the column from the events wanted a value per event, which the event list computes (blind q11 read
    the index's OFFSET_OBJ, the target's offset per observation, for the events' offsets)."""
    data = _import("gammapy.data")
    event_list = getattr(data, "EventList", None) if data else None
    words = set(column.lower().split("_"))
    found = [n for n in _public_dir(event_list) if n in words and isinstance(getattr(event_list, n), property)] \
        if event_list is not None else []
    if len(found) != 1:
        return None
    doc = first_doc_line(getattr(event_list, found[0])).replace("`~", "`").rstrip(".")
    return f"a value per event is the event list's own `observation.events.{found[0]}` ({doc})"


def column_suggestion(stderr: str, columns: dict[str, tuple[str, ...]]) -> str | None:
    """For a run's `KeyError: 'OBSERVATION_LIVE_TIME'` raised by an astropy table: the columns the release's
    tables do have that are named like it (`LIVETIME`), or all of them."""
    found = _NO_COLUMN.findall(stderr)
    if not found or "astropy/table" not in stderr or not columns:
        return None
    key = found[-1]
    holders = [table for table, names in columns.items() if key in names]
    if holders:  # a real column, read from the other table (`events["OFFSET_OBJ"]`)
        others = "; ".join(f"{t}: {', '.join(n)}" for t, n in columns.items() if t not in holders)
        read = "; ".join(_READ_COLUMN[t].format(c=key) for t in holders if t in _READ_COLUMN)
        meaning = next((m for t in holders if (m := column_meanings().get(t, {}).get(key))), None)
        per_event = _per_event(key) if "events" in columns and "events" not in holders else None
        return (f"`{key}`{f' ({meaning})' if meaning else ''} is a column of {' and '.join(holders)} only, not of "
                "the table the script indexed" + (f" (the other table has {others})" if others else "")
                + (f"; {read}" if read else "") + (f"; {per_event}" if per_event else ""))
    flat = _flat(key)
    close = [f"`{c}` ({table})" for table, names in columns.items() for c in names
             if _flat(c) and (_flat(c) in flat or flat in _flat(c))]
    close += [f"`{c}` ({table})" for table, names in columns.items()
              for c in difflib.get_close_matches(key.upper(), names, n=2, cutoff=0.6)]
    close = list(dict.fromkeys(close))[:4]
    if close:
        return f"`{key}` is no column of the release's tables; named like it: {', '.join(close)}"
    listed = "; ".join(f"{table}: {', '.join(names)}" for table, names in columns.items())
    return f"`{key}` is no column of the release's tables; their columns are {listed}"


def invented_name(name: str, index: NameIndex) -> str | None:
    """For an undefined class-like name that no installed library exports (`EventListMaker`): that none
    defines it, and the real class in its name or the public names spelt like it. A small model told only
    "missing import or typo" dropped the import and kept the class (unseen q5 at 003b4f8, three turns)."""
    if not name[:1].isupper() or name in index.homes or index.import_for(name):
        return None
    built_on = index.contained_class(name)
    home = index.home(built_on) if built_on else None
    if built_on and home:
        real = f"the real class in its name is {describe(home, built_on, getattr(_import(home), built_on, None))}"
    else:
        close = [f"`from {h} import {c}`" for c in index.close_names(name) for h in sorted(index.homes[c])][:3]
        real = f"did you mean {', '.join(close)}" if close else "write that step with the real API"
    return f"no installed library defines `{name}`; {real}"


def library_class(name: str, index: NameIndex) -> type | None:
    """The public library class a run's error names by its short name (`RegionNDMap`), or None."""
    home = index.home(name)
    cls = getattr(_import(home), name, None) if home else None
    return cls if isinstance(cls, type) else None  # not inspect.isclass: mypy narrows that to type[object]


def keyword_meant(owner: str, method: str, keyword: str, index: NameIndex) -> str | None:
    """The one parameter of `owner.method` (a public library class; `__init__` for its constructor) that a
    keyword it does not take can only mean (`selection` -> `selections`), for a run's "got an unexpected
    keyword argument" where the receiver's class was not known before the run."""
    func = getattr(library_class(owner, index), method, None)
    try:
        params = inspect.signature(func).parameters.values() if func is not None else ()
    except (TypeError, ValueError):
        return None
    names = [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "self"]
    return None if keyword in names else _only_reading(keyword, names)


def _ref_for(obj: Any, label: str) -> _Ref | None:
    if obj is None:
        return None
    if isinstance(obj, ModuleType):
        return _Ref("module", obj, label)
    if inspect.isclass(obj):
        return _Ref("class", obj, label)
    if inspect.isroutine(obj):
        return _Ref("callable", obj, label)
    return None


def _binding_counts(tree: ast.Module) -> dict[str, int]:
    """How many times each name is bound anywhere in the script: only names bound once are trusted."""
    counts: dict[str, int] = {}

    def add(name: str) -> None:
        counts[name] = counts.get(name, 0) + 1

    package_roots: set[str] = set()  # `import a.b` and `import a.c` both bind `a` to the same module
    imported: set[tuple[str, str, str]] = set()  # the same import written twice binds the same object once
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname is None:
                    package_roots.add(alias.name.split(".")[0])
                elif ("", alias.name, alias.asname) not in imported:
                    imported.add(("", alias.name, alias.asname))
                    add(alias.asname)
        elif isinstance(node, ast.ImportFrom):
            for alias in node.names:
                key = ("." * node.level + (node.module or ""), alias.name, alias.asname or alias.name)
                if key not in imported:
                    imported.add(key)
                    add(alias.asname or alias.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            add(node.name)
            if not isinstance(node, ast.ClassDef):
                for arg in (*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs,
                            node.args.vararg, node.args.kwarg):
                    if arg is not None:
                        add(arg.arg)
        elif isinstance(node, ast.Lambda):
            for arg in node.args.args:
                add(arg.arg)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            add(node.name)
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            for name in node.names:
                add(name)
                add(name)  # rebound elsewhere: not trusted
    for name in package_roots:
        add(name)
    for name in dir(builtins):
        if name in counts:
            counts[name] += 1  # shadowing a builtin: leave it alone
    return counts


def _value_names(tree: ast.Module) -> dict[int, str]:
    """id of each attribute node -> the name the script gives the value it is part of: the variable it is
    assigned to (`energy_flux = ...`) or the string key it is stored under (`{"energy_flux": ...}`)."""
    found: dict[int, str] = {}
    for node in ast.walk(tree):
        pairs: list[tuple[str, ast.expr]] = []
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            pairs.append((node.targets[0].id, node.value))
        elif isinstance(node, ast.Dict):
            pairs += [(k.value, v) for k, v in zip(node.keys, node.values)
                      if isinstance(k, ast.Constant) and isinstance(k.value, str)]
        for name, value in pairs:
            for sub in ast.walk(value):
                if isinstance(sub, ast.Attribute):
                    found[id(sub)] = name  # walked outside in: the innermost dict key wins over the assignment
    return found


def ground(tree: ast.Module, index: NameIndex | None = None) -> list[Finding]:
    """Names and keywords the script uses that the installed packages do not have, in line order."""
    grounder = _Grounder(tree, index)
    grounder.visit(tree)
    return sorted(grounder.findings, key=lambda f: f.line)

