"""The loop: ask the model, repair and check the script, run it in the sandbox, validate; until it passes.

One turn, top to bottom: the conversation so far -> `generate` (N candidate answers) -> `evaluate` each
(static stage: repairs, grounding, rules; then the sandbox run and validation, concurrently for the
candidates that may run) -> the first that validates wins, else the most advanced failure; when that got no
further than the best script so far, that script with this answer's changes in its failing statements is
tried too (`focus.py`) -> feedback and newly retrieved material become the next user turn.

`run_agent` returns a `RunResult` and writes the bundle as it goes, so an interrupted or broken run
still leaves every finished attempt (and a run.json saying why it stopped) on disk.
"""

from __future__ import annotations

import ast
import logging
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from hpc_agent import prompts
from hpc_agent.bundle import Bundle
from hpc_agent.candidates import generate
from hpc_agent.conversation import Conversation
from hpc_agent.data import contract_env, data_binds, release_columns, release_layout
from hpc_agent.errors import ContextOverflowError
from hpc_agent.focus import drifted, failure_lines, focused_merge, progress
from hpc_agent.llm import ChatModel, ModelAnswer
from hpc_agent.records import (
    Attempt,
    Check,
    ExecResult,
    FailureClass,
    Limits,
    RunResult,
    ServerInfo,
    Usage,
    Validation,
)
from hpc_agent.sandbox import Sandbox
from hpc_agent.sandbox.warm import WarmPool
from hpc_agent.named_columns import columns_context
from hpc_agent.named_observations import observations_context
from hpc_agent.request_facts import (
    missing_call_hints, read_request, request_position, request_radius, returned_key_hints, returned_keys,
)
from hpc_agent.sources import positions_context, without_source_names
from hpc_agent.grounding import column_suggestion, runtime_suggestion
from hpc_agent.names import name_index
from hpc_agent.repair_after_run import repair_after_run
from hpc_agent.static import static_stage
from hpc_agent.table_questions import TABLE_QUESTION, table_question
from hpc_agent.tutorial_definitions import undefined_name_hints, usage_hints
from hpc_agent.validate import Validator, default_validators, validate

if TYPE_CHECKING:
    from hpc_agent.rag import Hit, Retrieval, Retriever

log = logging.getLogger(__name__)


@lru_cache(maxsize=None)
def package_version(name: str) -> str:
    """The installed version of `name` (read once per process: every run records it)."""
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


@dataclass
class RunSpec:
    """What one run needs besides the client and the sandbox."""

    prompt: str
    data_root: Path
    out_dir: Path
    attempts: int = 5
    limits: Limits = field(default_factory=Limits)
    validators: Sequence[Validator] | None = None  # None: exit code 0 + RESULT lines
    require_result: bool = True
    context: str | None = None  # reference material, injected before the request
    seed: int | None = None
    retriever: Retriever | None = None  # RAG: snippets for the prompt, then for each error, injected per turn
    repairs: bool = True  # deterministic repairs before checking (off: the model's script as it came)
    candidates: int = 1  # answers generated per turn
    warm_modules: tuple[str, ...] = ()  # non-empty: each turn's sandboxes start (these imported) during the request

    @property
    def result_keys(self) -> tuple[str, ...]:
        """The RESULT keys the request names."""
        return prompts.requested_keys(self.prompt)


REPEAT_STEP = 0.4  # temperature added each time a model is stuck (repeats a script or a way of failing)
REPEAT_MAX_TEMPERATURE = 1.0
AFTER_RUN_REPAIRS = 3  # runs of one attempt fixed after the fact (each fix is one reading of the error)


# Candidates (and a sweep's cells) are evaluated in threads, but CPython 3.11's `ast` keeps one recursion-depth counter per
# interpreter: two threads building ASTs at once can raise "SystemError: AST constructor recursion depth
# mismatch" (python/cpython#106905). Every AST user here (static stage, after-run repairs, validation, hints,
# fingerprints, rendering retrieved examples) takes turns, milliseconds each; sandbox runs stay side by side.
_AST_LOCK = threading.RLock()


