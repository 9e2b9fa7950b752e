"""Where the request looks, kept as it says: the cone the observations are selected in, and the ON circle.

A request that selects observations in one cone (`request_facts.request_selection`) fixes both where and how wide.
Small models drop the selection (they load the tutorials' ids, or every observation) or select with another
radius (the ON region's 0.2 deg reused for the 2 deg cone, which leaves nothing to reduce and fails deep in
Gammapy: `Info table not supported for mixed dataset type` of an empty `Datasets`), or draw the ON circle with
the cone's radius. When the request gives one cone and one circle, each has one reading.
"""

from __future__ import annotations

import ast
import math

from hpc_agent.bindings import assigned_once, bindings
from hpc_agent.checks import selects, undefined_names
from hpc_agent.prompts import IDIOM_DEC, IDIOM_RA, IDIOM_RADIUS
from hpc_agent.request_facts import number_text
from hpc_agent.source_edits import Edit, drop_statements, source_of, splice

Cone = tuple[float, float, float]  # ra, dec, radius in degrees

# What marks a separation as one of the observations' pointings (not of events from the source).
_POINTING_MARKS = ("RA_PNT", "DEC_PNT", "GLON_PNT", "GLAT_PNT", "pointing_radec", "get_pointing_icrs", "pointing")


def _receiver(call: ast.Call) -> str:
    """`store` of a call `store.method(...)`."""
    assert isinstance(call.func, ast.Attribute) and isinstance(call.func.value, ast.Name), ast.unparse(call)
    return call.func.value.id


def select_in_the_cone(text: str, cone: tuple[float, float, float] | None) -> tuple[str, list[str]]:
    """A script that selects nothing (no separation, no `select*` call) for a request that selects the
    observations in one cone around one position: each `<store>.get_observations(...)` of a variable made by
    `DataStore.from_dir` loads the observations in that cone instead (the tutorials' ids, or all of them,
    were not asked for), and so does a loop that runs makers on the items of the store or of its index
    (`for obs in data_store.obs_table:` hands each maker a table row, not an observation)."""
    if cone is None:
        return text, []
    tree = ast.parse(text)
    if selects(tree):
        return text, []
    stores = {n.targets[0].id for n in ast.walk(tree) if isinstance(n, ast.Assign) and len(n.targets) == 1
              and isinstance(n.targets[0], ast.Name) and isinstance(n.value, ast.Call)
              and ast.unparse(n.value.func).endswith("DataStore.from_dir")}
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
             and n.func.attr == "get_observations" and isinstance(n.func.value, ast.Name) and n.func.value.id in stores]
    ra, dec, radius = cone

    def cone_ids(store: str) -> str:
        return _cone_ids(store, cone)

    edits: list[Edit] = []
    per_item: set[int] = set()  # calls loading one observation of a loop: the loop's ids are what to select
    for loop in (n for n in ast.walk(tree) if isinstance(n, ast.For)):
        names = {t.id for t in ast.walk(loop.target) if isinstance(t, ast.Name)}
        inner = [c for c in calls if any(c is x for x in ast.walk(loop))
                 and names & {a.id for arg in c.args for a in ast.walk(arg) if isinstance(a, ast.Name)}]
        if not inner:
            continue
        per_item.update(id(c) for c in inner)
        store = _receiver(inner[0])
        if ast.unparse(loop.iter).replace("'", '"') in (f'{store}.obs_table["OBS_ID"]', f"{store}.obs_ids"):
            edits.append((loop.iter, cone_ids(store)))
    for loop in (n for n in ast.walk(tree) if isinstance(n, ast.For)):
        store = ast.unparse(loop.iter).removesuffix(".obs_table")
        if store in stores and _runs_makers_on(loop):
            edits.append((loop.iter, f"{store}.get_observations(list({cone_ids(store)}))"))
    bound = bindings(tree)
    for call in calls:
        if id(call) not in per_item:
            store = _receiver(call)
            own = call.args[0] if len(call.args) == 1 and not call.keywords else None
            if own is not None and _selected_from_index(own, store, bound):  # the script's own cut, kept
                ids = source_of(text, own)
                edits.append((call, f"{store}.get_observations([i for i in {ids} if i in set({cone_ids(store)})])"))
            else:
                edits.append((call, f"{store}.get_observations(list({cone_ids(store)}))"))
    if not edits:
        return text, []
    kept = " (keeping its own cut, restricted to them)" if any("for i in" in new for _, new in edits) else ""
    return splice(text, edits), [f"the script selected no observations: it now loads those pointing within "
                                  f"{radius:g} deg of ({ra:g}, {dec:g}), as your request asks{kept}"]


