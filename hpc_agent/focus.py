"""Keep what worked: a new answer's changes taken only where the best script so far failed.

A small model asked to fix one line rewrites the whole script, and often breaks what already worked (a
reduction that ran becomes a script rejected for three new slips). When a turn's answer gets less far than
the best script so far, `focused_merge` builds a third script: the best one, with the answer's changes
accepted only in the statements its failure named (and the answer's added lines wherever they are). The
loop checks and runs it like any answer and keeps whichever got further.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Sequence
from difflib import SequenceMatcher

from hpc_agent import checks
from hpc_agent.checks import undefined_names
from hpc_agent.prompts import ERROR_LINE, SCRIPT_FRAME, traceback_tail
from hpc_agent.records import Attempt

# How far a failed attempt got: a script that ran beats one rejected before running, and so on.
PROGRESS: dict[str, int] = {"context": 0, "no_code": 0, "static": 1, "timeout": 2, "resource": 2, "runtime": 3,
                            "validation": 4, "none": 5}


def progress(attempt: Attempt) -> tuple[int, int, float]:
    """Orders attempts by how far they got: failure class, then fewer static errors, then (for a run that
    raised) how far down the script it got."""
    reached = 0.0
    lines = failure_lines(attempt)
    if attempt.failure == "runtime" and lines and attempt.script:
        reached = max(lines) / max(1, len(attempt.script.splitlines()))
    return PROGRESS[attempt.failure], -len(attempt.static_errors), reached


def drifted(attempt: Attempt, best: Attempt | None) -> bool:
    """The answer no longer does what was asked (it prints no RESULT, or selects nothing by position) although
    an earlier one got further: the feedback has led the model off the request (seen with the 0.5B, which
    then answered other questions for the rest of its turns), so the next turn starts from the request again."""
    if best is None or best is attempt or progress(attempt) >= progress(best):
        return False
    return any(e.startswith((checks.NO_RESULT, checks.NO_SELECTION)) for e in attempt.static_errors)


def failure_lines(attempt: Attempt) -> set[int] | None:
    """The script lines its failure names: static errors' lines, or where the run's traceback left the
    script. None when the failure names none (a broken rule, a wrong value): then nothing is pinned."""
    if attempt.static_errors:
        found = {int(m.group(1)) for e in attempt.static_errors if (m := ERROR_LINE.match(e))}
        return found if len(found) == len(attempt.static_errors) else None
    execution = attempt.execution
    if attempt.failure == "runtime" and execution is not None:
        frames = SCRIPT_FRAME.findall(traceback_tail(execution.stderr, 200))
        return {int(frames[-1])} if frames else None
    return None


def _statement_spans(tree: ast.Module, lines: set[int]) -> set[int]:
    """Every line of the innermost statements holding the given lines (a call spread over lines is one)."""
    spans: set[int] = set()
    for line in lines:
        best: ast.stmt | None = None
        for node in ast.walk(tree):
            if isinstance(node, ast.stmt) and node.lineno <= line <= (node.end_lineno or node.lineno):
                if best is None or (node.end_lineno or 0) - node.lineno <= (best.end_lineno or 0) - best.lineno:
                    best = node
        spans |= set(range(best.lineno, (best.end_lineno or best.lineno) + 1)) if best else {line}
    return spans


def _stored_by_line(tree: ast.Module) -> dict[int, set[str]]:
    """Per line: the names statements starting there assign (imports included)."""
    stored: dict[int, set[str]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            stored.setdefault(node.lineno, set()).add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                stored.setdefault(node.lineno, set()).add((alias.asname or alias.name).split(".")[0])
    return stored


def _key(line: str) -> str:
    return re.sub(r"\s+", "", line)


def focused_merge(base: str, lines: set[int], answer: str) -> str | None:
    """`base` with `answer`'s changes kept only in the statements holding `lines` (1-based lines of `base`),
    plus the lines `answer` adds anywhere. None when the answer left those statements as they were, when
    the result is just one of the two scripts, or when it does not parse."""
    try:
        pinned = _statement_spans(ast.parse(base), lines)
        ast.parse(answer)
    except SyntaxError:
        return None
    old, new = base.splitlines(keepends=True), answer.splitlines(keepends=True)
    matcher = SequenceMatcher(None, [_key(x) for x in old], [_key(x) for x in new], autojunk=False)
    chunks = matcher.get_opcodes()
    taken = {k for k, (tag, i1, i2, _, _) in enumerate(chunks) if tag != "equal" and (
        any(i1 + 1 <= n <= i2 for n in pinned) or (tag == "insert" and i1 in pinned))}
    if not taken:  # the answer left the failing statements as they were: there is no fix to take
        return None
    # A fix may need a name the answer assigns elsewhere (`geom` for `create(geom=geom)`), or one whose base
    # assignment the taken lines replaced: take the answer's lines that assign it too, until nothing is missing.
    # "Missing" is pyflakes' reading, which knows order: a list the taken loop appends to must exist before it.
    stored = _stored_by_line(ast.parse(answer))
    for _ in range(len(chunks)):
        missing = _undefined(_assemble(chunks, taken, old, new)) - _undefined(base)
        more = {k for k, c in enumerate(chunks) if c[0] != "equal" and k not in taken
                and missing & set().union(*(stored.get(n + 1, set()) for n in range(c[3], c[4])))}
        if not more:
            break
        taken |= more
    merged = _assemble(chunks, taken, old, new)
    if _key(merged) in (_key(base), _key(answer)):
        return None
    try:
        ast.parse(merged)
    except SyntaxError:
        return None
    # A merge that leaves a name undefined the best script had is worse than either script: offer none.
    return None if _undefined(merged) - _undefined(base) else merged


def _assemble(chunks: Sequence[tuple[str, int, int, int, int]], taken: set[int], old: list[str], new: list[str]) -> str:
    out: list[str] = []
    for k, (tag, i1, i2, j1, j2) in enumerate(chunks):
        out += new[j1:j2] if tag == "insert" or k in taken else old[i1:i2]
    return "".join(out)


def _undefined(script: str) -> set[str]:
    """The names pyflakes finds used where nothing defines them (the empty set when the script does not parse)."""
    try:
        tree = ast.parse(script)
    except SyntaxError:
        return set()
    return set(undefined_names(tree))