def _fingerprint(script: str) -> str:
    """Equal for scripts that differ only in layout or comments (small models re-send those)."""
    try:
        with _AST_LOCK:
            return ast.dump(ast.parse(script))
    except SyntaxError:
        return "\n".join(line.rstrip() for line in script.strip().splitlines())


def _classify(execution: ExecResult, validation: Validation) -> FailureClass:
    if validation.passed:
        return "none"
    if execution.killed == "timeout":
        return "timeout"
    if execution.killed in ("memory", "output"):
        return "resource"
    if execution.exit_code != 0:
        return "runtime"
    return "validation"


def evaluate(index: int, answer: ModelAnswer, spec: RunSpec, sandbox: Sandbox, workspace: Path) -> Attempt:
    """Static stage, then (when it may run) the sandbox run and validation. Model mistakes are results."""
    if answer.script is None:
        validation = Validation(passed=False, checks=(Check(name="script", passed=False, message="no script in answer"),))
        return Attempt(index=index, script=None, usage=answer.usage, validation=validation, failure="no_code")
    with _AST_LOCK:
        static = static_stage(answer.script, repairs=spec.repairs, require_result=spec.require_result,
                              facts=read_request(spec.prompt, spec.data_root, spec.result_keys))
    common: dict[str, Any] = dict(index=index, script=static.script, usage=answer.usage, repairs=static.repairs,
                  answer=answer.script if static.script != answer.script else None, static_s=static.seconds)
    if not static.ok:
        validation = Validation(passed=False, checks=(Check(name="static", passed=False,
                                                            message="; ".join(static.errors)),))
        return Attempt(**common, static_errors=static.errors, validation=validation, failure="static")
    execution = sandbox.run(static.script, workspace, env=contract_env(spec.data_root), limits=spec.limits,
                            ro_binds=data_binds(spec.data_root))
    for _ in range(AFTER_RUN_REPAIRS):  # an error only a run shows, with one reading: fixed and run again
        with _AST_LOCK:
            fixed = (repair_after_run(common["script"], execution.stderr, name_index(), execution.stdout,
                                      execution.ok, returned_keys(spec.prompt))
                     if spec.repairs and execution.killed is None else None)
        if fixed is None:
            break
        execution = sandbox.run(fixed.script, workspace, env=contract_env(spec.data_root), limits=spec.limits,
                                ro_binds=data_binds(spec.data_root))
        common.update(script=fixed.script, repairs=common["repairs"] + fixed.repairs, answer=answer.script)
    validators = spec.validators if spec.validators is not None else default_validators(spec.require_result)
    t0 = time.monotonic()
    with _AST_LOCK:
        validation = validate(execution, validators, common["script"])
    return Attempt(**common, execution=execution, validation=validation, failure=_classify(execution, validation),
                   exception=prompts.exception_class(execution.stderr) if not execution.ok else None,
                   validation_s=time.monotonic() - t0)


def _overflowed(index: int, exc: ContextOverflowError) -> Attempt:
    check = Check(name="context", passed=False, message=str(exc))
    return Attempt(index=index, script=None, usage=Usage(), validation=Validation(passed=False, checks=(check,)),
                   failure="context", restart=True)


def _best(attempts: list[Attempt]) -> Attempt:
    """The first that validates, else the one that got furthest (the first among equals)."""
    return max(attempts, key=lambda a: (*progress(a), -a.candidate))


def _workspace(bundle: Bundle, index: int, n: int, j: int, create: bool = True) -> Path:
    """Where candidate j (1-based) of a turn of n runs."""
    return bundle.workspace(index, candidate=j if n > 1 else None, create=create)


