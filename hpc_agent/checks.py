"""Static rules applied to a script before it may spend a sandbox run.

Each violation is a one-line message meant for the model; an empty list means the script may run.
"""

from __future__ import annotations

import ast
import re
import threading
from dataclasses import dataclass
from typing import Callable

from pyflakes import checker as pyflakes_checker
from pyflakes import messages as pyflakes_messages

from hpc_agent.bindings import bindings
from hpc_agent.result_counts import events_counted_as_observations

MISSING_IMPORT = "missing import or typo"  # what an undefined name is said to be, unless the caller knows more
SYNTAX_ERROR = "SyntaxError at line"  # how a script that does not parse is reported (retrieval reads it too)
FORBIDDEN_COLUMNS = ("TARGET_NAME", "OBJECT")
DISPLAY_METHODS = ("show", "peek")
DISPLAY_FUNCTIONS = ("display", "input")


def _strings(tree: ast.AST) -> list[ast.Constant]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)]


# Calls whose result keeps or drops rows by the values they are given (string matching, membership, a select).
_MATCHING = frozenset({"startswith", "endswith", "find", "rfind", "contains", "match", "fullmatch", "search",
                       "isin", "in1d", "select_observations", "select_rows"})


def parents(tree: ast.AST) -> dict[int, ast.AST]:
    """id of each node -> the node it sits in."""
    return {id(child): node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}


def callee_name(call: ast.Call) -> str:
    """The called name: `f` of `f(...)`, `m` of `x.m(...)`; "" for anything else (`a[0](...)`)."""
    return call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", "")


def _compares(nodes: list[ast.AST]) -> bool:
    return any(isinstance(n, ast.Compare) or (isinstance(n, ast.Call) and callee_name(n) in _MATCHING)
               for node in nodes for n in ast.walk(node))


def _selects_by(node: ast.AST, parents_of: dict[int, ast.AST], tree: ast.AST, depth: int = 0) -> bool:
    """The column named by `node` decides which rows are kept: its values are compared (`t["OBJECT"] == "Crab"`),
    matched (`.startswith(...)`, `np.isin(...)`), iterated by a loop or comprehension that compares them, or
    bound to a name used so. Reading it to count, list or report (`len(set(t["OBJECT"]))`, a RESULT value)
    selects nothing: a question about the targets may read the column."""
    while id(node) in parents_of:
        parent = parents_of[id(node)]
        if isinstance(parent, ast.Compare) or (isinstance(parent, ast.Call) and callee_name(parent) in _MATCHING):
            return True
        if isinstance(parent, ast.comprehension) and node is parent.iter:
            return bool(parent.ifs) or _compares([c for c in ast.iter_child_nodes(parents_of[id(parent)])
                                                  if not isinstance(c, ast.comprehension)])
        if isinstance(parent, ast.For) and node is parent.iter:
            return _compares(list(parent.body))
        if isinstance(parent, ast.Assign) and depth < 2 and len(parent.targets) == 1 \
                and isinstance(parent.targets[0], ast.Name):
            name = parent.targets[0].id
            return any(_selects_by(n, parents_of, tree, depth + 1) for n in ast.walk(tree)
                       if isinstance(n, ast.Name) and n.id == name and isinstance(n.ctx, ast.Load))
        if isinstance(parent, ast.stmt):
            return False
        node = parent
    return False


TABLES_ONLY = "the request asks only for values the release's tables hold"
_ANALYSIS_MODULES = ("gammapy.makers", "gammapy.datasets", "gammapy.modeling", "gammapy.estimators")


def analysis_for_tables(tree: ast.AST) -> list[str]:
    """A question about the tables answered through makers, datasets, models or estimators: the 1.5B built an
    invented `EventListMaker` and a `Fit` around "count the observations near MSH 15-52" and kept them for
    three turns of grounding messages (s45). The names used from those modules, with their first lines."""
    from_analysis = {a.asname or a.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                     and node.module and node.module.startswith(_ANALYSIS_MODULES) for a in node.names}
    used: dict[str, int] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id in from_analysis:
            used[node.id] = min(used.get(node.id, node.lineno), node.lineno)
        elif isinstance(node, ast.Attribute) and node.attr[:1].isupper() \
                and ast.unparse(node.value).startswith(_ANALYSIS_MODULES):  # gammapy.makers.SafeMaskMaker
            chain = ast.unparse(node)
            used[chain] = min(used.get(chain, node.lineno), node.lineno)
    if not used:
        return []
    names = ", ".join(f"`{n}` (line {line})" for n, line in sorted(used.items(), key=lambda kv: kv[1]))
    return [f"{TABLES_ONLY} (a count, a total, a mean or an extreme of a column), so it is answered from "
            f"`data_store.obs_table` and each observation's `events.table` alone: {names} build an analysis "
            "it does not ask for; remove them"]


