"""Repairs of astropy units: the module imported under the wrong name, a unit written as a string or as a bare
name where the unit itself is meant, and a value divided by a unit and then converted as if it still carried it.
"""

from __future__ import annotations

import ast
import inspect
from typing import Any

from hpc_agent.checks import parents, undefined_names
from hpc_agent.names import NameIndex
from hpc_agent.names import import_quietly as _import_quiet
from hpc_agent.source_edits import Edit, source_of, splice


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


_UNIT_ARITHMETIC = (ast.Mult, ast.Div, ast.Pow)


def _in_unit_arithmetic(name: ast.Name, parents_of: dict[int, ast.AST]) -> bool:
    """`erg / cm**2 / s`: the name is an operand of `*`, `/` or `**` (its exponent a number), or the argument of a
    conversion (`.to(erg)`)."""
    parent = parents_of.get(id(name))
    if isinstance(parent, ast.BinOp) and isinstance(parent.op, _UNIT_ARITHMETIC):
        return not (isinstance(parent.op, ast.Pow) and parent.right is name)
    return isinstance(parent, ast.Call) and isinstance(parent.func, ast.Attribute) \
        and parent.func.attr in ("to", "to_value") and name in parent.args


def bare_unit_names(text: str, _: NameIndex) -> tuple[str, list[str]]:
    """`flux.to(erg / cm**2 / s)`: names the script never defines that are astropy units, used only in unit
    arithmetic or a conversion, can only mean those units: `u.erg / u.cm**2 / u.s` (s46
    reflected-spectrum-msh1552, two turns rejected for undefined `erg`, `cm`, `s`). The repairs import
    `astropy.units as u` when it is missing."""
    import astropy.units as au

    tree = ast.parse(text)
    undefined = {n for n in undefined_names(tree) if n != "u" and isinstance(getattr(au, n, None), au.UnitBase)}
    if not undefined:
        return text, []
    parents_of = parents(tree)
    uses: dict[str, list[ast.Name]] = {}
    for n in ast.walk(tree):
        if isinstance(n, ast.Name) and n.id in undefined:
            uses.setdefault(n.id, []).append(n)
    names = sorted(k for k, found in uses.items() if all(_in_unit_arithmetic(n, parents_of) for n in found))
    edits: list[Edit] = [(n, f"u.{n.id}") for k in names for n in uses[k]]
    if not edits:
        return text, []
    return splice(text, edits), [f"{', '.join(f'`{k}`' for k in names)} (never defined) used as units: "
                                 f"astropy's, {', '.join(f'`u.{k}`' for k in names)}"]


def unit_of(node: ast.expr) -> Any:
    """The astropy unit an expression spells (`u.s`, `u.Unit("s")`, `"h"`, `Quantity(1, "s")`, `1 * u.s`), or
    None."""
    import astropy.units as au

    text: str | None = None
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in ("u", "units"):
        text = node.attr
    elif isinstance(node, ast.Constant) and isinstance(node.value, str):
        text = node.value
    elif isinstance(node, ast.Call) and ast.unparse(node.func) in ("u.Unit", "Unit") and len(node.args) == 1:
        return unit_of(node.args[0])
    elif isinstance(node, ast.Call) and ast.unparse(node.func) in ("Quantity", "u.Quantity") and len(node.args) == 2 \
            and isinstance(node.args[0], ast.Constant) and node.args[0].value == 1:
        return unit_of(node.args[1])
    elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult) and isinstance(node.left, ast.Constant) \
            and node.left.value == 1:
        return unit_of(node.right)
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
        divided, target = unit_of(division.right), unit_of(node.args[0])
        if divided is None or target is None or not divided.is_equivalent(target):
            continue
        values, unit = source_of(text, division.left), source_of(text, division.right)
        fixed = f'u.Quantity({values}, "{divided.to_string()}")'
        edits.append((division, fixed))
        notes.append(f"line {node.lineno}: `({values} / {unit}).to(...)` divides the unit away, so it cannot be "
                     f"converted: the values in that unit are `{fixed}`")
    return (splice(text, edits), notes) if edits else (text, [])


def units_class(name: str) -> str | None:
    """"astropy.units" for a class it exports (`Unit`, `Quantity`, `UnitConversionError`). The name index leaves
    astropy.units out (its thousands of unit names, `s`, `h`, `m`, would shadow a script's own variables), so
    `from astropy.coordinates import Unit` finds its home here."""
    import astropy.units

    return "astropy.units" if inspect.isclass(getattr(astropy.units, name, None)) else None
