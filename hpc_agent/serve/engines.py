"""Engines: the command line that serves a model config (llama.cpp on CPUs, vLLM on GPUs)."""

from __future__ import annotations

import os
import shlex
import shutil
import socket
import sys
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Callable

from hpc_agent.config import Settings, load_settings
from hpc_agent.errors import ConfigError, UsageError
from hpc_agent.serve.configs import ModelConfig
from hpc_agent.serve.lifecycle import ManagedServer
from hpc_agent.serve.weights import ensure_gguf


@dataclass(frozen=True)
class Launch:
    """Everything needed to start one server; `argv` is also what `serve --dry-run` prints."""

    argv: list[str]
    env: dict[str, str]
    engine: str
    health_path: str | None


def llamacpp_launch(cfg: ModelConfig, gguf: Path, host: str, port: int) -> Launch:
    assert cfg.llamacpp is not None or cfg.kind == "local-llamacpp"
    opts = cfg.llamacpp
    threads = (opts.n_threads if opts else None) or len(os.sched_getaffinity(0))
    argv = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--host", host, "--port", str(port),
            "--n_ctx", str(cfg.context_length), "--model_alias", cfg.served_model_name,
            "--n_threads", str(threads), "--n_threads_batch", str(threads),
            # the server's default keeps logits for every prompt token (vocab x tokens floats): prompt
            # processing ran at 0.70x of in-process and the server took 1.7 GB; chat needs only the last row
            "--logits_all", "false"]
    if opts and opts.chat_format:
        argv += ["--chat_format", opts.chat_format]
    argv += list(opts.extra_args) if opts else []
    return Launch(argv=argv, env=dict(os.environ), engine="llama.cpp", health_path=None)


def vllm_command(settings: Settings | None = None) -> list[str]:
    """The `vllm` setting ($HPC_AGENT_VLLM: vLLM often lives in its own venv or an image, "apptainer exec --nv
    vllm.sif vllm"), else `vllm` on PATH."""
    explicit = (settings or load_settings()).vllm
    return shlex.split(explicit) if explicit else [shutil.which("vllm") or "vllm"]


def vllm_launch(cfg: ModelConfig, host: str, port: int, *, settings: Settings | None = None) -> Launch:
    if cfg.vllm is None:
        raise ConfigError(f"model {cfg.name!r} has no `vllm:` section")
    v = cfg.vllm
    argv = [*vllm_command(settings), "serve", os.path.expandvars(v.model), "--served-model-name", cfg.served_model_name,
            "--host", host, "--port", str(port),
            "--tensor-parallel-size", str(v.tensor_parallel_size),
            "--gpu-memory-utilization", str(v.gpu_memory_utilization)]
    if v.max_model_len:
        argv += ["--max-model-len", str(v.max_model_len)]
    argv += list(v.args)
    env = dict(os.environ)
    env.update({k: os.path.expandvars(val) for k, val in v.env.items()})
    return Launch(argv=argv, env=env, engine="vllm", health_path="/health")


def launch_for(cfg: ModelConfig, host: str, port: int,
               progress: Callable[[str], None] = lambda _m: None, *, settings: Settings | None = None) -> Launch:
    if cfg.kind == "local-llamacpp":
        return llamacpp_launch(cfg, ensure_gguf(cfg, progress), host, port)
    if cfg.kind == "vllm":
        return vllm_launch(cfg, host, port, settings=settings)
    raise UsageError(f"model {cfg.name!r} is remote ({cfg.remote.base_url if cfg.remote else '?'}): "
                     "there is no server to start; use it directly with --backend")


def managed_server(cfg: ModelConfig, *, host: str, port: int, log_file: Path, ready_timeout_s: float,
                   progress: Callable[[str], None] = lambda _m: None,
                   settings: Settings | None = None) -> ManagedServer:
    launch = launch_for(cfg, host, port, progress, settings=settings)
    # A server bound to all interfaces is announced under this machine's name, so other nodes reach it.
    public = socket.getfqdn() if host in ("0.0.0.0", "::") else host
    return ManagedServer(launch.argv, base_url=f"http://{public}:{port}/v1", served_name=cfg.served_model_name,
                         engine=launch.engine, log_file=log_file, env=launch.env, health_path=launch.health_path,
                         ready_timeout_s=ready_timeout_s)


def engine_version(engine: str) -> str | None:
    """Version of a locally installed engine (llama.cpp); vLLM reports its own over HTTP (/version)."""
    if engine == "llama.cpp":
        try:
            return version("llama-cpp-python")
        except PackageNotFoundError:
            return None
    return None