def unused_selection(tree: ast.AST) -> list[str]:
    """Rows picked by a mask (`selected = table[pointing.separation(source) < 2 * u.deg]`) and never read again:
    what follows is computed from the whole table, not the selection the request asks for (an unseen question:
    `np.max(pointing.separation(source))` over every run, after making `selected`)."""
    picked = {n.targets[0].id: n.lineno for n in ast.walk(tree) if isinstance(n, ast.Assign) and len(n.targets) == 1
              and isinstance(n.targets[0], ast.Name) and isinstance(n.value, ast.Subscript)
              and any(isinstance(c, ast.Compare) for c in ast.walk(n.value.slice))}
    read = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    return [f"line {line}: `{name}` holds the rows the request selects but is never used after it: compute the "
            f"answer from `{name}` (e.g. `{name}[\"COLUMN\"]`), not from the whole table"
            for name, line in picked.items() if name not in read]


NO_SELECTION = "selects no observations by position"
NO_RESULT = "no `RESULT {json}` line is printed"


def selects(tree: ast.AST) -> bool:
    """Some selection happens: a separation is computed or a `select*` method or function is called."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = callee_name(node)
            if "separation" in name or name.startswith("select"):
                return True
    return False


def undefined_uses(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, name) of every use pyflakes finds where nothing defines the name yet (it reads in order)."""
    # Remembered by the tree's dump (lines included): the repairs re-parse an unchanged script many times over,
    # and pyflakes costs ~1 ms a run where the dump costs a tenth of that.
    key = ast.dump(tree, include_attributes=True)
    with _UNDEFINED_LOCK:
        found = _UNDEFINED.get(key)
    if found is None:
        found = tuple((m.lineno, str(m.message_args[0]))
                      for m in pyflakes_checker.Checker(tree, filename="script.py").messages
                      if isinstance(m, pyflakes_messages.UndefinedName))
        with _UNDEFINED_LOCK:
            _UNDEFINED[key] = found
            while len(_UNDEFINED) > 64:
                _UNDEFINED.pop(next(iter(_UNDEFINED)))
    return list(found)


_UNDEFINED: dict[str, tuple[tuple[int, str], ...]] = {}
_UNDEFINED_LOCK = threading.Lock()  # sweeps run cells in threads


def undefined_names(tree: ast.AST) -> list[str]:
    """Names the script uses and never defines, in order of first use."""
    return list(dict.fromkeys(name for _, name in undefined_uses(tree)))


def maker_class(node: ast.expr, makers: dict[str, str]) -> str | None:
    """The Maker class `node` is an instance of: `SafeMaskMaker(...)` or a name assigned from one."""
    if isinstance(node, ast.Call):
        name = callee_name(node)
        return name if name.endswith("Maker") else None
    return makers.get(node.id) if isinstance(node, ast.Name) else None


def _assigned(stmt: ast.stmt) -> set[str]:
    return {n.id for n in ast.walk(stmt) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}


@dataclass(frozen=True)
class UnchainedRun:
    """`second = MakerB.run(x, obs)` after `first = MakerA.run(x, obs)`: both on `x`, so B's result lacks A's step."""

    call: ast.Call  # the second run
    maker: str  # its Maker class
    source: str  # the dataset both ran on
    before: str  # the first run's Maker class
    line: int  # the first run's line
    first: str | None  # the name the first run's result went to (one name), if any


def maker_instances(tree: ast.AST) -> dict[str, tuple[str, int]]:
    """name -> (Maker class, line) of each name assigned a maker instance (`bkg_maker = ReflectedRegions...()`)."""
    return {t.id: (cls, node.lineno) for node in ast.walk(tree) if isinstance(node, ast.Assign)
            for cls in [maker_class(node.value, {})] if cls for t in node.targets if isinstance(t, ast.Name)}


def unchained_runs(tree: ast.AST) -> list[UnchainedRun]:
    """Two different makers run on the same dataset, each result kept apart, in one block."""
    makers = {name: cls for name, (cls, _) in maker_instances(tree).items()}
    found = []
    for body in (b for node in ast.walk(tree) for field in ("body", "orelse") if isinstance(b := getattr(node, field, None), list)):
        last: dict[str, tuple[str, int, str | None]] = {}  # dataset -> (maker class, line, result name) of its latest run
        for stmt in body:
            call = stmt.value if isinstance(stmt, ast.Assign) else None
            if (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr == "run"
                    and call.args and isinstance(call.args[0], ast.Name)):
                cls, source = maker_class(call.func.value, makers), call.args[0].id
                if cls and source in last and last[source][0] != cls:
                    found.append(UnchainedRun(call, cls, source, *last[source]))
                assigned = _assigned(stmt)
                for name in assigned:
                    last.pop(name, None)
                if cls and source not in assigned:  # the result went elsewhere: `source` lacks this step
                    result = stmt.targets[0].id if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 \
                        and isinstance(stmt.targets[0], ast.Name) else None
                    last[source] = (cls, stmt.lineno, result)
                continue
            for name in _assigned(stmt):
                last.pop(name, None)
    return found


