"""Deterministic repairs: slips whose fix has exactly one reading are fixed before a model turn is spent.

Each repair returns the new script and one line per change ("added `import json`"), recorded on the
attempt and told to the model in the next turn so it learns the fix. A repair never guesses: a name
with two possible imports, or a path that is not the release's, is left to the model and the checks.
The repairs a run's outcome calls for are in `repair_after_run.py`.
"""

from __future__ import annotations

import ast
import inspect
import re
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from hpc_agent.bindings import assigned_once, bindings, result_dicts
from hpc_agent.request_regions import (cone_as_gammapy_takes_it, select_in_the_cone, use_the_circle_radius,
                                      use_the_cone, whole_index_for_an_invented_position, written_position,
                                      whole_index_without_a_position)
from hpc_agent.checks import DISPLAY_METHODS, maker_class, maker_instances, selects, unchained_runs, undefined_names
from hpc_agent.model_wiring import attach_source_model, freeze_as_requested, model_for_the_fit
from hpc_agent.names import NameIndex, flat_name
from hpc_agent.reduction_loop import append_each_dataset, load_each_observation
from hpc_agent.request_facts import RequestFacts
from hpc_agent.prompts import OBS_TABLE, OPEN_RELEASE, POINTING, RELEASE, RELEASE_PATH, release_path
from hpc_agent.names import import_quietly as _import_quiet
from hpc_agent.names import module_exists as _is_module
from hpc_agent.flux_points import bins_as_table
from hpc_agent.source_edits import Edit, add_imports, drop_statements, insertion_line, splice
from hpc_agent.syntax_repair import make_it_parse
from hpc_agent.tutorial_definitions import made_from_names, name_keyword as _name_keyword, tutorial_made_from_names

DISPLAY_FUNCTIONS = ("display",)  # `input()` is rejected by the rules, but it is no display call to drop
SUBMODULE_PACKAGES = ("gammapy", "astropy", "scipy")  # `pkg.sub.X` used: `import pkg.sub` is added


@dataclass(frozen=True)
class Repaired:
    script: str
    repairs: tuple[str, ...]


def _display_name(node: ast.stmt) -> str | None:
    if not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)):
        return None
    func = node.value.func
    if isinstance(func, ast.Attribute) and func.attr in DISPLAY_METHODS:
        return f".{func.attr}()"
    if isinstance(func, ast.Name) and func.id in DISPLAY_FUNCTIONS:
        return f"{func.id}()"
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
    if name.startswith("plot"):  # `lc.plot(ax=ax)`, `plot_spectrum_datasets_off_regions(ax=ax, ...)`: a figure
        return f"{name}()"
    return None


def remove_display_calls(text: str, _: NameIndex) -> tuple[str, list[str]]:
    """`plt.show()`, `x.peek()`, `display(x)`, `x.plot(...)`, `plot_...(...)` as statements: removed (`pass`
    where a block would be empty). No figure is asked for, and tutorial pieces copied with them leave `ax` undefined."""
    tree = ast.parse(text)
    shown = [s for s in ast.walk(tree) if isinstance(s, ast.Expr) and _display_name(s)]  # only an Expr has one
    notes = [f"removed the display call `{ast.unparse(s.value)[:60]}` (line {s.lineno})" for s in shown]
    return (splice(text, drop_statements(tree, shown)), notes) if shown else (text, [])


def fix_units_alias(text: str, _: NameIndex) -> tuple[str, list[str]]:
    """`from astropy.units import u` imports the atomic mass unit, not the units module; `from
    astropy.coordinates import SkyCoord, u` (a module without `u`) meant the units module too."""
    tree = ast.parse(text)
    edits, notes = [], []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and (
                node.module == "astropy.units" or node.module.split(".")[0] == "astropy"
                and not hasattr(_import_quiet(node.module), "u")):
            bad = [a for a in node.names if a.name == "u" and a.asname in (None, "u")]
            if bad:
                rest = [a for a in node.names if a not in bad]
                new = "import astropy.units as u"
                if rest:
                    new += f"; from {node.module} import " + ", ".join(
                        a.name + (f" as {a.asname}" if a.asname else "") for a in rest)
                edits.append((node, new))
                notes.append("replaced `from astropy.units import u` (the atomic mass unit) by `import astropy.units as u`"
                             if node.module == "astropy.units" else
                             f"`{node.module}` has no `u`: imported the units module, `import astropy.units as u`")
    return (splice(text, edits), notes) if edits else (text, [])


def unit_names_as_units(text: str, _: NameIndex) -> tuple[str, list[str]]:
    """`228.5 * Angle("deg")`: an Angle or Quantity of a unit name alone (no number) cannot be parsed; the
    script means the unit itself, `u.deg` (the repairs import `astropy.units as u` when it is missing)."""
    import astropy.units as au

    tree = ast.parse(text)
    edits, notes = [], []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("Angle", "Quantity")
                and len(node.args) == 1 and not node.keywords and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str) and node.args[0].value.strip().isidentifier()):
            name = node.args[0].value.strip()
            if isinstance(getattr(au, name, None), au.UnitBase):
                edits.append((node, f"u.{name}"))
                notes.append(f"line {node.lineno}: `{ast.unparse(node)}` has no number, so it cannot be made; "
                             f"the unit is `u.{name}`")
    return (splice(text, edits), notes) if edits else (text, [])


def _unit_of(node: ast.expr) -> Any:
    """The astropy unit an expression spells (`u.s`, `u.Unit("s")`, `"h"`, `Quantity(1, "s")`, `1 * u.s`), or
    None."""
    import astropy.units as au

    text: str | None = None
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in ("u", "units"):
        text = node.attr
    elif isinstance(node, ast.Constant) and isinstance(node.value, str):
        text = node.value
    elif isinstance(node, ast.Call) and ast.unparse(node.func) in ("u.Unit", "Unit") and len(node.args) == 1:
        return _unit_of(node.args[0])
    elif isinstance(node, ast.Call) and ast.unparse(node.func) in ("Quantity", "u.Quantity") and len(node.args) == 2 \
            and isinstance(node.args[0], ast.Constant) and node.args[0].value == 1:
        return _unit_of(node.args[1])
    elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult) and isinstance(node.left, ast.Constant) \
            and node.left.value == 1:
        return _unit_of(node.right)
    if text is None:
        return None
    try:
        unit = au.Unit(text)
    except (ValueError, TypeError):
        return None
    return unit if unit.physical_type != "dimensionless" else None


def unit_divided_then_converted(text: str, _: NameIndex) -> tuple[str, list[str]]:
    """`(table["LIVETIME"] / u.s).to(u.h)`: dividing by a unit and then converting to a unit of the same kind
    always raises (a column in seconds divided by seconds is dimensionless; a plain one becomes 1/s). The
    values were meant in that unit: `u.Quantity(table["LIVETIME"], u.s).to(u.h)`, which keeps a column's own
    unit (converted) and gives a plain column that one."""
    tree = ast.parse(text)
    edits: list[Edit] = []
    notes: list[str] = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "to"
                and len(node.args) == 1 and isinstance(node.func.value, ast.BinOp)
                and isinstance(node.func.value.op, ast.Div)):
            continue
        division = node.func.value
        divided, target = _unit_of(division.right), _unit_of(node.args[0])
        if divided is None or target is None or not divided.is_equivalent(target):
            continue
        values, unit = _segment(text, division.left), _segment(text, division.right)
        fixed = f'u.Quantity({values}, "{divided.to_string()}")'
        edits.append((division, fixed))
        notes.append(f"line {node.lineno}: `({values} / {unit}).to(...)` divides the unit away, so it cannot be "
                     f"converted: the values in that unit are `{fixed}`")
    return (splice(text, edits), notes) if edits else (text, [])


def fix_data_paths(text: str, _: NameIndex) -> tuple[str, list[str]]:
    """A literal path to the release (`/data/hess-dl3-dr1/`, `~/hess-dl3-dr1`) is built from PHOTON_STORAGE."""
    tree = ast.parse(text)
    in_fstring = {id(v) for n in ast.walk(tree) if isinstance(n, ast.JoinedStr) for v in n.values}
    edits, notes = [], []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Constant) and isinstance(node.value, str)) or id(node) in in_fstring:
            continue
        value = node.value
        m = re.fullmatch(rf"[/~.][^\n$]*?/({RELEASE})(/[^\n]*)?", value)  # absolute, home or ./ paths only
        if not m:
            continue
        rest = (m.group(2) or "").strip("/")
        edits.append((node, release_path(rest) if rest else RELEASE_PATH))
        notes.append(f"replaced the hard-coded path {value!r} by os.path.join(os.environ['PHOTON_STORAGE'], "
                     f"'{RELEASE}'{', ' + repr(rest) if rest else ''}) (line {node.lineno})")
    return (splice(text, edits), notes) if edits else (text, [])


def _units_class(name: str) -> str | None:
    """"astropy.units" for a class it exports (`Unit`, `Quantity`, `UnitConversionError`). The name index leaves
    astropy.units out (its thousands of unit names, `s`, `h`, `m`, would shadow a script's own variables), so
    `from astropy.coordinates import Unit` finds its home here."""
    import astropy.units

    return "astropy.units" if inspect.isclass(getattr(astropy.units, name, None)) else None


def fix_import_homes(text: str, index: NameIndex) -> tuple[str, list[str]]:
    """`from gammapy.makers import SpectrumDataset` -> `from gammapy.datasets import SpectrumDataset`: a name
    imported from a module that lacks it, and exported by exactly one other module."""
    tree = ast.parse(text)
    edits, notes = [], []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.ImportFrom) and node.module and node.level == 0):
            continue
        if node.module.split(".")[0] not in ("gammapy", "astropy", "regions"):
            continue
        module = _import_quiet(node.module)
        moved: dict[str, list[ast.alias]] = {}
        kept: list[ast.alias] = []
        for alias in node.names:
            missing = alias.name != "*" and module is not None and not hasattr(module, alias.name) \
                and not _is_module(f"{node.module}.{alias.name}")
            home = index.home(alias.name) or (_units_class(alias.name) if missing else None)
            unknown_module = module is None and home is not None
            if (missing or unknown_module) and home and home != node.module:
                moved.setdefault(home, []).append(alias)
            else:
                kept.append(alias)
        if not moved:
            continue
        indent = " " * node.col_offset
        lines = [f"from {node.module} import {_names(kept)}"] if kept else []
        lines += [f"from {home} import {_names(aliases)}" for home, aliases in moved.items()]
        edits.append((node, f"\n{indent}".join(lines)))
        for home, aliases in moved.items():
            for a in aliases:
                notes.append(f"`{a.name}` is not in `{node.module}`: imported it from `{home}` "
                             f"(`from {home} import {a.name}`)")
    return (splice(text, edits), notes) if edits else (text, [])


