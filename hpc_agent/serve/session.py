"""From a name to a usable backend: configured endpoints, model configs, running or started servers.

Lookup order for `--backend NAME` (`resolve_backend`, the one place every front end asks): the config file's
`backends:`, then `model_configs/NAME.yaml`. With no name at all, the config file's `backend:` and else the
embedded default, the local `DEFAULT_MODEL`, which is started for the run and stopped after it.
"""

from __future__ import annotations

import signal
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, Callable, Iterator, Literal

from hpc_agent.choices import DEFAULT_MODEL
from hpc_agent.config import Backend, Settings, check_backend_fields, make_backend
from hpc_agent.errors import ConfigError, InfrastructureError, UsageError
from hpc_agent.serve.configs import ModelConfig, find_model_config, get_model_config, model_configs
from hpc_agent.serve.engines import managed_server
from hpc_agent.serve.lifecycle import ServerState, free_port


Progress = Callable[[str], None]


def default_backend_name(settings: Settings) -> str:
    """The backend used when none is named: the config file's `backend:`, else the embedded local model."""
    return settings.backend or DEFAULT_MODEL


@dataclass(frozen=True)
class ResolvedBackend:
    """What a backend name (or an ad hoc endpoint) stands for, found without starting or calling anything.
    `run`, `bench`, `doctor` and the page resolve names here, so they agree on the lookup order."""

    name: str
    source: Literal["adhoc", "configured", "model-config"]
    endpoint: Backend | None  # known without a server: the ad hoc endpoint, a configured backend, a remote model
    config: ModelConfig | None = None  # set when the name is a model config

    @property
    def candidates(self) -> int | None:
        """The backend's own answers-per-turn default (the `candidates` setting overrides it)."""
        if self.endpoint is not None:
            return self.endpoint.candidates
        return self.config.candidates if self.config is not None else None


def resolve_backend(settings: Settings, name: str | None = None, *, base_url: str | None = None,
                    model: str | None = None) -> ResolvedBackend:
    """`base_url` + `model` (an ad hoc endpoint), else `name` (default: `default_backend_name`) looked up in
    the config file's `backends:`, then among the model configs; an unknown name lists what is known."""
    if base_url or model:
        if not (base_url and model):
            raise UsageError("--base-url and --model go together; give both (or --backend NAME)")
        return ResolvedBackend("adhoc", "adhoc", make_backend({"name": "adhoc", "base_url": base_url, "model": model}))
    name = name or default_backend_name(settings)
    if name in settings.backends:
        return ResolvedBackend(name, "configured", settings.backends[name])
    if find_model_config(name, settings) is None:
        raise ConfigError(
            f"unknown backend {name!r}; model configs: {', '.join(sorted(model_configs(settings)))}; configured "
            f"backends: {', '.join(sorted(settings.backends)) or 'none'} (add one under `backends:` in the config file)"
        )
    cfg = get_model_config(name, settings)
    return ResolvedBackend(name, "model-config", cfg.backend() if cfg.kind == "remote" else None, cfg)


def default_state_file(settings: Settings, name: str) -> Path:
    return settings.servers_dir / f"{name}.json"


def _with_overrides(backend: Backend, overrides: dict[str, Any]) -> Backend:
    """`backend` with the given fields replaced, validated like any backend."""
    given = {k: v for k, v in overrides.items() if v is not None}
    return make_backend({**backend.model_dump(), **given}, f"backend {backend.name!r}") if given else backend


def running_server(settings: Settings, cfg: ModelConfig) -> ServerState | None:
    """A live server for `cfg` announced by its state file, if any."""
    path = default_state_file(settings, cfg.name)
    if not path.is_file():
        return None
    state = ServerState.read(path)
    if state.alive():
        return state
    if state.process_gone():  # left behind by a server that was killed: nothing will ever answer there
        path.unlink(missing_ok=True)
    return None


@contextmanager
def open_backend(
    settings: Settings,
    name: str | None = None,
    *,
    base_url: str | None = None,
    model: str | None = None,
    progress: Progress = lambda _m: None,
    start_vllm: bool = False,
    **overrides: Any,
) -> Iterator[Backend]:
    """Yield a backend ready for requests; a local server started here is stopped on exit.

    vLLM servers are started here only with `start_vllm` (inside a batch allocation sized for them);
    elsewhere a vLLM model needs a running server (`hpc-agent serve` / `submit serve`).
    """
    if not (base_url or model):
        check_backend_fields(overrides)  # before a server is started for them
    resolved = resolve_backend(settings, name, base_url=base_url, model=model)
    if resolved.endpoint is not None:
        yield _with_overrides(resolved.endpoint, overrides)
        return
    cfg = resolved.config
    assert cfg is not None  # a model config that needs a server
    state = running_server(settings, cfg)
    if state is not None:
        progress(f"using the running {cfg.name} server at {state.base_url}")
        yield _with_overrides(cfg.backend(state.base_url).model_copy(update={"engine": state.engine}), overrides)
        return
    if cfg.kind == "vllm" and not start_vllm:
        raise UsageError(f"no running server for {cfg.name!r}: start one with `hpc-agent serve {cfg.name}` on a "
                         f"GPU node (state file {default_state_file(settings, cfg.name)})")
    port = free_port()
    log_file = settings.servers_dir / f"{cfg.name}-{port}.log"
    progress(f"starting {cfg.name} ({'vLLM' if cfg.kind == 'vllm' else 'llama.cpp'}) on port {port}; log {log_file}")
    with managed_server(cfg, host="127.0.0.1", port=port, log_file=log_file, ready_timeout_s=settings.server_ready_timeout_s,
                        progress=progress, settings=settings) as srv:
        progress(f"{cfg.name} ready after {srv.ready_after_s:.1f} s")
        yield _with_overrides(cfg.backend(srv.base_url).model_copy(update={"engine": srv.engine}), overrides)


class _Stop(Exception):
    """Raised from the SIGTERM handler so that `with` blocks unwind and stop the engine."""


def serve_foreground(
    settings: Settings,
    name: str,
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    state_file: Path | None = None,
    on_ready: Callable[[ServerState], None] = lambda _s: None,
    progress: Progress = lambda _m: None,
) -> int:
    """Run a server until SIGINT/SIGTERM; publish a state file while it is ready. Returns an exit code."""
    cfg = get_model_config(name, settings)
    if port is not None and not 1 <= port <= 65535:
        raise UsageError(f"--port {port}: a TCP port is 1-65535 (or leave it out for a free one)")
    port = port or free_port(host)
    state_file = (state_file or default_state_file(settings, cfg.name)).resolve()
    log_file = state_file.with_suffix(".log")

    def _term(signum: int, frame: FrameType | None) -> None:
        raise _Stop()

    previous = signal.signal(signal.SIGTERM, _term)
    try:
        with managed_server(cfg, host=host, port=port, log_file=log_file, progress=progress, settings=settings,
                            ready_timeout_s=settings.server_ready_timeout_s) as srv:
            state = srv.state(cfg.name, host, port)
            state.write(state_file)
            try:
                on_ready(state)
                while srv.proc is not None and srv.proc.poll() is None:
                    time.sleep(0.5)
                raise InfrastructureError(f"{cfg.name} server exited with code {srv.proc.returncode if srv.proc else '?'}"
                                          f"; log {log_file}")
            finally:
                state_file.unlink(missing_ok=True)
    except (_Stop, KeyboardInterrupt):
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)
