"""Typed records that flow through one run: usage, execution, validation, attempts, the run, and the files
a bundle holds (`run.json`, `validation.json`).

They are frozen pydantic models so that bundles (JSON) and Parquet traces are derived from one definition
instead of being written twice. A record that is a file (`Versioned`) carries a `schema` version and reads the
files earlier versions wrote through its migrations.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, ClassVar, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hpc_agent.errors import HpcAgentError


class Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RecordError(HpcAgentError):
    """A record file that cannot be read: a schema version this hpc-agent does not know, or content that does
    not fit its record (the message names the file and what is wrong)."""


Migration = Callable[[dict[str, Any]], dict[str, Any]]


class Versioned(Record):
    """A record written as a JSON file with a `schema` version (`to_json`), read back with `from_json`/`read`.

    Files without `schema` are version 0 (written before versions existed). `MIGRATIONS[n]` turns a version-n
    dict into a version-(n+1) one, so old files keep reading; a version newer than `SCHEMA` is an error, not a
    guess.
    """

    SCHEMA: ClassVar[int] = 1
    MIGRATIONS: ClassVar[dict[int, Migration]] = {}

    def to_json(self) -> dict[str, Any]:
        return {"schema": self.SCHEMA, **self.model_dump(mode="json")}

    @classmethod
    def from_json(cls, data: dict[str, Any], source: str = "") -> Self:
        where = f"{source}: " if source else ""
        if not isinstance(data, dict):
            raise RecordError(f"{where}not a {cls.__name__} (a JSON object was expected)")
        data = dict(data)
        version = data.pop("schema", 0)
        if isinstance(version, bool) or not isinstance(version, int) or version < 0:
            raise RecordError(f"{where}schema {version!r} is not a version number (0..{cls.SCHEMA})")
        if version > cls.SCHEMA:
            raise RecordError(f"{where}schema {version} is newer than this hpc-agent reads ({cls.__name__} schema "
                              f"{cls.SCHEMA}); upgrade hpc-agent to read it")
        for step in range(version, cls.SCHEMA):
            data = cls.MIGRATIONS[step](data)
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise RecordError(f"{where}not a valid {cls.__name__} (schema {version}): {exc}") from exc

    @classmethod
    def read(cls, path: Path) -> Self:
        """The record in `path`; unreadable JSON is an OSError/ValueError as usual, a bad record a RecordError."""
        return cls.from_json(json.loads(path.read_text()), str(path))


def fill(defaults: dict[str, Any]) -> Migration:
    """A migration that adds keys an earlier version did not write, with the value they implicitly had."""
    return lambda data: {**defaults, **data}


class Usage(Record):
    """Token usage and latency of one or more model calls (summable)."""

    prompt_tokens: int = 0
    cached_prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    calls: int = 0
    latency_s: float = 0.0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            cached_prompt_tokens=self.cached_prompt_tokens + other.cached_prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            reasoning_tokens=self.reasoning_tokens + other.reasoning_tokens,
            calls=self.calls + other.calls,
            latency_s=self.latency_s + other.latency_s,
        )


class Limits(Record):
    """Resource limits of one sandboxed execution (portable; each backend translates them)."""

    wall_s: float = Field(300.0, gt=0, description="hard wall-clock limit; the whole process tree is killed")
    memory_mb: int = Field(6144, gt=0, description="memory limit of the process tree")
    max_procs: int = Field(256, gt=0, description="maximum number of processes/threads in the sandbox")
    output_bytes: int = Field(256 * 1024, gt=0, description="stdout/stderr kept per stream (head + tail)")
    file_size_mb: int = Field(1024, gt=0, description="largest file the script may write")


KillReason = Literal["timeout", "memory", "output", "signal"]
# How the sandbox was started: cold (started for the script), warm (pre-started, the script handed over; its
# duration counts from the hand-over), fallback (a pre-started one failed to warm up: started cold instead)
SandboxStart = Literal["cold", "warm", "fallback"]


class ExecFacts(Record):
    """What happened when a script ran, without its output (validation.json holds this; the output has its
    own files)."""

    backend: str
    exit_code: int | None  # None when killed before it exited on its own
    duration_s: float
    killed: KillReason | None = None
    stdout_bytes: int = 0  # total produced, before capping
    stderr_bytes: int = 0
    truncated: bool = False
    isolated: bool = True  # False only for the `process` backend
    start: SandboxStart = "cold"
    # why a prepared warm sandbox was not used (unusable: fallback; not needed: cold), or that the blank one was
    start_note: str | None = None

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and self.killed is None


class ExecResult(ExecFacts):
    """What happened when a script ran in a sandbox, with its (capped) output. A crash is a result, not an
    exception."""

    stdout: str
    stderr: str

    @property
    def facts(self) -> ExecFacts:
        return ExecFacts.model_validate(self.model_dump(exclude={"stdout", "stderr"}))


class Check(Record):
    """One validation check and its outcome."""

    name: str
    passed: bool
    message: str = ""  # what the model is told
    detail: str = ""  # kept for people only (bundle, traces), never sent to the model: e.g. the expected value


class Validation(Record):
    passed: bool
    checks: tuple[Check, ...] = ()

    @property
    def failures(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if not c.passed)


FailureClass = Literal["none", "no_code", "context", "static", "runtime", "timeout", "resource", "validation"]


class Attempt(Record):
    """One model answer, repaired, checked, maybe run, validated.

    `script` is what was checked and run (the answer after repairs); `answer` is the model's own text when
    repairs changed it. With candidates, this is the winning (or most advanced) one; usage covers them all.
    """

    index: int
    script: str | None
    usage: Usage
    answer: str | None = None  # the model's own script, when repairs changed it
    repairs: tuple[str, ...] = ()  # one line per deterministic repair made before checking
    static_s: float = 0.0  # time of the static stage (repairs, grounding, rules)
    candidates: int = 1  # answers generated for this turn
    candidate: int = 1  # which of them this record describes
    static_errors: tuple[str, ...] = ()
    execution: ExecResult | None = None
    validation: Validation
    failure: FailureClass
    exception: str | None = None  # exception class raised by the script, if any
    validation_s: float = 0.0  # time spent validating (a variant-store re-run included)
    feedback: str | None = None  # the repair message sent back to the model after this attempt
    restart: bool = False  # the model was stuck or drifted off the request: the next turn started afresh, with lessons instead of scripts
    context_ids: tuple[str, ...] = ()  # retrieved snippets (chunk ids) injected in the turn that asked for it

    @property
    def passed(self) -> bool:
        return self.validation.passed


class ServerInfo(Record):
    """Which server answered: its base URL and `/v1/models` payload."""

    base_url: str
    models: list[dict] = Field(default_factory=list)
    engine: str | None = None
    engine_version: str | None = None


class RunFacts(Record):
    """A run's outcome and provenance without its attempts (shared by `RunResult` and `RunFile`)."""

    passed: bool
    prompt: str
    backend: str
    model: str
    final_script: str | None
    usage: Usage
    gammapy_version: str
    hpc_agent_version: str
    sandbox: str
    started_at: datetime
    finished_at: datetime
    out_dir: str | None = None
    server: ServerInfo | None = None
    error: str | None = None  # an infrastructure failure that ended the run early (not a model failure)


