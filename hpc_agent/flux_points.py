"""How a script reads the numbers of a FluxPoints (what LightCurveEstimator and FluxPointsEstimator return).

Small models read it as a list of bins (`[b.flux for b in lc]`, `len(lc.flux_points)`); its numbers are the
rows of its table, in the format of the estimator that made it: `lightcurve` (one row per time bin) or
`gadf-sed` (one row per energy bin). Grounding uses the reads and the format to turn a guessed attribute into
the table; `bins_as_table` rewrites a comprehension over the bins.
"""

from __future__ import annotations

import ast

from hpc_agent.bindings import assigned_once, bindings
from hpc_agent.source_edits import Edit, splice

SED_TYPES = ("dnde", "e2dnde", "flux", "eflux")
ESTIMATORS = {"LightCurveEstimator": ("lightcurve", "time"), "FluxPointsEstimator": ("gadf-sed", "energy")}


def _name(node: ast.expr) -> str | None:
    return node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else None


def points_format(tree: ast.Module) -> tuple[str, str] | None:
    """The table format of the flux points the script makes, and what a row is: a light curve's when it uses
    LightCurveEstimator alone, an SED's when FluxPointsEstimator alone; None for neither or both."""
    used = [e for e in ESTIMATORS if any(_name(n) == e for n in ast.walk(tree) if isinstance(n, (ast.Name, ast.Attribute)))]
    return ESTIMATORS[used[0]] if len(used) == 1 else None


def table_reads(tree: ast.Module) -> dict[int, str]:
    """Attribute reads used as a table: `len(x.a)` or `x.a["flux"]` (a SED quantity). id(node) -> the SED type
    read (a length reads the one the script subscripts elsewhere, else "flux")."""
    counted: list[ast.Attribute] = []
    read: dict[int, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "len" \
                and len(node.args) == 1 and isinstance(node.args[0], ast.Attribute):
            counted.append(node.args[0])
        elif isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute) \
                and isinstance(node.slice, ast.Constant) and node.slice.value in SED_TYPES:
            read[id(node.value)] = str(node.slice.value)
    kinds = set(read.values())
    for node in counted:
        read[id(node)] = kinds.pop() if len(kinds) == 1 else "flux"
    return read


def estimated(tree: ast.Module) -> set[str]:
    """Names bound once to what an estimator's `run` returns (`lc = estimator.run(datasets)`, the estimator
    made once by `LightCurveEstimator(...)` or `FluxPointsEstimator(...)`, or `LightCurveEstimator(...).run(...)`)."""
    bound = bindings(tree)
    found = set()
    for name, values in bound.items():
        call = values[0]
        if len(values) != 1 or not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
                                    and call.func.attr == "run"):
            continue
        made = assigned_once(call.func.value, bound)
        if isinstance(made, ast.Call) and _name(made.func) in ESTIMATORS:
            found.add(name)
    return found


def bins_as_table(script: str) -> tuple[str, list[str]]:
    """`[b.flux for b in lc]` over the flux points an estimator made (iterating a FluxPoints raises "attribute
    name must be string, not 'int'"): the column of its table, `np.ravel(lc.to_table(format=..., sed_type="flux")
    ["flux"])`, when the script uses one kind of estimator."""
    try:
        tree = ast.parse(script)
    except SyntaxError:
        return script, []
    fmt = points_format(tree)
    points = estimated(tree)
    if fmt is None or not points:
        return script, []
    edits: list[Edit] = []
    columns: list[str] = []
    for node in ast.walk(tree):
        if not isinstance(node, (ast.ListComp, ast.GeneratorExp)) or len(node.generators) != 1:
            continue
        gen, elt = node.generators[0], node.elt
        if (gen.ifs or gen.is_async or not isinstance(gen.target, ast.Name) or not isinstance(gen.iter, ast.Name)
                or gen.iter.id not in points or not isinstance(elt, ast.Attribute)
                or not isinstance(elt.value, ast.Name) or elt.value.id != gen.target.id or elt.attr not in SED_TYPES):
            continue
        sed = elt.attr
        column = f'np.ravel({gen.iter.id}.to_table(format="{fmt[0]}", sed_type="{sed}")["{sed}"])'
        # a generator that is a call's only argument spans the call's parentheses: they are kept
        edits.append((node, f"({column})" if isinstance(node, ast.GeneratorExp) else column))
        columns.append(column)
    if not edits:
        return script, []
    notes = [f"line {n.lineno}: `{ast.unparse(n)}` reads the bins of a FluxPoints, which is not a list: its numbers "
             f"are rows of its table, one per {fmt[1]} bin, so it reads `{column}`" for (n, _), column in zip(edits, columns)]
    return splice(script, edits), notes
