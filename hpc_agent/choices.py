"""The names a user picks from, spelled once: the Literal types of settings and records, the Click choices and
the "choose one of" messages all derive from here, so adding a sandbox or a cluster kind is one edit.

A leaf: imports nothing of the package (the CLI, Settings and the sandboxes all read it at start-up).
"""

from __future__ import annotations

from typing import Literal, get_args

# the model config used when none is named: the strongest model that runs on a 2-core CPU (the 0.5B solves nothing)
DEFAULT_MODEL = "qwen2.5-coder-1.5b"

SandboxName = Literal["bwrap", "apptainer", "process"]
SANDBOXES: tuple[SandboxName, ...] = get_args(SandboxName)

ReasoningEffort = Literal["minimal", "low", "medium", "high"]
REASONING_EFFORTS: tuple[ReasoningEffort, ...] = get_args(ReasoningEffort)

ClusterKind = Literal["slurm", "local", "debug"]
CLUSTERS: tuple[ClusterKind, ...] = get_args(ClusterKind)

# a sweep dimension switched off, on, or both (each cell run both ways): `bench --rag`, `--repairs`
Switch = Literal["off", "on", "both"]
SWITCHES: tuple[Switch, ...] = get_args(Switch)


def switch_values(choice: str) -> tuple[str, ...]:
    """`both` -> ("off", "on"); `off`/`on` -> itself: the values a sweep runs for one switch."""
    return ("off", "on") if choice == "both" else (choice,)


def switch_choice(values: tuple[str, ...]) -> str:
    """The inverse of `switch_values`: what the command line shows as the default of a sweep option."""
    return "both" if set(values) == {"off", "on"} else values[0]