def _cone_ids(store: str, cone: Cone) -> str:
    """The ids of the store's index whose pointing lies in the cone (an expression)."""
    ra, dec, radius = cone
    return (f'{store}.obs_table[SkyCoord({store}.obs_table["RA_PNT"], {store}.obs_table["DEC_PNT"], unit="deg", '
            f'frame="icrs").separation(SkyCoord({number_text(ra)}, {number_text(dec)}, unit="deg", frame="icrs")) < {number_text(radius)} * u.deg]'
            '["OBS_ID"]')


def define_the_selection(text: str, cone: Cone | None) -> tuple[str, list[str]]:
    """A loop that hands makers the items of a name never assigned (`for obs_id, observation in zip(obs_ids,
    observations):`), in a script that selects nothing, for a request that selects the observations in one
    cone: the names are defined before the loop from the one `DataStore.from_dir` store, the ids of the cone
    and the observations loaded for them (s47 reflected-significance-pks2155: both names undefined, no
    selection). A name paired with the maker's argument holds observations; the others, ids."""
    if cone is None:
        return text, []
    tree = ast.parse(text)
    stores = [(n.targets[0].id, n.lineno) for n in tree.body if isinstance(n, ast.Assign) and len(n.targets) == 1
              and isinstance(n.targets[0], ast.Name) and isinstance(n.value, ast.Call)
              and ast.unparse(n.value.func).endswith("DataStore.from_dir")]
    if selects(tree) or len({name for name, _ in stores}) != 1:
        return text, []
    store, made_at = stores[0]
    undefined = set(undefined_names(tree))
    for loop in tree.body:
        if not isinstance(loop, ast.For) or loop.lineno < made_at or not _runs_makers_on(loop):
            continue
        handed = _handed_to_run(loop)
        sources: list[ast.expr] = [loop.iter]
        items: list[ast.expr] = [loop.target]
        if isinstance(loop.iter, ast.Call) and ast.unparse(loop.iter.func) == "zip" and isinstance(loop.target, ast.Tuple):
            sources, items = loop.iter.args, loop.target.elts
        pairs = [(src.id, item.id) for src, item in zip(sources, items)
                 if isinstance(src, ast.Name) and src.id in undefined and isinstance(item, ast.Name)]
        if len(pairs) != len(sources) or len(sources) != len(items):
            continue
        holds = [src for src, item in pairs if item in handed]
        ids = [src for src, item in pairs if item not in handed]
        if len(holds) != 1:
            continue
        selected = ids[0] if ids else "selected_ids"
        lines = [f"{selected} = list({_cone_ids(store, cone)})", *(f"{other} = {selected}" for other in ids[1:]),
                 f"{holds[0]} = {store}.get_observations({selected})"]
        rows = text.splitlines(keepends=True)
        rows[loop.lineno - 1:loop.lineno - 1] = [f"{line}\n" for line in lines]
        ra, dec, radius = cone
        return "".join(rows), [f"defined `{'`, `'.join([*ids, holds[0]])}` (used but never assigned): the "
                               f"observations pointing within {radius:g} deg of ({ra:g}, {dec:g}), as your request "
                               "asks"]
    return text, []