def list_as_datasets(text: str, _: NameIndex) -> tuple[str, list[str]]:
    """`datasets = []`, appended to, then `datasets.stack_reduce()` (or `Datasets.stack_reduce(datasets)`, the
    method called through the class, which is `datasets.stack_reduce()`): a method only Gammapy's `Datasets` has
    (and a plain list lacks) says which list was meant; `Datasets()` appends like a list. Only a name assigned once."""
    from gammapy.datasets import Datasets  # the installed class: its own method names, not a list of ours

    tree = ast.parse(text)
    only_datasets = {a for a in dir(Datasets) if not a.startswith("_")} - set(dir(list))
    bound = bindings(tree)
    used = {n.value.id for n in ast.walk(tree) if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)
            and n.attr in only_datasets}
    edits: list[Edit] = []
    notes = []
    for call in ast.walk(tree):  # `Datasets.stack_reduce(datasets)`: the method through the class, the list as `self`
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and isinstance(call.func.value, ast.Name) \
                and call.func.value.id == "Datasets" and call.func.attr in only_datasets and call.args \
                and isinstance(first := call.args[0], ast.Name) and first.id not in used \
                and [ast.unparse(v) for v in bound.get(first.id, [])] in (["[]"], ["list()"]) \
                and inspect.isfunction(inspect.getattr_static(Datasets, call.func.attr, None)):
            rest = [ast.get_source_segment(text, a) or ast.unparse(a) for a in (*call.args[1:], *call.keywords)]
            edits.append((call, f"{first.id}.{call.func.attr}({', '.join(rest)})"))
            notes.append(f"line {call.lineno}: `Datasets.{call.func.attr}({first.id})` calls the method of the class "
                         f"with `{first.id}` as the instance: it is `{first.id}.{call.func.attr}()`")
            used.add(first.id)
    for name in sorted(used):
        values = bound.get(name, [])
        if len(values) != 1 or not isinstance(value := values[0], (ast.List, ast.Call)) or value.lineno != value.end_lineno:
            continue
        if isinstance(value, ast.List) and value.elts or isinstance(value, ast.Call) and (ast.unparse(value) != "list()"):
            continue
        edits.append((value, "Datasets()"))
        notes.append(f"line {value.lineno}: `{name}` is used as Gammapy's `Datasets` (`.stack_reduce()`, "
                     f"`.models`, ...), so it is made as one: `{name} = Datasets()` (it appends like a list)")
    return (splice(text, edits), notes) if edits else (text, [])


def fix_imported_names(text: str, _: NameIndex) -> tuple[str, list[str]]:
    """`import gammapy.data.DataStore` (a class, not a module) -> `from gammapy.data import DataStore`, and
    `import gammapy.data` too when the script spells the full path."""
    tree = ast.parse(text)
    edits, notes = [], []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Import):
            continue
        lines, changed = [], False
        for alias in node.names:
            parent, _dot, name = alias.name.rpartition(".")
            if (parent and alias.name.split(".")[0] in SUBMODULE_PACKAGES and not _is_module(alias.name)
                    and hasattr(_import_quiet(parent), name)):
                lines.append(f"from {parent} import {name}" + (f" as {alias.asname}" if alias.asname else ""))
                if alias.asname is None:
                    lines.append(f"import {parent}")  # `gammapy.data.DataStore(...)` keeps working
                notes.append(f"`{alias.name}` is not a module: replaced `import {alias.name}` by "
                             f"`from {parent} import {name}`")
                changed = True
            else:
                lines.append(f"import {alias.name}" + (f" as {alias.asname}" if alias.asname else ""))
        if changed:
            edits.append((node, f"\n{' ' * node.col_offset}".join(lines)))
    return (splice(text, edits), notes) if edits else (text, [])


def drop_unused_missing_imports(text: str, index: NameIndex) -> tuple[str, list[str]]:
    """`from gammapy.makers import EventListMaker` (exists nowhere) never used afterwards: the import goes.
    Used names are left to grounding, which names the closest real ones."""
    tree = ast.parse(text)
    used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    edits: list[Edit] = []
    notes, dropped = [], []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.ImportFrom) and node.module and node.level == 0
                and node.module.split(".")[0] in ("gammapy", "astropy", "regions")):
            continue
        module = _import_quiet(node.module)
        if module is None:
            continue
        gone = [a for a in node.names if a.name != "*" and (a.asname or a.name) not in used
                and not hasattr(module, a.name) and not _is_module(f"{node.module}.{a.name}")
                and index.home(a.name) is None]
        if not gone:
            continue
        kept = [a for a in node.names if a not in gone]
        if kept:
            edits.append((node, f"from {node.module} import {_names(kept)}"))
        else:
            dropped.append(node)
        notes += [f"removed `from {node.module} import {a.name}`: no such name in the installed packages, and "
                  "the script never uses it" for a in gone]
    edits += drop_statements(tree, dropped)
    return (splice(text, edits), notes) if edits else (text, [])


CONTRACT_VARIABLES = ("PHOTON_STORAGE", "GAMMAPY_DATA")


def keep_contract_environment(text: str, _: NameIndex) -> tuple[str, list[str]]:
    """`os.environ["PHOTON_STORAGE"] = ...` would point the script away from the data the harness mounted."""
    tree = ast.parse(text)
    doomed, notes = [], []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1):
            continue
        target = node.targets[0]
        if (isinstance(target, ast.Subscript) and isinstance(target.slice, ast.Constant)
                and target.slice.value in CONTRACT_VARIABLES and ast.unparse(target.value) == "os.environ"):
            doomed.append(node)
            notes.append(f"removed `{ast.unparse(node)[:70]}` (line {node.lineno}): the harness sets "
                         f"{target.slice.value} to the data root; never overwrite it")
    return (splice(text, drop_statements(tree, doomed)), notes) if doomed else (text, [])


_ROOT_FORMS = tuple(form for var in CONTRACT_VARIABLES for form in (
    f"os.environ['{var}']", f"os.environ.get('{var}')", f"os.getenv('{var}')", f"'${var}'"))
_ROOT_DEFAULTED = re.compile(r"os\.(?:environ\.get|getenv)\('(\w+)', .*\)$")  # `os.environ.get(VAR, "")`


def _is_root(node: ast.expr, rooted: set[str]) -> bool:
    """The data root itself: read from its variable, or a name assigned once from it."""
    text = ast.unparse(node)
    m = _ROOT_DEFAULTED.match(text)
    return text in _ROOT_FORMS or (m is not None and m.group(1) in CONTRACT_VARIABLES) or \
        (isinstance(node, ast.Name) and node.id in rooted)


def open_the_release_not_the_root(text: str, _: NameIndex) -> tuple[str, list[str]]:
    """`DataStore.from_dir(os.environ["PHOTON_STORAGE"])` (or of a variable assigned once from it): the data
    root holds releases, not a data store; the release is its `hess-dl3-dr1` folder."""
    tree = ast.parse(text)
    assigned = [n for n in ast.walk(tree) if isinstance(n, ast.Assign)]
    once = {name for name in {t.id for n in assigned for t in n.targets if isinstance(t, ast.Name)}
            if sum(isinstance(t, ast.Name) and t.id == name for n in assigned for t in n.targets) == 1}
    rooted = {t.id for n in assigned for t in n.targets
              if isinstance(t, ast.Name) and t.id in once and _is_root(n.value, set())}
    edits, notes = [], []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "from_dir"
                and node.args and _is_root(node.args[0], rooted)):
            first, last = node.args[0], node.args[0]
            if len(node.args) > 1 and isinstance(node.args[1], ast.Constant) \
                    and str(node.args[1].value).strip("/") == RELEASE:  # the release as a second argument
                last = node.args[1]  # (`from_dir(root, "hess-dl3-dr1")`: that is `hdu_table_filename`)
            span = ast.Tuple([first, last], ast.Load(), lineno=first.lineno, col_offset=first.col_offset,
                             end_lineno=last.end_lineno, end_col_offset=last.end_col_offset)
            edits.append((span, RELEASE_PATH))
            notes.append(f"`from_dir({ast.unparse(node.args[0])})` opens the data root; opened its release "
                         f"instead: {RELEASE_PATH} (line {node.lineno})")
    return (splice(text, edits), notes) if edits else (text, [])


SKY_METHODS = ("separation", "separation_3d", "match_to_catalog_sky", "search_around_sky", "transform_to",
               "galactic", "icrs", "directional_offset_by", "position_angle")


_FRAMES = (("RA", "DEC", "icrs"), ("GLON", "GLAT", "galactic"))


def _column_pair(text: str, value: ast.expr) -> tuple[str, str, str] | None:
    """(lon, lat, frame) of `table["RA_PNT", "DEC_PNT"]` / `table[["RA_PNT", "DEC_PNT"]]`: two columns of one table."""
    if not isinstance(value, ast.Subscript):
        return None
    keys = value.slice.elts if isinstance(value.slice, (ast.Tuple, ast.List)) else []
    if isinstance(value.slice, ast.Tuple) and len(keys) == 1 and isinstance(keys[0], ast.List):
        keys = keys[0].elts
    names = [k.value for k in keys if isinstance(k, ast.Constant) and isinstance(k.value, str)]
    if len(names) != 2 or len(keys) != 2:
        return None
    frame = next((f for lon, lat, f in _FRAMES if names[0].upper().startswith(lon) and names[1].upper().startswith(lat)),
                 None)
    table = ast.get_source_segment(text, value.value)
    return (f"{table}[{names[0]!r}]", f"{table}[{names[1]!r}]", frame) if frame else None


