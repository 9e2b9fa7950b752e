"""Bubblewrap backend: every namespace unshared, the host read-only, no network, no capabilities.

Layout inside the sandbox::

    /            host root, read-only (recursively)
    /dev /proc   minimal devtmpfs, the sandbox's own procfs (new PID namespace)
    /tmp /run    empty tmpfs (host sockets and temp files are out of reach)
    $HOME        empty tmpfs (the invoking user's home: keys, config, caches)
      + read-only re-binds of what the interpreter needs there (venv, pyenv prefix, site-packages)
    data roots   read-only binds (``ro_binds``)
    workspace    read-write bind, the working directory and $HOME of the script
    the harness's own ``.pth`` files (an editable install's finder): masked by an empty file, so generated
    code cannot import the harness, and the interpreter does not load that finder (~9 ms per start)
"""

from __future__ import annotations

import functools
import os
import pwd
import shutil
import site
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from importlib.metadata import distributions
from pathlib import Path

from hpc_agent.errors import SandboxUnavailableError, UsageError
from hpc_agent.records import ExecResult, Limits

from ._env import python_path_env, scrubbed_env
from ._exec import MIB, SCRIPT_NAME, Launch, prepare_workspace, run_launch
from ._seed import seed_workspace



HARNESS_DISTRIBUTION = "hpc-agent"


@functools.lru_cache(maxsize=1)
def harness_pth_files() -> tuple[Path, ...]:
    """The ``.pth`` files the harness's own installation put in site-packages (none for a plain install)."""
    sites = [p for p in site.getsitepackages() if os.path.isdir(p)]  # not a source tree's egg-info in the cwd
    files = [f for d in distributions(name=HARNESS_DISTRIBUTION, path=sites) for f in d.files or []]
    found = (Path(str(f.locate())).resolve() for f in files if f.suffix == ".pth")
    return tuple(sorted({p for p in found if p.is_file()}))


def _under(path: Path, parent: Path) -> bool:
    return path == parent or parent in path.parents


def _home_dirs() -> list[Path]:
    homes = {os.environ.get("HOME", ""), os.path.expanduser("~")}
    try:
        homes.add(pwd.getpwuid(os.getuid()).pw_dir)
    except KeyError:
        pass
    out = []
    for h in homes:
        if h and os.path.isdir(h):
            p = Path(h).resolve()
            if p != Path("/"):
                out.append(p)
    return sorted(set(out))


def _pth_dirs(site_dir: Path) -> Iterable[Path]:
    """Directories added by plain (non-``import``) lines of ``*.pth`` files, e.g. editable installs."""
    try:
        pths = list(site_dir.glob("*.pth"))
    except OSError:
        return
    for pth in pths:
        try:
            lines = pth.read_text(errors="replace").splitlines()
        except OSError:
            continue
        for line in lines:
            line = line.strip()
            if line and not line.startswith(("#", "import ", "import\t")):
                p = (site_dir / line) if not os.path.isabs(line) else Path(line)
                if p.is_dir():
                    yield p


def interpreter_paths(python: str) -> list[Path]:
    """Directories the interpreter needs to start and import its packages (resolved, deduplicated; worked
    out once per interpreter and process: every run's argv needs them).

    Follows the symlink chain of ``python`` (a venv's ``bin/python`` -> pyenv's real binary), adds each
    prefix, a venv's ``pyvenv.cfg`` home, and — when ``python`` is this very interpreter — ``sys.prefix``,
    ``sys.base_prefix`` and the site-packages directories (plus what their ``.pth`` files add).
    """
    return list(_interpreter_paths(python))


@functools.lru_cache(maxsize=8)
def _interpreter_paths(python: str) -> tuple[Path, ...]:
    exe = python if os.path.isabs(python) else shutil.which(python)
    if not exe:
        raise UsageError(f"python interpreter not found: {python!r}")
    found: list[Path] = []
    hop = Path(exe)
    for _ in range(40):  # each hop of the symlink chain
        bindir = hop.parent.resolve()
        found.append(bindir.parent if bindir.name == "bin" else bindir)
        cfg = bindir.parent / "pyvenv.cfg"
        if cfg.is_file():
            for line in cfg.read_text(errors="replace").splitlines():
                key, _, value = line.partition("=")
                if key.strip() == "home" and value.strip():
                    found.append(Path(value.strip()).resolve().parent)
        if not hop.is_symlink():
            break
        hop = bindir / os.readlink(hop)
    real = Path(exe).resolve()
    found.append(real.parent.parent if real.parent.name == "bin" else real.parent)
    if real == Path(sys.executable).resolve():
        sites = [Path(p) for p in site.getsitepackages()]
        if site.ENABLE_USER_SITE:
            sites.append(Path(site.getusersitepackages()))
        for prefix in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix):
            found.append(Path(prefix))
        for s in sites:
            if s.is_dir():
                found.append(s)
                found.extend(_pth_dirs(s))
    out: list[Path] = []
    for p in sorted({p.resolve() for p in found if p.exists()}, key=lambda p: len(p.parts)):
        if not any(_under(p, q) for q in out):
            out.append(p)
    return tuple(out)


