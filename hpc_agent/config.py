"""Settings: backends, limits, folders; one documented lookup order.

Precedence, highest first: explicit values (CLI flags) > environment (`HPC_AGENT_*`, nested with `__`)
> the config file > defaults. The config file is `$HPC_AGENT_CONFIG`, else
`$XDG_CONFIG_HOME/hpc-agent/config.yaml` (`~/.config/...`). The data root also accepts the
`PHOTON_STORAGE` variable, after `HPC_AGENT_DATA_ROOT`.

Secrets never live here: a backend names the *environment variable* holding its API key.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import urlparse

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from hpc_agent._files import atomic_write_text
from hpc_agent.choices import ReasoningEffort, SandboxName
from hpc_agent.errors import ConfigError
from hpc_agent.hpc.profiles import ClusterProfile

RagMode = Literal["dense", "hybrid"]


def _xdg(var: str, fallback: str) -> Path:
    return Path(os.environ.get(var) or Path.home() / fallback)


def default_config_path() -> Path:
    """Where the config file is read from and saved to."""
    explicit = os.environ.get("HPC_AGENT_CONFIG")
    return Path(explicit) if explicit else _xdg("XDG_CONFIG_HOME", ".config") / "hpc-agent" / "config.yaml"


def cache_root() -> Path:
    """Downloaded weights, built wheels and reference values: `$HPC_AGENT_CACHE`, else `~/.cache/hpc-agent`."""
    explicit = os.environ.get("HPC_AGENT_CACHE")
    return Path(explicit) if explicit else _xdg("XDG_CACHE_HOME", ".cache") / "hpc-agent"


def default_runs_dir() -> Path:
    return _xdg("XDG_DATA_HOME", ".local/share") / "hpc-agent" / "runs"


class Backend(BaseModel):
    """An OpenAI-compatible chat endpoint and how to call it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = "adhoc"
    base_url: str
    model: str
    api_key_env: str | None = Field(None, description="name of the env var holding the API key")
    reasoning_effort: ReasoningEffort | None = None
    max_tokens: int | None = Field(4096, gt=0)
    temperature: float | None = Field(0.2, ge=0, le=2)
    embedding_model: str | None = None
    use_tools: bool = Field(True, description="ask for the return_python tool; off for servers without tools")
    engine: str | None = Field(None, description="serving engine when known: llama.cpp | vllm")
    candidates: int | None = Field(None, ge=1, le=16, description="answers per turn for this model "
                                   "(used when the `candidates` setting is not given)")
    context_length: int | None = Field(None, gt=0, description="the model's context window in tokens, when "
                                       "known: older repair turns are dropped to fit it")

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        if not urlparse(v).hostname:
            raise ValueError("names no host (e.g. http://127.0.0.1:8000/v1)")
        return v.rstrip("/")

    def api_key(self) -> str:
        """The key from the environment (never stored). Local servers accept any placeholder."""
        if self.api_key_env:
            key = os.environ.get(self.api_key_env)
            if not key:
                raise ConfigError(
                    f"backend {self.name!r}: environment variable {self.api_key_env} is empty; "
                    f"export {self.api_key_env}=<your key>"
                )
            return key
        return "not-needed"


