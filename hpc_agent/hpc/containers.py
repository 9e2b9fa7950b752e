"""Apptainer images as data: `containers/NAME.def`; `build_command` says how to build one;
`plan_container_build` and `build_container` are what `hpc-agent container build` (or any caller) does."""

from __future__ import annotations

import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from hpc_agent._shipped import shipped
from hpc_agent.errors import UsageError

REPO_CONTAINERS = shipped("containers")


def definitions() -> dict[str, Path]:
    return {p.stem: p for p in sorted(REPO_CONTAINERS.glob("*.def"))}


def summary(path: Path) -> str:
    """The definition's first comment line (what the image is for)."""
    for line in path.read_text().splitlines():
        if line.startswith("#"):
            return line.lstrip("# ").strip()
    return ""


def build_command(name: str, out: Path | None = None, *, fakeroot: bool | None = None,
                  binary: str = "apptainer") -> list[str]:
    """`apptainer build [--fakeroot] OUT.sif containers/NAME.def`; fakeroot when not root (unprivileged builds)."""
    defs = definitions()
    if name not in defs:
        raise UsageError(f"unknown container {name!r}; known: {', '.join(defs) or 'none'} (containers/*.def)")
    import os

    fakeroot = (os.geteuid() != 0) if fakeroot is None else fakeroot
    target = out or Path(f"{name}.sif")
    return [binary, "build", *(["--fakeroot"] if fakeroot else []), str(target), str(defs[name])]


def apptainer_binary() -> str | None:
    return shutil.which("apptainer") or shutil.which("singularity")


@dataclass(frozen=True)
class ContainerBuild:
    """How to build one image here: the command, and whether it can run on this machine (apptainer present);
    where it cannot, the command is what to run on a node that has it."""

    name: str
    argv: list[str]
    runnable: bool

    @property
    def command(self) -> str:
        return shlex.join(self.argv)


def plan_container_build(name: str, out: Path | None = None) -> ContainerBuild:
    """The build of containers/NAME.def into `out` (default NAME.sif) with this machine's apptainer, if any."""
    binary = apptainer_binary()
    return ContainerBuild(name, build_command(name, out, binary=binary or "apptainer"), binary is not None)


def build_container(build: ContainerBuild) -> int:
    """Run the build; its exit code. Without apptainer here, a UsageError saying where to run it instead."""
    if not build.runnable:
        raise UsageError(f"apptainer is not installed here: run `{build.command}` on a node that has it "
                         "(`module load apptainer` on most clusters)")
    return subprocess.run(build.argv).returncode