def prepare_turn(pool: WarmPool, spec: RunSpec, bundle: Bundle, index: int) -> None:
    """Warm sandboxes for the turn's candidates, started before the model is asked (no-op when off)."""
    if pool.enabled:
        n = spec.candidates
        pool.prepare([_workspace(bundle, index, n, j, create=False) for j in range(1, n + 1)],
                     env=contract_env(spec.data_root), limits=spec.limits, ro_binds=data_binds(spec.data_root))


def run_turn(index: int, answers: list[ModelAnswer], spec: RunSpec, sandbox: Sandbox,
             bundle: Bundle) -> tuple[Attempt, list[Attempt]]:
    """Every candidate evaluated (sandbox runs in parallel); returns the chosen one and all of them."""
    n = len(answers)
    if n == 1:
        attempt = evaluate(index, answers[0], spec, sandbox, _workspace(bundle, index, 1, 1))
        return attempt, [attempt]
    with ThreadPoolExecutor(max_workers=n) as pool:
        futures = [pool.submit(evaluate, index, a, spec, sandbox, _workspace(bundle, index, n, j + 1))
                   for j, a in enumerate(answers)]
        found = [f.result().model_copy(update={"candidate": j + 1, "candidates": n}) for j, f in enumerate(futures)]
    chosen = _best(found)
    total = sum((a.usage for a in found), Usage())
    return chosen.model_copy(update={"usage": total}), found


def keep_best(index: int, chosen: Attempt, own: ModelAnswer, best: Attempt | None, spec: RunSpec,
              sandbox: Sandbox, bundle: Bundle) -> tuple[Attempt, ModelAnswer] | None:
    """When a turn's answer got no further than the best script so far: that script with the answer's
    changes only in the statements its failure named, checked and run as one more candidate of the turn."""
    if not spec.repairs or best is None or best.script is None or chosen.script is None \
            or progress(chosen) > progress(best):
        return None
    lines = failure_lines(best)
    with _AST_LOCK:
        merged = focused_merge(best.script, lines, chosen.script) if lines else None
    if merged is None:
        return None
    j = chosen.candidates + 1
    answer = ModelAnswer(script=merged, raw=own.raw, usage=Usage(), finish_reason=own.finish_reason, via="kept")
    found = evaluate(index, answer, spec, sandbox, bundle.workspace(index, candidate=j))
    where = ", ".join(str(n) for n in sorted(lines or ()))
    note = (f"kept attempt {best.index}'s script, taking your changes only where it failed (line {where}) and the "
            f"lines you added: your whole script got less far ({chosen.failure})")
    return found.model_copy(update={"candidate": j, "candidates": chosen.candidates, "answer": own.script,
                                    "repairs": (note, *found.repairs)}), answer


def _hints(attempt: Attempt, request: str = "", data_root: Path | None = None) -> tuple[str, ...]:
    """What the harness can add to a failure: for variables used but never assigned, how Gammapy's
    tutorials make them; for classes on rejected lines, how they call them; for an AttributeError of a run,
    the real names of that class."""
    index = name_index()
    importable = set(index.imports) | set(index.homes)
    with _AST_LOCK:
        undefined = undefined_name_hints(attempt.static_errors, importable, request=request)
        return (undefined + usage_hints(attempt.script, attempt.static_errors, importable)
                + _runtime_hints(attempt, request, data_root) + returned_key_hints(attempt.script, request)
                + missing_call_hints(attempt.script, request))


def _runtime_hints(attempt: Attempt, request: str = "", data_root: Path | None = None) -> tuple[str, ...]:
    """An AttributeError of a run, grounded after the fact: where the request says that value comes from,
    else the real names of that class; a KeyError of a table: the release's columns named like the key."""
    if attempt.execution is None:
        return ()
    if attempt.exception == "KeyError" and data_root is not None:
        found = column_suggestion(attempt.execution.stderr, release_columns(data_root))
    elif attempt.exception == "AttributeError":
        found = runtime_suggestion(attempt.execution.stderr, name_index(), request)
    else:
        return ()
    return (found,) if found else ()


