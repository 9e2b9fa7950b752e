"""Apptainer images as data: `containers/NAME.def`; `build_command` says how to build one."""

from __future__ import annotations

import shutil
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
