"""hpc-agent: write, run, check and repair Gammapy analysis scripts with LLMs, on HPC clusters."""

from hpc_agent.api import doctor, run
from hpc_agent.config import Backend, Settings, load_settings
from hpc_agent.errors import ConfigError, HpcAgentError, InfrastructureError, UsageError
from hpc_agent.records import Attempt, ExecResult, Limits, RunResult, Usage, Validation

__all__ = [
    "Attempt",
    "Backend",
    "ConfigError",
    "ExecResult",
    "HpcAgentError",
    "InfrastructureError",
    "Limits",
    "RunResult",
    "Settings",
    "Usage",
    "UsageError",
    "Validation",
    "doctor",
    "load_settings",
    "run",
]
