"""What the web page needs besides widgets: backend choices, a form turned into an `api.run` call, runs and
reports read back from disk. Plain typed Python (no Streamlit), so it is testable and reusable.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import polars as pl

from hpc_agent import api
from hpc_agent.bundle import list_runs, read_run
from hpc_agent.config import Settings, load_settings, make_backend
from hpc_agent.errors import ConfigError, HpcAgentError
from hpc_agent.records import Attempt, RunResult, Usage
from hpc_agent.report import build_report
from hpc_agent.serve import model_configs
from hpc_agent.serve.session import default_backend_name

ADHOC = "ad hoc endpoint (base URL + model)"


@dataclass(frozen=True)
class BackendChoice:
    """One entry of the backend menu: a configured backend, a model config, or the ad hoc endpoint."""

    name: str | None  # None: the ad hoc endpoint
    label: str


def backend_choices(settings: Settings) -> list[BackendChoice]:
    """Configured backends, then model configs; the configured default (else the local model) first."""
    choices = [BackendChoice(n, f"{n} — configured: {b.model} at {b.base_url}") for n, b in settings.backends.items()]
    how = {"local-llamacpp": "local llama.cpp, started on demand", "vllm": "vLLM, needs `hpc-agent serve`",
           "remote": "remote endpoint"}
    for name, cfg in model_configs(settings).items():
        if name not in settings.backends:
            choices.append(BackendChoice(name, f"{name} — {how.get(cfg.kind, cfg.kind)}"))
    default = default_backend_name(settings)
    choices.sort(key=lambda c: c.name != default)  # stable: keeps the order of the rest
    return [*choices, BackendChoice(None, ADHOC)]


def rag_status(settings: Settings) -> tuple[bool, str]:
    """Whether retrieval can be switched on (its index is built or configured), and where it is or how to build it."""
    from hpc_agent.rag import index_status

    return index_status(settings)


@dataclass(frozen=True)
class RunForm:
    """What the page's form holds; `run_kwargs` turns it into the arguments of `api.run`."""

    prompt: str
    backend: str | None  # a backend or model-config name; None = ad hoc (base_url + model)
    attempts: int
    base_url: str = ""
    model: str = ""
    api_key_env: str = ""
    rag: bool = False
    keep: bool = True


def run_kwargs(form: RunForm) -> dict[str, Any]:
    """The `api.run` keyword arguments for a form (prompt, settings and output folder aside)."""
    if not form.prompt.strip():
        raise FormError("enter a prompt first")
    kwargs: dict[str, Any] = {}
    if form.backend is None:
        if not (form.base_url.strip() and form.model.strip()):
            raise FormError("an ad hoc endpoint needs both a base URL and a model name")
        kwargs.update(base_url=form.base_url.strip(), model=form.model.strip())
        try:  # the same checks as the command line, before anything is started
            make_backend({"base_url": kwargs["base_url"], "model": kwargs["model"]}, "ad hoc endpoint",
                         name_flags=False)
        except ConfigError as exc:
            raise FormError(str(exc)) from exc
    else:
        kwargs["backend"] = form.backend
    if form.api_key_env.strip():
        kwargs["overrides"] = {"api_key_env": form.api_key_env.strip()}
    if form.rag:
        kwargs["rag"] = True
    return kwargs


class FormError(ValueError):
    """The form cannot become a run (shown next to the form, nothing is started)."""


