"""Validators behind one protocol: each looks at an execution and returns checks.

The default is "exit code 0 and RESULT lines parse"; tasks add numeric checks with tolerances.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Protocol, Sequence

from hpc_agent.records import Check, ExecResult, Validation

RESULT_PREFIX = "RESULT "


def parse_results(stdout: str) -> tuple[dict[str, Any], list[str]]:
    """Merge every `RESULT {json}` line into one dict; also return lines that did not parse."""
    values: dict[str, Any] = {}
    bad: list[str] = []
    for line in stdout.splitlines():
        line = line.strip()
        if not line.startswith(RESULT_PREFIX.strip()):
            continue
        payload = line[len("RESULT"):].strip().lstrip(":").strip()
        try:
            obj = json.loads(payload)
        except json.JSONDecodeError:
            bad.append(line[:200])
            continue
        if isinstance(obj, dict):
            values.update(obj)
        else:
            bad.append(line[:200])
    return values, bad


class Validator(Protocol):
    """Looks at one execution (and the script that produced it) and returns checks.

    A validator with `expensive = True` (e.g. one that runs the script again) runs only when every
    check before it passed.
    """

    @property
    def name(self) -> str: ...  # read-only: the validators are frozen dataclasses

    def __call__(self, execution: ExecResult, script: str) -> list[Check]: ...


@dataclass(frozen=True)
class ExitCode:
    name: str = "exit_code"

    def __call__(self, execution: ExecResult, script: str = "") -> list[Check]:
        if execution.killed:
            return [Check(name=self.name, passed=False, message=f"killed ({execution.killed})")]
        ok = execution.exit_code == 0
        return [Check(name=self.name, passed=ok, message="" if ok else f"exit code {execution.exit_code}")]


@dataclass(frozen=True)
class ResultLines:
    """At least one RESULT line that parses as a JSON object, holding `required` keys."""

    required: tuple[str, ...] = ()
    name: str = "result_lines"

    def __call__(self, execution: ExecResult, script: str = "") -> list[Check]:
        values, bad = parse_results(execution.stdout)
        if bad:
            return [Check(name=self.name, passed=False, message=f"RESULT line is not a JSON object: {bad[0]!r}")]
        if not values:
            return [Check(name=self.name, passed=False, message="no `RESULT {json}` line in stdout")]
        missing = [k for k in self.required if k not in values]
        if missing:
            return [Check(name=self.name, passed=False,
                          message=f"RESULT lacks key(s) {missing}; got {sorted(values)}")]
        return [Check(name=self.name, passed=True, message=f"keys {sorted(values)}")]


@dataclass(frozen=True)
class Expected:
    value: float
    rtol: float = 0.0
    atol: float = 0.0


@dataclass(frozen=True)
class Numeric:
    """Each key's value within tolerance of the expected one (`rtol`/`atol`; both 0 means exact)."""

    expected: dict[str, Expected]
    name: str = "numeric"

    def __call__(self, execution: ExecResult, script: str = "") -> list[Check]:
        values, _ = parse_results(execution.stdout)
        checks = []
        for key, exp in self.expected.items():
            got: Any = values.get(key)  # any JSON value; float() refuses the wrong ones
            try:
                x = float(got)
            except (TypeError, ValueError):
                checks.append(Check(name=f"{self.name}:{key}", passed=False,
                                    message=f"{key} missing or not a number (got {got!r})"))
                continue
            ok = math.isclose(x, exp.value, rel_tol=exp.rtol, abs_tol=exp.atol)
            # the expected value stays out of the message: a model told the answer could print it
            message = (f"{key}={x:g} matches the reference analysis" if ok else
                       f"{key}={x:g} does not match the reference analysis (rtol={exp.rtol:g}, atol={exp.atol:g}); "
                       "re-check the selection and the method")
            checks.append(Check(name=f"{self.name}:{key}", passed=ok, message=message, detail=f"expected {exp.value:g}"))
        return checks


def default_validators(require_result: bool = True) -> list[Validator]:
    return [ExitCode(), ResultLines()] if require_result else [ExitCode()]


def validate(execution: ExecResult, validators: Sequence[Validator], script: str = "") -> Validation:
    checks: list[Check] = []
    for v in validators:
        if getattr(v, "expensive", False) and not all(c.passed for c in checks):
            continue
        checks.extend(v(execution, script))
    return Validation(passed=bool(checks) and all(c.passed for c in checks), checks=tuple(checks))
