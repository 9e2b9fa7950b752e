"""The installed Gammapy's source distribution: where its tutorials and user guide come from, version-exact.

On disk: `<cache>/sdist/gammapy-<version>.tar.gz`, fetched once through pip (`pip download --no-deps
--no-binary gammapy gammapy==<version>`) and kept. The archive is read in place, never unpacked, so no
member path can write anywhere. It is used only when its PKG-INFO names the installed version; a cached
archive that does not is fetched again. Without a reachable package index the caller gets the reason (a
result, not an exception) and builds without it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

# what the corpus reads from the archive: gallery scripts, reStructuredText, and the scripts rst includes
_WANTED = (("examples/", ".py"), ("docs/", ".rst"), ("docs/", ".py"))
PIP_TIMEOUT_S = 600.0  # the download plus pip's metadata build of the sdist (seconds on a good link)


@dataclass(frozen=True)
class Sdist:
    version: str
    path: Path
    files: dict[str, str]  # member text by path relative to the sdist root (`examples/tutorials/data/hess.py`)

    @property
    def label(self) -> str:
        """How chunk sources name it: `gammapy-2.1-sdist`."""
        return f"gammapy-{self.version}-sdist"


@dataclass(frozen=True)
class SdistMissing:
    reason: str  # one line: why the tutorials and user guide are not in this build


def sdist_path(cache: Path, version: str) -> Path:
    return cache / "sdist" / f"gammapy-{version}.tar.gz"


def _pkg_version(archive: tarfile.TarFile) -> str | None:
    """`Version:` of the top-level PKG-INFO (`gammapy-2.1/PKG-INFO`)."""
    for member in archive.getmembers():
        if member.isfile() and member.name.count("/") == 1 and member.name.endswith("/PKG-INFO"):
            handle = archive.extractfile(member)
            text = handle.read().decode("utf-8", "replace") if handle else ""
            for line in text.splitlines():
                if line.startswith("Version:"):
                    return line.partition(":")[2].strip()
    return None


def read_sdist(path: Path, version: str) -> Sdist | SdistMissing:
    """The archive's tutorials and docs, if it is a readable Gammapy sdist of `version`."""
    try:
        with tarfile.open(path, "r:gz") as archive:
            found = _pkg_version(archive)
            if found != version:
                return SdistMissing(f"{path}: PKG-INFO says version {found}, Gammapy {version} is installed")
            files: dict[str, str] = {}
            for member in archive.getmembers():
                root, _, rel = member.name.partition("/")
                if member.isfile() and any(rel.startswith(d) and rel.endswith(s) for d, s in _WANTED):
                    handle = archive.extractfile(member)
                    if handle is not None:
                        files[rel] = handle.read().decode("utf-8", "replace")
    except (OSError, tarfile.TarError, EOFError) as exc:
        return SdistMissing(f"{path}: unreadable ({exc.__class__.__name__}: {exc})")
    return Sdist(version, path, dict(sorted(files.items())))


def _pip_download(version: str, into: Path) -> str | None:
    """Run pip; None on success, else the last line pip said (why it failed)."""
    env = dict(os.environ)
    env.setdefault("PIP_RETRIES", "1")  # offline should say so in seconds, not after pip's five backoffs
    env.setdefault("PIP_TIMEOUT", "15")
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", "gammapy", f"gammapy=={version}",
           "-d", str(into), "--disable-pip-version-check", "--no-input"]
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=PIP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return f"pip download timed out after {PIP_TIMEOUT_S:.0f} s"
    except OSError as exc:
        return f"pip could not start ({exc})"
    if res.returncode == 0:
        return None
    lines = [line.strip() for line in (res.stderr + res.stdout).splitlines() if line.strip()]
    return lines[-1] if lines else f"pip exited with {res.returncode}"


def fetch_sdist(version: str, cache: Path, progress: Callable[[str], None] = lambda _m: None) -> Sdist | SdistMissing:
    """The cached sdist of `version`, downloaded through pip when absent or not that version."""
    target = sdist_path(cache, version)
    if target.is_file():
        cached = read_sdist(target, version)
        if isinstance(cached, Sdist):
            return cached
    progress(f"fetching the gammapy {version} sdist (tutorials, user guide) with pip into {target.parent}")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".download-") as tmp:
        failed = _pip_download(version, Path(tmp))
        if failed is not None:
            return SdistMissing(f"pip download of the gammapy {version} sdist failed: {failed}")
        got = sorted(Path(tmp).glob("gammapy-*.tar.gz"))
        if not got:
            return SdistMissing(f"pip download of gammapy {version} gave no .tar.gz sdist")
        fresh = read_sdist(got[0], version)
        if isinstance(fresh, SdistMissing):
            return fresh
        shutil.move(str(got[0]), target)  # same filesystem: a rename, so readers never see half a file
    return read_sdist(target, version)
