"""Model configs as data: every shipped config validates; bad files name the file and field; commands."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from hpc_agent.cli import main
from hpc_agent.errors import ConfigError
from hpc_agent.serve.configs import REPO_CONFIGS, get_model_config, load_model_config, model_configs
from hpc_agent.serve.engines import vllm_launch
from hpc_agent.serve.lifecycle import ServerState

REQUIRED = {"qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b", "qwen3-8b", "qwen3-32b", "qwen3-coder-30b-a3b",
            "gpt-oss-20b", "gpt-oss-120b", "blablador", "openai-o3", "openai-gpt-5"}
DOUBLES = Path(__file__).parent / "doubles"


def test_shipped_configs_validate_and_cover_the_set() -> None:
    configs = model_configs()
    assert REQUIRED <= set(configs)
    for cfg in configs.values():
        assert (cfg.kind == "remote") == (cfg.remote is not None)
    assert not configs["openai-o3"].open_weight and configs["qwen3-8b"].open_weight
    assert configs["qwen2.5-coder-0.5b"].gguf is not None
    assert configs["qwen2.5-coder-0.5b"].gguf.sha256.startswith("1d9614638d18")


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("name: m\nkind: [x\n", "not valid YAML"),
        ("[1, 2]\n", "top level must be a mapping"),
        ("name: m\nkind: gpu\nserved_model_name: m\nopen_weight: true\ncontext_length: 1\n", "field `kind`"),
        ("name: m\nkind: remote\nserved_model_name: m\nopen_weight: true\ncontext_length: 8\n", "needs a `remote:`"),
        ("name: m\nkind: remote\nserved_model_name: m\nopen_weight: true\n"
         "remote: {base_url: http://x/v1}\n", "field `context_length`"),
        ("name: other\nkind: remote\nserved_model_name: m\nopen_weight: true\ncontext_length: 8\n"
         "remote: {base_url: http://x/v1}\n", "must match the file name"),
        ("name: m\nkind: vllm\nserved_model_name: m\nopen_weight: true\ncontext_length: 8\n"
         "vllm: {model: x, tensor_parallel_size: 0}\nslurm: {}\n", "field `vllm.tensor_parallel_size`"),
        ("name: m\nkind: remote\nserved_model_name: m\nopen_weight: true\ncontext_length: 8\n"
         "remote: {base_url: http://x/v1}\ncolour: blue\n", "field `colour`"),
    ],
)
def test_bad_config_names_file_and_field(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_model_config(path)
    assert str(path) in str(err.value) and needle in str(err.value)


def test_vllm_command_from_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HPC_AGENT_VLLM", "/opt/vllm/bin/vllm")
    launch = vllm_launch(get_model_config("gpt-oss-20b"), "0.0.0.0", 8123)
    assert launch.argv[:3] == ["/opt/vllm/bin/vllm", "serve", "openai/gpt-oss-20b"]
    joined = " ".join(launch.argv)
    assert "--served-model-name gpt-oss-20b" in joined and "--port 8123" in joined
    assert "--tool-call-parser openai" in joined and "--enable-auto-tool-choice" in joined
    assert launch.env["HF_HUB_OFFLINE"] == "1" and "${HOME}" not in launch.env["TIKTOKEN_ENCODINGS_BASE"]
    assert launch.health_path == "/health"
    q = " ".join(vllm_launch(get_model_config("qwen3-32b"), "h", 1).argv)
    assert "--reasoning-parser qwen3" in q and "--tensor-parallel-size 2" in q


def test_models_cli_list_and_show() -> None:
    res = CliRunner().invoke(main, ["models"])
    assert res.exit_code == 0 and "qwen2.5-coder-0.5b" in res.output and "proprietary" in res.output
    res = CliRunner().invoke(main, ["models", "show", "qwen3-8b"])
    assert res.exit_code == 0 and "tool-call-parser" in res.output
    res = CliRunner().invoke(main, ["models", "show", "nope"])
    assert res.exit_code == 2 and "unknown model 'nope'" in res.output


def test_user_config_dir_shadows_and_bad_file_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HPC_AGENT_MODEL_CONFIGS", str(tmp_path))
    (tmp_path / "broken.yaml").write_text("name: broken\nkind: remote\n")
    res = CliRunner().invoke(main, ["models"])
    assert res.exit_code == 2 and "broken.yaml" in res.output and "field `served_model_name`" in res.output


def test_serve_command_with_stand_in_vllm(tmp_path: Path) -> None:
    """`hpc-agent serve` as a real subprocess: ready line, state file, SIGTERM, no orphans, state removed.

    The engine is a stand-in `vllm` executable (tests/doubles/fake_vllm.py), not vLLM."""
    (tmp_path / "configs").mkdir()
    cfg = (REPO_CONFIGS / "qwen3-8b.yaml").read_text().replace("name: qwen3-8b", "name: stand-in")
    (tmp_path / "configs" / "stand-in.yaml").write_text(cfg)
    env = {**os.environ, "HPC_AGENT_MODEL_CONFIGS": str(tmp_path / "configs"),
           "HPC_AGENT_VLLM": str(DOUBLES / "fake_vllm.py"), "FAKE_VLLM_RECORD": str(tmp_path / "argv.json")}
    state_file = tmp_path / "shared" / "stand-in.json"
    hpc_agent = Path(sys.executable).with_name("hpc-agent")
    proc = subprocess.Popen([str(hpc_agent), "serve", "stand-in", "--state-file", str(state_file)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline().strip() if proc.stdout else ""
        assert line.startswith("ready http://127.0.0.1:"), line
        state = ServerState.read(state_file)
        assert state.base_url == line.split()[1] and state.engine == "vllm" and state.alive()
        assert Path(state.log_file) == state_file.with_suffix(".log")
        recorded = json.loads((tmp_path / "argv.json").read_text())
        assert recorded["HF_HUB_OFFLINE"] == "1" and "--reasoning-parser" in recorded["argv"]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not state_file.exists()
    time.sleep(0.2)
    assert not state.alive()
    assert not Path(f"/proc/{state.pid}").exists()