@dataclass(frozen=True)
class RunView:
    """A finished run read back from its bundle (`bundle.read_run`): the RunResult with every attempt."""

    path: Path
    run: RunResult

    @property
    def status(self) -> str:
        return self.run.status

    @property
    def attempts(self) -> tuple[Attempt, ...]:
        return self.run.attempts

    @property
    def latest(self) -> Attempt | None:
        return self.attempts[-1] if self.attempts else None

    @property
    def shown(self) -> Attempt | None:
        """The attempt whose script, log and validation the page shows: the latest one that had a script."""
        return next((a for a in reversed(self.attempts) if a.script is not None), self.latest)

    @property
    def script(self) -> str | None:
        """The final script, else the latest attempt's that had one."""
        if self.run.final_script:
            return self.run.final_script
        shown = self.shown
        return shown.script if shown else None

    @property
    def usage(self) -> Usage:
        return self.run.usage

    def history(self) -> list[dict[str, Any]]:
        """One row per attempt for a table: outcome, exception, repairs made, tokens, model latency, sandbox time."""
        return [{"attempt": a.index, "passed": a.passed, "failure": a.failure, "exception": a.exception,
                 "exit_code": a.execution.exit_code if a.execution else None, "repairs": len(a.repairs),
                 "prompt_tokens": a.usage.prompt_tokens, "completion_tokens": a.usage.completion_tokens,
                 "model_s": round(a.usage.latency_s, 2),
                 "sandbox_s": round(a.execution.duration_s, 2) if a.execution else None}
                for a in self.attempts]


def load_run_view(out_dir: Path) -> RunView:
    return RunView(out_dir, read_run(out_dir))


def describe_attempt(a: Attempt) -> str:
    """One progress line per finished attempt (as `hpc-agent run` prints it)."""
    status = "PASS" if a.passed else f"fail ({a.failure}{': ' + a.exception if a.exception else ''})"
    took = f", ran {a.execution.duration_s:.1f}s" if a.execution else ""
    return (f"attempt {a.index}: {status} — {a.usage.completion_tokens} tokens in {a.usage.latency_s:.1f}s{took}")


@dataclass(frozen=True)
class RunOutcome:
    """What the page shows after a run: the run (when a bundle was written) and any error."""

    view: RunView | None
    error: str | None = None
    kept: bool = True


def run_form(form: RunForm, *, settings: Settings | None = None,
             on_attempt: Callable[[Attempt], None] | None = None,
             progress: Callable[[str], None] = lambda _m: None) -> RunOutcome:
    """Run the agent for a form. With `keep` off the bundle goes to a temporary folder that is removed once
    it has been read back (the outcome still holds everything). Errors of the library are results here."""
    kwargs = run_kwargs(form)
    settings = (settings.model_copy(update={"attempts": form.attempts}) if settings
                else load_settings(attempts=form.attempts))
    scratch = None if form.keep else Path(tempfile.mkdtemp(prefix="hpc-agent-ui-"))
    out_dir = (scratch / "run") if scratch else api.default_out_dir(settings, form.prompt)
    try:
        error = None
        try:
            api.run(form.prompt, settings=settings, out_dir=out_dir, on_attempt=on_attempt, progress=progress,
                    **kwargs)
        except HpcAgentError as exc:
            error = str(exc)
        view = load_run_view(out_dir) if (out_dir / "run.json").is_file() else None
        return RunOutcome(view, error, kept=scratch is None)
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