def pair_to_skycoord(text: str, _: NameIndex) -> tuple[str, list[str]]:
    """`p = table["RA_PNT"], table["DEC_PNT"]` (or `table["RA_PNT", "DEC_PNT"]`, two columns) then
    `p.separation(...)`: a pair of coordinates used as a sky position can only mean `SkyCoord(ra, dec)`; the
    pair becomes one (degrees, as the release's columns; ICRS for RA/DEC, galactic for GLON/GLAT)."""
    tree = ast.parse(text)
    used = {n.value.id for n in ast.walk(tree) if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)
            and n.attr in SKY_METHODS}
    edits, notes = [], []
    for node in tree.body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
                and node.targets[0].id in used):
            continue
        pair = _column_pair(text, node.value)
        if pair is not None:
            ra, dec, frame = pair
            edits.append((node.value, f'SkyCoord({ra}, {dec}, unit="deg", frame="{frame}")'))
            notes.append(f"`{node.targets[0].id}` (line {node.lineno}) was a table of two coordinate columns used as "
                         f'a sky position: made it `SkyCoord({ra}, {dec}, unit="deg", frame="{frame}")`')
        elif isinstance(node.value, ast.Tuple) and len(node.value.elts) == 2:
            lon, lat = (ast.get_source_segment(text, e) for e in node.value.elts)
            edits.append((node.value, f'SkyCoord({lon}, {lat}, unit="deg", frame="icrs")'))
            notes.append(f"`{node.targets[0].id}` (line {node.lineno}) was a pair of coordinates used as a sky position: "
                         f'made it `SkyCoord({lon}, {lat}, unit="deg", frame="icrs")`')
    return (splice(text, edits), notes) if edits else (text, [])


_SEPARATION_NAME = re.compile(r"sep|dist|offset", re.IGNORECASE)
# ICRS coordinate column pairs of the release: pointings, targets, events
_ICRS_COLUMNS = (("RA_PNT", "DEC_PNT"), ("RA_OBJ", "DEC_OBJ"), ("RA", "DEC"))


def _column_of(node: ast.expr, column: str) -> ast.Subscript | None:
    """The first `<table>["RA_PNT"]` read of `column` in `node`."""
    for n in ast.walk(node):
        if isinstance(n, ast.Subscript) and isinstance(n.slice, ast.Constant) and n.slice.value == column:
            return n
    return None


# a name for one axis's difference (`ra_offset`, `dec_sep`, `dra`): a coordinate difference may be meant
_ONE_AXIS_NAME = re.compile(r"(?:^|_)(?:d|delta_?)?(?:ra|dec|lon|lat|x|y)(?:_|s?$)", re.IGNORECASE)


def _pair_from_one(node: ast.expr, text: str) -> tuple[ast.expr | str | None, ast.expr | str | None]:
    """`events["RA"] - source.ra` named a separation: the one column read, and its partner read from the same
    table (`events["DEC"]`); (None, None) when `node` reads no column of a pair, or both."""
    for lon, lat in _ICRS_COLUMNS:
        r, d = _column_of(node, lon), _column_of(node, lat)
        if (r is None) == (d is None):
            continue
        one, partner = (r, lat) if r is not None else (d, lon)
        assert one is not None
        base = _segment(text, one.value)
        pair = (one, f'{base}["{partner}"]')
        return pair if r is not None else (pair[1], pair[0])
    return None, None


def _segment(text: str, node: ast.expr | str) -> str:
    return node if isinstance(node, str) else (ast.get_source_segment(text, node) or ast.unparse(node))


def _has_unit(node: ast.expr, bound: dict[str, list[ast.expr]]) -> bool:
    """`2 * u.deg`, `Angle(2, "deg")`, or a name assigned once from one: a Quantity, not a plain number."""
    return any(isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id in ("u", "units")
               or isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in ("Angle", "Quantity")
               for n in ast.walk(assigned_once(node, bound)))


_RA_NAME = re.compile(r"^(\w*?)(_?)ra$", re.IGNORECASE)  # `source_ra`, `ra`, `srcRA`


def _stored(tree: ast.AST) -> set[str]:
    """Every name the script assigns, in any form (tuple targets, loops, `with ... as`)."""
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}


def _pair_position(name: str, stored: set[str]) -> str | None:
    """`source_ra` with a `source_dec` the script assigns too: the sky position the pair is, written out."""
    m = _RA_NAME.match(name)
    if m is None:
        return None
    dec = next((f"{m.group(1)}{m.group(2)}{d}" for d in ("dec", "DEC", "Dec")
                if f"{m.group(1)}{m.group(2)}{d}" in stored), None)
    if dec is None or name not in stored:
        return None
    return f'SkyCoord({name}, {dec}, unit="deg", frame="icrs")'


def _with_partner_column(node: ast.expr) -> str | None:
    """`t["RA_PNT"]` given alone where a sky position is taken: the position of that column and its partner,
    `SkyCoord(t["RA_PNT"], t["DEC_PNT"], unit="deg", frame="icrs")` (GLON/GLAT: galactic, as `_FRAMES`)."""
    if not (isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant)
            and isinstance(node.slice.value, str)):
        return None
    column = node.slice.value
    head, _, tail = column.partition("_")
    found = next(((lat, frame) for lon, lat, frame in _FRAMES if head == lon), None)
    if found is None:
        return None
    lat, frame = found
    table = ast.unparse(node.value)
    partner = f"{lat}_{tail}" if tail else lat
    return f'SkyCoord({table}["{column}"], {table}["{partner}"], unit="deg", frame="{frame}")'


def _index_rows(rows: ast.Name, bound: dict[str, list[ast.expr]]) -> bool:
    """`rows` is assigned once, to rows of the observation index: `table[mask]` with `table = data_store.obs_table`,
    `data_store.obs_table[...]`, or `table.select_observations(...)`."""
    value = assigned_once(rows, bound)
    if value is rows:
        return False
    base = value.value if isinstance(value, ast.Subscript) else value.func.value \
        if isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute) \
        and value.func.attr == "select_observations" else None
    return base is not None and ast.unparse(assigned_once(base, bound)).endswith("obs_table")


def _one_position(bound: dict[str, list[ast.expr]]) -> str | None:
    """The one name the script binds, once, to a sky position written as numbers (`SkyCoord(83.63, 22.01, ...)`)."""
    found = [name for name, made in bound.items() if len(made) == 1 and written_position(made[0], bound) is not None]
    return found[0] if len(found) == 1 else None


def column_under(node: ast.expr) -> ast.expr:
    """`t["RA_PNT"]` under the array views a column hands out (`t["RA_PNT"].quantity`, `.data`, `.value`)."""
    while isinstance(node, ast.Attribute) and node.attr in ("quantity", "data", "value"):
        node = node.value
    return node


def pair_as_position(text: str, _: NameIndex) -> tuple[str, list[str]]:
    """`pointing.separation(source_ra)` where the script assigns `source_ra` and `source_dec`: one coordinate given
    where a sky position is taken ("Tried to do is_equivalent_frame on something that isn't a frame") can only mean
    the position the pair makes. Rows of the observation index given (`pointing.separation(selected)`, the 1.5B on an
    unseen question) mean their pointings' separations from the script's one position. So can `pointing.separation(ra, dec)`, two coordinates where one position is
    taken (its second parameter is a string option): `SkyCoord(ra, dec, unit="deg")`; and one coordinate column
    of a table, `separation(t["RA_PNT"])` or `t["RA_PNT"].quantity.separation(...)`: the position of that column
    and its partner (`DEC_PNT`)."""
    tree = ast.parse(text)
    stored, bound = _stored(tree), bindings(tree)
    edits: list[Edit] = []
    notes: list[str] = []
    for call in ast.walk(tree):
        if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr == "separation"):
            continue
        if len(call.args) == 1 and isinstance(rows := call.args[0], ast.Name) and _index_rows(rows, bound) \
                and (position := _one_position(bound)) is not None:
            pointings = f'SkyCoord({rows.id}["RA_PNT"], {rows.id}["DEC_PNT"], unit="deg", frame="icrs")'
            if isinstance(call.func.value, ast.Name) and call.func.value.id == position:
                edits.append((rows, pointings))
                fixed = f"{position}.separation({pointings})"
            else:
                fixed = f"{pointings}.separation({position})"
                edits.append((call, fixed))
            notes.append(f"line {call.lineno}: `.separation()` takes a sky position, not `{rows.id}` (rows of the "
                         f"observation index): the separations of their pointings from `{position}` are `{fixed}`")
            continue
        if len(call.args) == 1 and isinstance(arg := call.args[0], ast.Name) \
                and (position := _pair_position(arg.id, stored)) is not None:
            edits.append((arg, position))
            notes.append(f"line {call.lineno}: `.{call.func.attr}()` takes a sky position, not the one coordinate "
                         f"`{arg.id}`: gave it `{position}`")
        elif (position := _with_partner_column(receiver := column_under(call.func.value))) is not None:
            edits.append((call.func.value, position))
            notes.append(f"line {call.lineno}: `.{call.func.attr}()` is a method of a sky position, not of the one "
                         f"column `{ast.unparse(receiver)}`: called it on `{position}`")
        elif len(call.args) == 1 and (position := _with_partner_column(call.args[0])) is not None:
            edits.append((call.args[0], position))
            notes.append(f"line {call.lineno}: `.{call.func.attr}()` takes a sky position, not the one column "
                         f"`{ast.unparse(call.args[0])}`: gave it `{position}`")
        elif len(call.args) == 2 and not call.keywords and not any(
                isinstance(a, (ast.Constant, ast.Starred)) for a in call.args):
            pair = ", ".join(ast.get_source_segment(text, a) or ast.unparse(a) for a in call.args)
            position = f'SkyCoord({pair}, unit="deg")'
            edits.append((ast.Tuple(call.args, lineno=call.args[0].lineno, col_offset=call.args[0].col_offset,
                                    end_lineno=call.args[1].end_lineno, end_col_offset=call.args[1].end_col_offset),
                          position))
            notes.append(f"line {call.lineno}: `.{call.func.attr}()` takes one sky position, not two coordinates: "
                         f"gave it `{position}`")
    return (splice(text, edits), notes) if edits else (text, [])  # `add_missing_imports` imports SkyCoord


