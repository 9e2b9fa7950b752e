"""Matplotlib's font list, seeded into each fresh workspace before the interpreter starts.

Gammapy imports matplotlib, and matplotlib builds its font list whenever HOME holds none: HOME is the run's
fresh workspace, so every cold run paid that (0.1-0.4 s on two cores). The list is built once per backend and
interpreter by a run of the harness's own (never read back from a script's workspace, which the script may
have changed), through the backend itself, so it lists the fonts the sandbox sees.

On disk: ``<cache>/sandbox-seed/<key>/fontlist-v<matplotlib version>.json``, ``<key>`` naming the backend and
interpreter; delete the folder to rebuild (after installing fonts, say). Without matplotlib, or when the build
fails, nothing is seeded and runs build their own list as before.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Callable, Mapping, Protocol, Sequence

from hpc_agent.config import cache_root
from hpc_agent.records import Limits

from ._exec import SCRIPT_NAME, Launch, run_launch

log = logging.getLogger(__name__)

BUILD_SCRIPT = "import matplotlib.font_manager\n"
FONT_CACHE = Path(".cache") / "matplotlib"  # under HOME, where matplotlib keeps its font list
_LOCK = threading.Lock()
_BUILT: dict[str, Path | None] = {}  # key -> the font list (None: its build failed in this process)


BUILD_LIMITS = Limits(wall_s=120, memory_mb=2048)


class Seedable(Protocol):
    """A backend whose sandbox sees the host's fonts: its name, interpreter and launch."""

    name: str
    python: str
    isolated: bool

    def launch(self, ws: Path, *, env: Mapping[str, str], limits: Limits, ro_binds: Sequence[Path] = (),
               program: Sequence[str] = ..., seed: bool = True) -> Launch: ...


def _build_through(backend: Seedable, scratch: Path) -> None:
    """Run BUILD_SCRIPT in a scratch workspace through the backend's own launch (unseeded)."""
    (scratch / SCRIPT_NAME).write_text(BUILD_SCRIPT)
    launch = backend.launch(scratch, env={}, limits=BUILD_LIMITS, seed=False)
    result = run_launch(launch, cwd=scratch, limits=BUILD_LIMITS, backend=backend.name, isolated=backend.isolated)
    if result.exit_code != 0:
        raise RuntimeError(f"exit {result.exit_code}: {result.stderr.strip()[-200:]}")


def seed_key(backend: str, python: str) -> str:
    """The interpreter as given (a venv's bin/python) and as resolved, for one backend."""
    text = f"{backend}\0{os.path.abspath(python)}\0{os.path.realpath(python)}"
    return f"{backend}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"


def _font_list(key: str, build: Callable[[Path], None]) -> Path | None:
    with _LOCK:
        if key in _BUILT:
            return _BUILT[key]
        folder = cache_root() / "sandbox-seed" / key
        found = sorted(folder.glob("fontlist-*.json")) if folder.is_dir() else []
        if not found:
            found = _build(folder, build)
        _BUILT[key] = found[-1] if found else None
        return _BUILT[key]


def _build(folder: Path, build: Callable[[Path], None]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".build-", dir=folder))
    try:
        build(scratch)
        made = sorted((scratch / FONT_CACHE).glob("fontlist-*.json"))
        for f in made:
            os.replace(f, folder / f.name)  # whole or not at all: a concurrent reader never sees half a file
        if not made:
            log.info("no matplotlib font list was built for %s: runs build their own", folder.name)
        return [folder / f.name for f in made]
    except Exception as exc:  # a seed is an optimisation: its failure never fails a run
        log.info("building the font list for %s failed (%s): runs build their own", folder.name, exc)
        return []
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        if not any(folder.iterdir()):  # nothing built: no empty folder left behind
            folder.rmdir()


def seed_workspace(ws: Path, backend: Seedable) -> None:
    """Copy the font list of `backend`'s interpreter into `ws` (HOME of the run), building it first if this is
    the first run. A workspace that already has a font folder keeps it."""
    target = ws / FONT_CACHE
    if target.exists():
        return
    font_list = _font_list(seed_key(backend.name, backend.python), lambda scratch: _build_through(backend, scratch))
    if font_list is not None and font_list.is_file():
        target.mkdir(parents=True)
        shutil.copyfile(font_list, target / font_list.name)
