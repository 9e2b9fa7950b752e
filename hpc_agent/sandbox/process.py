"""Plain-process backend: NO isolation. The script can read and write anything the user can.

Only for machines where neither bubblewrap nor Apptainer works. It still scrubs the environment and
applies every limit (session + cgroup kill on timeout, memory, pids, file size, output caps), and it
warns loudly on every run.
"""

from __future__ import annotations

import logging
import sys
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

from hpc_agent.errors import UsageError
from hpc_agent.records import ExecResult, Limits

from ._env import python_path_env, scrubbed_env
from ._exec import execute

log = logging.getLogger(__name__)

SCRIPT_NAME = "script.py"
WARNING = (
    "sandbox 'process' runs generated code WITHOUT ISOLATION (host files, network and processes are "
    "reachable); install bubblewrap or Apptainer and use --sandbox bwrap|apptainer"
)


class UnisolatedExecutionWarning(RuntimeWarning):
    """Emitted on every run of the ``process`` backend."""


class ProcessSandbox:
    name = "process"
    isolated = False

    def __init__(self, python: str | None = None):
        self.python = python or sys.executable

    def available(self) -> tuple[bool, str]:
        return True, "always available, but provides NO isolation (limits and env scrubbing only)"

    def command(self) -> list[str]:
        return [self.python, SCRIPT_NAME]

    def run(
        self,
        script: str,
        workspace: Path,
        *,
        env: Mapping[str, str],
        limits: Limits,
        ro_binds: Sequence[Path] = (),
    ) -> ExecResult:
        log.warning(WARNING)
        warnings.warn(WARNING, UnisolatedExecutionWarning, stacklevel=2)
        ws = Path(workspace)
        ws.mkdir(parents=True, exist_ok=True)
        for d in ro_binds:  # nothing is mounted, but a missing data root is still the caller's error
            if not Path(d).exists():
                raise UsageError(f"read-only bind source does not exist: {d}")
        (ws / SCRIPT_NAME).write_text(script)
        return execute(
            self.command(), cwd=ws, env=scrubbed_env(ws.resolve(), env, path=python_path_env(self.python)),
            limits=limits, backend=self.name, isolated=False,
        )