RunStatus = Literal["passed", "failed", "error"]


class RunResult(RunFacts):
    """A whole run: the prompt, every attempt and the outcome."""

    attempts: tuple[Attempt, ...]

    @property
    def status(self) -> RunStatus:
        return "passed" if self.passed else ("error" if self.error else "failed")


# The files of a bundle (see `bundle.py` for the layout).

BUNDLE_VERSION = 1


class ValidationFile(Versioned):
    """What `attempt-<n>/validation.json` holds: everything of an `Attempt` that has no file of its own (the
    script, the model's answer, stdout/stderr and usage do), so the attempt can be read back whole."""

    passed: bool
    failure: FailureClass
    exception: str | None
    repairs: tuple[str, ...]
    static_errors: tuple[str, ...]
    checks: tuple[Check, ...]
    execution: ExecFacts | None
    candidate: int
    candidates: int
    feedback: str | None
    restart: bool
    static_s: float
    validation_s: float
    context_ids: tuple[str, ...]

    # version 0 (no `schema`): the last four keys came later, and times and snippet ids were not kept
    MIGRATIONS: ClassVar[dict[int, Migration]] = {0: fill({
        "repairs": [], "candidate": 1, "candidates": 1, "feedback": None, "restart": False,
        "static_s": 0.0, "validation_s": 0.0, "context_ids": []})}

    @classmethod
    def from_attempt(cls, a: Attempt) -> ValidationFile:
        return cls(passed=a.passed, failure=a.failure, exception=a.exception, repairs=a.repairs,
                   static_errors=a.static_errors, checks=a.validation.checks,
                   execution=a.execution.facts if a.execution else None, candidate=a.candidate,
                   candidates=a.candidates, feedback=a.feedback, restart=a.restart, static_s=a.static_s,
                   validation_s=a.validation_s, context_ids=a.context_ids)

    def to_attempt(self, index: int, *, script: str | None, answer: str | None, usage: Usage, stdout: str,
                   stderr: str) -> Attempt:
        """The attempt again, given what the attempt folder's other files hold."""
        execution = (ExecResult(**self.execution.model_dump(), stdout=stdout, stderr=stderr)
                     if self.execution else None)
        return Attempt(index=index, script=script, usage=usage, answer=answer, repairs=self.repairs,
                       static_s=self.static_s, candidates=self.candidates, candidate=self.candidate,
                       static_errors=self.static_errors, execution=execution,
                       validation=Validation(passed=self.passed, checks=self.checks), failure=self.failure,
                       exception=self.exception, validation_s=self.validation_s, feedback=self.feedback,
                       restart=self.restart, context_ids=self.context_ids)


