"""What a script's names stand for, read from its assignments alone (never by running it).

One reading shared by every repair and check that follows a name to its value: `bindings` lists each value
assigned to a name, and a name assigned exactly once stands for that value (`assigned_once`); a name assigned
twice or more has no single value and is left as it is.
"""

from __future__ import annotations

import ast


def bindings(tree: ast.AST) -> dict[str, list[ast.expr]]:
    """name -> every value assigned to it (plain `name = value` statements, anywhere; a chained `a = b = v`
    binds each name)."""
    bound: dict[str, list[ast.expr]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            for t in node.targets:
                if isinstance(t, ast.Name):
                    bound.setdefault(t.id, []).append(node.value)
    return bound


def assigned_once(node: ast.expr, bound: dict[str, list[ast.expr]]) -> ast.expr:
    """The value a name assigned exactly once stands for (`bound` from `bindings`); any other node as it is."""
    if isinstance(node, ast.Name) and len(bound.get(node.id, [])) == 1:
        return bound[node.id][0]
    return node
