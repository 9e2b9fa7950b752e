"""Start, find and stop a model server: free port, readiness from HTTP, state file, no orphans.

Readiness is decided from the process and the endpoints only (never from log lines): the process is
alive, `/health` answers 200 where the engine has it, and `/v1/models` lists the served name.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import Any, Callable, Sequence
from urllib.parse import urlparse

from hpc_agent._files import atomic_write_text
from hpc_agent.errors import InfrastructureError


class ServerStartError(InfrastructureError):
    """The server died during start-up or never became ready; the message carries the log tail."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def http_json(url: str, timeout: float = 5.0) -> tuple[int, Any]:
    """(status, parsed JSON or None); status 0 when nothing answered."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            body = resp.read()
            status = resp.status
    except urllib.error.HTTPError as exc:
        return exc.code, None
    except (urllib.error.URLError, OSError, ValueError):
        return 0, None
    try:
        return status, json.loads(body)
    except ValueError:
        return status, None


def served_ids(base_url: str, timeout: float = 5.0) -> list[str]:
    status, payload = http_json(f"{base_url}/models", timeout)
    if status != 200 or not isinstance(payload, dict):
        return []
    return [str(m.get("id")) for m in payload.get("data", []) if isinstance(m, dict)]


@dataclass(frozen=True)
class ServerState:
    """What other processes need to find and judge a running server (the state file's content)."""

    base_url: str
    model: str
    pid: int
    engine: str
    started_at: str
    host: str
    port: int
    log_file: str
    config: str

    def write(self, path: Path) -> None:
        atomic_write_text(path, json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def read(cls, path: Path) -> ServerState:
        try:
            return cls(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError) as exc:
            raise InfrastructureError(f"{path}: not a readable server state file ({exc})") from exc

    def alive(self, timeout: float = 5.0) -> bool:
        return self.model in served_ids(self.base_url, timeout)

    def process_gone(self) -> bool:
        """The server's process no longer exists on this host (a state file left by a killed server).
        Only meaningful where the server ran: callers on other hosts cannot tell."""
        if urlparse(self.base_url).hostname not in ("127.0.0.1", "localhost", socket.gethostname()):
            return False  # served from another node: its pid means nothing here
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        try:  # a zombie or a dying process (dead, not yet reaped by whoever inherited it) is gone too
            return Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
        except (OSError, IndexError):
            return False


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").rstrip().splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _libc() -> Any:
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:  # pragma: no cover - not a platform with a C library to load
        return None


_LIBC = _libc() if sys.platform.startswith("linux") else None
PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int) -> Callable[[], None] | None:
    """A `preexec_fn` that makes the child receive SIGKILL when the process that started it dies, however it
    dies (SIGKILL included: no `finally` of ours runs then). Linux's PR_SET_PDEATHSIG follows the starting
    *thread*: servers are started by the thread whose `with` block also stops them. None elsewhere."""
    if _LIBC is None:
        return None

    def arm() -> None:
        _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the parent died before the signal was armed
            os.kill(os.getpid(), signal.SIGKILL)

    return arm


class ManagedServer:
    """One engine process in its own session; `with` starts it, waits until ready, and stops it. The engine
    dies with the process that started it, even when that one is SIGKILLed."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        base_url: str,
        served_name: str,
        engine: str,
        log_file: Path,
        env: dict[str, str] | None = None,
        health_path: str | None = None,
        ready_timeout_s: float = 300.0,
    ) -> None:
        self.argv = list(argv)
        self.base_url = base_url
        self.served_name = served_name
        self.engine = engine
        self.log_file = log_file
        self.env = env
        self.health_path = health_path
        self.ready_timeout_s = ready_timeout_s
        self.proc: subprocess.Popen[bytes] | None = None
        self.ready_after_s: float | None = None

    def start(self) -> None:
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            try:
                self.proc = subprocess.Popen(
                    self.argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                    env=self.env, start_new_session=True,  # its own process group: stop() reaches children
                    preexec_fn=die_with_parent(os.getpid()),
                )
            except OSError as exc:
                raise ServerStartError(f"{self.engine}: cannot start {self.argv[0]}: {exc}") from exc

    def wait_ready(self) -> float:
        """Seconds until ready; raises ServerStartError (after stopping the process) otherwise."""
        assert self.proc is not None
        t0 = time.monotonic()
        root = self.base_url.rsplit("/v1", 1)[0]
        while True:
            code = self.proc.poll()
            if code is not None:
                raise ServerStartError(
                    f"{self.engine} server exited with code {code} during start-up; log {self.log_file}:\n"
                    f"{_tail(self.log_file)}"
                )
            healthy = self.health_path is None or http_json(root + self.health_path, 2.0)[0] == 200
            if healthy and self.served_name in served_ids(self.base_url, 2.0):
                self.ready_after_s = time.monotonic() - t0
                return self.ready_after_s
            if time.monotonic() - t0 > self.ready_timeout_s:
                self.stop()
                raise ServerStartError(
                    f"{self.engine} server not ready after {self.ready_timeout_s:.0f} s at {self.base_url} "
                    f"(/v1/models never listed {self.served_name!r}); log {self.log_file}:\n{_tail(self.log_file)}"
                )
            time.sleep(0.25)

    def stop(self, grace_s: float = 10.0) -> None:
        """SIGTERM the whole process group, then SIGKILL what is left after `grace_s`."""
        if self.proc is None:
            return
        pgid = self.proc.pid
        for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                continue
            # the leader is gone; make sure no child of it lingers in the group
            try:
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            break
        self.proc.wait()

    def state(self, config: str, host: str, port: int) -> ServerState:
        assert self.proc is not None
        return ServerState(
            base_url=self.base_url, model=self.served_name, pid=self.proc.pid, engine=self.engine,
            started_at=datetime.now(timezone.utc).isoformat(timespec="seconds"), host=host, port=port,
            log_file=str(self.log_file), config=config,
        )

    def __enter__(self) -> ManagedServer:
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
