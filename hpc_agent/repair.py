"""Deterministic repairs: slips whose fix has exactly one reading are fixed before a model turn is spent.

Each repair returns the new script and one line per change ("added `import json`"), recorded on the
attempt and told to the model in the next turn so it learns the fix. A repair never guesses: a name
with two possible imports, or a path that is not the release's, is left to the model and the checks.
`repair` runs them all in order. Those of one kind live beside this module: imports (`imports.py`), units
(`units.py`), positions and separations (`separations.py`), the RESULT line (`result_line.py`), what the request
writes out (`as_requested.py`, `request_regions.py`, `model_wiring.py`, `reduction_loop.py`); the rest, about the
release's tables and the script's own names, are here. The repairs a run's outcome calls for are in
`repair_after_run.py`.
"""

from __future__ import annotations

import ast
import inspect
import re
from dataclasses import dataclass
from typing import Callable, Sequence

from hpc_agent.as_requested import (define_as_tutorials_do, define_from_request, fill_before_reducing,
                                    use_the_requests_calls)
from hpc_agent.bindings import assigned_once, bindings, module_assignments, stored_names
from hpc_agent.checks import DISPLAY_METHODS, unchained_runs, undefined_names
from hpc_agent.flux_points import bins_as_table
from hpc_agent.imports import (add_missing_imports, add_submodule_imports, drop_unused_missing_imports, fix_import_homes,
                               fix_imported_names)
from hpc_agent.model_wiring import attach_source_model, freeze_as_requested, model_for_the_fit
from hpc_agent.names import NameIndex, flat_name
from hpc_agent.prompts import OBS_TABLE, OPEN_RELEASE, POINTING, RELEASE, RELEASE_PATH, release_path
from hpc_agent.reduction_loop import append_each_dataset, load_each_observation
from hpc_agent.request_facts import RequestFacts
from hpc_agent.request_regions import (cone_as_gammapy_takes_it, define_the_selection, select_in_the_cone,
                                      use_the_circle_radius, use_the_cone, whole_index_for_an_invented_position,
                                      whole_index_without_a_position)
from hpc_agent.result_line import (add_result_line, braces_around_json, format_result_placeholders,
                                   label_before_json, unwrap_nested_result_keys)
from hpc_agent.separations import (pair_as_position, pair_to_skycoord, separation_in_degrees, separation_kept_as_measured,
                                   true_separation)
from hpc_agent.source_edits import Edit, drop_statements, source_of, splice
from hpc_agent.syntax_repair import make_it_parse, repeated_keywords
from hpc_agent.tutorial_definitions import tutorial_made_from_names
from hpc_agent.units import bare_unit_names, fix_units_alias, unit_divided_then_converted, unit_names_as_units


DISPLAY_FUNCTIONS = ("display",)  # `input()` is rejected by the rules, but it is no display call to drop


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
            rest = [source_of(text, a) for a in (*call.args[1:], *call.keywords)]
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


# Variables the prompts' idiom defines (the rules and the positions context show it): used but never
# assigned, they can only mean this. name -> (definition, names the definition needs)
IDIOM_VARIABLES: dict[str, tuple[str, tuple[str, ...]]] = {
    "data_store": (OPEN_RELEASE, ()),
    "obs_table": ("obs_table = data_store.obs_table", ("data_store",)),
    "table": (OBS_TABLE, ("data_store",)),
    "pointing": (POINTING, ("table",)),
}


def _after_imports(tree: ast.Module) -> int:
    """The line after the script's last top-level import (0: none)."""
    return max([n.end_lineno or 0 for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))], default=0)


def define_idiom_variables(text: str, _: NameIndex) -> tuple[str, list[str]]:
    """`data_store`, `table`, `pointing` (names of the prompts' idiom) used but never assigned: their
    definitions are added after the imports, or after the script's own definition of what they need."""
    tree = ast.parse(text)
    undefined = set(undefined_names(tree))
    assigned = module_assignments(tree)
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


# numpy reductions an array (an astropy Column) has no method for: `col.median()` is `np.median(col)`
NUMPY_ONLY_REDUCTIONS = ("median", "percentile", "quantile", "average", "nanmean", "nanmedian", "nanmax", "nanmin",
                         "nansum", "nanstd")


def numpy_call(text: str, call: ast.Call) -> str:
    """`x.median(50, axis=0)` written as numpy's function of the receiver, `np.median(x, 50, axis=0)`."""
    assert isinstance(call.func, ast.Attribute)
    parts = [source_of(text, a) for a in (call.func.value, *call.args, *call.keywords)]
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
        new = f"np.{said.pop()}({source_of(text, operand)})"
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
            store = source_of(text, call.func.value)
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
            new = f"{stores[0]}.obs({source_of(text, arg)})"
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
                edits.append((call, source_of(text, inner)))
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
            selected[arg.id] = names[0] if names else source_of(text, node)
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
    assigned = stored_names(tree)
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
    bare_unit_names,
    unit_divided_then_converted,
    fix_import_homes,
    fix_imported_names,
    drop_unused_missing_imports,
    keep_contract_environment,
    open_the_release_not_the_root,
    fix_data_paths,
    pair_to_skycoord,
    pair_as_position,
    true_separation,
    separation_kept_as_measured,
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
    list_as_datasets,  # after the misspelt names: `_datasets.stack_reduce()` names the list once fixed
    selection_under_its_own_name,
    comprehension_uses_its_variable,
    configuration_of_nothing,
    add_missing_imports,
    add_submodule_imports,
)


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
    script, repeated = repeated_keywords(script)
    notes += repeated
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
        lambda s: define_the_selection(s, facts.cone),
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