def true_separation(text: str, _: NameIndex) -> tuple[str, list[str]]:
    """`separation = table["RA_PNT"] - source.ra + (table["DEC_PNT"] - source.dec) ...` (or any arithmetic of a
    pair of ICRS columns, pointings or events, and a position's `.ra`/`.dec`) assigned to a name that says
    separation, distance or offset, with no
    `.separation()` anywhere: an angular separation on the sky was meant, and coordinate differences are not one
    (RA shrinks with cos(Dec) and wraps at 360). It becomes `SkyCoord(<ra column>, <dec column>).separation(<position>)`,
    in degrees unless it is compared with a Quantity."""
    tree = ast.parse(text)
    if selects(tree):
        return text, []
    bound, stored = bindings(tree), _stored(tree)
    edits: list[Edit] = []
    notes: list[str] = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
                and _SEPARATION_NAME.search(node.targets[0].id)):
            continue
        ra: ast.expr | str | None
        dec: ast.expr | str | None
        ra, dec = next(((r, d) for lon, lat in _ICRS_COLUMNS
                        if (r := _column_of(node.value, lon)) and (d := _column_of(node.value, lat))), (None, None))
        if ra is None and not _ONE_AXIS_NAME.search(node.targets[0].id):
            ra, dec = _pair_from_one(node.value, text)
        positions = {n.value.id for n in ast.walk(node.value) if isinstance(n, ast.Attribute)
                     and n.attr in ("ra", "dec") and isinstance(n.value, ast.Name)}
        positions |= {_pair_position(n.id, stored) or "" for n in ast.walk(node.value) if isinstance(n, ast.Name)} - {""}
        if ra is None or dec is None or len(positions) != 1:
            continue
        name, position = node.targets[0].id, positions.pop()
        def reads(x: ast.expr) -> bool:  # `offsets` itself, or `abs(offsets)`
            return any(isinstance(n, ast.Name) and n.id == name for n in ast.walk(x))

        others = [x for c in ast.walk(tree) if isinstance(c, ast.Compare) and any(map(reads, (c.left, *c.comparators)))
                  for x in (c.left, *c.comparators) if not reads(x)]
        with_unit = bool(others) and all(_has_unit(x, bound) for x in others)
        value = (f'SkyCoord({_segment(text, ra)}, {_segment(text, dec)}, unit="deg", '
                 f'frame="icrs").separation({position})' + ("" if with_unit else ".deg"))
        edits.append((node.value, value))
        notes.append(f"line {node.lineno}: `{name}` was arithmetic on coordinate columns, which is no angle on the "
                     f"sky (RA shrinks with cos(Dec)): it is now `{value}`")
    return (splice(text, edits), notes) if edits else (text, [])


def _plain_number(node: ast.expr, bound: dict[str, list[ast.expr]]) -> bool:
    """`2.0`, or a name assigned once, from a number literal (`radius_deg = 2.0`)."""
    node = assigned_once(node, bound)
    return isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool)


def _quantity_unit(node: ast.expr) -> str | None:
    """The unit of a separation (degrees) or of a Quantity/Angle made with one (`Angle(table["ZEN_PNT"],
    unit="deg")`), as `u.<name>`; None for anything else."""
    if not isinstance(node, ast.Call):
        return None
    if isinstance(node.func, ast.Attribute) and node.func.attr == "separation":
        return "u.deg"
    if ast.unparse(node.func) not in ("Angle", "Quantity", "u.Quantity", "coord.Angle"):
        return None
    given = [k.value for k in node.keywords if k.arg == "unit"] + node.args[1:2]
    unit = _unit_of(given[0]) if given else None
    if unit is None:
        return None
    name = unit.to_string()
    return f"u.{name}" if name.isidentifier() else f'u.Unit("{name}")'


def separation_in_degrees(text: str, _: NameIndex) -> tuple[str, list[str]]:
    """`pointing.separation(source) < radius_deg` with `radius_deg = 2.0`: an Angle compared with a plain number
    raises UnitConversionError; the number is in degrees, the unit of every position and radius in the release
    and the requests. It becomes `radius_deg * u.deg` (also for a name assigned once from a `.separation()`).
    The same for a Quantity or Angle made with a unit (`Angle(table["ZEN_PNT"], unit="deg") > 45`): the number
    is in that unit."""
    tree = ast.parse(text)
    bound = bindings(tree)

    edits: list[Edit] = []
    notes: list[str] = []
    for cmp in ast.walk(tree):
        if not isinstance(cmp, ast.Compare) or len(cmp.comparators) != 1 \
                or not isinstance(cmp.ops[0], (ast.Lt, ast.LtE, ast.Gt, ast.GtE)):
            continue
        left, right = cmp.left, cmp.comparators[0]
        for angle, number in ((left, right), (right, left)):
            unit = _quantity_unit(assigned_once(angle, bound))
            if unit is not None and _plain_number(number, bound):
                shown = ast.get_source_segment(text, number) or ast.unparse(number)
                edits.append((number, f"{shown} * {unit}"))
                what = "a separation is an Angle" if unit == "u.deg" and "separation" in ast.unparse(
                    assigned_once(angle, bound)) else "it is a Quantity"
                notes.append(f"line {cmp.lineno}: {what}, so the plain number it is compared with is given its unit: "
                             f"`{shown} * {unit}`")
                break
    return (splice(text, edits), notes) if edits else (text, [])


PLAIN_NUMBERS = "lambda o: o.tolist()"  # numpy scalars and arrays -> Python numbers and lists; a Quantity refuses


def _is_json_dumps(func: ast.expr, json_names: set[str], dumps_names: set[str]) -> bool:
    if isinstance(func, ast.Attribute) and func.attr == "dumps" and isinstance(func.value, ast.Name):
        return func.value.id in json_names
    return isinstance(func, ast.Name) and func.id in dumps_names


def json_numpy_numbers(text: str, _: NameIndex | None) -> tuple[str, list[str]]:
    """`json.dumps` without `default=`, after a run failed on a numpy number: numpy numbers (what table
    columns and sums give) can only mean their Python value, so `default=lambda o: o.tolist()` is passed.
    A Quantity still fails (its unit must be chosen), as does anything else json cannot write."""
    tree = ast.parse(text)
    json_names = {a.asname or a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names
                  if a.name == "json"}
    dumps_names = {a.asname or a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module == "json"
                   for a in n.names if a.name == "dumps"}
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and _is_json_dumps(n.func, json_names, dumps_names)
             and n.args and not any(k.arg in ("default", "cls", None) for k in n.keywords)]
    if not calls:
        return text, []
    edits = []
    for call in calls:
        src = ast.get_source_segment(text, call) or ""
        if not src.endswith(")"):
            continue
        edits.append((call, src[:-1].rstrip().rstrip(",") + f", default={PLAIN_NUMBERS})"))
    lines = sorted({c.lineno for c, _ in edits})
    return (splice(text, edits), [f"`json.dumps` (line {', '.join(map(str, lines))}) writes numpy numbers as plain "
                                   f"numbers: added `default={PLAIN_NUMBERS}`"]) if edits else (text, [])


def _names(aliases: list[ast.alias]) -> str:
    return ", ".join(a.name + (f" as {a.asname}" if a.asname else "") for a in aliases)


# Variables the prompts' idiom defines (the rules and the positions context show it): used but never
# assigned, they can only mean this. name -> (definition, names the definition needs)
IDIOM_VARIABLES: dict[str, tuple[str, tuple[str, ...]]] = {
    "data_store": (OPEN_RELEASE, ()),
    "obs_table": ("obs_table = data_store.obs_table", ("data_store",)),
    "table": (OBS_TABLE, ("data_store",)),
    "pointing": (POINTING, ("table",)),
}


def _module_assignments(tree: ast.Module) -> dict[str, int]:
    """name -> end line of its first module-level assignment."""
    found: dict[str, int] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign):
            for t in node.targets:
                if isinstance(t, ast.Name):
                    found.setdefault(t.id, node.end_lineno or node.lineno)
    return found


def _after_imports(tree: ast.Module) -> int:
    """The line after the script's last top-level import (0: none)."""
    return max([n.end_lineno or 0 for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))], default=0)


def define_idiom_variables(text: str, _: NameIndex) -> tuple[str, list[str]]:
    """`data_store`, `table`, `pointing` (names of the prompts' idiom) used but never assigned: their
    definitions are added after the imports, or after the script's own definition of what they need."""
    tree = ast.parse(text)
    undefined = set(undefined_names(tree))
    assigned = _module_assignments(tree)
    wanted: list[str] = []  # in dependency order

    def want(name: str) -> None:
        if name in assigned or name in wanted:
            return
        for dep in IDIOM_VARIABLES[name][1]:
            want(dep)
        wanted.append(name)

    for name in IDIOM_VARIABLES:
        if name in undefined:
            want(name)
    if not wanted:
        return text, []
    after_imports = _after_imports(tree)
    where = dict(assigned)  # line after which each name is defined (the script's own, or ours)
    blocks: dict[int, list[str]] = {}
    for name in wanted:
        at = max([after_imports] + [where[d] for d in IDIOM_VARIABLES[name][1]])
        where[name] = at
        blocks.setdefault(at, []).append(IDIOM_VARIABLES[name][0])
    rows = text.splitlines(keepends=True)
    for at in sorted(blocks, reverse=True):
        rows[at:at] = [f"{line}\n" for line in blocks[at]]
    return "".join(rows), [f"defined `{IDIOM_VARIABLES[n][0]}` (used but never assigned)" for n in wanted]


def define_from_request(text: str, definitions: dict[str, str]) -> tuple[str, list[str]]:
    """Variables used but never assigned that the request fixes (`energy_axis` when it writes out the axis,
    `source_position` when it is about one position): defined after the imports, in the request's words."""
    if not definitions:
        return text, []
    tree = ast.parse(text)
    wanted = [definitions[n] for n in undefined_names(tree) if n in definitions]
    if not wanted:
        return text, []
    at = _after_leading_imports(tree)  # an import at the end of the script would put them after their use
    rows = text.splitlines(keepends=True)
    rows[at:at] = [f"{line}\n" for line in wanted]
    return "".join(rows), [f"defined `{line}` from your request (used but never assigned)" for line in wanted]


def _after_leading_imports(tree: ast.Module) -> int:
    """The line after the imports the script opens with (and its docstring); 0 when it opens with code."""
    at = insertion_line(tree)
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)) or (node.end_lineno or 0) <= at:
            at = max(at, node.end_lineno or 0)
        else:
            break
    return at


def _free_names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def _callee(func: ast.expr, index: NameIndex) -> Any:
    """The installed object a call's `Class.method` / `Class` names (None when it cannot be resolved)."""
    parts = ast.unparse(func).split(".")
    home = index.home(parts[0])
    obj = _import_quiet(home) if home else None
    for part in parts if obj is not None else ():
        obj = getattr(obj, part, None)
    return obj


