"""One executor abstraction over submitit's backends: `slurm` (sbatch), `local` (background processes), `debug`
(in this process). Portable resources are translated here; site specifics come from a ClusterProfile.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpc_agent.choices import CLUSTERS, ClusterKind
from hpc_agent.errors import UsageError

if TYPE_CHECKING:  # a pydantic model: `submit bench --help` reads this module's defaults without loading it
    from hpc_agent.hpc.profiles import ClusterProfile


@dataclass(frozen=True)
class Placement:
    """Where and how long: the cluster kind, the site profile and the wall-clock limit."""

    cluster: ClusterKind | None = None  # None: slurm when sbatch is on PATH, else local
    profile: str | None = None          # a name under `clusters:` in the config file
    time_min: int | None = None


@dataclass(frozen=True)
class ShardPlan:
    """How a sweep is split into jobs; `submit bench`'s `--shards`, `--cpus`, `--mem-gb` defaults are these."""

    shards: int = 1
    cpus_per_task: int = 2
    mem_gb: float = 8
    after_serve: str | None = None  # a `submit serve` job id: shards wait for its server instead of starting one


def default_cluster() -> ClusterKind:
    """Slurm when its client is on PATH, else background processes on this machine."""
    return "slurm" if shutil.which("sbatch") else "local"


@dataclass(frozen=True)
class Resources:
    """What one job asks for. `timeout_min` is always set: submitit's local default kills jobs after 2 minutes."""

    timeout_min: int = 60
    cpus_per_task: int = 2
    mem_gb: float = 8
    gpus_per_node: int = 0
    job_name: str = "hpc-agent"
    array_parallelism: int = 64
    extra: dict[str, Any] = field(default_factory=dict)  # slurm_additional_parameters beyond the profile's


def _check_slurm() -> None:
    missing = [c for c in ("sbatch", "squeue", "scancel") if not shutil.which(c)]
    if missing:
        raise UsageError(f"--cluster slurm: {', '.join(missing)} not on PATH; load the Slurm module, use "
                         "--cluster local, or start a dev cluster with slurm/dev-cluster.sh up")


def make_executor(cluster: ClusterKind, folder: Path, resources: Resources,
                  profile: ClusterProfile | None = None) -> Any:
    """A configured `submitit.AutoExecutor`; logs and pickles go to `folder/%j`."""
    import submitit

    if cluster not in CLUSTERS:
        raise UsageError(f"unknown cluster {cluster!r}; choose one of {', '.join(CLUSTERS)}")
    if cluster == "slurm":
        _check_slurm()
    from hpc_agent.hpc.profiles import ClusterProfile

    profile = profile or ClusterProfile()
    kwargs: dict[str, Any] = {}
    if cluster == "slurm" and profile.python:
        kwargs["slurm_python"] = profile.python
    executor = submitit.AutoExecutor(folder=str(folder / "%j"), cluster=cluster, **kwargs)
    params: dict[str, Any] = {
        "timeout_min": resources.timeout_min,
        "cpus_per_task": resources.cpus_per_task,
        "mem_gb": resources.mem_gb,
        "name": resources.job_name,
    }
    if resources.gpus_per_node:
        params["gpus_per_node"] = resources.gpus_per_node
    if cluster == "slurm":
        # GPU jobs go to the profile's gpu_partition
        partition = (profile.gpu_partition or profile.partition) if resources.gpus_per_node else profile.partition
        for key, value in (("partition", partition), ("account", profile.account), ("qos", profile.qos),
                           ("constraint", profile.constraint)):
            if value:
                params[f"slurm_{key}"] = value
        extra = {**profile.additional_parameters(), **resources.extra}
        if extra:
            params["slurm_additional_parameters"] = extra
        if profile.setup:
            params["slurm_setup"] = list(profile.setup)
        params["slurm_array_parallelism"] = resources.array_parallelism
    elif cluster == "local" and profile.setup:
        params["local_setup"] = list(profile.setup)
    executor.update_parameters(**params)
    return executor


def in_slurm_job() -> bool:
    return "SLURM_JOB_ID" in os.environ


def sbatch_text(executor: Any, command: str = "CMD") -> str:
    """The batch script a Slurm executor would submit for `command` (what a dry run shows, what the golden
    files pin). submitit writes it in a private method; this is the one place that calls it."""
    return str(executor._executor._make_submission_file_text(command, "uid"))
