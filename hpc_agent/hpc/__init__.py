"""Batch work on clusters: executors (Slurm, local, debug), site profiles, and the jobs hpc-agent submitted.

Submitting lives in `hpc_agent.hpc.submit` (re-exported by `hpc_agent.api`); this package's top level
stays free of settings imports so that `hpc_agent.config` can use the profile model. Its public names load
on first use, so the command line's `hpc_agent.hpc.cli` starts without pydantic.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hpc_agent.hpc.executor import CLUSTERS, ClusterKind, Resources, default_cluster, make_executor
    from hpc_agent.hpc.profiles import ClusterProfile

_HOMES = {"CLUSTERS": "executor", "ClusterKind": "executor", "Resources": "executor",
          "default_cluster": "executor", "make_executor": "executor", "ClusterProfile": "profiles"}
__all__ = ["CLUSTERS", "ClusterKind", "ClusterProfile", "Resources", "default_cluster", "make_executor"]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"hpc_agent.hpc.{_HOMES[name]}"), name)
