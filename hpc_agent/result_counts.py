"""What a RESULT count counts: a count named for events must not be the length of a list of observations.

Small models answer "how many events in total were recorded in the observations near X" with
`len(selected)`, the number of rows of the observation index (seen: 4 for 30129 events, passing every
other check). The key says what is counted, the length's argument says what it counts; when they are
different things the script is wrong on every data set, so the static stage says so before a run, with both
ways events are counted.
"""

from __future__ import annotations

import ast
import re

from hpc_agent.bindings import assigned_once, bindings, result_dicts

# A key that counts events: `n_events`, `num_events`, `event_count`, `total_events`, `events`.
_EVENTS_KEY = re.compile(r"^(?:(?:n|num|number|nb|count|total|sum)_?(?:of_)?)?events?(?:_(?:count|number|total|n))?$",
                         re.IGNORECASE)
_OBS_METHODS = ("get_observations", "select_observations", "select_obs_id", "select_time_range", "select_range")


def _observation_list(node: ast.expr, bound: dict[str, list[ast.expr]], depth: int = 0) -> bool:
    """`node` is one item per observation: rows of the observation index (`data_store.obs_table`, a subscript
    of it by a mask, a `select_*` of it), its `OBS_ID` column, or what `get_observations` returns."""
    node = assigned_once(node, bound)
    if depth > 6:
        return False
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("list", "set", "tuple") \
            and len(node.args) == 1:
        return _observation_list(node.args[0], bound, depth + 1)
    if isinstance(node, ast.Attribute):
        return node.attr == "obs_table"
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        return node.func.attr in _OBS_METHODS
    if isinstance(node, ast.Subscript):
        column = node.slice.value if isinstance(node.slice, ast.Constant) else None
        if isinstance(column, str) and column != "OBS_ID":
            return False  # a column of per-observation values is no list of observations to count
        return _observation_list(node.value, bound, depth + 1)
    return False


def _counted(node: ast.expr, bound: dict[str, list[ast.expr]]) -> ast.expr | None:
    """The argument of the `len(...)` a RESULT value is (through `int(...)` and a name assigned once)."""
    node = assigned_once(node, bound)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        if node.func.id in ("int", "float") and len(node.args) == 1:
            return _counted(node.args[0], bound)
        if node.func.id == "len" and len(node.args) == 1:
            return node.args[0]
    return None


def events_counted_as_observations(tree: ast.Module) -> list[str]:
    """One error per RESULT key that names a count of events and holds the number of observations."""
    bound = bindings(tree)
    errors = []
    for result in result_dicts(tree):
        for key, value in zip(result.keys, result.values):
            if not (isinstance(key, ast.Constant) and isinstance(key.value, str) and _EVENTS_KEY.match(key.value)):
                continue
            counted = _counted(value, bound)
            if counted is not None and _observation_list(counted, bound):
                errors.append(
                    f"line {value.lineno}: `{key.value}` is `len({ast.unparse(counted)})`, the number of "
                    "observations, not of events; the observation index holds each observation's events as the "
                    "column `EVENT_COUNT` (`int(selected[\"EVENT_COUNT\"].sum())` over the selected rows), and each "
                    "loaded observation has them as `len(observation.events.table)`")
    return errors
