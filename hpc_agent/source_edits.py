"""Edits of a script's source text at AST positions: replace a node's exact span, drop statements, add imports.

Shared by the repairs before and after a run; AST columns count UTF-8 bytes, string offsets characters.
"""

from __future__ import annotations

import ast
from typing import Sequence

def _offsets(text: str) -> list[int]:
    starts, pos = [0], 0
    for line in text.splitlines(keepends=True):
        pos += len(line)
        starts.append(pos)
    return starts


Edit = tuple[ast.stmt | ast.expr, str]  # a node with a source span, and its new text


def splice(text: str, edits: Sequence[Edit]) -> str:
    """Replace each node's exact source span (bottom-up, so earlier spans keep their offsets)."""
    starts = _offsets(text)

    def span(node: ast.stmt | ast.expr) -> tuple[int, int]:
        end = node.end_lineno
        assert end is not None  # set on every node ast.parse makes
        return (starts[node.lineno - 1] + _col(text, starts, node.lineno, node.col_offset),
                starts[end - 1] + _col(text, starts, end, node.end_col_offset))

    for node, new in sorted(edits, key=lambda e: span(e[0]), reverse=True):
        a, b = span(node)
        text = text[:a] + new + text[b:]
    return text


def _col(text: str, starts: list[int], lineno: int, col: int | None) -> int:
    """AST columns count UTF-8 bytes; string offsets count characters."""
    line = text[starts[lineno - 1]:starts[lineno] if lineno < len(starts) else len(text)]
    return len(line.encode()[:col or 0].decode(errors="ignore"))


def drop_statements(tree: ast.Module, statements: Sequence[ast.stmt]) -> list[Edit]:
    """Edits removing `statements`: an empty line, or `pass` where the block would be left empty."""
    doomed = {id(s) for s in statements}
    edits: list[Edit] = []
    for parent in ast.walk(tree):
        for name in ("body", "orelse", "finalbody"):
            block = getattr(parent, name, None)
            if not isinstance(block, list) or not block or not isinstance(block[0], ast.stmt):
                continue
            gone = [s for s in block if id(s) in doomed]
            for i, stmt in enumerate(gone):
                edits.append((stmt, "pass" if len(gone) == len(block) and i == 0 else ""))
    return edits


def insertion_line(tree: ast.Module) -> int:
    """After the module docstring and `from __future__` imports (0-based line index)."""
    line = 0
    for node in tree.body:
        is_doc = isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
        if (is_doc and line == 0) or (isinstance(node, ast.ImportFrom) and node.module == "__future__"):
            line = node.end_lineno or line
        else:
            break
    return line


def add_imports(text: str, lines: list[str]) -> str:
    tree = ast.parse(text)
    at = insertion_line(tree)
    rows = text.splitlines(keepends=True)
    block = "".join(f"{line}\n" for line in lines)
    return "".join(rows[:at]) + block + "".join(rows[at:])


def source_of(text: str, node: ast.AST | str) -> str:
    """The source text of `node` as written (unparsed where the text has none); a string is itself."""
    return node if isinstance(node, str) else (ast.get_source_segment(text, node) or ast.unparse(node))
