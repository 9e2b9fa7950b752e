"""What runs inside a batch job: a model server, or one shard of a benchmark sweep.

These objects are pickled by submitit on the submitting node and called on the compute node, so they
hold only plain data (settings, options) and import the rest when called.
"""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import submitit

from hpc_agent.bench.sweep import SweepOptions
from hpc_agent.config import Settings
from hpc_agent.errors import InfrastructureError


def _log(message: str) -> None:
    print(message, flush=True)  # the job's stdout is its log (`hpc-agent logs JOB`)


@dataclass
class ServeWork:
    """`hpc-agent serve NAME` inside an allocation, publishing its state file in the shared folder."""

    settings: Settings
    name: str
    host: str
    state_file: Path

    def __call__(self) -> int:
        from hpc_agent.serve.session import serve_foreground

        code = serve_foreground(self.settings, self.name, host=self.host, state_file=self.state_file,
                                on_ready=lambda s: _log(f"ready {s.base_url}"), progress=_log)
        if code:
            raise InfrastructureError(f"server {self.name} ended with exit code {code}")
        return code


def wait_for_server(settings: Settings, name: str, timeout_s: float, poll_s: float = 2.0) -> str:
    """Block until the server of model `name` announces itself (state file) and answers; its base URL."""
    from hpc_agent.serve.configs import get_model_config
    from hpc_agent.serve.session import default_state_file, running_server

    cfg = get_model_config(name, settings)
    deadline = time.monotonic() + timeout_s
    _log(f"waiting for the {name} server (state file {default_state_file(settings, name)})")
    while time.monotonic() < deadline:
        state = running_server(settings, cfg)
        if state is not None:
            _log(f"{name} server ready at {state.base_url}")
            return state.base_url
        time.sleep(poll_s)
    raise InfrastructureError(f"no {name} server answered within {timeout_s:.0f} s; is its serve job running? "
                              f"(`hpc-agent status`, state file {default_state_file(settings, name)})")


def _stop_on_preemption(stop: threading.Event) -> None:
    """Chain onto submitit's handlers: SIGTERM (preemption, cancel) and USR2 (time-out, preemption) first tell
    the sweep to stop, then submitit checkpoints and requeues as usual."""
    for signum in (signal.SIGTERM, signal.SIGUSR2):
        previous = signal.getsignal(signum)

        def handler(sig: int, frame: FrameType | None, previous: Any = previous) -> None:
            stop.set()
            if callable(previous):
                previous(sig, frame)

        signal.signal(signum, handler)


class BenchShard(submitit.helpers.Checkpointable):
    """Shard `index` of `count` of a sweep. Preempted or timed out, submitit requeues it (Checkpointable) and
    the rerun skips the cells that have a cell.json: nothing is lost or counted twice."""

    def __init__(self, options: SweepOptions, settings: Settings, index: int, count: int, *,
                 wait_for: tuple[str, ...] = (), start_servers: bool = True) -> None:
        self.options = options
        self.settings = settings
        self.index = index
        self.count = count
        self.wait_for = wait_for
        self.start_servers = start_servers

    def __call__(self) -> dict[str, int]:
        from hpc_agent.bench.sweep import Sweep

        for name in self.wait_for:
            wait_for_server(self.settings, name, self.settings.server_ready_timeout_s)
        sweep = Sweep.from_settings(self.options, self.settings, shard=(self.index, self.count),
                               start_servers=self.start_servers, progress=_log)
        _stop_on_preemption(sweep.stop)
        _log(f"shard {self.index + 1}/{self.count}: {len(sweep.cells)} of {len(sweep.all_cells)} cells "
             f"into {self.options.out}")
        counts = Counter(r["status"] for r in sweep.run())
        _log(f"shard {self.index + 1}/{self.count}: {dict(counts)}")
        if counts["error"]:
            raise InfrastructureError(f"{counts['error']} cell(s) ended in an infrastructure error (see their "
                                      f"cell.json under {self.options.out}/cells); resubmit to retry them")
        return dict(counts)
