"""What a sweep is asked to do (`SweepOptions`) and what it reports back (`SweepSummary`).

Light on purpose (no sweep machinery, no model client): the command line reads its option defaults from
these records, so each default is written once, here, and `hpc-agent --help` stays fast.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from hpc_agent.choices import DEFAULT_MODEL
from hpc_agent.errors import EXIT_INFRASTRUCTURE, EXIT_OK


@dataclass(frozen=True)
class SweepOptions:
    out: Path
    models: tuple[str, ...] = (DEFAULT_MODEL,)
    tasks: str = "*"
    seeds: int = 1
    rag: tuple[str, ...] = ("off",)
    repairs: tuple[str, ...] = ("on",)
    candidates: int | None = None  # answers per turn; None: each model config's default, else 1
    attempts: int = 3
    concurrency: int = 1
    base_url: str | None = None  # with `model`: an ad hoc endpoint instead of `models`
    model: str | None = None


@dataclass
class SweepSummary:
    """Cell outcomes counted: of one `bench` invocation (`add` as cells finish) or of a whole sweep folder
    (`sweep_summary`). Infrastructure errors are retried on resume and make the exit code 3."""

    out: Path
    passed: int = 0
    failed: int = 0
    error: int = 0

    def add(self, status: str) -> None:
        """Count one finished cell by its status: passed, failed or error."""
        if status not in ("passed", "failed", "error"):
            raise ValueError(f"unknown cell status {status!r}")
        setattr(self, status, getattr(self, status) + 1)

    @property
    def cells(self) -> int:
        return self.passed + self.failed + self.error

    @property
    def exit_code(self) -> int:
        return EXIT_INFRASTRUCTURE if self.error else EXIT_OK

    def counts(self) -> str:
        """`N passed, N failed, N errors`: the progress bar's label."""
        return f"{self.passed} passed, {self.failed} failed, {self.error} errors"

    def line(self, what: str = "this run") -> str:
        """The one line `bench` ends with."""
        return (f"{what}: {self.passed} passed, {self.failed} failed, {self.error} infrastructure errors "
                f"(retried on resume); traces in {self.out}")


def sweep_summary(out: Path) -> SweepSummary:
    """The outcomes of every cell a sweep folder holds (each cell's `cell.json`); cells in flight or never
    started are not counted."""
    from hpc_agent.bench.sweep import CELL_FILE

    summary = SweepSummary(out)
    for path in sorted((out / "cells").glob(f"*/{CELL_FILE}")):
        try:
            status = json.loads(path.read_text())["status"]
        except (OSError, ValueError, KeyError):
            continue  # being written, or not a cell record
        summary.add(status)
    return summary
