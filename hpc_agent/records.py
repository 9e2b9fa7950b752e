"""Typed records that flow through one run: usage, execution, validation, attempts, the run.

They are frozen pydantic models so that bundles (JSON) and, later, Parquet traces are derived from one
definition instead of being written twice.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


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


class ExecResult(Record):
    """What happened when a script ran in a sandbox. A crash is a result, not an exception."""

    backend: str
    exit_code: int | None  # None when killed before it exited on its own
    stdout: str
    stderr: str
    duration_s: float
    killed: KillReason | None = None
    stdout_bytes: int = 0  # total produced, before capping
    stderr_bytes: int = 0
    truncated: bool = False
    isolated: bool = True  # False only for the `process` backend

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and self.killed is None


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
    restart: bool = False  # the model was stuck: the next turn started afresh, with lessons instead of scripts
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


class RunResult(Record):
    """A whole run: the prompt, every attempt and the outcome."""

    passed: bool
    prompt: str
    backend: str
    model: str
    attempts: tuple[Attempt, ...]
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

    @property
    def status(self) -> Literal["passed", "failed", "error"]:
        return "passed" if self.passed else ("error" if self.error else "failed")
