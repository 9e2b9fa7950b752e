"""Repairs a run's outcome calls for: a failed run's error (json refusing numpy numbers or Quantities, a table
column read as a Quantity, a key the request says a method returns), or a RESULT line printed as a Python dict.

Like the repairs before a run, each has exactly one reading, returns the new script and one line per change,
and is told to the model; the script is run again before a model turn is spent.
"""

from __future__ import annotations

import ast
import json
import re
from typing import Any, Callable, Iterable

from hpc_agent.flux_points import points_format
from hpc_agent.grounding import keyword_meant, library_class, real_attribute
from hpc_agent.names import NameIndex
from hpc_agent.prompts import SCRIPT_FRAME
from hpc_agent.bindings import assigned_once, bindings
from hpc_agent.bindings import result_dicts
from hpc_agent.checks import callee_name
from hpc_agent.repair import NUMPY_ONLY_REDUCTIONS, Repaired, numpy_call
from hpc_agent.result_line import json_numpy_numbers
from hpc_agent.separations import column_under
from hpc_agent.source_edits import Edit, add_imports, drop_statements, insertion_line, source_of, splice


# Units a RESULT key names by its suffix (`livetime_hours`, `ontime_h`, `offset_deg`): a Quantity under such a
# key can only mean its value in that unit.
KEY_UNITS: tuple[tuple[re.Pattern[str], str], ...] = tuple((re.compile(rf"(?:^|_)(?:{p})$", re.IGNORECASE), unit) for p, unit in (
    ("hours?|hrs?|h", "h"), ("minutes?|mins?", "min"), ("seconds?|secs?|s", "s"), ("days?", "d"),
    ("degrees?|degs?", "deg"), ("arcmin", "arcmin"), ("arcsec", "arcsec"), ("rad|radians?", "rad"),
    ("tev", "TeV"), ("gev", "GeV"), ("mev", "MeV"), ("kev", "keV"), ("erg", "erg")))
IN_UNIT = "_in_unit"
IN_UNIT_DEF = (f"def {IN_UNIT}(value, unit, by_hand=1):  # added by the harness: a Quantity in the unit its RESULT "
               "key names\n"
               "    return value.to_value(unit) if hasattr(value, \"to_value\") else value / by_hand\n")
# Units of the same kind as a key's unit, for a conversion written by hand (`seconds / 3600` for hours).
SAME_KIND = (("s", "min", "h", "d"), ("arcsec", "arcmin", "deg"), ("eV", "keV", "MeV", "GeV", "TeV"))


def key_unit(key: str) -> str | None:
    return next((unit for pattern, unit in KEY_UNITS if pattern.search(key)), None)


def _hand_conversions(expr: ast.expr, assigns: dict[str, ast.expr], unit: str, depth: int = 3) -> list[ast.BinOp]:
    """`x / 3600` under an hours key (here or in what a name in it was assigned): the factor from a unit of the
    same kind (s) to the key's unit (h), so the division was the model's conversion, and `x.to_value("h")` is
    what it meant when `x` is a Quantity (dividing one keeps its unit: 7200 s / 3600 is 2 s, not 2 h)."""
    import astropy.units as u

    kind = next((k for k in SAME_KIND if unit in k), ())
    factors = [u.Unit(unit).to(other) for other in kind if other != unit]
    found: list[ast.BinOp] = []
    for node in ast.walk(expr):
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div) and isinstance(node.right, ast.Constant) \
                and isinstance(node.right.value, (int, float)) and node.right.value > 1 \
                and any(abs(node.right.value / f - 1) < 1e-9 for f in factors):
            found.append(node)
        elif depth and isinstance(node, ast.Name) and node.id in assigns and assigns[node.id] is not expr:
            found += _hand_conversions(assigns[node.id], assigns, unit, depth - 1)
    return found


def _unwrapped(node: ast.expr) -> ast.expr:
    """`float(x)` / `int(x)` -> `x`: the conversion is what failed on a Quantity."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("float", "int") \
            and len(node.args) == 1 and not node.keywords:
        return node.args[0]
    return node


def _scaled_by_number(expr: ast.expr, assigns: dict[str, ast.expr], depth: int = 3) -> bool:
    """`seconds / 3600` (here or in what a name in it was assigned): a unit converted by hand. Dividing a
    Quantity by a number keeps its unit, so converting the result again would be wrong: left to the model."""
    def number(side: ast.expr) -> bool:
        return isinstance(side, ast.Constant) and isinstance(side.value, (int, float)) and side.value not in (0, 1)

    def unit(side: ast.expr) -> bool:  # `u.s`, `u.Unit("h")`: `7200 * u.s` makes a Quantity, converts nothing
        base = side.func if isinstance(side, ast.Call) else side
        return isinstance(base, ast.Attribute) and isinstance(base.value, ast.Name) and base.value.id in ("u", "units")

    for node in ast.walk(expr):
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Div, ast.Mult, ast.FloorDiv)) and (
                (number(node.right) and not unit(node.left)) or (number(node.left) and not unit(node.right))):
            return True
        if depth and isinstance(node, ast.Name) and node.id in assigns and assigns[node.id] is not expr:
            if _scaled_by_number(assigns[node.id], assigns, depth - 1):
                return True
    return False


def quantities_in_key_units(text: str, stderr: str) -> tuple[str, list[str]]:
    """After a run failed writing a Quantity into the RESULT json (`float(q)` of a non-dimensionless Quantity,
    or json refusing a Quantity): each value under a key that names a unit is written in that unit. Applied
    only when the traceback left the script at the line that failed (the json call or the dict it dumps)."""
    tree = ast.parse(text)
    frames = SCRIPT_FRAME.findall(stderr)
    failed_at = int(frames[-1]) if frames else None
    edits: list[Edit] = []
    keys = []
    assigns = {t.id: n.value for n in ast.walk(tree) if isinstance(n, ast.Assign) for t in n.targets
               if isinstance(t, ast.Name)}
    by_hand: dict[int, ast.BinOp] = {}
    for d in result_dicts(tree):
        for key, value in zip(d.keys, d.values):
            name = key.value if isinstance(key, ast.Constant) and isinstance(key.value, str) else None
            unit = key_unit(name) if name is not None else None
            if unit is None or IN_UNIT in ast.unparse(value):
                continue
            hand = _hand_conversions(value, assigns, unit)
            if hand:  # the model's own conversion, made with the unit: `_in_unit(x, "h", 3600)`
                for div in hand:
                    if id(div) not in by_hand:
                        by_hand[id(div)] = div
                        edits.append((div, f'{IN_UNIT}({ast.get_source_segment(text, div.left)}, "{unit}", '
                                           f'{ast.get_source_segment(text, div.right)})'))
            elif _scaled_by_number(value, assigns):
                continue  # scaled by some other number: which unit it ends in is not known
            else:
                inner = ast.get_source_segment(text, _unwrapped(value))
                edits.append((value, f'float({IN_UNIT}({inner}, "{unit}"))'))
            keys.append((name, unit, value.lineno, value.end_lineno or value.lineno))
    if not edits or failed_at is None:
        return text, []
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
             and n.func.attr == "dumps"]
    spans = [(k[2], k[3]) for k in keys] + [(c.lineno, c.end_lineno or c.lineno) for c in calls]
    if not any(a <= failed_at <= b for a, b in spans):
        return text, []
    fixed = splice(text, edits)
    at = insertion_line(ast.parse(fixed))
    rows = fixed.splitlines(keepends=True)
    fixed = "".join(rows[:at]) + IN_UNIT_DEF + "".join(rows[at:])
    notes = [f"the RESULT values of {', '.join(f'`{k}`' for k, *_ in keys)} were Quantities: wrote each in "
             f"the unit its key names ({', '.join(sorted({u for _, u, *_ in keys}))}) with `.to_value(unit)`"]
    notes += [f"line {d.lineno}: `{ast.get_source_segment(text, d)}` divides a Quantity, which keeps its unit "
              f"(7200 s / 3600 is 2 s, not 2 h): converted with `.to_value(unit)` instead" for d in by_hand.values()]
    return fixed, notes


# key, separator (`:`, `=` or a space), number, and the unit a printed Quantity adds (`9.13 h`, `0.5 deg`), last before a separator
_PAIR = re.compile(r"""\s*["']?([A-Za-z_]\w*)["']?(?:\s*[:=]\s*|\s+)(-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"""
                   r"""(?:\s*[A-Za-z][\w/.*^-]*(?=\s*(?:[,;]|$)))?\s*[,;]?""")


