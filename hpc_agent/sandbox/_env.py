"""The scrubbed environment every sandboxed script sees.

Nothing is inherited from the host: API keys, ``HPC_AGENT_*`` settings, proxies and the like stay outside.
The child gets a fixed base (PATH, HOME=workspace, TMPDIR, locale, headless matplotlib, unbuffered
Python) plus the contract variables the caller publishes (``env``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from hpc_agent.errors import UsageError

SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def base_env(workspace: Path, *, path: str = SYSTEM_PATH) -> dict[str, str]:
    return {
        "PATH": path,
        "HOME": str(workspace),
        "TMPDIR": "/tmp",
        "LANG": "C.UTF-8",
        "MPLBACKEND": "Agg",
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


def python_path_env(python: str) -> str:
    """PATH whose first entry is the interpreter's own bin directory (a venv's ``bin`` stays a venv)."""
    parent = os.path.dirname(python)
    return f"{parent}:{SYSTEM_PATH}" if parent and parent not in SYSTEM_PATH.split(":") else SYSTEM_PATH


def scrubbed_env(workspace: Path, env: Mapping[str, str], *, path: str = SYSTEM_PATH) -> dict[str, str]:
    """The complete child environment: the fixed base, then the caller's contract variables."""
    out = base_env(workspace, path=path)
    for key, value in env.items():
        if not isinstance(key, str) or not key or "=" in key or "\0" in key:
            raise UsageError(f"invalid environment variable name for the sandbox: {key!r}")
        if not isinstance(value, str) or "\0" in value:
            raise UsageError(f"environment variable {key} must be a string without NUL bytes")
        out[key] = value
    return out