def _selected_from_index(node: ast.expr, store: str, bound: dict[str, list[ast.expr]], depth: int = 0) -> bool:
    """`node` holds ids the script selected from the store's index by some other cut (`obs_table[zen < 30]
    ["OBS_ID"]`, through names assigned once), not all of them (`obs_table["OBS_ID"]`, `obs_ids`): a cone
    repair keeps that cut and restricts it to the cone."""
    node = assigned_once(node, bound)
    if depth > 6:
        return False
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("list", "set", "sorted") \
            and len(node.args) == 1:
        return _selected_from_index(node.args[0], store, bound, depth + 1)
    if not isinstance(node, ast.Subscript):
        return False
    if isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str):
        return node.slice.value == "OBS_ID" and _selected_from_index(node.value, store, bound, depth + 1)
    index = assigned_once(node.value, bound)  # `table[mask]`: rows of the index, cut by the script
    return isinstance(index, ast.Attribute) and index.attr == "obs_table" and ast.unparse(index.value) == store


def _handed_to_run(loop: ast.For) -> set[str]:
    """The names the loop's body hands to `.run(...)` calls as positional arguments (makers' observations)."""
    return {a.id for stmt in loop.body for n in ast.walk(stmt) if isinstance(n, ast.Call)
            and isinstance(n.func, ast.Attribute) and n.func.attr == "run" for a in n.args if isinstance(a, ast.Name)}


def _runs_makers_on(loop: ast.For) -> bool:
    """Whether the loop's variable is handed to a `.run(...)` call in its body (a maker's observation)."""
    return bool({t.id for t in ast.walk(loop.target) if isinstance(t, ast.Name)} & _handed_to_run(loop))


