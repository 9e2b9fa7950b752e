"""Shared fixtures: real data, an isolated configuration, the scripted OpenAI-compatible test double."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = Path(__file__).parent / "scripts"
# Read once, before the autouse fixture hides PHOTON_STORAGE from the code under test.
_PHOTON_STORAGE = os.environ.get("PHOTON_STORAGE")


def _data_root() -> Path:
    root = Path(_PHOTON_STORAGE or REPO.parent / "shared" / "data").resolve()
    if not (root / "hess-dl3-dr1" / "obs-index.fits.gz").is_file():
        pytest.exit(f"H.E.S.S. DL3 DR1 not found under {root}: set PHOTON_STORAGE to the data root", 2)
    return root


@pytest.fixture(scope="session")
def data_root() -> Path:
    return _data_root()


@pytest.fixture(autouse=True)
def isolated_config(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test sees no user config, no HPC_AGENT_* variables and no PHOTON_STORAGE from the shell."""
    home = tmp_path_factory.mktemp("xdg")
    for key in list(os.environ):
        if key.startswith("HPC_AGENT_") or key == "PHOTON_STORAGE":
            monkeypatch.delenv(key)
    monkeypatch.setenv("HPC_AGENT_CONFIG", str(home / "config.yaml"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    return home / "config.yaml"


def script(name: str) -> str:
    return (SCRIPTS / name).read_text()