def unchained_makers(tree: ast.AST) -> list[str]:
    """Two different makers run on the same dataset, each result kept apart: the second loses the first's step
    (background without safe mask, or `a + b`, which builds a two-dataset list). Gammapy's makers return the
    dataset with their step added, so each must start from the previous one's result."""
    return [f"line {r.call.lineno}: `{r.maker}` runs on `{r.source}`, like `{r.before}` on line {r.line}, so the "
            f"step `{r.before}` added is lost (and `a + b` of two datasets is a list of two). Each maker "
            f"returns the dataset with its step added: chain them, `dataset = maker.run(dataset, "
            f"observation)`, e.g. `dataset = bkg_maker.run(dataset, obs)` then "
            f"`dataset = safe_mask_maker.run(dataset, obs)`" for r in unchained_runs(tree)]


_MODEL_LESS = ("stack_reduce", "create")  # dataset constructors whose result carries no models


def models_never_set(tree: ast.AST) -> list[str]:
    """`reduced = datasets.stack_reduce()` then `reduced.models[0]`: a dataset made by `stack_reduce()` or
    `create()` has no models (`.models` is None) until the script sets them, which it never does. Seen: the
    fitted model read from the stacked copy, `TypeError: 'NoneType' object is not subscriptable`, two turns."""
    values = bindings(tree)
    given = {t.value.id for node in ast.walk(tree) if isinstance(node, ast.Assign) for t in node.targets
             if isinstance(t, ast.Attribute) and t.attr == "models" and isinstance(t.value, ast.Name)}  # `x.models = ...`
    errors = []
    for node in ast.walk(tree):
        if not (isinstance(node, (ast.Subscript, ast.Attribute)) and isinstance(node.value, ast.Attribute)
                and node.value.attr == "models" and isinstance(node.value.value, ast.Name)):
            continue
        name = node.value.value.id
        made = values.get(name, [])
        call = made[0] if len(made) == 1 else None
        if name in given or not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
                                 and call.func.attr in _MODEL_LESS and not any(k.arg == "models" for k in call.keywords)):
            continue
        errors.append(f"line {node.lineno}: `{name}.models` is None: `{name}` comes from `{ast.unparse(call.func)}()` "
                      f"(line {call.lineno}), which makes a dataset without models, and the script never sets "
                      f"`{name}.models`; read the fitted model where you set it (e.g. `datasets.models[0]`, or "
                      "`.models` of what `Fit().run` returns)")
    return list(dict.fromkeys(errors))


def static_errors(script: str, *, require_result: bool = True, cone_radius: float | None = None,
                  tables_only: bool = False, undefined_reason: Callable[[str], str | None] | None = None) -> list[str]:
    """Rule violations of `script`, each naming the line and the fix. `cone_radius`: the request selects the
    observations within this many degrees of its source, so a script that selects nothing is wrong (it would
    reduce every observation of the release). `tables_only`: the request names no analysis product, so a script
    that builds one is answering another question. `undefined_reason`: what an undefined name is, when the
    caller knows better than "missing import or typo" (the static stage: that no library defines it)."""
    try:
        tree = ast.parse(script)
        compile(tree, "script.py", "exec")  # what parses may still not compile (`f(a=1, a=2)`, `return` at the top)
    except SyntaxError as exc:
        return [f"{SYNTAX_ERROR} {exc.lineno}: {exc.msg} (return plain Python, no notebook magics or prose)"]

    errors: list[str] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr in DISPLAY_METHODS:
            errors.append(f"line {node.lineno}: `.{func.attr}()` displays interactively; remove it "
                          "(save figures with savefig if needed)")
        elif isinstance(func, ast.Name) and func.id in DISPLAY_FUNCTIONS:
            errors.append(f"line {node.lineno}: `{func.id}()` needs an interactive session; remove it")

    strings = _strings(tree)
    parents_of = parents(tree)
    for const in strings:
        value = const.value
        assert isinstance(value, str)  # _strings keeps the string constants only
        if value in FORBIDDEN_COLUMNS and _selects_by(const, parents_of, tree):
            errors.append(f"line {const.lineno}: selects by the {value} column; select observations by "
                          "sky position instead (separation of RA_PNT/DEC_PNT from the source)")
        elif re.match(r"[/~].*\S/hess-dl3", value):  # a folder before the release: a machine's path
            errors.append(f"line {const.lineno}: hard-coded data path {value!r}; build it from "
                          "os.environ['PHOTON_STORAGE']")

    if require_result and not any("RESULT" in c.value for c in strings if isinstance(c.value, str)):
        errors.append(f"{NO_RESULT}; print the results as "
                      "print('RESULT ' + json.dumps({...}))")

    if cone_radius is not None:
        errors += unused_selection(tree)
    if cone_radius is not None and not selects(tree):
        errors.append(f"{NO_SELECTION}: the request asks for the observations pointing within {cone_radius:g} deg "
                      "of the source, and the script never computes a separation or calls a select method")

    if tables_only:
        errors += analysis_for_tables(tree)
    errors += unchained_makers(tree)
    errors += events_counted_as_observations(tree)
    errors += models_never_set(tree)

    for line, name in undefined_uses(tree):
        errors.append(f"line {line}: undefined name '{name}' "
                      f"({(undefined_reason(name) if undefined_reason else None) or MISSING_IMPORT})")
    return list(dict.fromkeys(errors))  # one message per line and problem
