"""Options shared by several commands (`bench` and `submit bench` take the same sweep options)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import click

from hpc_agent.bench.options import SweepOptions
from hpc_agent.choices import DEFAULT_MODEL, SWITCHES, switch_choice, switch_values
from hpc_agent.errors import UsageError

if TYPE_CHECKING:  # the command line's modules import only leaves at start-up (benchmarks/cli_start.py)
    from hpc_agent.config import Settings

data_root_opt = click.option("--data-root", type=click.Path(path_type=Path),
                             help="folder holding data releases (default: HPC_AGENT_DATA_ROOT, PHOTON_STORAGE)")

_SWEEP_OPTIONS = [
    click.option("--models", "models_opt", help="comma-separated model configs, backends or `oracle` "
                 f"(default: the local {DEFAULT_MODEL})"),
    click.option("--base-url", help="an ad hoc OpenAI-compatible endpoint (with --model) instead of --models"),
    click.option("--model", "adhoc_model", help="model name at --base-url"),
    # defaults: the SweepOptions record's, written once there
    click.option("--tasks", "task_glob", default=SweepOptions.tasks, show_default=True,
                 help="task id glob(s), comma-separated"),
    click.option("--seeds", type=click.IntRange(min=1), default=SweepOptions.seeds, show_default=True),
    click.option("--rag", type=click.Choice(SWITCHES), default=switch_choice(SweepOptions.rag), show_default=True),
    click.option("--repairs", type=click.Choice(SWITCHES), default=switch_choice(SweepOptions.repairs),
                 show_default=True,
                 help="the harness's deterministic repairs: `off` measures the model alone"),
    click.option("--candidates", type=click.IntRange(1, 16), default=SweepOptions.candidates,
                 help="answers per turn (default: each model config's, else 1)"),
    click.option("--attempts", type=click.IntRange(min=1), default=SweepOptions.attempts, show_default=True),
    click.option("--concurrency", type=click.IntRange(min=1), default=SweepOptions.concurrency, show_default=True,
                 help="cells in flight at once (requests to the server, sandbox runs overlapping)"),
    click.option("--out", type=click.Path(path_type=Path), help="sweep folder (re-run the same command to resume)"),
    data_root_opt,
]


def sweep_options(f: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(_SWEEP_OPTIONS):
        f = option(f)
    return f


def make_sweep_options(settings: Settings, *, models_opt: str | None, base_url: str | None,
                       adhoc_model: str | None, task_glob: str, seeds: int, rag: str, attempts: int,
                       concurrency: int, out: Path | None, repairs: str, candidates: int | None) -> SweepOptions:
    if bool(base_url) != bool(adhoc_model):
        raise UsageError("--base-url and --model go together")
    return SweepOptions(
        out=(out or settings.sweeps_dir / datetime.now().strftime("%Y%m%d-%H%M%S")).resolve(),
        models=tuple(m.strip() for m in (models_opt or DEFAULT_MODEL).split(",") if m.strip()),
        tasks=task_glob, seeds=seeds, rag=switch_values(rag), attempts=attempts,
        concurrency=concurrency, base_url=base_url, model=adhoc_model,
        repairs=switch_values(repairs), candidates=candidates)


def settings(**overrides: Any) -> Settings:
    """The effective settings (`load_settings`), loaded when a command runs, not when the command line starts."""
    from hpc_agent.config import load_settings

    return load_settings(**overrides)


def progress(message: str) -> None:
    click.echo(message, err=True)