def _bind(sig: inspect.Signature, call: ast.Call) -> dict[str, ast.expr] | None:
    """Parameter name -> argument node of a call (extra keywords by their own names); None when it does not bind."""
    if any(isinstance(a, ast.Starred) for a in call.args) or any(k.arg is None for k in call.keywords):
        return None
    try:
        bound = sig.bind_partial(*call.args, **{k.arg: k.value for k in call.keywords if k.arg})
    except TypeError:
        return None
    out: dict[str, ast.expr] = {}
    for name, value in bound.arguments.items():
        kind = sig.parameters[name].kind
        if kind is inspect.Parameter.VAR_POSITIONAL:
            return None
        out.update(value if kind is inspect.Parameter.VAR_KEYWORD else {name: value})
    return out


def _literal(node: ast.expr) -> bool:
    """A value written out (numbers, strings, lists of them, `1 * u.TeV`), not computed from the script's variables."""
    return _free_names(node) <= {"u"}


def _written_value(node: ast.expr) -> Any:
    """The value of a literal (`2.0`, `[1, 10]`) or a quantity written as `number * u.Unit("...")` /
    `number * u.TeV`; None otherwise. Read without evaluating the script's code (it is untrusted)."""
    import astropy.units as au

    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        pass
    if not (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult)):
        return None
    unit = node.right
    if isinstance(unit, ast.Call) and ast.unparse(unit.func) == "u.Unit" and len(unit.args) == 1 \
            and isinstance(unit.args[0], ast.Constant) and isinstance(unit.args[0].value, str):
        name = unit.args[0].value
    elif isinstance(unit, ast.Attribute) and isinstance(unit.value, ast.Name) and unit.value.id == "u":
        name = unit.attr
    else:
        return None
    try:
        return au.Quantity(ast.literal_eval(node.left), au.Unit(name))
    except (ValueError, TypeError, SyntaxError):
        return None


def _same(a: ast.expr, b: ast.expr) -> bool:
    """Two written-out values that are equal (`2` and `2.0`; `1e-12 * u.Unit("1 / (cm2 s TeV)")` and
    `1e-12 * u.Unit("cm-2 s-1 TeV-1")`)."""
    if ast.dump(a) == ast.dump(b):
        return True
    x, y = _written_value(a), _written_value(b)
    if x is None or y is None or isinstance(x, str) != isinstance(y, str):
        return False
    try:
        equal = x == y
        return bool(equal.all() if hasattr(equal, "all") else equal)
    except (ValueError, TypeError):
        return False


def _as_asked(asked: ast.Call, mine: ast.Call, index: NameIndex) -> str | None:
    """The script's call with the request's values for every argument the request gives (the script's own
    extra arguments kept, and its arguments computed from variables); None when nothing changes."""
    try:
        sig = inspect.signature(_callee(mine.func, index))
    except (TypeError, ValueError):
        return None
    want, have = _bind(sig, asked), _bind(sig, mine)
    if want is None or have is None:
        return None
    merged = dict(have)
    merged.update({p: v for p, v in want.items() if p not in have or (_literal(have[p]) and not _same(have[p], v))})
    if all(p in have and ast.dump(merged[p]) == ast.dump(have[p]) for p in merged):
        return None
    positional = [p for p, v in zip(sig.parameters, asked.args)]  # the request's positional ones stay positional
    args = [ast.unparse(merged.pop(p)) for p in positional]
    return f"{ast.unparse(mine.func)}({', '.join(args + [f'{p}={ast.unparse(v)}' for p, v in merged.items()])})"


def use_the_requests_calls(text: str, calls: tuple[str, ...], index: NameIndex) -> tuple[str, list[str]]:
    """A call the request writes out (`MapAxis.from_energy_bounds(1.0, 10.0, nbin=10, unit="TeV",
    name="energy")`) is the one the script makes: where the script calls that callee with other written-out
    values (a tutorial's, copied), the request's values replace them. Told apart by `name=` when the request
    writes several calls of one callee; the script's extra arguments, and those it computes, are its own."""
    asked = [parsed for c in calls if isinstance(parsed := ast.parse(c, mode="eval").body, ast.Call)]
    if not asked:
        return text, []
    tree = ast.parse(text)
    edits: list[Edit] = []
    notes: list[str] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        same = [c for c in asked if ast.unparse(c.func) == ast.unparse(node.func)]
        if len(same) > 1:
            same = [c for c in same if _name_keyword(c) is not None and _name_keyword(c) == _name_keyword(node)]
        new = _as_asked(same[0], node, index) if len(same) == 1 else None
        if new is not None:
            edits.append((node, new))
            notes.append(f"line {node.lineno}: called `{new}` with the values your request gives, "
                         f"not `{ast.unparse(node)[:90]}`")
    return (splice(text, edits), notes) if edits else (text, [])


FILL_MAKERS = ("SpectrumDatasetMaker", "MapDatasetMaker")  # the makers that fill an empty dataset from an observation


def fill_before_reducing(text: str, calls: tuple[str, ...]) -> tuple[str, list[str]]:
    """A dataset made empty (`SpectrumDataset.create(...)`) given straight to the background or safe-mask maker,
    in a script that never runs the maker that fills it (the 1.5B: `KeyError: 'livetime'` deep in
    SafeMaskMaker): the filling maker runs on it first, with the request's arguments (or the script's own
    instance of it, made and never run), on the same observation."""
    tree = ast.parse(text)
    makers = maker_instances(tree)
    classes = {name: cls for name, (cls, _) in makers.items()}
    runs = [(stmt, stmt.value, cls, first.id) for stmt in ast.walk(tree) if isinstance(stmt, ast.Assign)
            and isinstance(stmt.value, ast.Call) and isinstance(stmt.value.func, ast.Attribute)
            and stmt.value.func.attr == "run" and len(stmt.value.args) == 2 and isinstance(first := stmt.value.args[0], ast.Name)
            and (cls := maker_class(stmt.value.func.value, classes))]
    if not runs or any(cls in FILL_MAKERS for _, _, cls, _ in runs):
        return text, []
    created = {t.id for n in ast.walk(tree) if isinstance(n, ast.Assign) and isinstance(n.value, ast.Call)
               and isinstance(n.value.func, ast.Attribute) and n.value.func.attr == "create"
               and ast.unparse(n.value.func.value).endswith("Dataset") for t in n.targets if isinstance(t, ast.Name)}
    asked = [c for c in calls if c.split("(", 1)[0] in FILL_MAKERS]
    edits: list[Edit] = []
    notes: list[str] = []
    seen: set[str] = set()
    for stmt, call, cls, source in sorted(runs, key=lambda r: r[0].lineno):
        if source not in created or source in seen:
            continue
        seen.add(source)
        own = [name for name, (c, line) in makers.items() if c in FILL_MAKERS and line < stmt.lineno]
        fill = own[0] if len(own) == 1 else asked[0] if len(asked) == 1 and not own else None
        if fill is None:
            return text, []
        observation = ast.get_source_segment(text, call.args[1]) or ast.unparse(call.args[1])
        line = f"{source} = {fill}.run({source}, {observation})"
        edits.append((stmt, f"{line}\n{' ' * stmt.col_offset}{ast.get_source_segment(text, stmt)}"))
        notes.append(f"line {stmt.lineno}: `{cls}` ran on `{source}`, an empty dataset: it is filled from the "
                     f"observation first, `{line}`")
    return (splice(text, edits), notes) if edits else (text, [])


def _without_missing_defaults(call: ast.Call, missing: set[str], index: NameIndex | None) -> ast.Call | None:
    """`call` without its keywords whose value is a name in `missing` and whose parameter has a default in the
    installed callee's signature (`ReflectedRegionsBackgroundMaker(exclusion_mask=exclusion_mask)` for a script
    with no mask is the maker with its default, no mask); None when a missing name is needed otherwise."""
    if index is None:
        return None
    try:
        params = inspect.signature(_callee(call.func, index)).parameters
    except (TypeError, ValueError):
        return None
    kept = []
    for keyword in call.keywords:
        names = {n.id for n in ast.walk(keyword.value) if isinstance(n, ast.Name)}
        if not names & missing:
            kept.append(keyword)
        elif isinstance(keyword.value, ast.Name) and keyword.arg is not None and keyword.arg in params \
                and params[keyword.arg].default is not inspect.Parameter.empty:
            continue
        else:
            return None
    if any(n.id in missing for a in call.args for n in ast.walk(a) if isinstance(n, ast.Name)):
        return None
    return ast.Call(func=call.func, args=call.args, keywords=kept)


def define_as_tutorials_do(text: str, made: dict[str, dict[str, str]],
                           index: NameIndex | None = None) -> tuple[str, list[str]]:
    """A variable used but never assigned that Gammapy's tutorials make in one way from variables the
    script already has (`dataset_empty = SpectrumDataset.create(geom=geom, energy_axis_true=energy_axis_true)`
    when the script has `geom` and `energy_axis_true`): defined just before the statement that first uses it.
    A keyword of theirs whose variable the script lacks is left out when the callee has a default for it."""
    if not made:
        return text, []
    tree = ast.parse(text)
    bound = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)} | {
        (a.asname or a.name).split(".")[0] for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))
        for a in n.names}
    assigned = _module_assignments(tree)
    imported = {(a.asname or a.name).split(".")[0]: n.lineno for n in tree.body
                if isinstance(n, (ast.Import, ast.ImportFrom)) for a in n.names}
    inserts: dict[int, list[str]] = {}
    notes: list[str] = []
    for name in undefined_names(tree):
        statement = made_from_names(name, bound, made)
        first = next((n for n in tree.body if any(isinstance(x, ast.Name) and x.id == name for x in ast.walk(n))),
                     None)
        if statement is None or first is None:
            continue
        made_by = ast.parse(statement).body[0]
        assert isinstance(made_by, ast.Assign) and isinstance(made_by.value, ast.Call), statement  # `name = f(...)`
        call = made_by.value
        needs = {x.id for v in [*call.args, *(k.value for k in call.keywords)] for x in ast.walk(v)
                 if isinstance(x, ast.Name)}
        missing = {n for n in needs if assigned.get(n, imported.get(n, 1 << 30)) >= first.lineno}
        if missing:  # what it is made from is not there before its first use: a name the script never
            # binds at all may be an optional argument it does without; one bound later is its own slip
            lighter = None if missing & bound else _without_missing_defaults(call, missing, index)
            if lighter is None:
                continue
            statement = f"{name} = {ast.unparse(lighter)}"
        inserts.setdefault(first.lineno - 1, []).append(statement)
        notes.append(f"defined `{statement}` before line {first.lineno}, as Gammapy's tutorials make it "
                     "(used but never assigned)")
    rows = text.splitlines(keepends=True)
    for at in sorted(inserts, reverse=True):
        rows[at:at] = [f"{line}\n" for line in inserts[at]]
    return "".join(rows), notes


