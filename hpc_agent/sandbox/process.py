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
from ._exec import SCRIPT_NAME, Launch, prepare_workspace, run_launch
from ._seed import seed_workspace

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

    def command(self, program: Sequence[str] = (SCRIPT_NAME,)) -> list[str]:
        return [self.python, *program]

    def launch(self, ws: Path, *, env: Mapping[str, str], limits: Limits, ro_binds: Sequence[Path] = (),
               program: Sequence[str] = (SCRIPT_NAME,), seed: bool = True) -> Launch:
        """``<python> <program>`` in ``ws`` (created, resolved), nothing mounted: no isolation. `seed`: copy
        the font list into the workspace first (`_seed.py`)."""
        if seed:
            seed_workspace(ws, self)
        return Launch(self.command(program), scrubbed_env(ws, env, path=python_path_env(self.python)))

    def warn(self) -> None:
        log.warning(WARNING)
        warnings.warn(WARNING, UnisolatedExecutionWarning, stacklevel=3)

    def run(
        self,
        script: str,
        workspace: Path,
        *,
        env: Mapping[str, str],
        limits: Limits,
        ro_binds: Sequence[Path] = (),
    ) -> ExecResult:
        self.warn()
        ws, _ = prepare_workspace(script, workspace, ro_binds)  # nothing is mounted: no isolation
        return run_launch(self.launch(ws, env=env, limits=limits), cwd=ws, limits=limits, backend=self.name,
                          isolated=False)
