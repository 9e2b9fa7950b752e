"""A whole tutorial script cut to what a request asks for, before a model sees it.

A tutorial goes on after the part a request needs (the light-curve tutorial rebins its light curve with
`get_rebinned_axis`; the extended-source one fits a model after the reduction), and takes detours through
API the request never names (a `Fit` whose result nothing uses). A small model copies all of it, and what
it copies beyond the request fails or computes something else. `for_request` keeps the statements up to
the last one that uses a Gammapy name the request names, in any case (or a variable such a statement made), and drops
assignments that nothing needs, made by Gammapy names the request does not name or from what those made
(a `Fit` whose result is never read; `datasets.models = [model]` for a request that fits no model).
"""

from __future__ import annotations

import ast
import re

FENCE = re.compile(r"^(?P<head>.*?```python\n)(?P<code>.*)(?P<tail>\n```\s*)$", re.DOTALL)


def _loads(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def _stores(node: ast.stmt) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}


def _bound(node: ast.Import | ast.ImportFrom) -> set[str]:
    return {(a.asname or a.name).split(".")[0] for a in node.names}


def _head(stmt: ast.stmt) -> str | None:
    """Who acts in `x = fit.run(...)` / `Fit()`: the root name of the call a statement makes."""
    value = getattr(stmt, "value", None)
    node = value.func if isinstance(value, ast.Call) else None
    while isinstance(node, (ast.Attribute, ast.Call)):
        node = node.value if isinstance(node, ast.Attribute) else node.func
    return node.id if isinstance(node, ast.Name) else None


def trim_code(code: str, request: str) -> str:
    """`code` (a tutorial's condensed script) without what follows the request's part, and without dead
    detours through Gammapy names the request does not name. Unchanged when it cannot tell."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return code
    words = {w.lower() for w in re.findall(r"[A-Za-z_]\w*", request)}  # "fit the spectrum" names `Fit`
    imports = [s for s in tree.body if isinstance(s, (ast.Import, ast.ImportFrom))]
    library = set().union(*(_bound(s) for s in imports if isinstance(s, ast.ImportFrom)
                            and (s.module or "").split(".")[0] == "gammapy")) if imports else set()
    named = {n for n in library if n.lower() in words}
    unnamed = library - named
    body = [s for s in tree.body if s not in imports]
    if not named:
        return code
    made: set[str] = set()  # variables made by a statement that uses a named Gammapy name
    last = -1
    for i, stmt in enumerate(body):
        loads = _loads(stmt)
        if loads & named:
            made |= _stores(stmt)
            last = i
        elif loads & made:
            last = i
    kept = body[:last + 1]
    detour: set[str] = set()  # variables made by API the request does not name (`fit = Fit()`)
    for stmt in kept:
        if _head(stmt) in unnamed | detour:
            detour |= _stores(stmt)
    def dead(i: int, stmt: ast.stmt) -> bool:
        if not isinstance(stmt, ast.Assign):
            return False
        if all(isinstance(t, ast.Name) for t in stmt.targets):  # `result = fit.run(...)`, never read after
            return _head(stmt) in unnamed | detour and not _stores(stmt) & set().union(
                *(_loads(x) for x in kept[i + 1:]))
        return bool(_loads(stmt.value)) and _loads(stmt.value) <= unnamed | detour  # `datasets.models = [model]`

    while True:  # an assignment of such API's that nothing needs goes; then what only it used may go too
        found = next((s for i, s in enumerate(kept) if dead(i, s)), None)
        if found is None:
            break
        kept.remove(found)
    if len(kept) == len(body):
        return code
    used = set().union(*(_loads(s) for s in kept)) if kept else set()
    lines = [ast.get_source_segment(code, s) or ast.unparse(s) for s in imports if _bound(s) & used]
    return "\n".join(lines) + "\n\n" + "\n".join(ast.get_source_segment(code, s) or ast.unparse(s) for s in kept)


def for_request(text: str, request: str) -> str:
    """A stored whole-script text (a heading, then the code in a ```python fence) trimmed for `request`."""
    m = FENCE.match(text)
    if m is None:
        return text
    return m.group("head") + trim_code(m.group("code"), request) + m.group("tail")