def add_missing_imports(text: str, index: NameIndex) -> tuple[str, list[str]]:
    """An undefined name with exactly one import that defines it (`json`, `np`, `SkyCoord`, `DataStore`)."""
    tree = ast.parse(text)
    lines: list[str] = []
    for name in undefined_names(tree):
        line = index.import_for(name)
        if line and line not in lines:
            lines.append(line)
    if not lines:
        return text, []
    lines.sort(key=lambda s: (not s.startswith("import "), s))
    return add_imports(text, lines), [f"added `{line}`" for line in lines]


def add_submodule_imports(text: str, _: NameIndex) -> tuple[str, list[str]]:
    """`gammapy.data.DataStore` used after `import gammapy` alone: `import gammapy.data` is added."""
    tree = ast.parse(text)
    imported: set[str] = set()
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                imported.update(".".join(a.name.split(".")[:i]) for i in range(1, a.name.count(".") + 2))
                if a.asname is None:
                    roots.add(a.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.update(".".join(node.module.split(".")[:i]) for i in range(1, node.module.count(".") + 2))
    needed: list[str] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        dotted = _dotted(node)
        if dotted is None or dotted.split(".")[0] not in roots or dotted.split(".")[0] not in SUBMODULE_PACKAGES:
            continue
        parts = dotted.split(".")
        for i in range(2, len(parts)):
            prefix = ".".join(parts[:i])
            if prefix not in imported and prefix not in needed and _is_module(prefix):
                needed.append(prefix)
    needed = [m for m in needed if not any(o.startswith(m + ".") for o in needed)]
    if not needed:
        return text, []
    lines = [f"import {m}" for m in needed]
    return add_imports(text, lines), [f"added `{line}` (the script uses `{m}.…` without importing it)"
                                      for line, m in zip(lines, needed)]


def _dotted(node: ast.AST) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return ".".join([node.id, *reversed(parts)])


_COLUMN = re.compile(r"[A-Z][A-Z0-9_]{2,}")


def index_columns_of_observations(text: str, _: NameIndex) -> tuple[str, list[str]]:
    """`observations["LIVETIME"]`, where `observations = data_store.get_observations(...)` (bound once): an
    `Observations` is a list indexed by position or observation id, so a column name can only mean that
    column of the observation index for those observations, which is what it is made to read."""
    tree = ast.parse(text)
    stores: dict[str, int] = {}
    for n in ast.walk(tree):
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store):
            stores[n.id] = stores.get(n.id, 0) + 1
    made: dict[str, str] = {}  # observations variable -> the data store variable it came from
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name) \
                and isinstance(node.value, ast.Call) and isinstance(node.value.func, ast.Attribute) \
                and node.value.func.attr == "get_observations" and isinstance(node.value.func.value, ast.Name) \
                and stores.get(node.targets[0].id) == 1:
            made[node.targets[0].id] = node.value.func.value.id
    edits, notes = [], []
    for n in ast.walk(tree):
        if isinstance(n, ast.Subscript) and isinstance(n.ctx, ast.Load) and isinstance(n.value, ast.Name) \
                and n.value.id in made and isinstance(n.slice, ast.Constant) and isinstance(n.slice.value, str) \
                and _COLUMN.fullmatch(n.slice.value):
            obs, ds, col = n.value.id, made[n.value.id], n.slice.value
            new = f"{ds}.obs_table.select_obs_id([int(i) for i in {obs}.ids])[{col!r}]"
            edits.append((n, new))
            notes.append(f"`{obs}[{col!r}]` (line {n.lineno}): `{obs}` is an `Observations` (a list of observations, "
                         f"indexed by position or id), not a table: read the column from the observation index, "
                         f"`{new}`")
    return (splice(text, edits), notes) if edits else (text, [])


def ids_not_rows(text: str, _: NameIndex) -> tuple[str, list[str]]:
    """`data_store.get_observations(table[mask])`: the method takes observation ids, and rows of the observation
    index can only mean their `OBS_ID` column ("Cannot compare structured or void to non-void arrays" at run
    time). The rows are a subscript of `<x>.obs_table` or of a name bound once to it, or a name bound once to
    such a subscript."""
    tree = ast.parse(text)
    bound = bindings(tree)

    def once(name: str) -> ast.expr | None:
        values = bound.get(name, [])
        return values[0] if len(values) == 1 else None

    def index_table(node: ast.expr) -> bool:
        if isinstance(node, ast.Attribute):
            return node.attr == "obs_table"
        return isinstance(node, ast.Name) and (value := once(node.id)) is not None and index_table(value)

    def rows(node: ast.expr) -> bool:
        if isinstance(node, ast.Subscript):  # table[mask], not table["OBS_ID"]
            return index_table(node.value) and not (isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str))
        return isinstance(node, ast.Name) and (value := once(node.id)) is not None and isinstance(value, ast.Subscript) \
            and rows(value)

    edits, notes = [], []
    for n in ast.walk(tree):
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "get_observations" \
                and n.args and rows(n.args[0]):
            arg = n.args[0]
            new = f'list({ast.unparse(arg)}["OBS_ID"])'
            edits.append((arg, new))
            notes.append(f"line {n.lineno}: `get_observations` takes observation ids, not rows of the observation "
                         f"index: passed `{new}`")
    return (splice(text, edits), notes) if edits else (text, [])


_PLACEHOLDER = re.compile(r"""(?:["']?(\w+)["']?\s*[:=]\s*)?\{(\w+)\}""")


def format_result_placeholders(text: str, _: NameIndex) -> tuple[str, list[str]]:
    """`print("RESULT n_obs: {n_obs}")`, a plain string (the `f` forgotten) whose `{name}` placeholders are
    all variables the script assigns: it prints `json.dumps` of those values, each under the label written
    before it (`n_obs:`, `"n_obs":`, `n_obs=`) or else its variable's name."""
    tree = ast.parse(text)
    assigned = {t.id for n in ast.walk(tree) if isinstance(n, (ast.Assign, ast.AugAssign, ast.AnnAssign))
                for t in ([*n.targets] if isinstance(n, ast.Assign) else [n.target]) if isinstance(t, ast.Name)}
    edits, notes = [], []
    for call in ast.walk(tree):
        if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "print"
                and len(call.args) == 1 and isinstance(call.args[0], ast.Constant)
                and isinstance(call.args[0].value, str) and call.args[0].value.lstrip().startswith("RESULT")):
            continue
        found = _PLACEHOLDER.findall(call.args[0].value)
        if not found or any(name not in assigned for _, name in found):
            continue
        body = ", ".join(f'"{label or name}": {name}' for label, name in found)
        new = f'print("RESULT " + json.dumps({{{body}}}, default=float))'
        edits.append((call, new))
        notes.append(f"the RESULT line `{ast.unparse(call)}` printed its placeholders as text: it now prints `{new}`")
    return (splice(text, edits), notes) if edits else (text, [])  # `import json`: add_missing_imports, later


def unwrap_nested_result_keys(text: str, _: NameIndex) -> tuple[str, list[str]]:
    """`json.dumps({"n_obs": {"n_obs": n}})`: a RESULT value that is a dict of that one key again (how small
    models echo `RESULT {"n_obs": <int>}`) is its inner value."""
    tree = ast.parse(text)
    edits, notes = [], []
    for d in result_dicts(tree):
        for key, value in zip(d.keys, d.values):
            if isinstance(key, ast.Constant) and isinstance(value, ast.Dict) and len(value.keys) == 1 \
                    and isinstance(value.keys[0], ast.Constant) and value.keys[0].value == key.value:
                inner = ast.get_source_segment(text, value.values[0]) or ast.unparse(value.values[0])
                edits.append((value, inner))
                name = str(key.value)  # the text `{key.value}` gives, bytes included (mypy: str-bytes-safe)
                notes.append(f"the RESULT value of `{name}` was a dict of `{name}` again: it is now `{inner}`")
    return (splice(text, edits), notes) if edits else (text, [])


def chain_makers(text: str, _: NameIndex) -> tuple[str, list[str]]:
    """`bkg = ReflectedRegionsBackgroundMaker().run(ds, obs)` then `safe = SafeMaskMaker(...).run(ds, obs)`, and
    `ds = bkg + safe`: each maker returns the dataset with its step added, so the second runs on the first's
    result, and the sum of the two (a list of two datasets) is the second's result (the 1.5B, light curves)."""
    tree = ast.parse(text)
    edits: list[Edit] = []
    notes: list[str] = []
    for run in unchained_runs(tree):
        if run.first is None:
            continue
        edits.append((run.call.args[0], run.first))
        second = next((t.id for a in ast.walk(tree) if isinstance(a, ast.Assign) and a.value is run.call
                       for t in a.targets if isinstance(t, ast.Name)), None)
        summed = [b for b in ast.walk(tree) if second and isinstance(b, ast.BinOp) and isinstance(b.op, ast.Add)
                  and {ast.unparse(b.left), ast.unparse(b.right)} == {run.first, second}]
        edits += [(b, second or "") for b in summed]
        notes.append(f"line {run.call.lineno}: `{run.maker}` now runs on `{run.first}`, the result of `{run.before}` "
                     f"(line {run.line}), so the dataset keeps both steps"
                     + (f"; `{ast.unparse(summed[0])}` (a list of two datasets) is now `{second}`" if summed else ""))
    return (splice(text, edits), notes) if edits else (text, [])


def braces_around_json(text: str, _: NameIndex) -> tuple[str, list[str]]:
    """`print("RESULT {" + json.dumps({...}) + "}")`: json.dumps writes the object's braces itself, so the
    extra pair prints `{{...}}`, which is no JSON object (the 0.5B, three tasks)."""
    tree = ast.parse(text)
    edits: list[Edit] = []
    for call in ast.walk(tree):
        if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "print"
                and len(call.args) == 1 and isinstance(call.args[0], ast.BinOp)):
            continue
        outer = call.args[0]
        if not (isinstance(outer.op, ast.Add) and isinstance(outer.left, ast.BinOp) and isinstance(outer.left.op, ast.Add)):
            continue
        head, dumps, tail = outer.left.left, outer.left.right, outer.right
        if isinstance(head, ast.Constant) and isinstance(head.value, str) and head.value.startswith("RESULT") \
                and head.value.rstrip().endswith("{") and isinstance(tail, ast.Constant) and tail.value == "}" \
                and isinstance(dumps, ast.Call) and isinstance(dumps.func, ast.Attribute) and dumps.func.attr == "dumps":
            edits.append((outer, f'"RESULT " + {ast.get_source_segment(text, dumps)}'))
    notes = ["the RESULT line wrapped json.dumps in braces of its own (`{{...}}` is no JSON object): removed them"
             for _ in edits[:1]]
    return (splice(text, edits), notes) if edits else (text, [])


