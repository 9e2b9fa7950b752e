"""The static stage: repairs, API grounding and the rules, applied to an answer before any sandbox run.

`static_stage` turns the model's script into what may run (the answer after deterministic repairs) and
the reasons it may not (grounding findings, rule violations). It never runs the script.
"""

from __future__ import annotations

import ast
import threading
import time
from dataclasses import dataclass, replace

from hpc_agent import checks
from hpc_agent.grounding import Rename, ground, invented_name
from hpc_agent.names import name_index
from hpc_agent.repair import repair
from hpc_agent.request_facts import RequestFacts
from hpc_agent.tutorial_definitions import tutorial_definitions, tutorial_made_from_names


@dataclass(frozen=True)
class StaticResult:
    script: str  # what may run: the answer after repairs
    repairs: tuple[str, ...]  # one line per change made to the answer
    errors: tuple[str, ...]  # why it may not run (empty: it may)
    seconds: float

    @property
    def ok(self) -> bool:
        return not self.errors


_PREPARED = threading.Event()
_PREPARING = threading.Lock()


def prepare() -> None:
    """Build what the static stage reads, once per process: the name index (seconds of Gammapy imports) and
    the tutorials' definitions. A sweep starts this in a thread beside its first model requests, so no cell
    waits for it unless its answer arrives first; concurrent callers wait for one build, never start their own."""
    if _PREPARED.is_set():
        return
    with _PREPARING:
        if not _PREPARED.is_set():
            name_index()
            tutorial_definitions()
            tutorial_made_from_names()
            _PREPARED.set()


def static_stage(answer: str, *, repairs: bool = True, require_result: bool = True,
                 facts: RequestFacts = RequestFacts()) -> StaticResult:
    """Repair (when on), then ground every import and attribute chain, then apply the rules. `facts`: what the
    request fixes (`request_facts.read_request`); its cone radius alone makes a script that selects nothing
    wrong, and the rest guides the repairs."""
    t0 = time.perf_counter()
    prepare()
    index = name_index()
    script = answer
    done: tuple[str, ...] = ()
    if repairs:
        fixed = repair(answer, index, facts)
        script, done = fixed.script, fixed.repairs
    def rules(text: str) -> list[str]:
        return checks.static_errors(text, require_result=require_result, cone_radius=facts.cone_radius,
                                    tables_only=facts.tables_only, undefined_reason=lambda n: invented_name(n, index))

    errors = rules(script)
    if not any(e.startswith("SyntaxError") for e in errors):
        findings = ground(ast.parse(script), index)
        renames = [f.rename for f in findings if f.rename is not None]
        renamed = _renamed(script, renames) if repairs and renames else None
        if renamed is not None:  # a misspelt attribute with one reading: renamed, then grounded again
            script = renamed
            done = (*done, *(r.note or f"renamed `{r.old}` to `{r.new}` on line {r.line} (the only name it can mean)"
                             for r in renames))
            errors = rules(script)
            findings = ground(ast.parse(script), index)
        errors = list(dict.fromkeys([str(f) for f in findings] + errors))
    # a table question answered by an analysis: that comes first, the analysis API's own findings are moot
    errors = sorted(errors, key=lambda e: not e.startswith(checks.TABLES_ONLY))
    return StaticResult(script, tuple(done), tuple(errors), time.perf_counter() - t0)


def _renamed(script: str, renames: list[Rename]) -> str | None:
    """The script with `renames` applied, when it still parses. A new text quoted one way may land inside an
    f-string quoted the same way (before Python 3.12 a syntax error): it is tried with its quotes swapped,
    else the renames are not made (the findings still name the fix)."""
    swap = str.maketrans({'"': "'", "'": '"'})
    for attempt in (renames, [replace(r, new=r.new.translate(swap)) for r in renames]):
        out = apply_renames(script, attempt)
        try:
            ast.parse(out)
        except (SyntaxError, ValueError):
            continue
        return out
    return None


def apply_renames(script: str, renames: list[Rename]) -> str:
    """Each attribute name replaced where it ends (or, `old` empty, `new` inserted there), right to left on a
    line so earlier columns hold."""
    rows = script.splitlines(keepends=True)
    for r in sorted(set(renames), key=lambda r: (r.line, r.end_col), reverse=True):
        raw = rows[r.line - 1].encode()
        start = r.end_col - len(r.old.encode())
        if raw[start:r.end_col].decode(errors="replace") == r.old:
            rows[r.line - 1] = (raw[:start] + r.new.encode() + raw[r.end_col:]).decode()
    return "".join(rows)
