"""Repairs toward what the request writes out: variables it defines, library calls it spells (with their
arguments as written), the fill step before a reduction, and the statements Gammapy's own tutorials make a
missing variable with.
"""

from __future__ import annotations

import ast
import inspect
from typing import Any

from hpc_agent.bindings import module_assignments
from hpc_agent.checks import maker_class, maker_instances, undefined_names
from hpc_agent.names import NameIndex
from hpc_agent.names import import_quietly as _import_quiet
from hpc_agent.source_edits import Edit, insertion_line, source_of, splice
from hpc_agent.tutorial_definitions import made_from_names, name_keyword as _name_keyword


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
    targets = {id(a.value): a.targets[0].id for a in ast.walk(tree) if isinstance(a, ast.Assign)
               and len(a.targets) == 1 and isinstance(a.targets[0], ast.Name)}  # call -> the name it is kept in
    edits: list[Edit] = []
    notes: list[str] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        same = [c for c in asked if ast.unparse(c.func) == ast.unparse(node.func)]
        if len(same) > 1:
            mine = _name_keyword(node)
            same = ([c for c in same if _name_keyword(c) is not None and _name_keyword(c) == mine] if mine is not None
                    else _named_like(same, targets.get(id(node))))
        new = _as_asked(same[0], node, index) if len(same) == 1 else None
        if new is not None:
            edits.append((node, new))
            notes.append(f"line {node.lineno}: called `{new}` with the values your request gives, "
                         f"not `{ast.unparse(node)[:90]}`")
    return (splice(text, edits), notes) if edits else (text, [])


def _named_like(calls: list[ast.Call], variable: str | None) -> list[ast.Call]:
    """Of the request's calls told apart by `name=`, the one whose name's words are most of the variable's
    (`energy_axis_true` -> `name="energy_true"`, `energy_axis` -> `name="energy"`) for a script call without
    `name=`; none when two match as well or the call is kept in no variable."""
    if variable is None:
        return []
    words = set(variable.lower().split("_"))
    scored = [(len(set(str(_name_keyword(c)).lower().split("_"))), c) for c in calls
              if _name_keyword(c) is not None and set(str(_name_keyword(c)).lower().split("_")) <= words]
    best = max((n for n, _ in scored), default=0)
    top = [c for n, c in scored if n == best]
    return top if len(top) == 1 else []


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
        observation = source_of(text, call.args[1])
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
    assigned = module_assignments(tree)
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
