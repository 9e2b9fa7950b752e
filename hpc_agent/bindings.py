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


def result_dicts(tree: ast.Module) -> list[ast.Dict]:
    """Dict literals that reach `json.dumps`: written in the call, or assigned once to the name it dumps."""
    assigned = {n.targets[0].id: n.value for n in tree.body if isinstance(n, ast.Assign) and len(n.targets) == 1
                and isinstance(n.targets[0], ast.Name) and isinstance(n.value, ast.Dict)}
    found = []
    for call in ast.walk(tree):
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr == "dumps" \
                and call.args:
            arg = call.args[0]
            target = arg if isinstance(arg, ast.Dict) else assigned.get(arg.id) if isinstance(arg, ast.Name) else None
            if target is not None:
                found.append(target)
    return found


def module_assignments(tree: ast.Module) -> dict[str, int]:
    """name -> end line of its first module-level assignment."""
    found: dict[str, int] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign):
            for t in node.targets:
                if isinstance(t, ast.Name):
                    found.setdefault(t.id, node.end_lineno or node.lineno)
    return found


def stored_names(tree: ast.AST) -> set[str]:
    """Every name the script assigns, in any form (tuple targets, loops, `with ... as`)."""
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
