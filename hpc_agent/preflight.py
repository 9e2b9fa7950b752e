"""What a run or a sweep is given, checked before anything acts (a model call, a server start, a file write).

Each check raises a `UsageError` whose one line names the input and the fix; nothing is written before
they all pass, and nothing a user made before is overwritten.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hpc_agent.data import INDEX_FILES, RELEASE
from hpc_agent.errors import UsageError

RUN_FILE = "run.json"
SWEEP_FILE = "manifest.json"
# Sweep options that make cells incomparable when they differ inside one folder (models, tasks, rag,
# repairs and candidates are part of each cell's id and may be added to a sweep).
SWEEP_FIXED = ("attempts",)


def check_prompt(prompt: str) -> str:
    if not prompt or not prompt.strip():
        raise UsageError("the prompt is empty: say what to analyse, e.g. hpc-agent run \"How many H.E.S.S. DR1 "
                         "observations point within 2 degrees of the Crab Nebula?\"")
    return prompt


def check_release(data_root: Path) -> Path:
    """The data root holds the H.E.S.S. DL3 DR1 release (its index files), which every run reads."""
    folder = data_root / RELEASE
    missing = [f for f in INDEX_FILES if not (folder / f).is_file()]
    if missing:
        raise UsageError(f"data root {data_root}: no {RELEASE} release ({folder / missing[0]} is missing); "
                         f"fetch it with `hpc-agent data fetch {RELEASE} --to {data_root}`, or point "
                         "PHOTON_STORAGE / --data-root at the folder holding it")
    return data_root


def check_run_out(out: Path) -> Path:
    """A run's bundle folder: new, or an empty folder; never a file or an earlier run (it would be lost)."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file; give a folder path for the run's bundle")
    if (out / RUN_FILE).exists():
        raise UsageError(f"--out {out} holds an earlier run ({RUN_FILE}); choose a new folder or remove that one")
    return out


def check_sweep_out(out: Path, options: dict[str, Any]) -> Path:
    """A sweep folder: new, or the same sweep to resume or extend (same attempt budget); never a file,
    a run's bundle, or a sweep whose cells were run under other fixed options."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file; give a folder path for the sweep")
    if (out / RUN_FILE).exists():
        raise UsageError(f"--out {out} holds a run's bundle ({RUN_FILE}), not a sweep; choose another folder")
    try:
        earlier = json.loads((out / SWEEP_FILE).read_text()).get("options", {})
    except (OSError, ValueError, AttributeError):
        return out
    for key in SWEEP_FIXED:
        if key in earlier and key in options and earlier[key] != options[key]:
            raise UsageError(f"--out {out} holds a sweep run with --{key} {earlier[key]}, this one has "
                             f"{options[key]}: resume it with --{key} {earlier[key]} or choose another folder")
    return out