def _error_text(attempt: Attempt) -> str:
    """What went wrong, for the retrieval query: static errors, failed checks, the traceback's tail."""
    parts = list(attempt.static_errors)
    if attempt.execution is not None:
        parts.append(prompts.traceback_tail(attempt.execution.stderr, 40))
    parts += [c.message for c in attempt.validation.checks if not c.passed and c.name not in ("static",)]
    return "\n".join(p for p in parts if p)


def _retrieve(spec: RunSpec, failed: Attempt | None, shown: set[str]) -> Retrieval | None:
    """Snippets for the first turn (from the prompt) or a repair turn (prompt + error); only new ones."""
    if spec.retriever is None:
        return None
    query = without_source_names(spec.prompt, spec.data_root)
    if failed is None and table_question(spec.prompt):
        from hpc_agent.rag import Retrieval  # loaded already: a retriever exists

        return Retrieval(query, (), withheld=TABLE_QUESTION)
    found = (spec.retriever.for_prompt(query) if failed is None
             else spec.retriever.for_error(query, _error_text(failed)))
    fresh = tuple(h for h in found.hits if h.id not in shown and _page(h) not in shown)
    shown.update(h.id for h in fresh)
    shown.update(_page(h) for h in fresh if h.kind == "script")  # a page shown whole: its pieces add nothing
    return replace(found, hits=fresh)


def _page(hit: Hit) -> str:
    return "page:" + hit.symbol.rsplit("#", 1)[0]


def _render(retrieval: Retrieval | None) -> str:
    if retrieval is None or not retrieval.hits:
        return ""
    from hpc_agent.rag import render

    with _AST_LOCK:
        return render(retrieval)


def first_context(spec: RunSpec, retrieval: Retrieval | None) -> str | None:
    """Source positions the prompt names, how the observations it names by id are loaded, where the table
    columns it names are read, the caller's context, and retrieved material: the first turn's."""
    reference = _render(retrieval)
    named = observations_context(spec.prompt, spec.data_root, request_position(spec.prompt, spec.data_root),
                                 request_radius(spec.prompt))
    parts = (positions_context(spec.prompt, spec.data_root), named, columns_context(spec.prompt, spec.data_root),
             spec.context,
             f"{prompts.REFERENCE_HEADER}\n\n{reference}" if reference else "")
    return "\n\n".join(p for p in parts if p) or None