def _key_value_pairs(payload: str) -> dict[str, Any] | None:
    """`n_obs: 5`, `n_obs=5, livetime_hours=3.2`, `zenith_range_deg 4.16` (`print("RESULT x", x)`),
    `{"ontime_h": 9.13 h}` (a Quantity formatted into the text):
    plain key/number pairs and nothing else, as a dict."""
    if payload.startswith("{") and payload.endswith("}"):
        payload = payload[1:-1].strip()
    found, at = {}, 0
    for m in _PAIR.finditer(payload):
        if m.start() != at:
            return None
        found[m.group(1)] = ast.literal_eval(m.group(2))
        at = m.end()
    return found if found and at == len(payload) else None


_NUMPY_SCALAR = re.compile(r"\b(?:np|numpy)\.(?:float|int|uint)(?:16|32|64)?\(([-+\d.eE]+|nan|inf)\)")


def _literal_result(stdout: str) -> dict[str, Any] | None:
    """The one `RESULT ...` line of a run when it is a Python dict literal of numbers, or `key: number`
    pairs, but not JSON."""
    lines = [ln.strip() for ln in stdout.splitlines() if ln.strip().startswith("RESULT")]
    if len(lines) != 1:
        return None
    payload = lines[0][len("RESULT"):].strip().lstrip(":").strip()
    payload = _NUMPY_SCALAR.sub(r"\1", payload)  # numpy 2 prints a dict's numpy numbers as `np.float32(9.13)`
    escaped = payload.startswith("{{") and payload.endswith("}}")  # f-string braces where nothing unescapes them
    if escaped:
        payload = payload[1:-1]
    try:
        value = json.loads(payload)
        if not escaped:
            return None  # already JSON: nothing to repair
    except ValueError:
        try:
            value = ast.literal_eval(payload)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):  # a set of a dict: TypeError
            value = _key_value_pairs(payload)
    ok = isinstance(value, dict) and value and all(isinstance(k, str) for k in value) \
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value.values())
    return value if ok else None


def _formatted(arg: ast.expr) -> list[ast.expr]:
    """The values a printed argument formats into its text: `"..." % (a, b)`, `"...".format(a, b)` and
    `"..." + str(a) + "..."` give their values, anything else itself."""
    if isinstance(arg, ast.BinOp) and isinstance(arg.op, ast.Mod) and isinstance(arg.left, ast.Constant):
        return list(arg.right.elts) if isinstance(arg.right, ast.Tuple) else [arg.right]
    if isinstance(arg, ast.Call) and isinstance(arg.func, ast.Attribute) and arg.func.attr == "format" \
            and isinstance(arg.func.value, ast.Constant) and not arg.keywords:
        return list(arg.args)
    if isinstance(arg, ast.BinOp) and isinstance(arg.op, ast.Add) and any(  # `"RESULT {'k': " + str(x) + "}"`
            isinstance(n, ast.Constant) and isinstance(n.value, str) for n in (arg.left, arg.right)):
        return _formatted(arg.left) + _formatted(arg.right)
    if isinstance(arg, ast.Call) and isinstance(arg.func, ast.Name) and arg.func.id == "str" and len(arg.args) == 1 \
            and not arg.keywords:
        return [arg.args[0]]
    return [arg]


def result_as_json(text: str, stdout: str) -> tuple[str, list[str]]:
    """A RESULT line written by hand as a Python dict (`print("RESULT {'n':", n, "}")`, an f-string, or
    `print("RESULT", result)`): the one print that wrote it prints `json.dumps` of the same keys and values.
    The values are the print's expressions in order, so their count must equal the keys'."""
    printed = _literal_result(stdout)
    if printed is None:
        return text, []
    tree = ast.parse(text)
    prints = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
              and n.func.id == "print" and "RESULT" in ast.unparse(n)]
    if not prints:
        return _result_string_as_json(text, tree, printed)
    if len(prints) != 1:
        return text, []
    call = prints[0]
    parts = [v for a in call.args for v in (a.values if isinstance(a, ast.JoinedStr) else _formatted(a))]
    values = [p.value if isinstance(p, ast.FormattedValue) else p for p in parts
              if not (isinstance(p, ast.Constant) and isinstance(p.value, str))]
    dicts = {n.targets[0].id for n in ast.walk(tree) if isinstance(n, ast.Assign) and len(n.targets) == 1
             and isinstance(n.targets[0], ast.Name) and isinstance(n.value, ast.Dict)}
    if len(values) == 1 and isinstance(values[0], ast.Name) and values[0].id in dicts:  # `print("RESULT", result)`
        payload = values[0].id
    elif len(values) == 1 and isinstance(values[0], ast.Dict):  # `print("RESULT", {"n_obs": n})`
        payload = source_of(text, values[0])
    elif len(values) == len(printed):
        payload = _dict_text(text, list(printed), values)
    else:
        return text, []
    fixed, new = _print_as_json(text, tree, call, payload)
    return fixed, [f"the RESULT line (line {call.lineno}) was a Python dict, not JSON: it now prints `{new}`"]


