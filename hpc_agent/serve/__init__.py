"""Model serving: model configs (data), engines (llama.cpp, vLLM), server lifecycle and state files."""

from hpc_agent.serve.configs import ModelConfig, get_model_config, load_model_config, model_configs
from hpc_agent.serve.lifecycle import ManagedServer, ServerStartError, ServerState, free_port
from hpc_agent.serve.session import DEFAULT_MODEL, open_backend, serve_foreground

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
