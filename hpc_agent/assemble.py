"""Settings turned into the parts of one run, in one place: the sandbox limits, the model client, the answers
per turn and the RunSpec. `api.run`, every sweep cell and the reference values assemble here, so a setting
such as `memory_mb` reaches every sandboxed run instead of only the runs of whichever caller remembered it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hpc_agent.agent import RunSpec
from hpc_agent.config import Backend, Settings
from hpc_agent.llm import ChatClient
from hpc_agent.records import Limits
from hpc_agent.sandbox.warm import DEFAULT_MODULES
from hpc_agent.validate import Validator


def limits_for(settings: Settings, wall_s: float | None = None) -> Limits:
    """One sandboxed run's limits: `wall_s` (a task's own time limit) else `exec_timeout_s`, and the settings'
    memory and process caps."""
    return Limits(wall_s=wall_s or settings.exec_timeout_s, memory_mb=settings.memory_mb,
                  max_procs=settings.max_procs)


def warm_modules_from(settings: Settings) -> tuple[str, ...]:
    """The modules warm sandboxes import ahead; empty when warm sandboxes are off."""
    if not settings.warm_sandbox:
        return ()
    return tuple(settings.warm_modules) if settings.warm_modules is not None else DEFAULT_MODULES


def chat_client(settings: Settings, backend: Backend) -> ChatClient:
    """The model client with the settings' request timeout and retries."""
    return ChatClient(backend, timeout_s=settings.llm_timeout_s, retries=settings.llm_retries)


def candidates_for(settings: Settings, own: int | None) -> int:
    """Answers per turn: the `candidates` setting when given, else the backend's own default, else 1."""
    return settings.candidates or own or 1


def run_spec(settings: Settings, *, prompt: str, data_root: Path, out_dir: Path, wall_s: float | None = None,
             attempts: int | None = None, repairs: bool | None = None, candidates: int = 1,
             validators: Sequence[Validator] | None = None, seed: int | None = None,
             retriever: Any = None, warm_modules: tuple[str, ...] | None = None) -> RunSpec:
    """A RunSpec whose attempt budget, repairs and limits come from the settings unless given (a sweep cell
    gives its own budget, repairs, seed and validators, and its task's time limit as `wall_s`; the modules
    warm sandboxes import ahead come from the settings, empty when they are off)."""
    return RunSpec(prompt=prompt, data_root=data_root, out_dir=out_dir,
                   attempts=settings.attempts if attempts is None else attempts,
                   repairs=settings.repairs if repairs is None else repairs,
                   limits=limits_for(settings, wall_s), validators=validators, seed=seed, retriever=retriever,
                   candidates=candidates,
                   warm_modules=warm_modules_from(settings) if warm_modules is None else warm_modules)