def _result_string_as_json(text: str, tree: ast.Module, printed: dict[str, Any]) -> tuple[str, list[str]]:
    """The RESULT text built away from the print (`lines = [f"RESULT n_obs: {n_obs}"]`, printed later through a
    name): the one f-string that starts with RESULT and formats as many values as the line has keys becomes
    `"RESULT " + json.dumps({...})` of the same keys and values."""
    strings = [n for n in ast.walk(tree) if isinstance(n, ast.JoinedStr) and n.values
               and isinstance(first := n.values[0], ast.Constant) and str(first.value).lstrip().startswith("RESULT")]
    values = [v.value for v in strings[0].values if isinstance(v, ast.FormattedValue)] if len(strings) == 1 else []
    if not values or len(values) != len(printed):
        return text, []
    new = f'"RESULT " + json.dumps({_dict_text(text, list(printed), values)}, default=float)'
    # an `import json` inside a function makes `json` local to all of it, unbound before that line: imported
    # once at the top instead
    local = [n for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
             for n in ast.walk(f) if isinstance(n, ast.Import) and [a.name for a in n.names] == ["json"]
             and n.names[0].asname is None]
    fixed = _with_json(splice(text, [(strings[0], new), *drop_statements(tree, local)]), tree.body)
    return fixed, [f"the RESULT text (line {strings[0].lineno}) was not JSON: it is now `{new}`"
                   + ("; the `import json` inside a function (it made `json` unbound there) is now at the top" if local
                      else "")]


def _dict_text(text: str, keys: list[str], values: list[ast.expr]) -> str:
    """`{'key': <value's source>, ...}`: keys paired with the script's expressions, in order."""
    return "{" + ", ".join(f"{k!r}: {source_of(text, v)}" for k, v in zip(keys, values)) + "}"


def _print_as_json(text: str, tree: ast.Module, call: ast.Call, payload: str) -> tuple[str, str]:
    """The RESULT print `call` replaced by one printing `json.dumps(payload)` (`import json` added when missing);
    the new script and the new line."""
    new = f'print("RESULT " + json.dumps({payload}, default=float))'
    return _with_json(splice(text, [(call, new)]), ast.walk(tree)), new


def _with_import(fixed: str, statements: Iterable[ast.AST], name: str, line: str) -> str:
    """`fixed` with `line` added at the top unless one of `statements` (of the script before) imports `name`."""
    if name in {a.asname or a.name for n in statements if isinstance(n, ast.Import) for a in n.names}:
        return fixed
    return add_imports(fixed, [line])


def _with_json(fixed: str, statements: Iterable[ast.AST]) -> str:
    """`fixed` with `import json` added at the top unless the script before imports it."""
    return _with_import(fixed, statements, "json", "import json")


def _spans(node: ast.AST, line: int) -> bool:
    """`node` covers `line` (the script line the traceback names; a call may run over several lines)."""
    first = getattr(node, "lineno", 0)
    return first <= line <= (getattr(node, "end_lineno", None) or first)


def _attribute_reads(tree: ast.AST, attr: str, line: int) -> list[ast.Attribute]:
    """Every `<x>.<attr>` on the traceback's line."""
    return [n for n in ast.walk(tree) if isinstance(n, ast.Attribute) and n.attr == attr and _spans(n, line)]


_FORMAT_KEY = re.compile(r"""KeyError: "'(\w+)'\"""")


def result_format_braces(text: str, stderr: str) -> tuple[str, list[str]]:
    """`print("RESULT {'ontime_h': {:.2f}}".format(t))` raised KeyError: "'ontime_h'" (`.format` reads the dict's
    own braces as a field): the line on which it failed prints `json.dumps` of the keys written in the string
    and the `.format` arguments, in order; their counts must match."""
    lines = SCRIPT_FRAME.findall(stderr)
    if not lines or not _FORMAT_KEY.search(stderr):
        return text, []
    line = int(lines[-1])
    tree = ast.parse(text)
    for call in ast.walk(tree):
        if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "print"
                and _spans(call, line) and len(call.args) == 1):
            continue
        fmt = call.args[0]
        if not (isinstance(fmt, ast.Call) and isinstance(fmt.func, ast.Attribute) and fmt.func.attr == "format"
                and isinstance(fmt.func.value, ast.Constant) and isinstance(fmt.func.value.value, str)
                and fmt.func.value.value.lstrip().startswith("RESULT") and not fmt.keywords):
            continue
        keys = re.findall(r"""["'](\w+)["']\s*:""", fmt.func.value.value)
        if not keys or len(keys) != len(fmt.args):
            continue
        fixed, new = _print_as_json(text, tree, call, _dict_text(text, keys, list(fmt.args)))
        return fixed, [f"line {call.lineno}: `.format` read the RESULT dict's own braces as fields (KeyError): it now "
                       f"prints `{new}`"]
    return text, []


_COLUMN_ATTRIBUTE = re.compile(r"AttributeError: '((?:Masked)?Column|numpy\.\w+)' object has no attribute '(\w+)'")
_REDUCTIONS = ("sum", "mean", "median", "min", "max", "std")


def _reduced_column(node: ast.expr, bound: dict[str, list[ast.expr]]) -> ast.Subscript | None:
    """The column a number was reduced from: `t["LIVETIME"].sum()`, `np.sum(t["LIVETIME"])`, or a name assigned
    once from either."""
    node = assigned_once(node, bound)
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute) or node.func.attr not in _REDUCTIONS:
        return None
    if isinstance(node.func.value, ast.Subscript):  # `t["LIVETIME"].sum()`
        return node.func.value
    if isinstance(node.func.value, ast.Name) and node.func.value.id in ("np", "numpy") and len(node.args) == 1 \
            and isinstance(node.args[0], ast.Subscript):  # `np.sum(t["LIVETIME"])`
        return node.args[0]
    return None


