"""Server lifecycle with a stand-in engine process: readiness, state file, shutdown, start-up failures."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

from hpc_agent.serve.lifecycle import ManagedServer, ServerStartError, ServerState, free_port, served_ids

FAKE = str(Path(__file__).parent / "doubles" / "fake_engine.py")


def _server(tmp_path: Path, mode: str, *, timeout: float = 20.0, pidfile: Path | None = None) -> ManagedServer:
    port = free_port()
    argv = [sys.executable, FAKE, str(port), "fake-model", mode, *([str(pidfile)] if pidfile else [])]
    return ManagedServer(argv, base_url=f"http://127.0.0.1:{port}/v1", served_name="fake-model", engine="fake",
                         log_file=tmp_path / "server.log", health_path="/health", ready_timeout_s=timeout)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead for our purposes
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"


def test_ready_state_file_and_clean_shutdown(tmp_path: Path) -> None:
    pidfile = tmp_path / "pids.json"
    with _server(tmp_path, "ok", pidfile=pidfile) as srv:
        assert srv.ready_after_s is not None and srv.ready_after_s >= 0.4  # waited for the HTTP answer
        assert served_ids(srv.base_url) == ["fake-model"]
        state = srv.state("fake", "127.0.0.1", int(srv.base_url.split(":")[2].split("/")[0]))
        state.write(tmp_path / "state.json")
        loaded = ServerState.read(tmp_path / "state.json")
        assert loaded == state and loaded.alive()
        assert set(json.loads((tmp_path / "state.json").read_text())) >= {
            "base_url", "model", "pid", "engine", "started_at", "host"}
        pids = json.loads(pidfile.read_text())
        assert _alive(pids["engine"]) and _alive(pids["child"])
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and (_alive(pids["engine"]) or _alive(pids["child"])):
        time.sleep(0.1)
    assert not _alive(pids["engine"]) and not _alive(pids["child"]), "engine or its child outlived stop()"
    assert not loaded.alive()


def test_server_dying_during_start_up_is_a_clear_error(tmp_path: Path) -> None:
    t0 = time.monotonic()
    with pytest.raises(ServerStartError) as err:
        with _server(tmp_path, "crash"):
            pass
    assert time.monotonic() - t0 < 10
    assert "exited with code 3 during start-up" in str(err.value)
    assert "no accelerator found" in str(err.value)  # the log tail is in the message


def test_server_never_ready_times_out_and_is_stopped(tmp_path: Path) -> None:
    srv = _server(tmp_path, "never-ready", timeout=2.0)
    t0 = time.monotonic()
    with pytest.raises(ServerStartError, match="not ready after 2 s"):
        with srv:
            pass
    assert time.monotonic() - t0 < 8
    assert srv.proc is not None and srv.proc.poll() is not None


def test_missing_engine_binary(tmp_path: Path) -> None:
    srv = ManagedServer(["/nonexistent/vllm", "serve"], base_url="http://127.0.0.1:1/v1", served_name="m",
                        engine="vllm", log_file=tmp_path / "log")
    with pytest.raises(ServerStartError, match="cannot start /nonexistent/vllm"):
        srv.start()


def test_free_port_is_bindable() -> None:
    import socket

    port = free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
