"""The loop: ask the model, check the script, run it in the sandbox, validate, repair; until it passes.

`run_agent` returns a `RunResult` and writes the bundle as it goes, so an interrupted or broken run
still leaves every finished attempt (and a run.json saying why it stopped) on disk.
"""

from __future__ import annotations

import ast
import logging
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

from hpc_agent import checks, prompts
from hpc_agent.bundle import Bundle
from hpc_agent.data import contract_env, data_binds
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
from hpc_agent.validate import Validator, default_validators, validate

if TYPE_CHECKING:
    from hpc_agent.rag import Retrieval, Retriever

log = logging.getLogger(__name__)


def package_version(name: str) -> str:
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
    context: str | None = None  # retrieved reference material, injected before the request
    seed: int | None = None
    retriever: Retriever | None = None  # RAG: snippets for the prompt, then for each error, injected per turn


REPEAT_STEP = 0.4  # temperature added each time a model repeats a failed script
REPEAT_MAX_TEMPERATURE = 1.0


def _fingerprint(script: str) -> str:
    """Equal for scripts that differ only in layout or comments (small models re-send those)."""
    try:
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


def attempt_once(
    index: int, answer: ModelAnswer, spec: RunSpec, sandbox: Sandbox, workspace: Path
) -> Attempt:
    """Check, run and validate one answer. Model mistakes become the Attempt's failure class."""
    if answer.script is None:
        validation = Validation(passed=False, checks=(Check(name="script", passed=False, message="no script in answer"),))
        return Attempt(index=index, script=None, usage=answer.usage, validation=validation, failure="no_code")
    errors = checks.static_errors(answer.script, require_result=spec.require_result)
    if errors:
        validation = Validation(passed=False, checks=(Check(name="static", passed=False, message="; ".join(errors)),))
        return Attempt(index=index, script=answer.script, usage=answer.usage, static_errors=tuple(errors),
                       validation=validation, failure="static")
    execution = sandbox.run(
        answer.script, workspace, env=contract_env(spec.data_root), limits=spec.limits,
        ro_binds=data_binds(spec.data_root)
    )
    validators = spec.validators if spec.validators is not None else default_validators(spec.require_result)
    t0 = time.monotonic()
    validation = validate(execution, validators, answer.script)
    validation_s = time.monotonic() - t0
    return Attempt(
        index=index,
        script=answer.script,
        usage=answer.usage,
        execution=execution,
        validation=validation,
        failure=_classify(execution, validation),
        exception=prompts.exception_class(execution.stderr) if not execution.ok else None,
        validation_s=validation_s,
    )


def _error_text(attempt: Attempt) -> str:
    """What went wrong, for the retrieval query: static errors, failed checks, the traceback's tail."""
    parts = list(attempt.static_errors)
    if attempt.execution is not None:
        parts.append(prompts.traceback_tail(attempt.execution.stderr, 12))
    parts += [c.message for c in attempt.validation.checks if not c.passed and c.name not in ("static",)]
    return "\n".join(p for p in parts if p)


def _retrieve(spec: RunSpec, failed: Attempt | None, shown: set[str]) -> Retrieval | None:
    """Snippets for the first turn (from the prompt) or a repair turn (prompt + error); only new ones."""
    if spec.retriever is None:
        return None
    found = (spec.retriever.for_prompt(spec.prompt) if failed is None
             else spec.retriever.for_error(spec.prompt, _error_text(failed)))
    fresh = tuple(h for h in found.hits if h.id not in shown)
    shown.update(h.id for h in fresh)
    return replace(found, hits=fresh)


def _render(retrieval: Retrieval | None) -> str:
    if retrieval is None or not retrieval.hits:
        return ""
    from hpc_agent.rag import render

    return render(retrieval)


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
    first_seen: dict[str, int] = {}  # script fingerprint -> index of the attempt that first returned it
    temperature: float | None = None  # raised after a repeated script, to get the model out of its rut
    shown: set[str] = set()  # snippet ids already in the conversation
    try:
        retrieval = _retrieve(spec, None, shown)
        context = "\n\n".join(c for c in (spec.context, _render(retrieval)) if c) or None
        messages = prompts.initial_messages(spec.prompt, gammapy_version, context)
        server = client.server_info()
        for index in range(1, spec.attempts + 1):
            sent = list(messages)
            answer = client.complete(sent, seed=spec.seed, temperature=temperature)
            attempt = attempt_once(index, answer, spec, sandbox, bundle.workspace(index))
            if retrieval is not None:
                attempt = attempt.model_copy(update={"context_ids": tuple(retrieval.ids)})
                bundle.write_context(index, retrieval.record())
            key = _fingerprint(attempt.script) if attempt.script is not None else None
            repeats = first_seen.get(key) if key is not None else None
            if key is not None:
                first_seen.setdefault(key, index)
            if repeats is not None:
                temperature = min(REPEAT_MAX_TEMPERATURE, (temperature or backend.temperature or 0.0) + REPEAT_STEP)
            if not attempt.passed and index < spec.attempts:
                feedback = prompts.repair_message(attempt, repeats=repeats)
                attempt = attempt.model_copy(update={"feedback": feedback})
            bundle.write_attempt(attempt, sent, answer.raw)
            attempts.append(attempt)
            if on_attempt is not None:
                on_attempt(attempt)
            if attempt.passed:
                break
            if attempt.feedback:
                retrieval = _retrieve(spec, attempt, shown)
                reference = _render(retrieval)
                content = attempt.feedback + (f"\n\n{prompts.REFERENCE_HEADER}\n\n{reference}" if reference else "")
                messages += [prompts.assistant_turn(attempt.script, answer.raw), {"role": "user", "content": content}]
    except BaseException as exc:  # recorded in run.json, then re-raised to the caller
        error = "interrupted" if isinstance(exc, KeyboardInterrupt) else f"{exc.__class__.__name__}: {exc}"
        raise
    finally:
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