def column_as_quantity(text: str, stderr: str) -> tuple[str, list[str]]:
    """`table["RA_PNT"].to_value(u.deg)` raised: a Column is no Quantity, but its `.quantity` is (with the
    column's unit). On the line the traceback names, each column read then given a Quantity-only attribute
    goes through `.quantity`; so does a column reduced to a plain number first (`t["LIVETIME"].sum().to(u.h)`,
    or through a name assigned once from that reduction: numpy's sum keeps no unit, the Quantity's does)."""
    from astropy.table import Column
    from astropy.units import Quantity

    found, lines = _COLUMN_ATTRIBUTE.findall(stderr), SCRIPT_FRAME.findall(stderr)
    if not found or not lines:
        return text, []
    (owner, attr), line = found[-1], int(lines[-1])
    if not hasattr(Quantity, attr) or (owner.endswith("Column") and hasattr(Column, attr)):
        return text, []
    tree = ast.parse(text)
    reads = [n.value for n in ast.walk(tree) if isinstance(n, ast.Attribute) and n.attr == attr and n.lineno == line]
    if owner.endswith("Column"):
        columns = [r for r in reads if isinstance(r, ast.Subscript)]
    else:
        bound = bindings(tree)
        columns = [c for r in reads if (c := _reduced_column(r, bound)) is not None]
    edits: list[Edit] = list({id(c): (c, f"{ast.get_source_segment(text, c)}.quantity") for c in columns}.values())
    if not edits:
        return text, []
    if owner.endswith("Column"):
        return splice(text, edits), [f"a table column has no `.{attr}` (line {line}): read it as a Quantity, "
                                      f"`column.quantity.{attr}`"]
    return splice(text, edits), [f"a column reduced to a plain number has no `.{attr}` (line {line}): reduced "
                                  f"the column's `.quantity` instead (`t[\"LIVETIME\"].quantity.sum()`), which keeps its unit"]


# "'Table' object has no attribute 'x'" and, from astropy's Quantity, "Angle instance has no attribute 'x'"
_MISSING_ATTRIBUTE = re.compile(r"AttributeError: (?:'(\w+)' object|(\w+) instance) has no attribute '(\w+)'")


def missing_attribute(stderr: str) -> tuple[str, str] | None:
    """(owner class, attribute) of the run's last "has no attribute" error, or None."""
    found = _MISSING_ATTRIBUTE.findall(stderr)
    return (found[-1][0] or found[-1][1], found[-1][2]) if found else None


def map_data_attribute(text: str, stderr: str, index: NameIndex) -> tuple[str, list[str]]:
    """`stacked.counts.sum()` raised "'RegionNDMap' object has no attribute 'sum'": a Gammapy map is no array,
    its `.data` is. Where the attribute is an array's and not the map's, each read of it on the line the
    traceback names goes through `.data` (the 1.5B, reflected-significance-pks2155, two attempts)."""
    import numpy as np

    found, frames = missing_attribute(stderr), SCRIPT_FRAME.findall(stderr)
    if not found or not frames:
        return text, []
    (owner, attr), line = found, int(frames[-1])
    from gammapy.maps import Map

    cls = library_class(owner, index)
    if not (cls is not None and issubclass(cls, Map)) or hasattr(cls, attr) or not hasattr(np.ndarray, attr):
        return text, []
    tree = ast.parse(text)
    reads = [n.value for n in _attribute_reads(tree, attr, line)]
    edits: list[Edit] = [(r, f"{source_of(text, r)}.data") for r in reads]
    if not edits:
        return text, []
    return splice(text, edits), [f"line {line}: a `{owner}` has no `.{attr}`; its array, `.data`, has: "
                                 f"read `{ast.unparse(reads[0])}.data.{attr}`"]


def attribute_it_can_only_mean(text: str, stderr: str, index: NameIndex) -> tuple[str, list[str]]:
    """"'SpectrumDatasetOnOff' object has no attribute 'safe_mask'" (s45 reflected-significance-msh1552, two turns;
    the type was known only from the run): where the class has one attribute the name can only mean (`mask_safe`:
    the same words in another order, or another case or number), each read of it on the line the traceback names
    is renamed."""
    found, frames = missing_attribute(stderr), SCRIPT_FRAME.findall(stderr)
    if not found or not frames:
        return text, []
    (owner, attr), line = found, int(frames[-1])
    real = real_attribute(owner, attr, index)
    if real is None:
        return text, []
    reads = _attribute_reads(ast.parse(text), attr, line)
    edits: list[Edit] = [(n, f"{source_of(text, n.value)}.{real}") for n in reads]
    if not edits:
        return text, []
    return splice(text, edits), [f"line {line}: a `{owner}` has no `.{attr}`; the one name it can mean is "
                                 f"`.{real}`: renamed"]


_UNEXPECTED_KEYWORD = re.compile(r"TypeError: (?:[\w.]+\.)?(\w+)\.(\w+)\(\) got an unexpected keyword argument '(\w+)'")


def renamed_keyword(text: str, stderr: str, index: NameIndex) -> tuple[str, list[str]]:
    """`ObservationTable.select_observations() got an unexpected keyword argument 'selection'` where the
    receiver's class was unknown before the run (a function's parameter, a name bound twice): on the line the
    traceback names, that keyword of a call to that method becomes the one parameter it can only mean."""
    found, frames = _UNEXPECTED_KEYWORD.findall(stderr), SCRIPT_FRAME.findall(stderr)
    if not found or not frames:
        return text, []
    (owner, method, keyword), line = found[-1], int(frames[-1])
    meant = keyword_meant(owner, method, keyword, index)
    if meant is None:
        return text, []
    called = owner if method == "__init__" else method
    edits: list[Edit] = []
    for call in ast.walk(ast.parse(text)):
        name = call.func.attr if isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) else \
            call.func.id if isinstance(call, ast.Call) and isinstance(call.func, ast.Name) else None
        if name != called or not isinstance(call, ast.Call) or not _spans(call, line):
            continue
        edits += [(ast.Name(keyword, lineno=kw.lineno, col_offset=kw.col_offset, end_lineno=kw.lineno,
                            end_col_offset=kw.col_offset + len(keyword)), meant)
                  for kw in call.keywords if kw.arg == keyword]
    if not edits:
        return text, []
    return splice(text, edits), [f"line {line}: `{owner}.{method}()` takes no keyword `{keyword}`: renamed it "
                                 f"`{meant}` (the only parameter it can mean)"]


