"""Per-run cgroup v1 groups (``memory`` and ``pids``) — created when writable, always removed.

Every sandboxed process tree is placed in a fresh group under the invoking process's own group (or the
hierarchy root) so that memory is capped (the kernel OOM-kills inside the group, and we can tell it did),
the number of tasks is capped (``pids.max`` also binds root, unlike RLIMIT_NPROC), and a timeout kills
every member, including processes that left the session or escaped to a new namespace.
"""

from __future__ import annotations

import errno
import logging
import os
import signal
import time
import uuid
from pathlib import Path

log = logging.getLogger(__name__)

CGROUP_ROOT = Path("/sys/fs/cgroup")


def _own_path(controller: str) -> str:
    try:
        with open("/proc/self/cgroup") as fh:
            for line in fh:
                _, controllers, path = line.rstrip("\n").split(":", 2)
                if controller in controllers.split(","):
                    return path
    except OSError:
        pass
    return "/"


def _make(controller: str, name: str, settings: list[tuple[str, int]]) -> Path | None:
    """Create ``name`` below our own group (else the root) and write ``settings``; None if impossible."""
    mount = CGROUP_ROOT / controller
    if not (mount / "cgroup.procs").exists():
        return None
    parents = [mount / _own_path(controller).lstrip("/"), mount]
    for parent in dict.fromkeys(parents):
        group = parent / name
        try:
            group.mkdir()
        except OSError:
            continue
        try:
            for key, value in settings:
                (group / key).write_text(str(value))
            return group
        except OSError as exc:
            log.debug("cannot configure cgroup %s: %s", group, exc)
            _rmdir(group)
    return None


def _rmdir(group: Path, timeout: float = 2.0) -> None:
    end = time.monotonic() + timeout
    while True:
        try:
            group.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError as exc:
            if exc.errno != errno.EBUSY or time.monotonic() > end:
                log.warning("could not remove cgroup %s: %s", group, exc)
                return
            time.sleep(0.01)


class Cgroup:
    """A memory group and/or a pids group for one run. Either may be None (not writable here)."""

    def __init__(self, memory: Path | None, pids: Path | None):
        self.memory = memory
        self.pids = pids

    @classmethod
    def create(cls, memory_bytes: int, max_procs: int, *, prefix: str = "hpc-agent") -> Cgroup:
        name = f"{prefix}-{os.getpid()}-{uuid.uuid4().hex[:10]}"
        memory = _make("memory", name, [("memory.limit_in_bytes", memory_bytes)])
        if memory is not None:
            try:  # with swap accounting, cap memory+swap too (must be >= memory limit: set after it)
                (memory / "memory.memsw.limit_in_bytes").write_text(str(memory_bytes))
            except OSError:
                pass
        pids = _make("pids", name, [("pids.max", max_procs)])
        return cls(memory, pids)

    @property
    def groups(self) -> list[Path]:
        return [g for g in (self.memory, self.pids) if g is not None]

    @property
    def procs_files(self) -> list[str]:
        return [str(g / "cgroup.procs") for g in self.groups]

    def members(self) -> set[int]:
        found: set[int] = set()
        for group in self.groups:
            try:
                found.update(int(x) for x in (group / "cgroup.procs").read_text().split())
            except (OSError, ValueError):
                pass
        return found

    def kill_all(self, timeout: float = 3.0) -> bool:
        """SIGKILL every member until the groups are empty (a fork bomb is bounded by pids.max)."""
        end = time.monotonic() + timeout
        pause = 0.0005  # members usually go within a ms of the kill: poll fast first, then back off
        while True:
            members = self.members()
            if not members:
                return True
            for pid in members:
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            if time.monotonic() > end:
                log.warning("cgroup members survived SIGKILL: %s", sorted(members))
                return False
            time.sleep(pause)
            pause = min(2 * pause, 0.005)

    def _counter(self, group: Path | None, filename: str, key: str) -> int:
        if group is None:
            return 0
        try:
            for line in (group / filename).read_text().splitlines():
                name, _, value = line.partition(" ")
                if name == key:
                    return int(value)
        except (OSError, ValueError):
            pass
        return 0

    def oom_kills(self) -> int:
        """How many tasks the kernel OOM-killed in the memory group."""
        return self._counter(self.memory, "memory.oom_control", "oom_kill")

    def pids_denied(self) -> int:
        """How many forks/clones were refused because pids.max was reached."""
        return self._counter(self.pids, "pids.events", "max")

    def destroy(self) -> None:
        self.kill_all()
        for group in self.groups:
            _rmdir(group)