def _dumps_call(node: ast.expr) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "dumps"


def label_before_json(text: str, _: NameIndex) -> tuple[str, list[str]]:
    """`print("RESULT max_energy_tev", json.dumps({...}))` (or `"RESULT n_obs: " + json.dumps(...)`): words between
    `RESULT` and the JSON make the line no JSON object, and the JSON already names its keys: the words go."""
    tree = ast.parse(text)
    edits: list[Edit] = []
    for call in ast.walk(tree):
        if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "print"):
            continue
        args = call.args
        if len(args) == 1 and isinstance(args[0], ast.BinOp) and isinstance(args[0].op, ast.Add):
            head, dumps = args[0].left, args[0].right
        elif len(args) == 2 and not call.keywords:
            head, dumps = args
        else:
            continue
        if isinstance(head, ast.Constant) and isinstance(head.value, str) and head.value.startswith("RESULT") \
                and head.value[len("RESULT"):].strip() and "{" not in head.value and _dumps_call(dumps):
            edits.append((call, f'print("RESULT " + {ast.get_source_segment(text, dumps)})'))
    notes = [f"the RESULT line put words between `RESULT` and its JSON (line {edits[0][0].lineno}), which makes it no "
             "JSON object: printed `\"RESULT \" + json.dumps(...)`"] if edits else []
    return (splice(text, edits), notes) if edits else (text, [])


# numpy reductions an array (an astropy Column) has no method for: `col.median()` is `np.median(col)`
NUMPY_ONLY_REDUCTIONS = ("median", "percentile", "quantile", "average", "nanmean", "nanmedian", "nanmax", "nanmin",
                         "nansum", "nanstd")


def numpy_call(text: str, call: ast.Call) -> str:
    """`x.median(50, axis=0)` written as numpy's function of the receiver, `np.median(x, 50, axis=0)`."""
    assert isinstance(call.func, ast.Attribute)
    parts = [ast.get_source_segment(text, a) or ast.unparse(a) for a in (call.func.value, *call.args, *call.keywords)]
    return f"np.{call.func.attr}({', '.join(parts)})"


# The reduction a name says (one underscore-delimited word of it) -> numpy's function.
_NAMED_REDUCTION = {"median": "median", "mean": "mean", "average": "mean", "avg": "mean", "max": "max",
                    "maximum": "max", "min": "min", "minimum": "min", "sum": "sum", "total": "sum"}


def reduction_the_name_says(text: str, _: NameIndex) -> tuple[str, list[str]]:
    """`median_muoneff = selected["MUONEFF"].mean()` (an unseen question asked for the median; the 1.5B wrote the
    mean under the median's name): a variable whose name says one reduction, assigned straight from another
    (`x.mean()`, `np.mean(x)`), gets the one its name says, as numpy's function (`np.median(x)`)."""
    tree = ast.parse(text)
    edits: list[Edit] = []
    notes: list[str] = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
                and isinstance(call := node.value, ast.Call)):
            continue
        said = {_NAMED_REDUCTION[w] for w in node.targets[0].id.lower().split("_") if w in _NAMED_REDUCTION}
        func = call.func
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id in ("np", "numpy") \
                and len(call.args) == 1:
            done, operand = func.attr, call.args[0]
        elif isinstance(func, ast.Attribute) and not call.args:
            done, operand = func.attr, func.value
        else:
            continue
        if len(said) != 1 or done not in _NAMED_REDUCTION.values() or done in said:
            continue
        new = f"np.{said.pop()}({ast.get_source_segment(text, operand) or ast.unparse(operand)})"
        edits.append((call, new))
        notes.append(f"line {node.lineno}: `{node.targets[0].id}` says which reduction it holds, but was computed "
                     f"with `{done}`: `{new}`")
    return (splice(text, edits), notes) if edits else (text, [])  # `add_missing_imports` imports numpy


def reductions_through_numpy(text: str, _: NameIndex) -> tuple[str, list[str]]:
    """`events["ENERGY"].median()`: a column is an array, and numpy arrays have no `median` method; numpy's
    function computes it, `np.median(events["ENERGY"])`."""
    tree = ast.parse(text)
    edits: list[Edit] = []
    notes: list[str] = []
    for call in ast.walk(tree):
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) \
                and call.func.attr in NUMPY_ONLY_REDUCTIONS and isinstance(call.func.value, ast.Subscript) \
                and isinstance(call.func.value.slice, ast.Constant) and isinstance(call.func.value.slice.value, str):
            new = numpy_call(text, call)
            edits.append((call, new))
            notes.append(f"line {call.lineno}: a column has no `.{call.func.attr}()` (it is an array): `{new}`")
    return (splice(text, edits), notes) if edits else (text, [])


def configuration_of_nothing(text: str, index: NameIndex) -> tuple[str, list[str]]:
    """`config.observations.obs_cone.radius = ...` where `config` is made nowhere and never read: lines of a
    tutorial's configuration pasted without the object they configure. They can only raise NameError and
    nothing reads what they set, so they go."""
    tree = ast.parse(text)
    undefined = {n for n in undefined_names(tree) if not index.import_for(n)}
    doomed: list[ast.stmt] = []
    notes: list[str] = []
    for name in sorted(undefined):
        uses = [n for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id == name]
        writes = [s for s in ast.walk(tree) if isinstance(s, ast.Assign) and len(s.targets) == 1
                  and isinstance(s.targets[0], (ast.Attribute, ast.Subscript))
                  and _root_name(s.targets[0]) == name and name not in {n.id for n in ast.walk(s.value)
                                                                         if isinstance(n, ast.Name)}]
        if writes and len(uses) == len(writes):  # every use is the root of one of these assignments' targets
            doomed += writes
            notes.append(f"removed {len(writes)} line(s) setting attributes of `{name}`, which the script never makes "
                         f"nor reads (from line {writes[0].lineno})")
    return (splice(text, drop_statements(tree, doomed)), notes) if doomed else (text, [])


def _root_name(node: ast.expr) -> str | None:
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _ids(node: ast.expr, bound: dict[str, list[ast.expr]], depth: int = 0) -> bool:
    """`node` holds observation ids: `x["OBS_ID"]`, `list(...)`/`set(...)` of that, or a name bound once to one."""
    node = assigned_once(node, bound)
    if depth > 5:
        return False
    if isinstance(node, ast.Subscript):
        if isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str):
            return node.slice.value == "OBS_ID"
        return _ids(node.value, bound, depth + 1)  # some of the ids: `ids[:3]`, `t["OBS_ID"][mask]`
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("list", "set", "sorted") \
            and len(node.args) == 1:
        return _ids(node.args[0], bound, depth + 1)
    return False


def one_observation_by_id(text: str, _: NameIndex) -> tuple[str, list[str]]:
    """`[data_store.get_observations(obs_id) for obs_id in obs_ids]`: `get_observations` takes a list of ids and
    iterates over it (`'numpy.int64' object is not iterable`); the loop hands it one id at a time, so the one
    observation of that id was meant: `data_store.obs(obs_id)`."""
    tree = ast.parse(text)
    bound = bindings(tree)
    loop_ids = {g.target.id for n in ast.walk(tree) if isinstance(n, (ast.ListComp, ast.SetComp, ast.GeneratorExp,
                                                                          ast.DictComp))
                for g in n.generators if isinstance(g.target, ast.Name) and _ids(g.iter, bound)}
    loop_ids |= {n.target.id for n in ast.walk(tree) if isinstance(n, ast.For) and isinstance(n.target, ast.Name)
                 and _ids(n.iter, bound)}
    edits: list[Edit] = []
    notes: list[str] = []
    for call in ast.walk(tree):
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr == "get_observations" \
                and len(call.args) == 1 and not call.keywords and isinstance(call.args[0], ast.Name) \
                and call.args[0].id in loop_ids:
            store = ast.get_source_segment(text, call.func.value) or ast.unparse(call.func.value)
            new = f"{store}.obs({call.args[0].id})"
            edits.append((call, new))
            notes.append(f"line {call.lineno}: `get_observations` takes a list of ids; given one id at a time it "
                         f"meant that observation: `{new}`")
    return (splice(text, edits), notes) if edits else (text, [])


def observation_from_the_store(text: str, _: NameIndex) -> tuple[str, list[str]]:
    """`Observation(obs_id)` with an id from the index, in a script that opens a `DataStore`: the constructor
    makes an empty observation (no events, no IRFs, a dead-time fraction of 0; f43: the lowest DEADC answered
    0.0); the release's observation of that id was meant: `data_store.obs(obs_id)`."""
    tree = ast.parse(text)
    bound = bindings(tree)
    stores = [t.id for n in ast.walk(tree) if isinstance(n, ast.Assign) and isinstance(n.value, ast.Call)
              and isinstance(n.value.func, ast.Attribute) and n.value.func.attr == "from_dir"
              for t in n.targets if isinstance(t, ast.Name)]
    if not stores:
        return text, []
    loop_ids = {g.target.id for n in ast.walk(tree) if isinstance(n, (ast.ListComp, ast.SetComp, ast.GeneratorExp,
                                                                      ast.DictComp))
                for g in n.generators if isinstance(g.target, ast.Name) and _ids(g.iter, bound)}
    loop_ids |= {n.target.id for n in ast.walk(tree) if isinstance(n, ast.For) and isinstance(n.target, ast.Name)
                 and _ids(n.iter, bound)}
    edits: list[Edit] = []
    notes: list[str] = []
    for call in ast.walk(tree):
        if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "Observation"):
            continue
        given = call.args + [k.value for k in call.keywords if k.arg == "obs_id"]
        if len(given) != 1 or len(call.args) + len(call.keywords) != 1:
            continue
        arg = given[0]
        if isinstance(arg, ast.Name) and arg.id in loop_ids or isinstance(arg, ast.Constant) and isinstance(arg.value, int):
            new = f"{stores[0]}.obs({ast.get_source_segment(text, arg) or ast.unparse(arg)})"
            edits.append((call, new))
            notes.append(f"line {call.lineno}: `Observation(...)` of an id makes an empty observation (no events, "
                         f"no IRFs); the release's observation of that id is `{new}`")
    return (splice(text, edits), notes) if edits else (text, [])