_ROW_POSITIONS = ("index", "indices", "idx", "rows")  # invented names for the rows a mask picks


def _row_attributes(tree: ast.AST, attr: str, line: int) -> list[tuple[ast.Attribute, str | None]]:
    """Each `table[mask].<attr>` on the traceback's line, with the name it is assigned to when that name is
    assigned nowhere else (None otherwise)."""
    assigned = {id(a.value): a.targets[0].id for a in ast.walk(tree) if isinstance(a, ast.Assign)
                and len(a.targets) == 1 and isinstance(a.targets[0], ast.Name)}
    bound = bindings(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr == attr and isinstance(node.value, ast.Subscript) \
                and _spans(node, line):
            name = assigned.get(id(node))
            found.append((node, name if name is not None and len(bound.get(name, [])) == 1 else None))
    return found


def count_the_selection(text: str, stderr: str) -> tuple[str, list[str]]:
    """`len(table[mask].index)` raised "'ObservationTable' object has no attribute 'index'" (or an Angle's
    `.indices`): what a mask selects is read by indexing with it, and the number of rows it picked is the
    length of that selection. Where the invented attribute on the line the traceback names is only counted
    (inside `len(...)`, or assigned to a name only ever given to `len`), it is dropped (s41/s42: the 1.5B
    repeated `obs_table[mask].index` five turns running, hints notwithstanding)."""
    found, frames = missing_attribute(stderr), SCRIPT_FRAME.findall(stderr)
    if not found or found[1] not in _ROW_POSITIONS or not frames:
        return text, []
    attr, line = found[1], int(frames[-1])
    tree = ast.parse(text)
    counted = _len_arguments(tree)
    loads: dict[str, list[ast.Name]] = {}
    for n in ast.walk(tree):
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load):
            loads.setdefault(n.id, []).append(n)
    edits: list[Edit] = []
    for node, name in _row_attributes(tree, attr, line):
        only_counted = name is not None and bool(loads.get(name)) and all(id(n) in counted for n in loads[name])
        if id(node) in counted or only_counted:
            edits.append((node, source_of(text, node.value)))
    if not edits:
        return text, []
    return splice(text, edits), [f"line {line}: a selection has no `.{attr}`; the rows a mask picks are "
                                 f"`table[mask]` itself, and `len(table[mask])` counts them: dropped `.{attr}`"]


_LOADS_BY_ID = ("get_observations", "obs")  # DataStore methods that take observation ids


def _len_arguments(tree: ast.AST) -> set[int]:
    """ids of the nodes counted by `len(...)`."""
    return {id(c.args[0]) for c in ast.walk(tree) if isinstance(c, ast.Call) and isinstance(c.func, ast.Name)
            and c.func.id == "len" and len(c.args) == 1}


def _given_as_ids(tree: ast.AST, name: str) -> tuple[bool, bool]:
    """(whether every read of `name` is counted or hands ids to the data store, whether one hands ids): inside
    `get_observations(...)`/`obs(...)`, or looped over by a loop or comprehension that calls one of them."""
    def loads_by_id(node: ast.AST) -> bool:
        return any(isinstance(c, ast.Call) and callee_name(c) in _LOADS_BY_ID for c in ast.walk(node))

    inside: set[int] = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.Call) and callee_name(n) in _LOADS_BY_ID:
            inside |= {id(x) for a in (*n.args, *n.keywords) for x in ast.walk(a)}
        elif isinstance(n, ast.For) and loads_by_id(n):
            inside |= {id(x) for x in ast.walk(n.iter)}
        elif isinstance(n, (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)) and loads_by_id(n):
            inside |= {id(x) for g in n.generators for x in ast.walk(g.iter)}
    counted = _len_arguments(tree)
    reads = [n for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load) and n.id == name]
    return bool(reads) and all(id(n) in inside or id(n) in counted for n in reads), any(id(n) in inside for n in reads)


def ids_of_the_selection(text: str, stderr: str) -> tuple[str, list[str]]:
    """`data_store.get_observations(list(obs_table[mask].index))` raised "'ObservationTable' object has no
    attribute 'index'": rows of the observation index given to the data store as ids are their `OBS_ID`s
    (s46 observation-list-rxj1713, three turns). Where the invented attribute on the line the traceback names
    (or the name it is assigned to) is only handed to `get_observations`/`obs`, looped over to load them, or
    counted, it becomes `["OBS_ID"]`."""
    found, frames = missing_attribute(stderr), SCRIPT_FRAME.findall(stderr)
    if not found or found[0] != "ObservationTable" or found[1] not in _ROW_POSITIONS or not frames:
        return text, []
    attr, line = found[1], int(frames[-1])
    tree = ast.parse(text)
    direct: set[int] = {id(x) for c in ast.walk(tree) if isinstance(c, ast.Call) and callee_name(c) in _LOADS_BY_ID
                        for a in c.args for x in ast.walk(a)}
    edits: list[Edit] = []
    for node, name in _row_attributes(tree, attr, line):
        only_ids, some_ids = _given_as_ids(tree, name) if name else (False, False)
        if id(node) in direct or (only_ids and some_ids):
            edits.append((node, f'{source_of(text, node.value)}["OBS_ID"]'))
    if not edits:
        return text, []
    return splice(text, edits), [f"line {line}: rows of the observation index have no `.{attr}`; the ids the data "
                                 f"store loads them by are their `OBS_ID` column: `{edits[0][1]}`"]


_PER_UNIT = re.compile(r"UnitConversionError: '1 / (\w+)' \([^)]*\) and '(\w+)' \([^)]*\) are not convertible")


def _number_times_unit(node: ast.expr, unit: str) -> tuple[ast.Constant, float] | None:
    """The number written out in `k * u.<unit>` (or `u.<unit> * k`), and its value; else None."""
    if not (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult)):
        return None
    for number, named in ((node.left, node.right), (node.right, node.left)):
        if isinstance(number, ast.Constant) and isinstance(number.value, (int, float)) \
                and not isinstance(number.value, bool) and isinstance(named, ast.Attribute) and named.attr == unit \
                and isinstance(named.value, ast.Name) and named.value.id in ("u", "units"):
            return number, float(number.value)
    return None


