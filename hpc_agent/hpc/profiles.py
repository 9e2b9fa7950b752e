"""Cluster profiles: what differs between sites (partition, account, qos, modules), kept out of model configs.

A profile lives in the config file under `clusters:` and is picked with `--profile NAME` (or the
`cluster_profile:` setting). Model configs say what a server needs (GPUs, memory, time); profiles say
where and how to ask for it at one site.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

_SBATCH_LINE = re.compile(r"^(?:#SBATCH\s+)?--([A-Za-z][A-Za-z0-9-]*)(?:[= ](.+))?$")


class ClusterProfile(BaseModel):
    """Site specifics for Slurm jobs. Every field is optional; an empty profile uses the cluster's defaults."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    partition: str | None = Field(None, description="partition for CPU jobs (benchmark shards)")
    gpu_partition: str | None = Field(None, description="partition for GPU jobs (model servers); default: partition")
    account: str | None = None
    qos: str | None = None
    constraint: str | None = Field(None, description="node features, e.g. 'a100|h100'")
    sbatch: list[str] = Field(default_factory=list,
                              description="extra #SBATCH lines, e.g. '--reservation=hack' or '#SBATCH --exclusive'")
    setup: list[str] = Field(default_factory=list,
                             description="shell lines run before the job, e.g. 'module load CUDA/12.4'")
    python: str | None = Field(None, description="python on the compute nodes (default: the submitting one); "
                                                 "it must see hpc-agent installed on a shared filesystem")

    @field_validator("sbatch")
    @classmethod
    def _sbatch_lines(cls, lines: list[str]) -> list[str]:
        for line in lines:
            if not _SBATCH_LINE.match(line.strip()):
                raise ValueError(f"{line!r} is not an sbatch option; write it as '--name=value' or '--flag'")
        return lines

    def additional_parameters(self) -> dict[str, Any]:
        """The `sbatch` lines as submitit's `slurm_additional_parameters` ({'reservation': 'hack', 'exclusive': True})."""
        params: dict[str, Any] = {}
        for line in self.sbatch:
            m = _SBATCH_LINE.match(line.strip())
            assert m is not None  # validated above
            params[m.group(1).replace("-", "_")] = m.group(2).strip() if m.group(2) else True
        return params