@functools.lru_cache(maxsize=8)
def _probe(binary: str) -> tuple[bool, str]:
    path = shutil.which(binary)
    if not path:
        return False, f"{binary} not found on PATH: install bubblewrap (e.g. apt-get install bubblewrap)"
    try:
        proc = subprocess.run(
            [path, "--unshare-all", "--die-with-parent", "--cap-drop", "ALL", "--ro-bind", "/", "/",
             "--dev", "/dev", "--proc", "/proc", "--", "/bin/true"],
            capture_output=True, timeout=20, env={"PATH": "/usr/bin:/bin"},
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"{path} failed to run: {exc}"
    if proc.returncode != 0:
        msg = proc.stderr.decode(errors="replace").strip().splitlines()
        hint = "; unprivileged user namespaces may be disabled (kernel.unprivileged_userns_clone=1)"
        return False, f"{path} cannot create a sandbox: {msg[-1] if msg else proc.returncode}{hint}"
    return True, f"{path} works (namespaces: all unshared, network none)"


class BwrapSandbox:
    name = "bwrap"
    isolated = True

    def __init__(self, python: str | None = None, binary: str = "bwrap", hide: Sequence[Path] = ()):
        self.python = python or sys.executable
        self.binary = binary
        self.hide = tuple(Path(p) for p in hide)  # extra host paths to mask with an empty tmpfs

    def available(self) -> tuple[bool, str]:
        return _probe(self.binary)

    def command(
        self, workspace: Path, *, env: Mapping[str, str], limits: Limits, ro_binds: Sequence[Path] = (),
        program: Sequence[str] = (SCRIPT_NAME,), source: Path | None = None,
    ) -> list[str]:
        """The full bwrap argv (without the status fd) for running ``script.py`` (``<python> <program>``) in
        ``workspace``; ``source``: the host folder bound there (default: the workspace itself)."""
        ws = Path(workspace).resolve()
        src = Path(source).resolve() if source is not None else ws
        binary = shutil.which(self.binary) or self.binary
        tmpfs_size = str(limits.file_size_mb * MIB)
        argv = [binary, "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
                "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
        masked = [Path("/tmp"), Path("/run"), *_home_dirs(), *(p.resolve() for p in self.hide)]
        for m in dict.fromkeys(masked):
            if m.is_dir():
                argv += ["--size", tmpfs_size, "--tmpfs", str(m)]
        for p in interpreter_paths(self.python):
            if any(_under(p, m) for m in masked):
                argv += ["--ro-bind", str(p), str(p)]
        for d in ro_binds:
            argv += ["--ro-bind", str(d), str(d)]
        if Path(self.python).resolve() == Path(sys.executable).resolve():  # the harness's own environment
            for pth in harness_pth_files():
                argv += ["--ro-bind", os.devnull, str(pth)]
        argv += ["--bind", str(src), str(ws), "--chdir", str(ws), "--clearenv"]
        for key, value in scrubbed_env(ws, env, path=python_path_env(self.python)).items():
            argv += ["--setenv", key, value]
        return argv + ["--", self.python, *program]

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
        ws, binds = prepare_workspace(script, workspace, ro_binds)
        return run_launch(self.launch(ws, env=env, limits=limits, ro_binds=binds), cwd=ws, limits=limits,
                          backend=self.name, isolated=True)

    def launch(self, ws: Path, *, env: Mapping[str, str], limits: Limits, ro_binds: Sequence[Path] = (),
               program: Sequence[str] = (SCRIPT_NAME,), seed: bool = True, source: Path | None = None) -> Launch:
        """bwrap running ``<python> <program>`` in ``ws`` (created, resolved; binds resolved). bwrap reports
        the script's exit on a status fd: without it, bwrap itself failed (not the script). `seed`: copy the
        font list into the workspace first (`_seed.py`). `source`: the host folder seen at ``ws`` inside
        (default: ``ws`` itself; a warm sandbox started beside another for the same workspace, `warm.py`)."""
        if seed:
            seed_workspace(source or ws, self)
        argv = self.command(ws, env=env, limits=limits, ro_binds=ro_binds, program=program, source=source)
        return Launch(argv, scrubbed_env(ws, env), proc_overhead=2, status_fd_flag="--json-status-fd")
