"""Benchmark tasks as data: `benchmarks/tasks/<id>.yaml` plus one reference script per kind.

A task fixes every choice that changes the answer in its prompt, names the RESULT keys it checks with a
tolerance each (and why), and points at the reference solution that computes the expected values.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hpc_agent._shipped import shipped
from hpc_agent.config import Settings, load_named_yaml, load_settings
from hpc_agent.errors import ConfigError
from hpc_agent.validate import Expected, ExitCode, Numeric, ResultLines, Validator

REPO_BENCHMARKS = shipped("benchmarks")
PARAMS_LINE = "PARAMS = json.loads('{}')"


class Tolerance(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    rtol: float = Field(0.0, ge=0)
    atol: float = Field(0.0, ge=0)
    why: str = Field(min_length=3, description="where the tolerance comes from")


class Task(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9]+(-[a-z0-9]+)+$")
    kind: str
    source: str
    prompt: str = Field(min_length=20)
    outputs: dict[str, Tolerance]
    reference: str = Field(description="file in benchmarks/reference/")
    params: dict[str, Any] = Field(default_factory=dict)
    time_limit_s: float = Field(900, gt=0)
    numeric: bool = True

    @model_validator(mode="after")
    def _id_is_kind_source(self) -> Task:
        if self.id != f"{self.kind}-{self.source}":
            raise ValueError(f"id must be <kind>-<source> = {self.kind}-{self.source!s}")
        if self.numeric and not self.outputs:
            raise ValueError("a numeric task needs at least one entry under `outputs`")
        return self


    def validators(self, expected: dict[str, Any]) -> list[Validator]:
        """Exit code, the RESULT keys, and (numeric tasks) each value within its tolerance of `expected`."""
        checks: list[Validator] = [ExitCode(), ResultLines(required=tuple(self.outputs))]
        if self.numeric:
            checks.append(Numeric({k: Expected(float(expected[k]), t.rtol, t.atol) for k, t in self.outputs.items()}))
        return checks


def benchmarks_dir(settings: Settings | None = None) -> Path:
    """The `benchmarks` setting ($HPC_AGENT_BENCHMARKS), else the shipped benchmarks/ folder."""
    return (settings or load_settings()).benchmarks or REPO_BENCHMARKS


def load_task(path: Path) -> Task:
    task = load_named_yaml(path, Task, "id", "task fields (id, kind, source, prompt, ...)")
    if not (path.parent.parent / "reference" / task.reference).is_file():
        raise ConfigError(f"{path}: field `reference`: benchmarks/reference/{task.reference} does not exist")
    return task


def load_tasks(root: Path | None = None) -> dict[str, Task]:
    folder = (root or benchmarks_dir()) / "tasks"
    if not folder.is_dir():
        raise ConfigError(f"no task folder at {folder}; set HPC_AGENT_BENCHMARKS to the benchmarks/ folder")
    return {p.stem: load_task(p) for p in sorted(folder.glob("*.yaml"))}


def reference_script(task: Task, root: Path | None = None) -> str:
    """The task's complete reference solution: the kind's script with the task's params filled in."""
    path = (root or benchmarks_dir()) / "reference" / task.reference
    text = path.read_text()
    if PARAMS_LINE not in text:
        raise ConfigError(f"{path}: must contain the line {PARAMS_LINE!r} for the task's params")
    # json.dumps of the JSON text is a valid Python string literal
    return text.replace(PARAMS_LINE, f"PARAMS = json.loads({json.dumps(json.dumps(task.params, sort_keys=True))})", 1)