def sum_not_its_length(text: str, _: NameIndex) -> tuple[str, list[str]]:
    """`len(selected["EVENT_COUNT"].sum())`: a sum is one number, which has no length (TypeError at run time);
    the count it was meant to give is the sum itself."""
    tree = ast.parse(text)
    edits: list[Edit] = []
    for call in ast.walk(tree):
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "len" \
                and len(call.args) == 1 and not call.keywords:
            inner = call.args[0]
            if isinstance(inner, ast.Call) and isinstance(inner.func, ast.Attribute) and inner.func.attr == "sum" \
                    and not inner.args and not inner.keywords:
                edits.append((call, ast.get_source_segment(text, inner) or ast.unparse(inner)))
    notes = [f"line {call.lineno}: `len()` of a sum (one number, no length): the sum itself, `{new}`"
             for call, new in edits]
    return (splice(text, edits), notes) if edits else (text, [])


def count_the_selection_not_its_criteria(text: str, _: NameIndex) -> tuple[str, list[str]]:
    """`len(selection)` where `selection` is the dict of criteria given to `select_observations(selection)`:
    the number of criteria is never the count wanted; the selected table's length is (the 0.5B counted 5
    observations, the dict's keys, three times)."""
    tree = ast.parse(text)
    bound = bindings(tree)
    selected: dict[str, str] = {}  # criteria dict's name -> the selected table (a name assigned once, else the call)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr == "select_observations" and len(node.args) == 1 \
                and isinstance(arg := node.args[0], ast.Name) and len(bound.get(arg.id, [])) == 1 \
                and isinstance(criteria := bound[arg.id][0], (ast.Dict, ast.Call)) \
                and (isinstance(criteria, ast.Dict) or ast.unparse(criteria.func) == "dict"):
            names = [t.id for a in ast.walk(tree) if isinstance(a, ast.Assign) and a.value is node
                     for t in a.targets if isinstance(t, ast.Name) and len(bound.get(t.id, [])) == 1]
            selected[arg.id] = names[0] if names else (ast.get_source_segment(text, node) or ast.unparse(node))
    edits: list[Edit] = [(c.args[0], selected[c.args[0].id]) for c in ast.walk(tree)
                         if isinstance(c, ast.Call) and isinstance(c.func, ast.Name) and c.func.id == "len"
                         and len(c.args) == 1 and isinstance(c.args[0], ast.Name) and c.args[0].id in selected]
    notes = [f"line {node.lineno}: `len({node.id})` counted the selection's criteria: it now counts the selected "
             f"observations, `len({new})`" for node, new in edits if isinstance(node, ast.Name)]
    return (splice(text, edits), notes) if edits else (text, [])


def _made_from(tree: ast.Module, variable: str, name: str) -> bool:
    """True when an assignment to `variable` reads `name` in its value (renaming would make it read itself)."""
    return any(isinstance(n, ast.Assign) and any(isinstance(t, ast.Name) and t.id == variable for t in n.targets)
               and any(isinstance(m, ast.Name) and m.id == name for m in ast.walk(n.value)) for n in ast.walk(tree))


def fix_misspelt_variables(text: str, index: NameIndex) -> tuple[str, list[str]]:
    """A name used but never defined that is, but for case and underscores, exactly one variable the script
    assigns (`datastore` beside `data_store = ...`): that variable. A name something can be imported as
    (`DataStore` beside `data_store`) is an import, not a variable."""
    tree = ast.parse(text)
    assigned = _stored(tree)
    edits: list[Edit] = []
    notes: list[str] = []
    for name in undefined_names(tree):
        if index.import_for(name):
            continue
        same = [a for a in sorted(assigned) if a != name and flat_name(a) == flat_name(name)]
        if len(same) != 1 or _made_from(tree, same[0], name):
            continue  # `event_list_maker = EventListMaker(...)`: an invented class, not the variable misspelt
        edits += [(n, same[0]) for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id == name]
        notes.append(f"renamed `{name}` to `{same[0]}`, the variable your script assigns (spelt two ways)")
    return (splice(text, edits), notes) if edits else (text, [])


IDIOM_SELECTION = "selected"  # what the rules' idiom and the harness's messages call the selected rows


def selection_under_its_own_name(text: str, _: NameIndex) -> tuple[str, list[str]]:
    """`selected["EVENT_COUNT"]` copied from the harness's messages into a script whose selected rows are
    `near = table[mask]`: `selected` is defined nowhere, and the script selects rows of a table exactly once,
    so the idiom's name can only mean that variable."""
    tree = ast.parse(text)
    if IDIOM_SELECTION not in undefined_names(tree):
        return text, []
    rows = {n.targets[0].id for n in ast.walk(tree) if isinstance(n, ast.Assign) and len(n.targets) == 1
            and isinstance(n.targets[0], ast.Name) and isinstance(n.value, ast.Subscript)
            and not isinstance(n.value.slice, ast.Constant) and "table" in ast.unparse(n.value.value).lower()}
    if len(rows) != 1:
        return text, []
    mine = rows.pop()
    edits: list[Edit] = [(n, mine) for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id == IDIOM_SELECTION]
    return splice(text, edits), [f"`{IDIOM_SELECTION}` is what the examples call the selected rows; your script "
                                 f"calls them `{mine}`: used `{mine}`"]


def comprehension_uses_its_variable(text: str, index: NameIndex) -> tuple[str, list[str]]:
    """A comprehension whose element never reads its own loop variable but reads a name defined nowhere
    (`sum(observation["livetime"] for obs in observations)`): that name is the loop variable."""
    tree = ast.parse(text)
    undefined = {n for n in undefined_names(tree) if not index.import_for(n)}
    edits: list[Edit] = []
    notes: list[str] = []
    for node in ast.walk(tree):
        if not isinstance(node, (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)) \
                or len(node.generators) != 1 or not isinstance(node.generators[0].target, ast.Name):
            continue
        loop = node.generators[0]
        var = loop.target.id  # type: ignore[attr-defined]  # checked above
        parts = [node.key, node.value] if isinstance(node, ast.DictComp) else [node.elt]
        uses = [n for part in (*parts, *loop.ifs) for n in ast.walk(part) if isinstance(n, ast.Name)]
        stray = {n.id for n in uses} & undefined
        if any(n.id == var for n in uses) or len(stray) != 1:
            continue
        name = stray.pop()
        edits += [(n, var) for n in uses if n.id == name]
        notes.append(f"line {node.lineno}: `{name}` is defined nowhere and the comprehension never reads its own "
                     f"loop variable: read `{var}`")
    return (splice(text, edits), notes) if edits else (text, [])


REPAIRS: tuple[Callable[[str, NameIndex], tuple[str, list[str]]], ...] = (
    fix_units_alias,
    unit_names_as_units,
    unit_divided_then_converted,
    list_as_datasets,
    fix_import_homes,
    fix_imported_names,
    drop_unused_missing_imports,
    keep_contract_environment,
    open_the_release_not_the_root,
    fix_data_paths,
    pair_to_skycoord,
    pair_as_position,
    true_separation,
    separation_in_degrees,
    index_columns_of_observations,
    format_result_placeholders,
    unwrap_nested_result_keys,
    braces_around_json,
    label_before_json,
    sum_not_its_length,
    one_observation_by_id,
    observation_from_the_store,
    reduction_the_name_says,
    reductions_through_numpy,
    chain_makers,
    count_the_selection_not_its_criteria,
    remove_display_calls,
    define_idiom_variables,
    ids_not_rows,  # after the idiom's `table` may have been defined
    fix_misspelt_variables,
    selection_under_its_own_name,
    comprehension_uses_its_variable,
    configuration_of_nothing,
    add_missing_imports,
    add_submodule_imports,
)


def add_result_line(text: str, keys: tuple[str, ...]) -> tuple[str, list[str]]:
    """A script that prints no RESULT line but assigns, at module level, a variable named after every key the
    request asks for: the RESULT line is printed from those variables (small models compute the values and
    forget the output contract)."""
    tree = ast.parse(text)
    strings = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
    assigned = _module_assignments(tree)
    if not keys or any("RESULT" in v for v in strings) or not all(k in assigned for k in keys):
        return text, []
    body = ", ".join(f'"{k}": {k}' for k in keys)
    line = f'print("RESULT " + json.dumps({{{body}}}, default=float))'
    return text.rstrip("\n") + "\n" + line + "\n", [f"printed the RESULT line from your variables: `{line}`"]


def repair(script: str, index: NameIndex, facts: RequestFacts = RequestFacts()) -> Repaired:
    """Every repair in turn on a script that parses (after the syntax repairs); one that does not is
    returned unchanged. `facts`: what the request fixes (`request_facts.RequestFacts`): the RESULT keys (for a
    script that forgot its RESULT line), statements for variables, the cone and the ON circle, the library
    calls it writes out, and the named source model (for an estimator or a fit that needs one)."""
    script, notes = make_it_parse(script)
    try:
        ast.parse(script)
    except SyntaxError:
        return Repaired(script, ())
    request_steps: list[Callable[[str], tuple[str, Sequence[str]]]] = [  # in this order: each reads the last
        lambda s: add_result_line(s, facts.result_keys),
        lambda s: define_from_request(s, facts.definitions),
        lambda s: whole_index_without_a_position(s, facts.definitions),
        lambda s: whole_index_for_an_invented_position(s, facts.positioned, facts.numbers),
        lambda s: use_the_requests_calls(s, facts.calls, index),
        lambda s: fill_before_reducing(s, facts.calls),
        lambda s: freeze_as_requested(s, facts.source_model),
        bins_as_table,
        lambda s: attach_source_model(s, facts.source_model),
        load_each_observation,
        append_each_dataset,
        lambda s: model_for_the_fit(s, facts.calls, facts.source_model),
        lambda s: define_as_tutorials_do(s, tutorial_made_from_names(), index),
        lambda s: select_in_the_cone(s, facts.cone),
        lambda s: cone_as_gammapy_takes_it(s, facts.cone),
        lambda s: use_the_cone(s, facts.cone),
        lambda s: use_the_circle_radius(s, facts.circle),
    ]
    for request_step in request_steps:
        script, done = request_step(script)
        notes += done
    for step in REPAIRS:
        script, done = step(script, index)
        notes += done
    return Repaired(script, tuple(notes))