def plain_number_per_unit(text: str, stderr: str) -> tuple[str, list[str]]:
    """`hours = seconds / (3600 * u.s)` raised "'1 / s' and 'h' are not convertible": the divided value was a
    plain number (a column reduced by numpy keeps no unit), so the quotient is per second, not hours. A
    divisor that is exactly one of the unit asked for (3600 s is 1 h) can only mean converting a number of
    seconds by hand: it becomes that number (`seconds / 3600`). Any other divisor is left to the model."""
    from astropy import units

    found = _PER_UNIT.findall(stderr)
    if not found:
        return text, []
    unit, target = found[-1]
    try:
        per_target = units.Unit(unit).to(target)  # e.g. s -> h: 1/3600
    except (ValueError, units.UnitsError):
        return text, []
    edits: list[Edit] = []
    for node in ast.walk(ast.parse(text)):
        if not (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div)):
            continue
        written = _number_times_unit(node.right, unit)
        if written is not None and abs(written[1] * per_target - 1) < 1e-9:  # exactly one `target`
            edits.append((node.right, source_of(text, written[0])))
    if not edits:
        return text, []
    return splice(text, edits), [f"a plain number divided by `{ast.unparse(edits[0][0])}` is per {unit}, not in "
                                 f"{target}: the number was in {unit}, so it is divided by {edits[0][1]} instead"]


_BAD_INDEX = "IndexError: only integers, slices"


def column_of_the_selection(text: str, stderr: str) -> tuple[str, list[str]]:
    """`t["LIVETIME"][near]` raised IndexError where `near = t[mask]` (the selected rows, a table, not a mask):
    the column of those rows was meant, `near["LIVETIME"]`. On the line the traceback names, a column of a
    table indexed by a name bound once to rows of the same table is read from those rows."""
    frames = SCRIPT_FRAME.findall(stderr)
    if _BAD_INDEX not in stderr or not frames:
        return text, []
    line = int(frames[-1])
    tree = ast.parse(text)
    bound = bindings(tree)
    edits: list[Edit] = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Subscript) and _spans(node, line)
                and isinstance(node.slice, ast.Name) and isinstance(column := node.value, ast.Subscript)
                and isinstance(column.slice, ast.Constant) and isinstance(column.slice.value, str)):
            continue
        rows = assigned_once(node.slice, bound)
        if not (isinstance(rows, ast.Subscript) and not isinstance(rows.slice, ast.Constant)):
            continue
        table, picked_from = assigned_once(column.value, bound), assigned_once(rows.value, bound)
        if ast.unparse(table) == ast.unparse(picked_from):
            edits.append((node, f"{node.slice.id}[{column.slice.value!r}]"))
    if not edits:
        return text, []
    return splice(text, edits), [f"line {line}: `{ast.unparse(edits[0][0])}` indexed a column with selected rows "
                                 f"(a table, not a mask): read the column of those rows, `{edits[0][1]}`"]


_ROW_BY_VALUE = re.compile(r"ValueError: Illegal type <class '[\w.]+'> for table item access|"
                           r"IndexError: index -?\d+ (?:is out of bounds|out of range for table)")
_ARG = {"max": "argmax", "min": "argmin", "amax": "argmax", "amin": "argmin", "nanmax": "nanargmax",
        "nanmin": "nanargmin"}


def _extreme_column(node: ast.expr) -> tuple[str, str] | None:
    """(column name, "max"/"min") of `x["COL"].max()`, `np.max(x["COL"])` or `max(x["COL"])` (also through
    `.quantity`/`.data`); None for anything else."""
    if not isinstance(node, ast.Call) or (name := callee_name(node)) not in _ARG:
        return None
    if isinstance(node.func, ast.Attribute) and not node.args:
        column = column_under(node.func.value)
    elif len(node.args) == 1:
        column = column_under(node.args[0])
    else:
        return None
    if isinstance(column, ast.Subscript) and isinstance(column.slice, ast.Constant) and isinstance(column.slice.value, str):
        return column.slice.value, name
    return None


def row_of_the_extreme(text: str, stderr: str) -> tuple[str, list[str]]:
    """`selected[table["TSTART"].max()]` raised "Illegal type <class 'numpy.float64'> for table item access" (or
    an index out of bounds, for an integer column): a table's row is picked by its position, and the row
    holding a column's largest value is at `np.argmax` of that column (unseen q3 at f78dca8: "which run was
    started most recently"). On the line the traceback names, the table indexed by a column's extreme is
    indexed by the position of that extreme in its own column."""
    frames = SCRIPT_FRAME.findall(stderr)
    if not _ROW_BY_VALUE.search(stderr) or not frames:
        return text, []
    line, tree = int(frames[-1]), ast.parse(text)
    edits: list[Edit] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript) and _spans(node, line) \
                and (found := _extreme_column(node.slice)) is not None:
            table = source_of(text, node.value)
            edits.append((node.slice, f'np.{_ARG[found[1]]}({table}["{found[0]}"])'))
    if not edits:
        return text, []
    fixed = _with_import(splice(text, edits), ast.walk(tree), "np", "import numpy as np")
    return fixed, [f"line {line}: a table's rows are picked by position, not by a value: the row with the "
                   f"{'largest' if 'max' in edits[0][1] else 'smallest'} value is `[{edits[0][1]}]`"]


_ANGLE_WITHOUT_UNIT = re.compile(r"UnitTypeError: Angle instances require units equivalent to 'rad', but no unit "
                                 r"was given")


def angle_in_degrees(text: str, stderr: str) -> tuple[str, list[str]]:
    """`Angle(zen.max() - zen.min())` raised "Angle instances require units equivalent to 'rad', but no unit was
    given": a plain number (a column's values lose their unit through numpy) made an Angle. Every angle of the
    release's tables is in degrees, so on the line the traceback names each `Angle(x)` given no unit is
    `Angle(x, unit="deg")` (an unseen question at f78dca8, two turns)."""
    frames = SCRIPT_FRAME.findall(stderr)
    if not _ANGLE_WITHOUT_UNIT.search(stderr) or not frames:
        return text, []
    line = int(frames[-1])
    calls = [c for c in ast.walk(ast.parse(text)) if isinstance(c, ast.Call) and isinstance(c.func, ast.Name)
             and c.func.id == "Angle" and len(c.args) == 1 and not c.keywords
             and _spans(c, line)]
    edits: list[Edit] = [(c, f'Angle({source_of(text, c.args[0])}, unit="deg")')
                         for c in calls]
    if not edits:
        return text, []
    return splice(text, edits), [f"line {line}: an Angle of a plain number needs its unit; the release's angles are "
                                 f"in degrees: `{edits[0][1]}`"]


