"""Model serving: model configs (data), engines (llama.cpp, vLLM), server lifecycle and state files.

Public names load on first use, so `hpc-agent models` reads the configs without the engines and lifecycle.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hpc_agent.serve.configs import ModelConfig, get_model_config, load_model_config, model_configs
    from hpc_agent.serve.lifecycle import ManagedServer, ServerStartError, ServerState, free_port
    from hpc_agent.serve.session import DEFAULT_MODEL, open_backend, serve_foreground

_HOMES = {
    "ModelConfig": "configs", "get_model_config": "configs", "load_model_config": "configs",
    "model_configs": "configs",
    "ManagedServer": "lifecycle", "ServerStartError": "lifecycle", "ServerState": "lifecycle", "free_port": "lifecycle",
    "DEFAULT_MODEL": "session", "open_backend": "session", "serve_foreground": "session",
}
__all__ = [
    "DEFAULT_MODEL",
    "ManagedServer",
    "ModelConfig",
    "ServerStartError",
    "ServerState",
    "free_port",
    "get_model_config",
    "load_model_config",
    "model_configs",
    "open_backend",
    "serve_foreground",
]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"hpc_agent.serve.{_HOMES[name]}"), name)