class Settings(BaseSettings):
    """Everything configurable. Build with `load_settings(**cli_overrides)`."""

    model_config = SettingsConfigDict(
        env_prefix="HPC_AGENT_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
        protected_namespaces=(),  # the field `model_configs` is ours, not pydantic's `model_` namespace
    )

    backends: dict[str, Backend] = Field(default_factory=dict)
    backend: str | None = Field(None, description="default backend name")
    attempts: int = Field(5, ge=1, le=100, description="attempt budget per run")
    repairs: bool = Field(True, description="deterministic repairs (missing imports, wrong import homes, display "
                          "calls, literal data paths) before checking a script")
    candidates: int | None = Field(None, ge=1, le=16, description="answers generated per turn; None: the model "
                                   "config's `candidates`, else 1")
    exec_timeout_s: float = Field(300.0, gt=0, description="wall-clock limit of one sandboxed run")
    llm_timeout_s: float = Field(600.0, gt=0, description="timeout of one model request (a local llama.cpp server, which "
                                 "answers one request at a time, gets (llm_retries + 1) times this in one request)")
    llm_retries: int = Field(5, ge=0, description="retries of 429/5xx/timeouts before giving up")
    server_ready_timeout_s: float = Field(600.0, gt=0, description="how long a model server may take to start")
    memory_mb: int = Field(6144, gt=0)
    max_procs: int = Field(256, gt=0)
    sandbox: SandboxName | None = Field(None, description="None = best available")
    warm_sandbox: bool = Field(True, description="start the next sandbox (modules imported) while the model "
                               "answers; single use, cold start if its warm-up fails. Off: every run starts cold")
    warm_modules: list[str] | None = Field(None, description="modules a warm sandbox imports ahead; None = numpy, "
                                           "astropy.units/coordinates/table, gammapy.data/maps/makers/datasets/"
                                           "modeling/estimators")
    apptainer_image: Path | None = None
    runs_dir: Path = Field(default_factory=default_runs_dir,
                           description="bundles; its parent holds servers/, jobs/ and sweeps/ (shared on clusters)")
    data_root: Path | None = Field(None, description="folder holding data releases (PHOTON_STORAGE)")
    clusters: dict[str, ClusterProfile] = Field(default_factory=dict, description="site profiles for Slurm jobs")
    cluster_profile: str | None = Field(None, description="default profile name for `submit`")
    # retrieval (hpc_agent/rag): used when RAG is on (`run --rag`, `bench --rag on|both`)
    rag_index: str | None = Field(None, description="index folder, `:memory:` or a Qdrant URL; None = "
                                  "<cache>/rag/gammapy-<version>-<embedder>")
    rag_embedder: str = Field("local", description="`local` (offline all-MiniLM-L6-v2) or a backend with embedding_model")
    rag_k: int = Field(4, ge=1, le=20, description="snippets injected per turn at most")
    rag_min_score: float = Field(0.3, ge=-1, le=1, description="cosine similarity a snippet needs")
    rag_mode: RagMode = Field("hybrid", description="hybrid (dense + sparse, RRF fusion; measured better) or dense")
    rag_whole_script: bool = Field(True, description="the first turn shows the best-matching tutorial's whole "
                                   "script (condensed) instead of its pieces")
    rag_sources: list[Path] = Field(default_factory=list, description="tutorial folders indexed by `rag build`")
    rag_docs: bool = Field(True, description="`rag build` adds the tutorials and user guide of the installed "
                           "Gammapy's sdist (fetched with pip, cached)")
    # where shipped data and engines are found; read here (as $HPC_AGENT_MODEL_CONFIGS, $HPC_AGENT_VLLM,
    # $HPC_AGENT_BENCHMARKS, or from the config file) like every other setting
    model_configs: str | None = Field(None, description="extra model-config folders, \":\"-separated, searched "
                                      "before the shipped model_configs/ (first match wins)")
    vllm: str | None = Field(None, description="the command that runs vLLM, e.g. `apptainer exec --nv vllm.sif "
                             "vllm` (default: `vllm` on PATH)")
    benchmarks: Path | None = Field(None, description="a benchmarks/ folder (tasks/, reference/) instead of the "
                                    "shipped one")

    @field_validator("backends", mode="before")
    @classmethod
    def _names_from_keys(cls, v: Any) -> Any:
        if isinstance(v, dict):
            return {k: ({**b, "name": k} if isinstance(b, dict) else b) for k, b in v.items()}
        return v

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _YamlFile(settings_cls))

    # The data folder's layout, spelled once. `runs_dir`'s parent holds what every process and batch job
    # shares (put it on a shared filesystem on clusters): servers announce themselves there, jobs are
    # remembered there, sweeps go there by default.
    @property
    def data_dir(self) -> Path:
        return self.runs_dir.parent

    @property
    def model_config_dirs(self) -> list[Path]:
        """The `model_configs` folders, in search order."""
        return [Path(p) for p in (self.model_configs or "").split(":") if p]

    @property
    def servers_dir(self) -> Path:
        """State files and logs of model servers: how runs and jobs find a running server."""
        return self.data_dir / "servers"

    @property
    def jobs_dir(self) -> Path:
        """One JSON per submitted job (so `status`, `logs`, `cancel` work from any later shell)."""
        return self.data_dir / "jobs"

    @property
    def sweeps_dir(self) -> Path:
        """Where `bench` puts a sweep without `--out`, and where the page looks for them."""
        return self.data_dir / "sweeps"

    def to_file_dict(self) -> dict[str, Any]:
        """What `config save` writes: plain YAML types, no secrets (there are none to write)."""
        return self.model_dump(mode="json", exclude_none=True)