def reduction_through_numpy(text: str, stderr: str) -> tuple[str, list[str]]:
    """`separation.median()` raised "Angle instance has no attribute 'median'": a Quantity, Angle or array has
    no such method, numpy's function computes it. On the line the traceback names, each `<x>.median(...)` call
    becomes `np.median(<x>, ...)` (the static stage does this for table columns; the type of other
    receivers is known only from the run)."""
    found, frames = missing_attribute(stderr), SCRIPT_FRAME.findall(stderr)
    if not found or found[1] not in NUMPY_ONLY_REDUCTIONS or not frames:
        return text, []
    attr, line = found[1], int(frames[-1])
    tree = ast.parse(text)
    edits: list[Edit] = []
    for call in ast.walk(tree):
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr == attr \
                and _spans(call, line):
            edits.append((call, numpy_call(text, call)))
    if not edits:
        return text, []
    fixed = _with_import(splice(text, edits), ast.walk(tree), "np", "import numpy as np")
    return fixed, [f"line {line}: `{ast.unparse(edits[0][0])}` has no `.{attr}()` method; numpy's function "
                   f"computes it: `{edits[0][1]}`"]


# String methods pandas hangs on `.str` and Python on `str`, which numpy computes for a whole column (`np.char`);
# `contains` is pandas' own: a match anywhere is a find at 0 or later.
COLUMN_STRING_METHODS = ("startswith", "endswith", "contains", "lower", "upper", "strip", "lstrip", "rstrip",
                         "replace", "find", "count")


def _string_call(text: str, call: ast.Call) -> str | None:
    """`col.str.startswith("2004")` or `col.startswith("2004")` -> `np.char.startswith(col.astype(str), "2004")`."""
    if not isinstance(call.func, ast.Attribute) or call.func.attr not in COLUMN_STRING_METHODS or call.keywords:
        return None
    receiver = call.func.value
    if isinstance(receiver, ast.Attribute) and receiver.attr == "str":
        receiver = receiver.value
    column = source_of(text, receiver)
    if not column.endswith(".astype(str)"):
        column += ".astype(str)"
    args = ", ".join(source_of(text, a) for a in call.args)
    if call.func.attr == "contains":
        return f"(np.char.find({column}, {args}) >= 0)"
    return f"np.char.{call.func.attr}({', '.join([column, args]) if args else column})"


def string_methods_through_numpy(text: str, stderr: str) -> tuple[str, list[str]]:
    """`table["DATE-OBS"].str.startswith("2004")` (pandas) or `.startswith(...)` (a Python string's) raised
    "'Column' object has no attribute 'str'": an astropy column has neither; numpy's `np.char` applies the
    method to every value (blind q12, four turns). On the line the traceback names, each such call becomes
    `np.char.<method>(<column>.astype(str), ...)`."""
    found, frames = missing_attribute(stderr), SCRIPT_FRAME.findall(stderr)
    if not found or found[0] not in ("Column", "MaskedColumn") or not frames \
            or found[1] not in ("str", *COLUMN_STRING_METHODS):
        return text, []
    line = int(frames[-1])
    tree = ast.parse(text)
    edits: list[Edit] = []
    for call in ast.walk(tree):
        if isinstance(call, ast.Call) and _spans(call, line) and (new := _string_call(text, call)) is not None:
            edits.append((call, new))
    if not edits:
        return text, []
    fixed = _with_import(splice(text, edits), ast.walk(tree), "np", "import numpy as np")
    return fixed, [f"line {line}: an astropy column has no string methods (`.{found[1]}`); numpy applies them to "
                   f"every value: `{edits[0][1]}`"]


_NO_LEN = re.compile(r"TypeError: object of type 'FluxPoints' has no len\(\)")


def count_the_bins(text: str, stderr: str) -> tuple[str, list[str]]:
    """`len(lc)` raised "object of type 'FluxPoints' has no len()": what `LightCurveEstimator.run` (one row per
    time bin) and `FluxPointsEstimator.run` (one per energy bin) return is counted by the rows of its table. On
    the line the traceback names, each `len(x)` becomes `len(x.to_table(format=..., sed_type="flux"))`, in the
    format of the one estimator the script runs (`flux_points.points_format`)."""
    frames = SCRIPT_FRAME.findall(stderr)
    if not _NO_LEN.search(stderr) or not frames:
        return text, []
    line, tree = int(frames[-1]), ast.parse(text)
    made = points_format(tree)
    if made is None:  # neither estimator, or both: which table is meant is not known
        return text, []
    fmt = made[0]
    edits: list[Edit] = []
    for call in ast.walk(tree):
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "len" \
                and len(call.args) == 1 and not call.keywords and isinstance(call.args[0], (ast.Name, ast.Attribute)) \
                and _spans(call, line):
            points = source_of(text, call.args[0])
            edits.append((call, f'len({points}.to_table(format="{fmt}", sed_type="flux"))'))
    if not edits:
        return text, []
    return splice(text, edits), [f"line {line}: a FluxPoints has no length; its bins are the rows of its table: "
                                 f"`{edits[0][1]}`"]


_DATASET_NO_LEN = re.compile(r"TypeError: object of type '\w*Dataset\w*' has no len\(\)")


def count_what_was_stacked(text: str, stderr: str) -> tuple[str, list[str]]:
    """`len(reduced)` raised "object of type 'SpectrumDatasetOnOff' has no len()" where `reduced =
    datasets.stack_reduce()`: one stacked dataset has no length; what it stacked does, one dataset per
    observation (s46 reflected-significance-crab, three turns of `"n_obs": len(reduced)`). On the line the
    traceback names, `len(x)` of a name assigned once from `<collection>.stack_reduce()` becomes
    `len(<collection>)`."""
    frames = SCRIPT_FRAME.findall(stderr)
    if not _DATASET_NO_LEN.search(stderr) or not frames:
        return text, []
    line, tree = int(frames[-1]), ast.parse(text)
    bound = bindings(tree)
    edits: list[Edit] = []
    for call in ast.walk(tree):
        if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "len"
                and len(call.args) == 1 and isinstance(call.args[0], ast.Name) and _spans(call, line)):
            continue
        values = bound.get(call.args[0].id, [])
        made = values[0] if len(values) == 1 else None
        if isinstance(made, ast.Call) and isinstance(made.func, ast.Attribute) and made.func.attr == "stack_reduce":
            edits.append((call.args[0], source_of(text, made.func.value)))
    if not edits:
        return text, []
    return splice(text, edits), [f"line {line}: one stacked dataset has no length; what it stacked does: "
                                 f"`len({edits[0][1]})`, one dataset per observation"]


