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

from hpc_agent.records import ExecResult, Limits

from ._env import python_path_env, scrubbed_env
from ._exec import SCRIPT_NAME, execute, prepare_workspace

log = logging.getLogger(__name__)

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
        ws, _ = prepare_workspace(script, workspace, ro_binds)  # nothing is mounted: no isolation
        return execute(
            self.command(), cwd=ws, env=scrubbed_env(ws, env, path=python_path_env(self.python)),
            limits=limits, backend=self.name, isolated=False,
        )
