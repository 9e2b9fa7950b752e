"""hpc-agent: write, run, check and repair Gammapy analysis scripts with LLMs, on HPC clusters.

The public names are loaded on first use, so `import hpc_agent.config` (and `hpc-agent --help`) does not
pay for the OpenAI client, Gammapy or Polars.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hpc_agent.api import doctor, run
    from hpc_agent.config import Backend, Settings, load_settings
    from hpc_agent.errors import ConfigError, HpcAgentError, InfrastructureError, UsageError
    from hpc_agent.records import Attempt, ExecResult, Limits, RunResult, Usage, Validation

_HOMES = {
    "doctor": "api", "run": "api",
    "Backend": "config", "Settings": "config", "load_settings": "config",
    "ConfigError": "errors", "HpcAgentError": "errors", "InfrastructureError": "errors", "UsageError": "errors",
    "Attempt": "records", "ExecResult": "records", "Limits": "records", "RunResult": "records", "Usage": "records",
    "Validation": "records",
}
__all__ = ["Attempt", "Backend", "ConfigError", "ExecResult", "HpcAgentError", "InfrastructureError", "Limits",
           "RunResult", "Settings", "Usage", "UsageError", "Validation", "doctor", "load_settings", "run"]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'hpc_agent' has no attribute {name!r}")
    return getattr(import_module(f"hpc_agent.{_HOMES[name]}"), name)