def run_agent(
    spec: RunSpec,
    client: ChatModel,
    sandbox: Sandbox,
    *,
    on_attempt: Callable[[Attempt], None] | None = None,
) -> RunResult:
    """Loop until validation passes or the attempt budget is spent."""
    started = datetime.now(timezone.utc)
    gammapy_version = package_version("gammapy")
    backend = client.backend
    bundle = Bundle(spec.out_dir, secrets=[backend.api_key()] if backend.api_key_env else [])
    attempts: list[Attempt] = []
    server: ServerInfo | None = None
    error: str | None = None
    first_seen: dict[str, int] = {}  # answer fingerprint -> index of the attempt that first returned it
    failed_ways: set[str] = set()  # failure signatures seen so far
    learned: list[str] = []  # lessons of every failed attempt, for a restart
    temperature: float | None = None  # raised when the model is stuck, to get it out of its rut
    shown: set[str] = set()  # snippet ids already in the conversation
    best: Attempt | None = None  # the attempt that got furthest so far
    keys = spec.result_keys
    sandbox = warm = WarmPool(sandbox, spec.warm_modules)  # single-use sandboxes started during each request
    try:
        retrieval = _retrieve(spec, None, shown)
        conversation = Conversation.start(spec.prompt, gammapy_version, first_context(spec, retrieval),
                                          release_layout(spec.data_root))
        server = client.server_info()
        budget = (backend.context_length - (backend.max_tokens or 0) if backend.context_length else None)
        for index in range(1, spec.attempts + 1):
            sent = conversation.snapshot(budget)
            prepare_turn(warm, spec, bundle, index)
            try:
                answers = generate(client, sent, spec.candidates, seed=spec.seed, temperature=temperature)
            except ContextOverflowError as exc:  # a result: recorded, and the next turn starts afresh
                attempt = _overflowed(index, exc)
                bundle.write_attempt(attempt, sent, "")
                attempts.append(attempt)
                if on_attempt is not None:
                    on_attempt(attempt)
                conversation.restart(learned)
                continue
            attempt, candidates = run_turn(index, answers, spec, sandbox, bundle)
            chosen_answer = own_answer = answers[attempt.candidate - 1]
            kept = keep_best(index, attempt, own_answer, best, spec, sandbox, bundle)
            if kept is not None:  # recorded as one more candidate; chosen when it got further
                candidates, answers = [*candidates, kept[0]], [*answers, kept[1]]
                if progress(kept[0]) > progress(attempt):
                    attempt, chosen_answer = kept[0].model_copy(update={"usage": attempt.usage}), kept[1]
            if best is None or progress(attempt) > progress(best):
                best = attempt
            if retrieval is not None:
                attempt = attempt.model_copy(update={"context_ids": tuple(retrieval.ids)})
                bundle.write_context(index, retrieval.record())
            own = own_answer.script
            key = _fingerprint(own) if own is not None else None
            repeats = first_seen.get(key) if key is not None else None
            if key is not None:
                first_seen.setdefault(key, index)
            if not attempt.passed and index < spec.attempts:
                hints = _hints(attempt, spec.prompt, spec.data_root)
                learned += prompts.lessons(attempt, hints, keys)
                way = prompts.failure_signature(attempt)
                stuck = repeats is not None or way in failed_ways or prompts.echoes_feedback(own)
                failed_ways.add(way)
                if stuck:
                    temperature = min(REPEAT_MAX_TEMPERATURE, (temperature or backend.temperature or 0.0) + REPEAT_STEP)
                restart = stuck or drifted(attempt, best)
                feedback = (prompts.lessons_text(learned) if restart
                            else prompts.repair_message(attempt, repeats=repeats, extra_hints=hints,
                                                        result_keys=keys))
                attempt = attempt.model_copy(update={"feedback": feedback, "restart": restart})
            if len(candidates) > 1:
                for cand, ans in zip(candidates, answers):
                    bundle.write_candidate(cand, ans.raw)
            bundle.write_attempt(attempt, sent, chosen_answer.raw)
            attempts.append(attempt)
            if on_attempt is not None:
                on_attempt(attempt)
            if attempt.passed:
                break
            if attempt.feedback:
                retrieval = _retrieve(spec, attempt, shown)
                if attempt.restart:
                    conversation.restart(learned, _render(retrieval))
                else:
                    conversation.add_repair_turn(attempt, chosen_answer.raw, _render(retrieval))
    except BaseException as exc:  # recorded in run.json, then re-raised to the caller
        error = "interrupted" if isinstance(exc, KeyboardInterrupt) else f"{exc.__class__.__name__}: {exc}"
        if not isinstance(exc, KeyboardInterrupt):
            bundle.write_error(traceback.format_exc())
        raise
    finally:
        warm.close(wait=False)  # a sandbox set aside finishes its cleanup off the run's path
        passed = bool(attempts) and attempts[-1].passed
        result = RunResult(
            passed=passed,
            prompt=spec.prompt,
            backend=backend.name,
            model=backend.model,
            attempts=tuple(attempts),
            final_script=attempts[-1].script if attempts else None,
            usage=sum((a.usage for a in attempts), Usage()),
            gammapy_version=gammapy_version,
            hpc_agent_version=package_version("hpc-agent"),
            sandbox=sandbox.name,
            started_at=started,
            finished_at=datetime.now(timezone.utc),
            out_dir=str(spec.out_dir),
            server=server,
            error=error,
        )
        bundle.write_run(result)
    return result
