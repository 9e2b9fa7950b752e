"""Batch work on clusters: executors (Slurm, local, debug), site profiles, and the jobs hpc-agent submitted.

Submitting lives in `hpc_agent.hpc.submit` (re-exported by `hpc_agent.api`); this package's top level
stays free of settings imports so that `hpc_agent.config` can use the profile model.
"""

from hpc_agent.hpc.executor import CLUSTERS, ClusterKind, Resources, default_cluster, make_executor
from hpc_agent.hpc.profiles import ClusterProfile

__all__ = ["CLUSTERS", "ClusterKind", "ClusterProfile", "Resources", "default_cluster", "make_executor"]
