"""Settings precedence, validation errors that name the file and field, and secrets never on disk."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from hpc_agent.cli import main
from hpc_agent.config import load_settings, validate_config_file
from hpc_agent.errors import ConfigError

FILE = """\
backend: local
attempts: 3
data_root: /from/file
backends:
  local:
    base_url: http://127.0.0.1:8000/v1
    model: qwen
    api_key_env: MY_KEY
"""


def test_precedence_flag_env_file_default(isolated_config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    isolated_config.write_text(FILE)
    assert load_settings().attempts == 3  # file beats default (5)
    assert load_settings().llm_retries == 5  # default
    monkeypatch.setenv("HPC_AGENT_ATTEMPTS", "7")
    assert load_settings().attempts == 7  # env beats file
    assert load_settings(attempts=2).attempts == 2  # flag beats env
    assert load_settings(attempts=None).attempts == 7  # an absent flag changes nothing


def test_data_root_order(isolated_config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    isolated_config.write_text(FILE)
    assert load_settings().data_root == Path("/from/file")
    monkeypatch.setenv("PHOTON_STORAGE", "/photon")
    assert load_settings().data_root == Path("/photon")
    monkeypatch.setenv("HPC_AGENT_DATA_ROOT", "/hpc")
    assert load_settings().data_root == Path("/hpc")
    assert load_settings(data_root="/flag").data_root == Path("/flag")


def test_nested_backend_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HPC_AGENT_BACKENDS__blab__BASE_URL", "https://example.org/v1/")
    monkeypatch.setenv("HPC_AGENT_BACKENDS__blab__MODEL", "alias-code")
    b = load_settings().backends["blab"]
    assert (b.name, b.base_url, b.model) == ("blab", "https://example.org/v1", "alias-code")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("attempts: [1, 2\n", "not valid YAML"),
        ("- just\n- a list\n", "top level must be a mapping"),
        ("attempts: 0\n", "field `attempts`"),
        ("backends:\n  x:\n    model: m\n", "field `backends.x.base_url`"),
        ("backends:\n  x:\n    base_url: ftp://h\n    model: m\n", "field `backends.x.base_url`"),
        ("atempts: 3\n", "field `atempts`"),
    ],
)
def test_bad_file_names_file_and_field(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        validate_config_file(path)
    assert str(path) in str(err.value) and expected in str(err.value)


def test_unknown_backend_lists_configured_and_model_configs(isolated_config: Path) -> None:
    from hpc_agent.serve.session import open_backend

    isolated_config.write_text(FILE)
    with pytest.raises(ConfigError, match="model configs: .*qwen2.5-coder-0.5b.*configured backends: local"):
        with open_backend(load_settings(), "nope"):
            pass


def test_cli_save_load_show_never_write_keys(tmp_path: Path, isolated_config: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_KEY", "sk-very-secret-value")
    src = tmp_path / "team.yaml"
    src.write_text(FILE)
    runner = CliRunner()
    res = runner.invoke(main, ["config", "load", str(src)])
    assert res.exit_code == 0, res.output
    assert yaml.safe_load(isolated_config.read_text())["backends"]["local"]["api_key_env"] == "MY_KEY"
    res = runner.invoke(main, ["config", "show", "--json"])
    assert res.exit_code == 0 and '"attempts": 3' in res.output
    saved = tmp_path / "saved.yaml"
    assert runner.invoke(main, ["config", "save", str(saved)]).exit_code == 0
    assert "sk-very-secret-value" not in saved.read_text()
    assert load_settings().backends["local"].api_key() == "sk-very-secret-value"


def test_cli_load_rejects_bad_file_and_keeps_old(tmp_path: Path, isolated_config: Path) -> None:
    isolated_config.write_text(FILE)
    bad = tmp_path / "bad.yaml"
    bad.write_text("attempts: -1\n")
    res = CliRunner().invoke(main, ["config", "load", str(bad)])
    assert res.exit_code == 2
    assert "bad.yaml: field `attempts`" in res.output
    assert isolated_config.read_text() == FILE


def test_missing_api_key_is_a_clear_error(isolated_config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    isolated_config.write_text(FILE)
    monkeypatch.delenv("MY_KEY", raising=False)
    with pytest.raises(ConfigError, match="MY_KEY is empty"):
        load_settings().backends["local"].api_key()


def test_the_cli_starts_without_the_model_client_gammapy_or_polars() -> None:
    """`hpc-agent --help`, `models` and each Slurm array element start before any heavy import (the
    timing itself is `benchmarks/cli_start.py`); the commands that need them load them."""
    import subprocess
    import sys

    probe = ("import sys, hpc_agent, hpc_agent.cli\n"
             "from click.testing import CliRunner\n"
             "assert CliRunner().invoke(hpc_agent.cli.main, ['models']).exit_code == 0\n"
             "heavy = ('openai', 'gammapy', 'polars', 'hpc_agent.api', 'hpc_agent.agent')\n"
             "print(sorted(m for m in heavy if m in sys.modules))\n"
             "hpc_agent.run\n"
             "print(sorted(m for m in heavy if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.splitlines()
    assert out[0] == "[]"
    assert {"hpc_agent.api", "openai"} <= set(eval(out[1]))  # the API loads on first use

    # the command tree itself (every `--help`) needs click and the package's leaves only
    probe = ("import sys, hpc_agent.cli\n"
             "from click.testing import CliRunner\n"
             "for args in (['--help'], ['submit', 'bench', '--help'], ['rag', 'build', '--help'], ['status', '--help']):\n"
             "    assert CliRunner().invoke(hpc_agent.cli.main, args).exit_code == 0, args\n"
             "print(sorted(m for m in ('pydantic', 'pydantic_settings', 'rich', 'yaml', 'urllib.request') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.splitlines()
    assert out == ["[]"]
