"""Repairs of the RESULT line: the one line a run is judged by, printed as `print("RESULT " + json.dumps({...}))`.

Small models know the contract and still print it wrong: placeholders left as text, braces of their own around
the JSON, a label between `RESULT` and the JSON, numpy numbers json refuses, or no line at all although every
value was computed. Each repair here has one reading and records what it changed.
"""

from __future__ import annotations

import ast
import re

from hpc_agent.bindings import module_assignments, result_dicts
from hpc_agent.names import NameIndex
from hpc_agent.source_edits import Edit, source_of, splice


PLAIN_NUMBERS = "lambda o: o.tolist()"  # numpy scalars and arrays -> Python numbers and lists; a Quantity refuses


def _is_json_dumps(func: ast.expr, json_names: set[str], dumps_names: set[str]) -> bool:
    if isinstance(func, ast.Attribute) and func.attr == "dumps" and isinstance(func.value, ast.Name):
        return func.value.id in json_names
    return isinstance(func, ast.Name) and func.id in dumps_names


def json_numpy_numbers(text: str, _: NameIndex | None) -> tuple[str, list[str]]:
    """`json.dumps` without `default=`, after a run failed on a numpy number: numpy numbers (what table
    columns and sums give) can only mean their Python value, so `default=lambda o: o.tolist()` is passed.
    A Quantity still fails (its unit must be chosen), as does anything else json cannot write."""
    tree = ast.parse(text)
    json_names = {a.asname or a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names
                  if a.name == "json"}
    dumps_names = {a.asname or a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module == "json"
                   for a in n.names if a.name == "dumps"}
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and _is_json_dumps(n.func, json_names, dumps_names)
             and n.args and not any(k.arg in ("default", "cls", None) for k in n.keywords)]
    if not calls:
        return text, []
    edits = []
    for call in calls:
        src = ast.get_source_segment(text, call) or ""
        if not src.endswith(")"):
            continue
        edits.append((call, src[:-1].rstrip().rstrip(",") + f", default={PLAIN_NUMBERS})"))
    lines = sorted({c.lineno for c, _ in edits})
    return (splice(text, edits), [f"`json.dumps` (line {', '.join(map(str, lines))}) writes numpy numbers as plain "
                                   f"numbers: added `default={PLAIN_NUMBERS}`"]) if edits else (text, [])


_PLACEHOLDER = re.compile(r"""(?:["']?(\w+)["']?\s*[:=]\s*)?\{(\w+)\}""")


def format_result_placeholders(text: str, _: NameIndex) -> tuple[str, list[str]]:
    """`print("RESULT n_obs: {n_obs}")`, a plain string (the `f` forgotten) whose `{name}` placeholders are
    all variables the script assigns: it prints `json.dumps` of those values, each under the label written
    before it (`n_obs:`, `"n_obs":`, `n_obs=`) or else its variable's name."""
    tree = ast.parse(text)
    assigned = {t.id for n in ast.walk(tree) if isinstance(n, (ast.Assign, ast.AugAssign, ast.AnnAssign))
                for t in ([*n.targets] if isinstance(n, ast.Assign) else [n.target]) if isinstance(t, ast.Name)}
    edits, notes = [], []
    for call in ast.walk(tree):
        if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "print"
                and len(call.args) == 1 and isinstance(call.args[0], ast.Constant)
                and isinstance(call.args[0].value, str) and call.args[0].value.lstrip().startswith("RESULT")):
            continue
        found = _PLACEHOLDER.findall(call.args[0].value)
        if not found or any(name not in assigned for _, name in found):
            continue
        body = ", ".join(f'"{label or name}": {name}' for label, name in found)
        new = f'print("RESULT " + json.dumps({{{body}}}, default=float))'
        edits.append((call, new))
        notes.append(f"the RESULT line `{ast.unparse(call)}` printed its placeholders as text: it now prints `{new}`")
    return (splice(text, edits), notes) if edits else (text, [])  # `import json`: add_missing_imports, later


