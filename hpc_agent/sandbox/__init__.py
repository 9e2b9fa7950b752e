"""Sandboxes that run generated scripts: ``bwrap`` (default), ``apptainer`` and ``process`` (no isolation).

Every backend runs ``<python> script.py`` in a caller-created workspace with a scrubbed environment
(only PATH, HOME=workspace, TMPDIR, LANG, MPLBACKEND, PYTHONUNBUFFERED, PYTHONDONTWRITEBYTECODE plus the
caller's ``env``), read-only data binds, and the portable :class:`~hpc_agent.records.Limits`. A failing
script is an :class:`~hpc_agent.records.ExecResult`; :class:`~hpc_agent.errors.SandboxUnavailableError`
means the sandbox itself could not run.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from hpc_agent.choices import SANDBOXES, SandboxName
from hpc_agent.errors import UsageError
from hpc_agent.records import ExecResult, Limits

from .apptainer import ApptainerSandbox, apptainer_argv
from .bwrap import BwrapSandbox
from .process import ProcessSandbox, UnisolatedExecutionWarning

if TYPE_CHECKING:
    from hpc_agent.config import Settings

BACKENDS: tuple[SandboxName, ...] = SANDBOXES  # the registry's names (hpc_agent.choices)


@runtime_checkable
class Sandbox(Protocol):
    name: str
    isolated: bool

    def available(self) -> tuple[bool, str]: ...

    def run(
        self,
        script: str,
        workspace: Path,
        *,
        env: Mapping[str, str],
        limits: Limits,
        ro_binds: Sequence[Path] = (),
    ) -> ExecResult: ...


_CLASSES: dict[str, type[Sandbox]] = {"bwrap": BwrapSandbox, "apptainer": ApptainerSandbox,
                                      "process": ProcessSandbox}
assert set(_CLASSES) == set(SANDBOXES), "a sandbox in hpc_agent.choices without a class here, or the reverse"


def get_sandbox(name: str, **options) -> Sandbox:
    """The backend called ``name``, configured with ``options`` (python=, image=, binary=...)."""
    try:
        cls = _CLASSES[name]
    except (KeyError, TypeError):
        raise UsageError(f"unknown sandbox {name!r}; choose one of: {', '.join(BACKENDS)}") from None
    try:
        return cls(**options)
    except TypeError as exc:
        raise UsageError(f"invalid options for sandbox {name!r}: {exc}") from None


def default_sandbox_name() -> str:
    """``bwrap`` if it works here, else ``apptainer`` if on PATH, else ``process`` (no isolation)."""
    if BwrapSandbox().available()[0]:
        return "bwrap"
    if shutil.which("apptainer"):
        return "apptainer"
    return "process"


__all__ = [
    "BACKENDS",
    "ApptainerSandbox",
    "BwrapSandbox",
    "ProcessSandbox",
    "Sandbox",
    "UnisolatedExecutionWarning",
    "apptainer_argv",
    "default_sandbox_name",
    "get_sandbox",
]


def from_settings(settings: Settings, name: str | None = None) -> Sandbox:
    """The sandbox the settings choose (`name` overrides; default: the best available backend)."""
    chosen = name or settings.sandbox or default_sandbox_name()
    options: dict[str, object] = {}
    if chosen == "apptainer" and settings.apptainer_image:
        options["image"] = settings.apptainer_image
    return get_sandbox(chosen, **options)
