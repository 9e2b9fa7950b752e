"""From a backend name to a usable endpoint: configured backends, model configs, running servers."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from hpc_agent.config import load_settings
from hpc_agent.errors import ConfigError, UsageError
from hpc_agent.serve.lifecycle import ManagedServer, free_port
from hpc_agent.serve.session import default_state_file, open_backend

FAKE = str(Path(__file__).parent / "doubles" / "fake_engine.py")


def test_configured_backend_wins_over_model_config(isolated_config: Path) -> None:
    isolated_config.write_text("backends:\n  openai-o3:\n    base_url: http://proxy:9/v1\n    model: o3-mini\n")
    with open_backend(load_settings(), "openai-o3", max_tokens=10) as b:
        assert (b.base_url, b.model, b.max_tokens) == ("http://proxy:9/v1", "o3-mini", 10)


def test_remote_model_config_needs_no_server() -> None:
    with open_backend(load_settings(), "openai-gpt-5") as b:
        assert b.base_url == "https://api.openai.com/v1" and b.model == "gpt-5"
        assert b.api_key_env == "OPENAI_API_KEY" and b.reasoning_effort == "high" and b.temperature is None


def test_adhoc_needs_both_url_and_model() -> None:
    with pytest.raises(UsageError, match="go together"):
        with open_backend(load_settings(), base_url="http://x/v1"):
            pass


def test_vllm_model_without_server_says_how_to_start_one() -> None:
    with pytest.raises(UsageError, match="hpc-agent serve qwen3-8b"):
        with open_backend(load_settings(), "qwen3-8b"):
            pass


def test_unknown_name_lists_known() -> None:
    with pytest.raises(ConfigError, match="unknown backend 'gpt-9'; model configs: .*qwen2.5-coder-0.5b"):
        with open_backend(load_settings(), "gpt-9"):
            pass


def test_running_server_is_found_through_its_state_file(tmp_path: Path) -> None:
    """A stand-in engine (test double) announced by a state file serves the vLLM config `qwen3-8b`."""
    settings = load_settings()
    port = free_port()
    srv = ManagedServer([sys.executable, FAKE, str(port), "qwen3-8b", "ok"], base_url=f"http://127.0.0.1:{port}/v1",
                        served_name="qwen3-8b", engine="vllm", log_file=tmp_path / "log", ready_timeout_s=20)
    with srv:
        srv.state("qwen3-8b", "127.0.0.1", port).write(default_state_file(settings, "qwen3-8b"))
        with open_backend(settings, "qwen3-8b") as b:
            assert b.base_url == srv.base_url and b.model == "qwen3-8b" and b.engine == "vllm"
    # the server is gone: its stale state file no longer counts
    with pytest.raises(UsageError, match="no running server"):
        with open_backend(settings, "qwen3-8b"):
            pass