def unwrap_nested_result_keys(text: str, _: NameIndex) -> tuple[str, list[str]]:
    """`json.dumps({"n_obs": {"n_obs": n}})`: a RESULT value that is a dict of that one key again (how small
    models echo `RESULT {"n_obs": <int>}`) is its inner value."""
    tree = ast.parse(text)
    edits, notes = [], []
    for d in result_dicts(tree):
        for key, value in zip(d.keys, d.values):
            if isinstance(key, ast.Constant) and isinstance(value, ast.Dict) and len(value.keys) == 1 \
                    and isinstance(value.keys[0], ast.Constant) and value.keys[0].value == key.value:
                inner = source_of(text, value.values[0])
                edits.append((value, inner))
                name = str(key.value)  # the text `{key.value}` gives, bytes included (mypy: str-bytes-safe)
                notes.append(f"the RESULT value of `{name}` was a dict of `{name}` again: it is now `{inner}`")
    return (splice(text, edits), notes) if edits else (text, [])


def braces_around_json(text: str, _: NameIndex) -> tuple[str, list[str]]:
    """`print("RESULT {" + json.dumps({...}) + "}")`: json.dumps writes the object's braces itself, so the
    extra pair prints `{{...}}`, which is no JSON object (the 0.5B, three tasks)."""
    tree = ast.parse(text)
    edits: list[Edit] = []
    for call in ast.walk(tree):
        if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "print"
                and len(call.args) == 1 and isinstance(call.args[0], ast.BinOp)):
            continue
        outer = call.args[0]
        if not (isinstance(outer.op, ast.Add) and isinstance(outer.left, ast.BinOp) and isinstance(outer.left.op, ast.Add)):
            continue
        head, dumps, tail = outer.left.left, outer.left.right, outer.right
        if isinstance(head, ast.Constant) and isinstance(head.value, str) and head.value.startswith("RESULT") \
                and head.value.rstrip().endswith("{") and isinstance(tail, ast.Constant) and tail.value == "}" \
                and isinstance(dumps, ast.Call) and isinstance(dumps.func, ast.Attribute) and dumps.func.attr == "dumps":
            edits.append((outer, f'"RESULT " + {ast.get_source_segment(text, dumps)}'))
    notes = ["the RESULT line wrapped json.dumps in braces of its own (`{{...}}` is no JSON object): removed them"
             for _ in edits[:1]]
    return (splice(text, edits), notes) if edits else (text, [])


def _dumps_call(node: ast.expr) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "dumps"


def label_before_json(text: str, _: NameIndex) -> tuple[str, list[str]]:
    """`print("RESULT max_energy_tev", json.dumps({...}))` (or `"RESULT n_obs: " + json.dumps(...)`): words between
    `RESULT` and the JSON make the line no JSON object, and the JSON already names its keys: the words go."""
    tree = ast.parse(text)
    edits: list[Edit] = []
    for call in ast.walk(tree):
        if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "print"):
            continue
        args = call.args
        if len(args) == 1 and isinstance(args[0], ast.BinOp) and isinstance(args[0].op, ast.Add):
            head, dumps = args[0].left, args[0].right
        elif len(args) == 2 and not call.keywords:
            head, dumps = args
        else:
            continue
        if isinstance(head, ast.Constant) and isinstance(head.value, str) and head.value.startswith("RESULT") \
                and head.value[len("RESULT"):].strip() and "{" not in head.value and _dumps_call(dumps):
            edits.append((call, f'print("RESULT " + {ast.get_source_segment(text, dumps)})'))
    notes = [f"the RESULT line put words between `RESULT` and its JSON (line {edits[0][0].lineno}), which makes it no "
             "JSON object: printed `\"RESULT \" + json.dumps(...)`"] if edits else []
    return (splice(text, edits), notes) if edits else (text, [])


def add_result_line(text: str, keys: tuple[str, ...]) -> tuple[str, list[str]]:
    """A script that prints no RESULT line but assigns, at module level, a variable named after every key the
    request asks for: the RESULT line is printed from those variables (small models compute the values and
    forget the output contract)."""
    tree = ast.parse(text)
    strings = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
    assigned = module_assignments(tree)
    if not keys or any("RESULT" in v for v in strings) or not all(k in assigned for k in keys):
        return text, []
    body = ", ".join(f'"{k}": {k}' for k in keys)
    line = f'print("RESULT " + json.dumps({{{body}}}, default=float))'
    return text.rstrip("\n") + "\n" + line + "\n", [f"printed the RESULT line from your variables: `{line}`"]
