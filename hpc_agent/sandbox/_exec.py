"""Spawning one sandboxed command under the portable limits, shared by every backend.

* Limits: a per-run cgroup (memory, pids) when writable; otherwise RLIMIT_AS / RLIMIT_NPROC as a fallback.
  RLIMIT_FSIZE always (and no core dumps). The child joins its cgroups *before* exec'ing the command
  (a tiny ``sh`` trampoline), so nothing runs outside them, and the rlimits are set by ``prlimit`` —
  no ``preexec_fn`` (unsafe with threads) unless ``prlimit`` is missing.
* Output: stdout and stderr are read concurrently through a selector, each kept as head + tail of at most
  ``limits.output_bytes`` with a ``[... N bytes omitted ...]`` marker; total bytes are counted. A stream
  that produces more than ``OUTPUT_KILL_FACTOR`` x the cap gets the run killed (``killed="output"``).
* Wall clock: at ``limits.wall_s`` the whole tree is SIGKILLed: the session (process group), then every
  member of the cgroup. When the main process exits, whatever it left behind is killed too.
"""

from __future__ import annotations

import functools
import logging
import os
import resource
import selectors
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from hpc_agent.errors import SandboxInterruptedError, SandboxUnavailableError, UsageError
from hpc_agent.records import ExecResult, KillReason, Limits

from ._cgroup import Cgroup

# Signals the harness never sends: a run ending by one of them was stopped from outside (Slurm preemption
# or cancel sends SIGTERM to every process of the job; Ctrl-C sends SIGINT to the foreground group).
_OUTSIDE_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}

log = logging.getLogger(__name__)

MIB = 1024 * 1024
SCRIPT_NAME = "script.py"
OUTPUT_KILL_FACTOR = 64  # a stream producing more than 64 x output_bytes is a flood: kill the run
_CHUNK = 1 << 16
_GRACE_S = 2.0  # after a kill / exit: how long we keep draining the pipes
_JOIN_FAILED = 125
_JOIN_MARKER = "hpc-agent-sandbox: cannot join cgroup"
# $1.. = cgroup.procs files, then "--", then the command. Fail closed if a group cannot be joined.
_JOIN_SCRIPT = (
    'while [ "$1" != "--" ]; do echo $$ > "$1" || { echo "' + _JOIN_MARKER + ' $1" >&2; exit '
    + str(_JOIN_FAILED) + "; }; shift; done; shift; exec \"$@\""
)


class CappedBuffer:
    """Keeps the first and last bytes of a stream (together at most ``cap``) and counts the total."""

    def __init__(self, cap: int):
        self.head_cap = cap - cap // 2
        self.tail_cap = cap // 2
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    def feed(self, data: bytes) -> None:
        self.total += len(data)
        room = self.head_cap - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        if data and self.tail_cap:
            self.tail += data
            if len(self.tail) > 2 * self.tail_cap:  # trim in amortised O(1)
                del self.tail[: len(self.tail) - self.tail_cap]

    def _tail(self) -> bytes:
        return bytes(self.tail[-self.tail_cap :]) if self.tail_cap else b""

    @property
    def truncated(self) -> bool:
        return self.total > len(self.head) + len(self._tail())

    def text(self) -> str:
        tail = self._tail()
        omitted = self.total - len(self.head) - len(tail)
        head = self.head.decode("utf-8", "replace")
        if omitted <= 0:
            return (bytes(self.head) + tail).decode("utf-8", "replace")
        return f"{head}\n[... {omitted} bytes omitted ...]\n{tail.decode('utf-8', 'replace')}"


def prepare_workspace(script: str, workspace: Path, ro_binds: Sequence[Path]) -> tuple[Path, list[Path]]:
    """Create the workspace, write the script into it, resolve the read-only binds (which must exist)."""
    binds = []
    for d in ro_binds:
        d = Path(d).resolve()
        if not d.exists():  # a missing data root is the caller's error, even where nothing is mounted
            raise UsageError(f"read-only bind source does not exist: {d}")
        binds.append(d)
    ws = Path(workspace)
    ws.mkdir(parents=True, exist_ok=True)
    ws = ws.resolve()
    (ws / SCRIPT_NAME).write_text(script)
    return ws, binds


def _rlimits(limits: Limits, cgroup: Cgroup) -> dict[int, int]:
    out = {resource.RLIMIT_FSIZE: limits.file_size_mb * MIB, resource.RLIMIT_CORE: 0}
    if cgroup.memory is None:
        out[resource.RLIMIT_AS] = limits.memory_mb * MIB
    if cgroup.pids is None:
        out[resource.RLIMIT_NPROC] = limits.max_procs  # does not bind root; better than nothing
    return out


_PRLIMIT_NAMES = {
    resource.RLIMIT_FSIZE: "fsize",
    resource.RLIMIT_CORE: "core",
    resource.RLIMIT_AS: "as",
    resource.RLIMIT_NPROC: "nproc",
}


def _set_rlimits(rlimits: dict[int, int]) -> None:
    for key, value in rlimits.items():
        resource.setrlimit(key, (value, value))