class AttemptSummary(Record):
    """One attempt's outcome as `run.json` lists it (its folder holds the detail)."""

    index: int
    passed: bool
    failure: FailureClass
    exception: str | None
    repairs: tuple[str, ...] = ()
    candidates: int = 1
    restart: bool = False
    usage: Usage

    @classmethod
    def from_attempt(cls, a: Attempt) -> AttemptSummary:
        return cls(index=a.index, passed=a.passed, failure=a.failure, exception=a.exception, repairs=a.repairs,
                   candidates=a.candidates, restart=a.restart, usage=a.usage)


def _run_v0(data: dict[str, Any]) -> dict[str, Any]:
    """Version 0 run.json: as today's, but early ones lacked a summary's repairs, candidates and restart."""
    summaries = [{"repairs": [], "candidates": 1, "restart": False, **s} for s in data.get("attempt_summaries", [])]
    return {**data, "attempt_summaries": summaries}


class RunFile(RunFacts, Versioned):
    """What `run.json` holds: the run without its attempts' detail (`attempts` is their number; their folders
    hold the rest), its status and one summary per attempt."""

    bundle_version: int = BUNDLE_VERSION
    status: RunStatus
    attempts: int
    attempt_summaries: tuple[AttemptSummary, ...]

    MIGRATIONS: ClassVar[dict[int, Migration]] = {0: _run_v0}

    @classmethod
    def from_result(cls, result: RunResult) -> RunFile:
        facts = {name: getattr(result, name) for name in RunFacts.model_fields}
        return cls(**facts, status=result.status, attempts=len(result.attempts),
                   attempt_summaries=tuple(AttemptSummary.from_attempt(a) for a in result.attempts))

    def to_result(self, attempts: tuple[Attempt, ...]) -> RunResult:
        return RunResult(**{name: getattr(self, name) for name in RunFacts.model_fields}, attempts=attempts)