def _names_in(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _texts(node: ast.AST, bound: dict[str, list[ast.expr]]) -> str:
    """The source of `node` with each name assigned once replaced by its value, one level deep: enough to see
    that `sep < r` compares a separation of the pointings (`sep = SkyCoord(t["RA_PNT"], ...).separation(...)`)."""
    parts = [ast.unparse(node)]
    parts += [ast.unparse(bound[n][0]) for n in _names_in(node) if len(bound.get(n, [])) == 1]
    return " ".join(parts)


def _degrees(node: ast.expr, bound: dict[str, list[ast.expr]]) -> tuple[float, bool] | None:
    """(value in degrees, whether it was a bare number) of a radius written with constants and astropy units
    (`2`, `2 * u.deg`, `Angle("2 deg")`, `u.Quantity(0.2, "deg")`, a name assigned once to one); None for
    anything else (computed from data, or not an angle)."""
    import astropy.units as u
    from astropy.coordinates import Angle

    allowed = {"u", "units", "Angle", "Quantity"}

    class _Inline(ast.NodeTransformer):  # names assigned once stand for their values (`radius_deg * u.deg`)
        def visit_Name(self, name: ast.Name) -> ast.expr:
            value = assigned_once(name, bound)
            return name if value is name or name.id in allowed else ast.copy_location(value, name)

    value = assigned_once(node, bound)
    for _ in range(3):  # a radius is rarely more than a name or two away from its constant
        value = _Inline().visit(ast.parse(ast.unparse(value), mode="eval")).body
    if not all(_harmless(n, allowed) for n in ast.walk(value)):
        return None
    try:
        result = eval(compile(ast.Expression(value), "<radius>", "eval"),  # constants and units only (above)
                      {"__builtins__": {}}, {"u": u, "units": u, "Angle": Angle, "Quantity": u.Quantity})
        if isinstance(result, (int, float)) and not isinstance(result, bool):
            return float(result), True
        return float(u.Quantity(result).to_value(u.deg)), False
    except Exception:  # not an angle: nothing this repair can read
        return None


_HARMLESS = (ast.Constant, ast.Call, ast.keyword, ast.BinOp, ast.UnaryOp, ast.Mult, ast.Div, ast.Add, ast.Sub,
             ast.USub, ast.UAdd, ast.Load)


def _harmless(node: ast.AST, allowed: set[str]) -> bool:
    """Whether a node of a radius may be evaluated in the harness's process: numbers and strings, arithmetic
    without powers, and public attributes and calls of astropy's units and angles (the script is untrusted)."""
    if isinstance(node, ast.Name):
        return node.id in allowed
    if isinstance(node, ast.Attribute):
        return isinstance(node.value, ast.Name) and node.value.id in allowed and not node.attr.startswith("_")
    if isinstance(node, ast.Constant):
        return isinstance(node.value, (int, float, str)) and not (isinstance(node.value, str) and len(node.value) > 40)
    if isinstance(node, ast.BinOp):  # no `"x" * 10000000000`
        return not any(isinstance(side, ast.Constant) and isinstance(side.value, str) for side in (node.left, node.right))
    return isinstance(node, _HARMLESS)


def _cone_values(tree: ast.Module, bound: dict[str, list[ast.expr]], cone: Cone) -> list[tuple[ast.expr, float, str]]:
    """(node, the request's value in degrees, what it is) for the constants of the script's cone selections of
    observations: the `radius`, and in the ICRS frame the `lon` and `lat`, of a `sky_circle` selection dict given
    to `select_observations`; the radius of `select_sky_circle`; the right side of `<separation of the pointings>
    < radius`."""
    ra, dec, radius = cone
    found: list[tuple[ast.expr, float, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr == "select_observations" and node.args:
                items = _sky_circle(assigned_once(node.args[0], bound))
                frame = items.get("frame")
                icrs = isinstance(frame, ast.Constant) and str(frame.value).lower() == "icrs"
                found += [(items[key], value, what) for key, value, what in
                          (("radius", radius, "radius"), ("lon", ra, "RA"), ("lat", dec, "Dec"))
                          if key in items and (key == "radius" or icrs)]
            elif node.func.attr == "select_sky_circle":
                node_radius = node.args[1] if len(node.args) > 1 else \
                    next((k.value for k in node.keywords if k.arg == "radius"), None)
                found += [(node_radius, radius, "radius")] if node_radius is not None else []
        elif isinstance(node, ast.Compare) and len(node.ops) == 1 and isinstance(node.ops[0], (ast.Lt, ast.LtE)):
            left = _texts(node.left, bound)
            if "separation" in left and any(mark in left for mark in _POINTING_MARKS):
                found.append((node.comparators[0], radius, "radius"))
    return found


def _sky_circle(selection: ast.expr) -> dict[str, ast.expr]:
    """The items of `dict(type="sky_circle", ...)` or `{"type": "sky_circle", ...}`; empty for anything else."""
    if isinstance(selection, ast.Call) and ast.unparse(selection.func) == "dict":
        items = {k.arg: k.value for k in selection.keywords if k.arg}
    elif isinstance(selection, ast.Dict):
        items = {k.value: v for k, v in zip(selection.keys, selection.values)
                 if isinstance(k, ast.Constant) and isinstance(k.value, str)}
    else:
        return {}
    kind = items.get("type")
    return items if isinstance(kind, ast.Constant) and kind.value == "sky_circle" else {}


def use_the_cone(text: str, cone: Cone | None) -> tuple[str, list[str]]:
    """A cone selection of the observations whose radius or centre is a constant other than the request's (the
    ON region's radius reused, a tutorial's Crab cone of 5 deg copied) selects the request's cone instead, at
    that use only: the same variable may still mean something else elsewhere."""
    if cone is None:
        return text, []
    tree = ast.parse(text)
    bound = bindings(tree)
    edits: list[Edit] = []
    notes = []
    for node, wanted, what in _cone_values(tree, bound, cone):
        read = _degrees(node, bound)
        if read is None or math.isclose(read[0], wanted, rel_tol=1e-9):
            continue
        new = number_text(wanted) if read[1] else f"{number_text(wanted)} * u.deg"
        edits.append((node, new))
        notes.append(f"line {node.lineno}: selected the observations with the cone's {what} your request gives, "
                     f"{wanted:g} deg, not {read[0]:g} deg (`{ast.unparse(node)}` there is now `{new}`)")
    if not edits:
        return text, []
    return splice(text, edits), notes


def cone_as_gammapy_takes_it(text: str, cone: Cone | None) -> tuple[str, list[str]]:
    """`obs_table.select_observations(ra_pnt=..., dec_pnt=..., radius_deg=...)`: the method takes one selection
    dict, and for a request about one cone the keywords it was given can only mean that cone's dict."""
    if cone is None:
        return text, []
    tree = ast.parse(text)
    ra, dec, radius = cone
    wanted = (f'dict(type="sky_circle", frame="icrs", lon={number_text(ra)} * u.deg, lat={number_text(dec)} * u.deg, '
              f'radius={number_text(radius)} * u.deg)')
    calls = [node for node in ast.walk(tree)
             if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
             and node.func.attr == "select_observations" and not node.args
             and node.keywords and all(k.arg not in (None, "selections") for k in node.keywords)]
    if not calls:
        return text, []
    edits: list[Edit] = [(call, f"{ast.unparse(call.func)}({wanted})") for call in calls]
    return splice(text, edits), [f"line {call.lineno}: `select_observations` takes one selection dict, not keywords: "
                                 f"it now selects your request's cone, `{ast.unparse(call.func)}({wanted})`"
                                 for call in calls]


def use_the_circle_radius(text: str, circle: tuple[float, str] | None) -> tuple[str, list[str]]:
    """The script's one `CircleSkyRegion`, for a request that describes one circle around the source
    (`request_facts.request_circle`), drawn with a constant radius other than the request's (the cone's 2 deg
    reused): that use takes the request's radius."""
    if circle is None:
        return text, []
    tree = ast.parse(text)
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)
             and ast.unparse(n.func).split(".")[-1] == "CircleSkyRegion"]
    if len(calls) != 1:
        return text, []
    call = calls[0]
    node = call.args[1] if len(call.args) > 1 else next((k.value for k in call.keywords if k.arg == "radius"), None)
    read = _degrees(node, bindings(tree)) if node is not None else None
    radius, unit = circle
    wanted = radius / 60 if unit == "arcmin" else radius
    if node is None or read is None or read[1] or math.isclose(read[0], wanted, rel_tol=1e-9):
        return text, []
    new = f"{number_text(radius)} * u.{unit}"
    return splice(text, [(node, new)]), [f"line {node.lineno}: drew the circle with the radius your request gives, "
                                         f"{radius:g} {unit}, not {read[0]:g} deg (`{ast.unparse(node)}` there is "
                                         f"now `{new}`)"]


PLACEHOLDERS = frozenset(n for name in (IDIOM_RA, IDIOM_DEC, IDIOM_RADIUS) for n in (name, name.lower()))


def whole_index_without_a_position(text: str, definitions: dict[str, str]) -> tuple[str, list[str]]:
    """The rules' selection idiom pasted with its placeholders (`SkyCoord(ra_deg, dec_deg, ...)`, `< radius_deg *
    u.deg`) for a request that gives no position and no radius ("which run of the release recorded the most
    events", f44: two turns of undefined `ra_deg`): there is no cone to select, so the selection is the whole
    index (`selected = table`) and the placeholder position goes. Left alone when the request fixes them (the
    definitions repair writes them) or the position is used elsewhere."""
    tree = ast.parse(text)
    missing = set(undefined_names(tree)) & PLACEHOLDERS
    if not missing or missing & set(definitions):
        return text, []
    positions = [s for s in tree.body if isinstance(s, ast.Assign) and len(s.targets) == 1
                 and isinstance(s.targets[0], ast.Name) and isinstance(s.value, ast.Call)
                 and _names_in(s.value) & missing]
    position_names = {s.targets[0].id for s in positions if isinstance(s.targets[0], ast.Name)}
    cuts = [s for s in tree.body if isinstance(s, ast.Assign) and len(s.targets) == 1
            and isinstance(s.value, ast.Subscript) and isinstance(s.value.value, ast.Name)
            and _names_in(s.value.slice) & (missing | position_names)]
    dropped = positions
    uses_left = {n.id for stmt in tree.body if stmt not in cuts and stmt not in dropped
                 for n in ast.walk(stmt) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    if not cuts or (position_names | missing) & uses_left:
        return text, []
    edits: list[Edit] = [(c.value, c.value.value.id) for c in cuts if isinstance(c.value, ast.Subscript)
                         and isinstance(c.value.value, ast.Name)]
    edits += drop_statements(tree, dropped)
    names = ", ".join(f"`{n}`" for n in sorted(missing))
    return splice(text, edits), [f"the request gives no position or radius, so the selection idiom's placeholders "
                                 f"({names}) select nothing: every observation of the index is used "
                                 f"(`{ast.unparse(c.targets[0])} = {c.value.value.id}`)" for c in cuts
                                 if isinstance(c.value, ast.Subscript) and isinstance(c.value.value, ast.Name)]


def _number(node: ast.expr) -> float | None:
    """`83.63`, `-22.01`, or a number times a unit (`83.63 * u.deg`)."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
        node = node.left
    sign = 1.0
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        sign, node = -1.0, node.operand
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return sign * float(node.value)
    return None


def written_position(node: ast.expr, bound: dict[str, list[ast.expr]]) -> list[float] | None:
    """The numbers of a sky position written as numbers (`SkyCoord(83.63, 22.01, unit="deg")`, `SkyCoord(ra=83.63
    * u.deg, dec=...)`), or of a name assigned once from one; None for anything else."""
    node = assigned_once(node, bound)
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "SkyCoord"):
        return None
    values = [*node.args, *(k.value for k in node.keywords if k.arg in ("ra", "dec", "l", "b", "lon", "lat"))]
    numbers = [_number(v) for v in values]
    return [n for n in numbers if n is not None] if len(values) >= 2 and None not in numbers else None


def whole_index_for_an_invented_position(text: str, positioned: bool,
                                         numbers: frozenset[float] | None) -> tuple[str, list[str]]:
    """A request that gives no position and no radius ("the median muon efficiency over all runs"), answered with a
    cut at a separation from a position whose numbers the request never writes (the 1.5B, an unseen question:
    `SkyCoord(0.1, 0.2, unit="deg")` within 0.5 deg, which selects nothing, and a NaN median): the position is
    invented, so the cut is dropped and the selection is the whole table (`selected = table`). `numbers`: those the
    request writes (None: the request is not known, and nothing is changed)."""
    if positioned or numbers is None:
        return text, []
    tree = ast.parse(text)
    bound = bindings(tree)
    edits: list[Edit] = []
    notes: list[str] = []
    for stmt in tree.body:
        if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)
                and isinstance(stmt.value, ast.Subscript) and isinstance(stmt.value.value, ast.Name)):
            continue
        written = [w for call in ast.walk(stmt.value.slice) if isinstance(call, ast.Call)
                   and isinstance(call.func, ast.Attribute) and call.func.attr == "separation"
                   for node in (call.func.value, *call.args) if (w := written_position(node, bound)) is not None]
        if not written or any(abs(v) in numbers for w in written for v in w):
            continue
        table = stmt.value.value.id
        edits.append((stmt.value, table))
        notes.append(f"line {stmt.lineno}: the request gives no position and no radius, so the cone around "
                     f"({', '.join(f'{v:g}' for v in written[0])}) is invented (it selects nothing the request asks "
                     f"about): every row is used, `{stmt.targets[0].id} = {table}`")
    return (splice(text, edits), notes) if edits else (text, [])