def _wrap(argv: Sequence[str], cgroup: Cgroup,
          rlimits: dict[int, int]) -> tuple[list[str], Callable[[], None] | None]:
    """The argv that joins the cgroups, sets the rlimits and execs ``argv``; plus a preexec_fn or None."""
    prlimit = shutil.which("prlimit", path="/usr/bin:/bin:/usr/sbin:/sbin")
    if prlimit:
        cmd = [prlimit, *(f"--{_PRLIMIT_NAMES[k]}={v}" for k, v in rlimits.items()), "--", *argv]
        preexec = None
    else:  # pragma: no cover - util-linux (prlimit) is essential on Debian
        cmd = list(argv)
        preexec = functools.partial(_set_rlimits, rlimits)
    if cgroup.groups:
        cmd = ["/bin/sh", "-c", _JOIN_SCRIPT, "hpc-agent-sandbox", *cgroup.procs_files, "--", *cmd]
    return cmd, preexec


def _kill_tree(proc: subprocess.Popen, cgroup: Cgroup) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # the session we started (start_new_session=True)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.kill()
    except ProcessLookupError:
        pass
    cgroup.kill_all()  # anything that left the session or hid in a namespace


class Spawned:
    """A sandboxed process tree started under ``limits`` (its cgroup joined before exec), not yet supervised."""

    def __init__(self, proc: subprocess.Popen, cgroup: Cgroup, backend: str, isolated: bool,
                 status_fd: int | None = None):
        self.proc = proc
        self.cgroup = cgroup
        self.backend = backend
        self.isolated = isolated
        self.status_fd = status_fd  # read end of the backend's exit-status pipe (bwrap), when it has one

    def _close_status(self) -> str:
        if self.status_fd is None:
            return ""
        fd, self.status_fd = self.status_fd, None
        try:
            os.set_blocking(fd, False)
            return os.read(fd, 1 << 16).decode(errors="replace")
        except (BlockingIOError, OSError):
            return ""
        finally:
            os.close(fd)

    def finish(self, limits: Limits, *, started: float | None = None, stdout_before: bytes = b"",
               stderr_before: bytes = b"") -> ExecResult:
        """Supervise until the end (wall clock from ``started``, default now), then the result. The tree and
        the cgroup are gone afterwards. ``*_before``: output already read (it counts as the run's)."""
        start = time.monotonic() if started is None else started
        try:
            with self.proc:
                killed, out, err = _supervise(self.proc, self.cgroup, limits, start, stdout_before, stderr_before)
                rc = self.proc.wait()
            result = _result(self, rc, killed, out, err, time.monotonic() - start)
        finally:
            self.cgroup.destroy()
            status = self._close_status() if self.status_fd is not None else None
        if status is not None and result.killed is None and '"exit-code"' not in status:
            # the backend failed before the script ran (bad bind, no namespaces...): not the script's fault
            raise SandboxUnavailableError(f"{self.backend} could not start the sandbox: "
                                          f"{result.stderr.strip()[-500:]}")
        return result

    def signal_kill(self) -> None:
        """Send SIGKILL to the session at once (no waiting); kill() reaps and cleans up."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def kill(self) -> None:
        """Kill the whole tree and remove the cgroup (idempotent)."""
        _kill_tree(self.proc, self.cgroup)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILLed above
            log.warning("%s: process %d survived SIGKILL", self.backend, self.proc.pid)
        self.cgroup.destroy()
        self._close_status()


@dataclass(frozen=True)
class Launch:
    """How a backend starts its interpreter in a workspace: the argv, the host-side environment of that argv,
    the helper processes it adds (counted in pids.max) and, when it reports the script's exit status on a
    file descriptor, the flag naming that descriptor (inserted after ``argv[0]``)."""

    argv: list[str]
    env: dict[str, str]
    proc_overhead: int = 0
    status_fd_flag: str | None = None


def start(launch: Launch, *, cwd: Path, limits: Limits, backend: str, isolated: bool,
          stdin: int = subprocess.DEVNULL) -> Spawned:
    """Spawn ``launch`` under ``limits`` (with its status pipe, when it has one)."""
    argv, read_fd = list(launch.argv), None
    pass_fds: tuple[int, ...] = ()
    if launch.status_fd_flag:
        read_fd, write_fd = os.pipe()
        argv[1:1] = [launch.status_fd_flag, str(write_fd)]
        pass_fds = (write_fd,)
    try:
        spawned = spawn(argv, cwd=cwd, env=launch.env, limits=limits, backend=backend, isolated=isolated,
                        proc_overhead=launch.proc_overhead, pass_fds=pass_fds, stdin=stdin)
    except BaseException:
        if read_fd is not None:
            os.close(read_fd)
        raise
    spawned.status_fd = read_fd
    return spawned


def run_launch(launch: Launch, *, cwd: Path, limits: Limits, backend: str, isolated: bool) -> ExecResult:
    """A cold run: spawn ``launch`` and supervise it to the end (the wall clock starts before the spawn)."""
    t0 = time.monotonic()
    return start(launch, cwd=cwd, limits=limits, backend=backend, isolated=isolated).finish(limits, started=t0)


def spawn(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: dict[str, str],
    limits: Limits,
    backend: str,
    isolated: bool,
    proc_overhead: int = 0,
    pass_fds: Sequence[int] = (),
    stdin: int = subprocess.DEVNULL,
) -> Spawned:
    """Start ``argv`` in a fresh cgroup under the memory/pids/file-size ``limits`` (the wall clock is the
    supervisor's). ``pass_fds`` are inherited by the child and closed here once it is spawned."""
    cgroup = Cgroup.create(limits.memory_mb * MIB, limits.max_procs + proc_overhead)
    try:
        if not cgroup.groups:
            log.debug("no writable cgroup v1 memory/pids here: falling back to rlimits")
        cmd, preexec = _wrap(argv, cgroup, _rlimits(limits, cgroup))
        try:
            proc = subprocess.Popen(
                cmd,
                cwd=cwd,
                env=env,
                stdin=stdin,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
                close_fds=True,
                pass_fds=tuple(pass_fds),
                preexec_fn=preexec,  # None unless prlimit is missing
            )
        except OSError as exc:
            raise SandboxUnavailableError(f"{backend}: cannot start {cmd[0]}: {exc}") from exc
    except BaseException:
        cgroup.destroy()
        raise
    finally:
        for fd in pass_fds:
            os.close(fd)
    return Spawned(proc, cgroup, backend, isolated)


def _result(spawned: Spawned, rc: int, killed: KillReason | None, out: CappedBuffer, err: CappedBuffer,
            duration: float) -> ExecResult:
    backend, cgroup = spawned.backend, spawned.cgroup
    if rc == _JOIN_FAILED and err.head.startswith(_JOIN_MARKER.encode()):
        raise SandboxUnavailableError(f"{backend}: {err.text().strip()}")
    # rc < 0: the backend process itself was signalled; 128+n: bwrap/apptainer reporting their child's signal
    outside = -rc if -rc in _OUTSIDE_SIGNALS else rc - 128 if rc - 128 in _OUTSIDE_SIGNALS else None
    if killed is None and outside is not None:
        raise SandboxInterruptedError(f"{backend}: the run was stopped by {signal.Signals(outside).name} from "
                                      "outside the harness (job preempted or cancelled?)")
    exit_code: int | None = rc
    if killed is None and cgroup.oom_kills() > 0 and rc != 0:
        killed = "memory"
    if killed is None and rc < 0:
        killed = "signal"
    if killed is not None:
        exit_code = None
    if cgroup.pids_denied():
        log.info("%s: pids.max reached %d times", backend, cgroup.pids_denied())
    return ExecResult(
        backend=backend,
        exit_code=exit_code,
        stdout=out.text(),
        stderr=err.text(),
        duration_s=round(duration, 4),
        killed=killed,
        stdout_bytes=out.total,
        stderr_bytes=err.total,
        truncated=out.truncated or err.truncated,
        isolated=spawned.isolated,
    )


def _supervise(
    proc: subprocess.Popen, cgroup: Cgroup, limits: Limits, start: float, stdout_before: bytes = b"",
    stderr_before: bytes = b"",
) -> tuple[KillReason | None, CappedBuffer, CappedBuffer]:
    assert proc.stdout is not None and proc.stderr is not None
    out, err = CappedBuffer(limits.output_bytes), CappedBuffer(limits.output_bytes)
    out.feed(stdout_before)
    err.feed(stderr_before)
    buffers = {proc.stdout.fileno(): out, proc.stderr.fileno(): err}
    flood = limits.output_bytes * OUTPUT_KILL_FACTOR
    deadline = start + limits.wall_s
    drain_until: float | None = None
    killed: KillReason | None = None

    def stop(reason: KillReason | None) -> None:
        nonlocal killed, drain_until
        if reason is not None and killed is None:
            killed = reason
        _kill_tree(proc, cgroup)
        if drain_until is None:
            drain_until = time.monotonic() + _GRACE_S

    with selectors.DefaultSelector() as sel:
        for fd in buffers:
            sel.register(fd, selectors.EVENT_READ)
        while sel.get_map():
            now = time.monotonic()
            if drain_until is None:
                if now >= deadline:
                    stop("timeout")
                elif proc.poll() is not None:
                    stop(None)  # main process done: nothing it left behind may keep running
            elif now >= drain_until:
                break  # pipes held open by something we could not kill: stop reading
            horizon = drain_until if drain_until is not None else deadline
            for key, _ in sel.select(max(0.0, min(horizon - now, 0.2))):
                data = os.read(key.fd, _CHUNK)
                if data:
                    buffers[key.fd].feed(data)
                else:
                    sel.unregister(key.fd)
            if killed is None and (out.total > flood or err.total > flood):
                stop("output")
    if drain_until is None and killed is None:
        # both pipes closed: reap, and clear out anything that closed its pipes but lingers
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            killed = "timeout"
        _kill_tree(proc, cgroup)
    else:
        _kill_tree(proc, cgroup)
    return killed, out, err
