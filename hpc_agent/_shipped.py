"""Where the files that ship with the tool are: model configs, task specs and references, container definitions.

Their human-facing homes are the top-level folders of a checkout (`model_configs/`, `benchmarks/`,
`containers/`). A wheel carries the same files as package data under `hpc_agent/_data/` (mapped at build
time in `pyproject.toml`, one copy on disk), so an install into a shared environment or a container image
finds them too.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

_CHECKOUT = Path(__file__).resolve().parents[1]


def shipped(folder: str) -> Path:
    """`model_configs`, `benchmarks` or `containers`: the checkout's folder when running from one, else the
    installed package's copy."""
    checkout = _CHECKOUT / folder
    if (_CHECKOUT / "pyproject.toml").is_file() and checkout.is_dir():
        return checkout
    return Path(str(files("hpc_agent"))) / "_data" / folder
