"""Repairs of sky positions and separations: how a script makes positions of the release's coordinate columns
and measures angles between them.

Small models pass a column pair where a SkyCoord belongs, measure from a table row instead of its pointing,
subtract coordinates instead of taking a separation, or compare an Angle with a plain number. Each repair has
one reading: the columns' own frame and unit, the script's one position, degrees.
"""

from __future__ import annotations

import ast
import re

from hpc_agent.bindings import assigned_once, bindings, stored_names
from hpc_agent.checks import selects
from hpc_agent.names import NameIndex
from hpc_agent.request_regions import written_position
from hpc_agent.source_edits import Edit, drop_statements, source_of, splice
from hpc_agent.units import unit_of


def column_under(node: ast.expr) -> ast.expr:
    """`t["RA_PNT"]` under the array views a column hands out (`t["RA_PNT"].quantity`, `.data`, `.value`)."""
    while isinstance(node, ast.Attribute) and node.attr in ("quantity", "data", "value"):
        node = node.value
    return node


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
        base = source_of(text, one.value)
        pair = (one, f'{base}["{partner}"]')
        return pair if r is not None else (pair[1], pair[0])
    return None, None


def _has_unit(node: ast.expr, bound: dict[str, list[ast.expr]]) -> bool:
    """`2 * u.deg`, `Angle(2, "deg")`, or a name assigned once from one: a Quantity, not a plain number."""
    return any(isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id in ("u", "units")
               or isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in ("Angle", "Quantity")
               for n in ast.walk(assigned_once(node, bound)))


_RA_NAME = re.compile(r"^(\w*?)(_?)ra$", re.IGNORECASE)  # `source_ra`, `ra`, `srcRA`


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


def pair_as_position(text: str, _: NameIndex) -> tuple[str, list[str]]:
    """`pointing.separation(source_ra)` where the script assigns `source_ra` and `source_dec`: one coordinate given
    where a sky position is taken ("Tried to do is_equivalent_frame on something that isn't a frame") can only mean
    the position the pair makes. Rows of the observation index given (`pointing.separation(selected)`, the 1.5B on an
    unseen question) mean their pointings' separations from the script's one position. So can `pointing.separation(ra, dec)`, two coordinates where one position is
    taken (its second parameter is a string option): `SkyCoord(ra, dec, unit="deg")`; and one coordinate column
    of a table, `separation(t["RA_PNT"])` or `t["RA_PNT"].quantity.separation(...)`: the position of that column
    and its partner (`DEC_PNT`)."""
    tree = ast.parse(text)
    stored, bound = stored_names(tree), bindings(tree)
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
            pair = ", ".join(source_of(text, a) for a in call.args)
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
    bound, stored = bindings(tree), stored_names(tree)
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
        value = (f'SkyCoord({source_of(text, ra)}, {source_of(text, dec)}, unit="deg", '
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
    unit = unit_of(given[0]) if given else None
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
                shown = source_of(text, number)
                edits.append((number, f"{shown} * {unit}"))
                what = "a separation is an Angle" if unit == "u.deg" and "separation" in ast.unparse(
                    assigned_once(angle, bound)) else "it is a Quantity"
                notes.append(f"line {cmp.lineno}: {what}, so the plain number it is compared with is given its unit: "
                             f"`{shown} * {unit}`")
                break
    return (splice(text, edits), notes) if edits else (text, [])


def _a_separation(value: ast.expr) -> bool:
    """`a.separation(b)`, or that read in a unit (`.deg`, `.to(u.deg)`, `.to_value("deg")`)."""
    node = value
    while True:
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr == "separation":
                return True
            if node.func.attr not in ("to", "to_value"):
                return False
            node = node.func.value
        elif isinstance(node, ast.Attribute) and node.attr in ("deg", "degree", "rad", "radian", "arcmin", "value"):
            node = node.value
        else:
            return False


def separation_kept_as_measured(text: str, _: NameIndex) -> tuple[str, list[str]]:
    """`separations = pointings.separation(source)` followed by `separations += (dec - source.dec) * u.deg` or
    `separations *= u.rad`: the angle `.separation()` measured is the distance on the sky, and changing it in
    place makes it another number (s46 observation-list-msh1552 and blind q7 at 677b569, each a failed turn).
    Such in-place changes of a name assigned once from a separation are dropped."""
    tree = ast.parse(text)
    bound = bindings(tree)
    changed = [s for s in ast.walk(tree) if isinstance(s, ast.AugAssign) and isinstance(s.target, ast.Name)
               and len(bound.get(s.target.id, [])) == 1 and _a_separation(bound[s.target.id][0])]
    if not changed:
        return text, []
    notes = [f"line {s.lineno}: `{s.target.id}` is the angle `.separation()` measured; removed "  # type: ignore[union-attr]
             f"`{ast.unparse(s)}`, which made it another number" for s in changed]
    return splice(text, drop_statements(tree, changed)), notes
