"""Apptainer backend: ``apptainer exec --containall --no-home --cleanenv --network none`` on an image.

The container runs as an ordinary host process tree, so the shared limits machinery (cgroups, rlimits,
session kill, output caps) applies unchanged. The argv is built by :func:`apptainer_argv` (pure, tested).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

from hpc_agent.errors import SandboxUnavailableError, UsageError
from hpc_agent.records import ExecResult, Limits

from ._env import SYSTEM_PATH, scrubbed_env
from ._exec import SCRIPT_NAME, Launch, prepare_workspace, run_launch

# Apptainer's starter and Go runtime threads count against pids.max too
PROC_OVERHEAD = 64


def _env_item(key: str, value: str) -> str:
    """One ``--env`` value; the flag is parsed as CSV, so quote items holding ``,`` or ``"``."""
    item = f"{key}={value}"
    if any(c in item for c in ',"\n'):
        item = '"' + item.replace('"', '""') + '"'
    return item


def _bind_path(p: Path) -> str:
    s = str(p)
    if ":" in s or "," in s:
        raise UsageError(f"apptainer cannot bind a path containing ':' or ',': {s}")
    return s


def apptainer_argv(
    image: str | Path,
    workspace: Path,
    *,
    env: Mapping[str, str],
    ro_binds: Sequence[Path] = (),
    python: str = "python3",
    binary: str = "apptainer",
    program: Sequence[str] = (SCRIPT_NAME,),
    source: Path | None = None,
) -> list[str]:
    """``apptainer exec`` argv running ``python script.py`` (``python <program>``) in ``workspace`` with
    ``env`` exactly; ``source``: the host folder bound there (default: the workspace itself)."""
    ws = _bind_path(Path(workspace))
    src = _bind_path(Path(source)) if source is not None else ws
    argv = [binary, "exec", "--containall", "--no-home", "--cleanenv", "--net", "--network", "none"]
    for d in ro_binds:
        bound = _bind_path(Path(d))
        argv += ["--bind", f"{bound}:{bound}:ro"]
    argv += ["--bind", f"{src}:{ws}", "--pwd", ws]
    for key, value in env.items():
        argv += ["--env", _env_item(key, value)]
    return argv + [str(image), python, *program]


class ApptainerSandbox:
    name = "apptainer"
    isolated = True

    def __init__(self, image: str | Path | None = None, python: str = "python3", binary: str = "apptainer"):
        self.image = Path(image) if image else None
        self.python = python
        self.binary = binary

    def _binary_path(self) -> str | None:
        return self.binary if os.path.isabs(self.binary) and os.access(self.binary, os.X_OK) else shutil.which(
            self.binary
        )

    def available(self) -> tuple[bool, str]:
        path = self._binary_path()
        if not path:
            return False, f"{self.binary} not found on PATH: install Apptainer or load its module"
        if self.image is None:
            return False, "no container image: pass image=/path/to/gammapy.sif"
        if not self.image.is_file():
            return False, f"container image not found: {self.image}"
        return True, f"{path} with image {self.image}"

    def run(
        self,
        script: str,
        workspace: Path,
        *,
        env: Mapping[str, str],
        limits: Limits,
        ro_binds: Sequence[Path] = (),
    ) -> ExecResult:
        ok, why = self.available()
        if not ok:
            raise SandboxUnavailableError(why)
        assert self.image is not None  # available() said so
        ws, binds = prepare_workspace(script, workspace, ro_binds)
        return run_launch(self.launch(ws, env=env, limits=limits, ro_binds=binds), cwd=ws, limits=limits,
                          backend=self.name, isolated=True)

    def launch(self, ws: Path, *, env: Mapping[str, str], limits: Limits, ro_binds: Sequence[Path] = (),
               program: Sequence[str] = (SCRIPT_NAME,), source: Path | None = None) -> Launch:
        """``apptainer exec ... <python> <program>`` in ``ws`` (created, resolved; binds resolved); `source`:
        the host folder seen at ``ws`` inside (default: ``ws`` itself)."""
        inner = scrubbed_env(ws, env, path=SYSTEM_PATH)
        assert self.image is not None  # available() said so before any launch
        argv = apptainer_argv(self.image, ws, env=inner, ro_binds=ro_binds, python=self.python,
                              binary=self._binary_path() or self.binary, program=program, source=source)
        # the apptainer process itself (on the host) gets a minimal environment, nothing secret
        host_env = {"PATH": SYSTEM_PATH, "LANG": "C.UTF-8", "HOME": os.path.expanduser("~")}
        return Launch(argv, host_env, proc_overhead=PROC_OVERHEAD)