_NO_PARAMETER = re.compile(r"IndexError: No parameter: '([A-Za-z_][\w.-]*):([A-Za-z_]\w*)'")


def parameter_by_its_name(text: str, stderr: str) -> tuple[str, list[str]]:
    """`result.parameters["powerlaw:index"]` raised "No parameter: 'powerlaw:index'": Gammapy's `Parameters` are
    indexed by a parameter's own name (`"index"`); the `component:` prefix is no part of it (s47
    reflected-spectrum-msh1552: three such reads). Every string index of a `.parameters` with that prefix
    loses it."""
    found = _NO_PARAMETER.search(stderr)
    if not found:
        return text, []
    prefix = found.group(1) + ":"
    edits: list[Edit] = []
    for n in ast.walk(ast.parse(text)):
        if isinstance(n, ast.Subscript) and isinstance(n.value, ast.Attribute) and n.value.attr == "parameters" \
                and isinstance(n.slice, ast.Constant) and isinstance(n.slice.value, str) \
                and n.slice.value.startswith(prefix):
            edits.append((n.slice, json.dumps(n.slice.value[len(prefix):])))
    if not edits:
        return text, []
    lines = sorted({e[0].lineno for e in edits})
    return splice(text, edits), [f"a model's parameters are indexed by their own names: "
                                 f"{', '.join(sorted({e[1] for e in edits}))}, not `{prefix}...` "
                                 f"(line{'s' if len(lines) > 1 else ''} {', '.join(map(str, lines))})"]


# Repairs that only a run can show to be needed (a correct script would be changed by them otherwise):
# the run's error -> the repair (given the script and the run's stderr); the script is re-run once, in the
# same attempt, when one applies.
def read_the_requests_keys(text: str, stderr: str, returned: dict[str, str]) -> tuple[str, list[str]]:
    """A run failed on `x.sqrt_ts` where the request says `sqrt_ts` is a key of what `info_dict()` returns
    (`returned`: key -> method): every `x.<key>` of that request (on the same `x`) reads it from `x.info_dict()`."""
    missing, frames = missing_attribute(stderr), SCRIPT_FRAME.findall(stderr)
    if not missing or missing[1] not in returned or not frames:
        return text, []
    tree = ast.parse(text)
    line = int(frames[-1])
    failing = _attribute_reads(tree, missing[1], line)
    if len(failing) != 1:
        return text, []
    owner = ast.unparse(failing[0].value)
    # a read used as it is (`x.counts`, not `x.counts.data.sum()`, which is the object's own attribute at work)
    deeper = {id(p.value) for p in ast.walk(tree) if isinstance(p, (ast.Attribute, ast.Subscript))}
    reads = [n for n in ast.walk(tree) if isinstance(n, ast.Attribute) and isinstance(n.ctx, ast.Load)
             and n.attr in returned and ast.unparse(n.value) == owner and id(n) not in deeper]
    edits = [(n, f'{owner}.{returned[n.attr]}()["{n.attr}"]') for n in reads]
    notes = [f"line {n.lineno}: read `{owner}.{returned[n.attr]}()[\"{n.attr}\"]`, as your request says, "
             f"not `{owner}.{n.attr}`" for n in reads]
    return splice(text, edits), notes


AFTER_RUN: tuple[tuple[re.Pattern[str], Callable[[str, str], tuple[str, list[str]]]], ...] = (
    (re.compile(r"TypeError: Object of type (float|int|uint|bool_|ndarray|complex)\w* is not JSON serializable"),
     lambda text, _: json_numpy_numbers(text, None)),
    (re.compile(r"Object of type (Quantity|Angle|Latitude|Longitude|Distance|TimeDelta)\b is not JSON serializable|"
                r"only dimensionless scalar quantities can be converted"), quantities_in_key_units),
    (_COLUMN_ATTRIBUTE, column_as_quantity),
    (_FORMAT_KEY, result_format_braces),
    (_MISSING_ATTRIBUTE, count_the_selection),
    (_MISSING_ATTRIBUTE, ids_of_the_selection),
    (_PER_UNIT, plain_number_per_unit),
    (re.compile(re.escape(_BAD_INDEX)), column_of_the_selection),
    (_MISSING_ATTRIBUTE, reduction_through_numpy),
    (_MISSING_ATTRIBUTE, string_methods_through_numpy),
    (_NO_LEN, count_the_bins),
    (_DATASET_NO_LEN, count_what_was_stacked),
    (_ROW_BY_VALUE, row_of_the_extreme),
    (_ANGLE_WITHOUT_UNIT, angle_in_degrees),
    (_NO_PARAMETER, parameter_by_its_name),
)


def repair_after_run(script: str, stderr: str, index: NameIndex, stdout: str = "", ok: bool = False,
                     returned: dict[str, str] | None = None) -> Repaired | None:
    """The repair a run's outcome calls for, or None when none applies (or it changes nothing): a failed
    run's error (`stderr`), or a run that succeeded (`ok`) but printed its RESULT line as a Python dict.
    `returned`: key -> method, the keys the request says a method returns (`request_facts.returned_keys`)."""
    try:
        ast.parse(script)
    except SyntaxError:
        return None
    if ok:
        fixed, notes = result_as_json(script, stdout)
        return Repaired(fixed, tuple(notes)) if notes and fixed != script else None
    if returned:
        fixed, notes = read_the_requests_keys(script, stderr, returned)
        if notes and fixed != script:
            return Repaired(fixed, tuple(notes))
    for pattern, step in AFTER_RUN:
        if pattern.search(stderr):
            fixed, notes = step(script, stderr)
            if notes and fixed != script:
                return Repaired(fixed, tuple(notes))
    for needs_index in (renamed_keyword, map_data_attribute, attribute_it_can_only_mean):
        fixed, notes = needs_index(script, stderr, index)
        if notes and fixed != script:
            return Repaired(fixed, tuple(notes))
    return None