class _YamlFile(PydanticBaseSettingsSource):
    """The config file as a settings source (lowest priority above defaults)."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:  # pragma: no cover
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        path = default_config_path()
        return read_yaml_mapping(path) if path.exists() else {}


def read_yaml_mapping(path: Path, fields: str = "settings") -> dict[str, Any]:
    """Read a YAML file whose top level is a mapping (of `fields`); errors name the file."""
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc.__class__.__name__}); fix the syntax") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping of {fields}")
    return data


def describe_validation_error(exc: ValidationError, origin: str) -> str:
    """`origin: field `a.b`: message` for the first error: one line naming where and what."""
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "(top level)"
    return f"{origin}: field `{where}`: {err['msg']}"


RecordT = TypeVar("RecordT", bound=BaseModel)


def load_named_yaml(path: Path, cls: type[RecordT], key: str, fields: str) -> RecordT:
    """A YAML file validated as `cls`, whose `key` field must equal the file name; errors name file and field."""
    data = read_yaml_mapping(path, fields)
    try:
        record = cls(**data)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, str(path))) from exc
    if getattr(record, key) != path.stem:
        raise ConfigError(f"{path}: field `{key}`: {getattr(record, key)!r} must match the file name {path.stem!r}")
    return record


FLAGS = {"base_url": "--base-url", "model": "--model", "temperature": "--temperature", "max_tokens": "--max-tokens",
         "reasoning_effort": "--reasoning-effort", "api_key_env": "--api-key-env"}


def make_backend(fields: dict[str, Any], origin: str = "backend", *, name_flags: bool = True) -> Backend:
    """A Backend from plain values (flags, a config, a form), or a ConfigError naming the field (and the
    command-line flag that set it, with `name_flags`)."""
    try:
        return Backend(**fields)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = str(err["loc"][0]) if err["loc"] else ""
        flag = f" ({FLAGS[field]} {fields.get(field)!r})" if field in FLAGS and name_flags else ""
        raise ConfigError(describe_validation_error(exc, origin) + flag) from exc


def check_backend_fields(overrides: dict[str, Any]) -> None:
    """Backend overrides given as flags, checked before any server is started or called."""
    given = {k: v for k, v in overrides.items() if v is not None}
    make_backend({"base_url": "http://127.0.0.1/v1", "model": "m", **given}, "backend override")


def load_settings(**overrides: Any) -> Settings:
    """Settings with CLI overrides on top; `None` overrides are ignored (flag not given)."""
    given = {k: v for k, v in overrides.items() if v is not None}
    # PHOTON_STORAGE is the community's name for the data root; it ranks just below HPC_AGENT_DATA_ROOT.
    if "data_root" not in given and "HPC_AGENT_DATA_ROOT" not in os.environ and os.environ.get("PHOTON_STORAGE"):
        given["data_root"] = os.environ["PHOTON_STORAGE"]
    try:
        return Settings(**given)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, f"settings (flags, HPC_AGENT_* env, {default_config_path()})")) from exc


def validate_config_file(path: Path) -> Settings:
    """Validate one file on its own (no env, no flags), as `config load` does before installing it."""
    data = read_yaml_mapping(path)
    try:
        return _FileOnly(**data)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, str(path))) from exc


class _FileOnly(Settings):
    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def write_config_file(settings: Settings, path: Path) -> Path:
    """Write atomically: a crash never leaves a half-written config behind."""
    return atomic_write_text(path, yaml.safe_dump(settings.to_file_dict(), sort_keys=True))