class RunJob:
    """A run in a background thread, so that using the page (other tabs, other widgets) never interrupts it;
    the page polls `lines`, `label` and `outcome`. Errors of any kind end up in the outcome."""

    def __init__(self, form: RunForm, settings: Settings | None = None) -> None:
        run_kwargs(form)  # a FormError surfaces here, before a thread exists
        self.form = form
        self.lines: list[str] = []
        self.label = f"Attempt 1 of {form.attempts} running…"
        self.outcome: RunOutcome | None = None
        self._settings = settings
        self._lock = threading.Lock()
        # Not a daemon (Streamlit's script threads are, and so would be their children): stopping the page waits for
        # the run in flight, whose `with` blocks then stop a local model it started.
        self._thread = threading.Thread(target=self._work, name="hpc-agent-ui-run", daemon=False)

    def start(self) -> RunJob:
        self._thread.start()
        return self

    @property
    def done(self) -> bool:
        return self.outcome is not None

    def wait(self, timeout_s: float | None = None) -> bool:
        self._thread.join(timeout_s)
        return self.done

    def snapshot(self) -> tuple[str, list[str]]:
        with self._lock:
            return self.label, list(self.lines)

    def _say(self, line: str) -> None:
        with self._lock:
            self.lines.append(line)

    def _on_attempt(self, a: Attempt) -> None:
        with self._lock:
            self.lines.append(describe_attempt(a))
            if not a.passed and a.index < self.form.attempts:
                self.label = f"Attempt {a.index + 1} of {self.form.attempts} running… (attempt {a.index}: {a.failure})"

    def _work(self) -> None:
        try:
            outcome = run_form(self.form, settings=self._settings, on_attempt=self._on_attempt, progress=self._say)
        except BaseException as exc:  # the page shows it; nothing else would see it in this thread
            outcome = RunOutcome(None, f"{exc.__class__.__name__}: {exc}")
        view = outcome.view
        with self._lock:
            if view is not None and view.status == "passed":
                self.label = f"Passed after {len(view.attempts)} attempt(s)"
            elif view is not None and view.status == "failed":
                self.label = f"Failed: attempt budget of {self.form.attempts} spent"
            else:
                self.label = "Stopped by an error"
            self.outcome = outcome


def sweeps_dir(settings: Settings) -> Path:
    """Where `hpc-agent bench` puts sweeps by default."""
    return settings.sweeps_dir


@dataclass(frozen=True)
class SweepInfo:
    path: Path
    cells: int
    report: Path | None  # DIR/report when `hpc-agent report DIR` was run


def list_sweeps(folder: Path) -> list[SweepInfo]:
    """Sweep folders (with cells.parquet) directly under `folder`, newest first."""
    found = []
    for cells in folder.glob("*/cells.parquet") if folder.is_dir() else ():
        report = cells.parent / "report"
        found.append(SweepInfo(cells.parent, pl.scan_parquet(cells).select(pl.len()).collect().item(),
                               report if is_report(report) else None))
    return sorted(found, key=lambda s: s.path.stat().st_mtime, reverse=True)


def is_report(path: Path) -> bool:
    return (path / "summary.parquet").is_file() and (path / "report.md").is_file()


def list_reports(folder: Path) -> list[Path]:
    """Report folders under `folder`: DIR/report of each sweep and merged reports (`--out`) one or two deep."""
    if not folder.is_dir():
        return []
    found = {p.parent for pattern in ("*/summary.parquet", "*/*/summary.parquet") for p in folder.glob(pattern)}
    return sorted((p for p in found if is_report(p)), key=lambda p: p.stat().st_mtime, reverse=True)


def make_report(sweep: Path) -> Path:
    """What `hpc-agent report DIR` does: the report of one sweep into DIR/report."""
    return build_report([sweep], sweep / "report")


@dataclass(frozen=True)
class ReportView:
    path: Path
    summary: pl.DataFrame
    per_task: pl.DataFrame | None
    plots: tuple[Path, ...]
    markdown: str = field(repr=False, default="")


def load_report(path: Path) -> ReportView:
    """A report folder written by `hpc-agent report`: its tables (Parquet) and PNG plots."""
    if not is_report(path):
        raise FormError(f"{path}: not a report folder (no summary.parquet and report.md); run `hpc-agent report`")
    tasks = path / "per_task.parquet"
    return ReportView(path, pl.read_parquet(path / "summary.parquet"),
                      pl.read_parquet(tasks) if tasks.is_file() else None,
                      tuple(sorted(path.glob("*.png"))), (path / "report.md").read_text())


__all__ = [
    "ADHOC", "BackendChoice", "FormError", "ReportView", "RunForm", "RunJob", "RunOutcome", "RunView",
    "SweepInfo", "backend_choices", "describe_attempt", "is_report", "list_reports", "list_runs", "list_sweeps", "load_report",
    "load_run_view", "make_report", "rag_status", "run_form", "run_kwargs", "sweeps_dir",
]
