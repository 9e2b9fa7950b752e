"""The per-observation reduction loop: each dataset a loop makes is collected for what runs after it.

Gammapy's tutorials reduce one observation at a time (`dataset = maker.run(empty.copy(), obs)`, then the
safe mask and the background) and collect each result (`datasets.append(dataset)`) for the fit or the stack.
Small models write the loop and drop the last line: the collection stays empty, and the run fails far from
the slip (`No free parameters for fitting`, `Info table not supported for mixed dataset type`). When the
script has one such collection and one such loop, the dropped line has one reading. The loop is also often
written over observation ids (or the rows of the observation index) while its body hands the makers an
`obs` it never loads: with one data store in the script, that observation has one reading too.
"""

from __future__ import annotations

import ast

from hpc_agent.bindings import assigned_once, bindings
from hpc_agent.checks import undefined_names

_MUTATORS = ("append", "extend", "insert", "stack", "__setitem__")


def _empty_collection(value: ast.expr) -> bool:
    """`Datasets()`, `[]` or `list()`."""
    if isinstance(value, ast.List):
        return not value.elts
    return isinstance(value, ast.Call) and not value.args and not value.keywords \
        and ast.unparse(value.func).split(".")[-1] in ("Datasets", "list")


def _filled(tree: ast.Module, name: str) -> bool:
    """Whether anything adds to `name`: a mutating method, `+=`, an item assignment, or passing it to a call
    that may fill it (only reading calls such as `fit.run(name)` are after the loop anyway)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in _MUTATORS \
                and isinstance(node.func.value, ast.Name) and node.func.value.id == name:
            return True
        if isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name) and node.target.id == name:
            return True
        if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Store) and isinstance(node.value, ast.Name) \
                and node.value.id == name:
            return True
    return False


def _made_and_dropped(loop: ast.For) -> str | None:
    """The name the loop body last binds from a maker's `.run(..., <loop variable>)` and never reads after
    that binding in the body (so each iteration's result is lost)."""
    items = {t.id for t in ast.walk(loop.target) if isinstance(t, ast.Name)}
    made = None
    for i, stmt in enumerate(loop.body):
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name) \
                and isinstance(stmt.value, ast.Call) and isinstance(stmt.value.func, ast.Attribute) \
                and stmt.value.func.attr == "run" \
                and any(isinstance(a, ast.Name) and a.id in items for a in stmt.value.args):
            made = (i, stmt.targets[0].id)
    if made is None:
        return None
    at, name = made
    read_later = any(isinstance(n, ast.Name) and n.id == name and isinstance(n.ctx, ast.Load)
                     for stmt in loop.body[at + 1:] for n in ast.walk(stmt))
    return None if read_later else name


def append_each_dataset(text: str) -> tuple[str, list[str]]:
    """A top-level loop whose body makes a dataset per observation and drops it, and one empty collection made
    before the loop, read after it and never filled: `<collection>.append(<dataset>)` ends the loop body."""
    tree = ast.parse(text)
    bound = bindings(tree)
    collections = [n for n, values in bound.items() if len(values) == 1 and _empty_collection(values[0])
                   and not _filled(tree, n)]
    loops = [(stmt, made) for stmt in tree.body if isinstance(stmt, ast.For) and (made := _made_and_dropped(stmt))]
    if len(loops) != 1:
        return text, []
    loop, made = loops[0]
    end = loop.end_lineno or loop.lineno
    before = [c for c in collections if bound[c][0].lineno < loop.lineno]
    after = [c for c in before if any(isinstance(n, ast.Name) and n.id == c and n.lineno > end for n in ast.walk(tree))]
    if len(after) != 1:
        return text, []
    collection = after[0]
    last = loop.body[-1]
    indent = " " * last.col_offset
    rows = text.splitlines(keepends=True)
    stop = last.end_lineno or last.lineno
    rows[stop - 1] = rows[stop - 1].rstrip("\r\n") + "\n"
    rows.insert(stop, f"{indent}{collection}.append({made})\n")
    return "".join(rows), [f"line {loop.lineno}: the loop made `{made}` for each observation and dropped it, so "
                           f"`{collection}` stayed empty for what follows; it now ends with "
                           f"`{collection}.append({made})`"]


def _one_store(bound: dict[str, list[ast.expr]]) -> str | None:
    """The one variable assigned from `DataStore.from_dir(...)`/`from_file(...)`, if the script has exactly one."""
    stores = [n for n, values in bound.items() if len(values) == 1 and isinstance(values[0], ast.Call)
              and ast.unparse(values[0].func).split(".")[-2:] in (["DataStore", "from_dir"], ["DataStore", "from_file"])]
    return stores[0] if len(stores) == 1 else None


def _rows_or_ids(iterable: ast.expr, bound: dict[str, list[ast.expr]], store: str) -> str | None:
    """"rows" when the loop runs over the observation index or a selection of it (each item a table row),
    "ids" over its `OBS_ID` column or a literal list of ids; None for anything else."""
    value = assigned_once(iterable, bound)
    if isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute) and value.func.attr == "tolist":
        value = assigned_once(value.func.value, bound)
    if isinstance(value, ast.Call) and ast.unparse(value.func) in ("list", "np.array", "numpy.array") and value.args:
        value = assigned_once(value.args[0], bound)
    text = ast.unparse(value).replace("'", '"')
    if text.endswith('["OBS_ID"]') or text == f"{store}.obs_ids" or (
            isinstance(value, (ast.List, ast.Tuple)) and value.elts
            and all(isinstance(e, ast.Constant) and isinstance(e.value, int) for e in value.elts)):
        return "ids"
    if text == f"{store}.obs_table" or (isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute)
                                        and value.func.attr == "select_observations"):
        return "rows"
    return None


def _handed_to_makers(loop: ast.For, missing: set[str]) -> list[str]:
    """Names of `missing` that the loop body hands to a `.run(dataset, <name>)` call as its observation."""
    found = []
    for node in (n for stmt in loop.body for n in ast.walk(stmt)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "run" \
                and len(node.args) == 2 and isinstance(node.args[1], ast.Name) and node.args[1].id in missing:
            found.append(node.args[1].id)
    return list(dict.fromkeys(found))


def load_each_observation(text: str) -> tuple[str, list[str]]:
    """A top-level loop over observation ids (or rows of the observation index) whose body runs makers on an
    observation it never loads (`for obs_id in obs_ids: ... maker.run(dataset, obs)`, `obs` undefined): with
    one data store in the script, the loop starts with `obs = <store>.obs(obs_id)` (`obs_id["OBS_ID"]` for a
    row)."""
    tree = ast.parse(text)
    bound = bindings(tree)
    store = _one_store(bound)
    missing = set(undefined_names(tree))
    if store is None or not missing:
        return text, []
    rows = text.splitlines(keepends=True)
    notes = []
    for loop in reversed([s for s in tree.body if isinstance(s, ast.For)]):
        kind = _rows_or_ids(loop.iter, bound, store)
        names = _handed_to_makers(loop, missing)
        if kind is None or len(names) != 1 or loop.body[0].lineno == loop.lineno or \
                not isinstance(loop.target, ast.Name):
            continue
        item = loop.target.id
        load = f"{names[0]} = {store}.obs({item})" if kind == "ids" else f'{names[0]} = {store}.obs({item}["OBS_ID"])'
        first = loop.body[0]
        rows.insert(first.lineno - 1, " " * first.col_offset + load + "\n")
        notes.append(f"line {loop.lineno}: the loop ran makers on `{names[0]}`, which it never loaded; it now "
                     f"starts with `{load}`")
    return "".join(rows), notes[::-1]
