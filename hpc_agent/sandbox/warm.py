"""Pre-warmed, single-use sandboxes: the interpreter and the scientific stack are loaded before the script exists.

A :class:`WarmSandbox` is started for one workspace with the backend, environment, limits and data binds a
cold run would get. Inside, a small launcher (``python -c LAUNCHER``) imports the configured modules with
its stdout/stderr pointed at a scratch file, reports on stdout that it is ready, and blocks reading its
stdin. ``run(script)`` writes ``script.py`` into the workspace and sends one line: the launcher points stdin
at ``/dev/null`` and runs the file as ``__main__`` (``sys.argv``, ``sys.path[0]``, ``__file__`` and
tracebacks as for ``python script.py``), then the process exits as the interpreter would (exit status,
threads, atexit, the script's objects released and streams flushed) but without tearing down the preloaded
stack, which costs a Gammapy script 0.2-0.4 s at a normal exit. The wall clock starts at that hand-over;
memory, processes and file size are bounded from the start (the warm-up counts against them, as the
script's own imports would).

Never reused: one process per script. A warm-up that failed, wrote anything (an import warning a cold run
would show where the script imports it), died or did not get ready in time is killed and the script runs
cold instead, recorded as ``start="fallback"`` with the reason. :class:`WarmPool` is the harness's side: it
looks like a :class:`~hpc_agent.sandbox.Sandbox`, runs a script on the warm sandbox prepared for its
workspace (else cold), keeps spares for runs in throwaway workspaces (references, variant re-runs), and kills
whatever is left on ``close()``.

A script that imports none of the modules would wait for the rest of the warm-up, and the workspace holds the
warm-up's traces (matplotlib's config folder: HOME is the workspace). For it the pool prepares a *blank*
sandbox beside each warm one on a backend that binds the workspace (bwrap, Apptainer): the same launcher
importing nothing, started in a sibling folder of its own bound at the workspace's path. When it takes the
script, the warm one is set aside (its workspace moved away) and the blank one's folder renamed into the
workspace's place, so the script sees a fresh workspace at its own path and pays neither the interpreter's
start nor the warm-up.
"""

from __future__ import annotations

import ast
import json
import logging
import os
import selectors
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpc_agent.errors import UsageError
from hpc_agent.records import ExecResult, Limits

from ._exec import SCRIPT_NAME, Spawned, start

if TYPE_CHECKING:
    from . import Sandbox

log = logging.getLogger(__name__)

DEFAULT_MODULES: tuple[str, ...] = (
    "numpy", "astropy.units", "astropy.coordinates", "astropy.table", "gammapy.data", "gammapy.maps",
    "gammapy.makers", "gammapy.datasets", "gammapy.modeling", "gammapy.estimators",
)
READY_TIMEOUT_S = 180.0  # a warm-up slower than this is abandoned for a cold start
MARKER = b"\0hpc-agent-warm "
HANDOVER_TIMEOUT_S = 30.0  # for the launcher to acknowledge the script (it does at once unless gone)

# Runs as `python -c LAUNCHER script.py module...` inside the sandbox. Kept to the stdlib and Python >= 3.8
# (an Apptainer image brings its own interpreter). Writes nothing to stdout/stderr but the ready line.
LAUNCHER = r'''
import os, sys
def _hpc_agent_warm():
    name, modules = sys.argv[1], sys.argv[2:]
    sys.argv[:] = [name]
    real = os.dup(1), os.dup(2)
    try:
        sink = os.open(os.environ.get("TMPDIR") or "/tmp", os.O_TMPFILE | os.O_RDWR, 0o600)
    except (OSError, AttributeError):
        sink = os.open(os.devnull, os.O_RDWR)
    os.dup2(sink, 1)
    os.dup2(sink, 2)
    failed = ""
    try:
        import importlib
        for module in modules:
            importlib.import_module(module)
    except BaseException as exc:
        failed = "import failed: %s: %s" % (type(exc).__name__, exc)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    os.dup2(real[0], 1)
    os.dup2(real[1], 2)
    os.close(real[0])
    os.close(real[1])
    if not failed and os.lseek(sink, 0, os.SEEK_END):
        os.lseek(sink, 0, os.SEEK_SET)
        failed = "warm-up wrote output: " + os.read(sink, 600).decode("utf-8", "replace")
    os.close(sink)
    import json
    os.write(1, b"\0hpc-agent-warm " + json.dumps({"ready": not failed, "why": failed}).encode() + b"\n")
    if failed:
        os._exit(0)
    line = b""
    while not line.endswith(b"\n"):
        chunk = os.read(0, 4096)
        if not chunk:  # the harness went away or discarded this sandbox
            os._exit(0)
        line += chunk
    os.write(1, b"\0hpc-agent-warm go\n")
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    path = os.path.join(os.getcwd(), name)
    sys.path[0] = os.path.dirname(path)
    if hasattr(sys, "orig_argv"):
        sys.orig_argv = [sys.orig_argv[0], name]
    import builtins, importlib.machinery, types
    main = types.ModuleType("__main__")
    main.__dict__.update(__file__=path, __builtins__=builtins, __cached__=None, __package__=None, __spec__=None,
                         __loader__=importlib.machinery.SourceFileLoader("__main__", path))
    sys.modules["__main__"] = main
    code = 0
    try:
        with open(path, "rb") as fh:
            source = fh.read()
        exec(compile(source, path, "exec", dont_inherit=True), main.__dict__)
    except SystemExit as exc:
        code = exc.code
    except BaseException as exc:
        tb = exc.__traceback__
        while tb is not None and tb.tb_frame.f_code.co_filename != path:  # the launcher's own frames
            tb = tb.tb_next
        sys.excepthook(type(exc), exc.with_traceback(tb), tb)
        if isinstance(exc, KeyboardInterrupt):
            import signal
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGINT)
        code = 1
    _hpc_agent_exit(code, main)
def _hpc_agent_exit(code, main):
    # The interpreter's own exit, less the teardown of the preloaded stack (0.2-0.4 s for Gammapy's, which a
    # cold run of a script importing it pays too): the exit status and message of a SystemExit, non-daemon
    # threads joined, atexit handlers, the script's globals released (their __del__, unclosed files flushed),
    # the standard streams flushed. Anything unusual (a stream that will not flush) takes the normal path.
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:
        try:
            sys.stderr.write(str(code) + "\n")
        except Exception:
            pass
        status = 1
    try:
        if "threading" in sys.modules:
            sys.modules["threading"]._shutdown()
        import atexit, gc
        atexit._run_exitfuncs()
        for key in [k for k in main.__dict__ if k != "__builtins__"]:
            main.__dict__[key] = None
        gc.collect()
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:
        sys.exit(status)
    os._exit(status & 0xFF)
_hpc_agent_warm()
'''


def launcher_program(modules: Sequence[str]) -> tuple[str, ...]:
    """The interpreter's arguments that start the launcher for ``modules``."""
    for m in modules:
        if not m or not all(part.isidentifier() for part in m.split(".")):
            raise UsageError(f"not a module name for the warm sandbox: {m!r}")
    return ("-c", LAUNCHER, SCRIPT_NAME, *modules)


def imports_any(script: str, modules: Sequence[str]) -> bool:
    """Whether `script` imports a package of `modules` (by top-level name), anywhere in it; False when it does
    not parse (it fails to compile before importing anything)."""
    roots = {m.split(".")[0] for m in modules}
    try:
        tree = ast.parse(script)
    except (SyntaxError, ValueError):
        return False
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] in roots for a in node.names):
            return True
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] in roots:
            return True
    return False


def _spawn_key(limits: Limits) -> tuple[int, int, int]:
    """The limits fixed when the process starts (the wall clock and output caps apply at the hand-over)."""
    return limits.memory_mb, limits.max_procs, limits.file_size_mb


class WarmSandbox:
    """One pre-started sandbox for one workspace: ``start()``, then ``run(script)`` once, or ``close()``."""

    def __init__(self, backend: Sandbox, workspace: Path, *, env: Mapping[str, str], limits: Limits,
                 ro_binds: Sequence[Path] = (), modules: Sequence[str] = DEFAULT_MODULES,
                 ready_timeout_s: float = READY_TIMEOUT_S, source: Path | None = None):
        self.backend = backend
        self.workspace = Path(workspace)
        # the host folder seen at `workspace` inside: itself, or (a blank sandbox started beside the prepared one
        # for the same workspace; isolated backends only) a folder of its own that takes the workspace's place
        # when it takes the script (`set_aside(successor=...)`)
        self.host = Path(source) if source is not None else self.workspace
        self.env = dict(env)
        self.limits = limits
        self.ro_binds = tuple(Path(b) for b in ro_binds)
        self.modules = tuple(modules)
        self.ready_timeout_s = ready_timeout_s
        self.failure: str | None = None  # why this sandbox cannot take the script (then: cold fallback)
        self._spawned: Spawned | None = None
        self._created: list[Path] = []  # folders start() made (removed again when discarded unused)
        self._used = False
        self._fresh = False  # the workspace was empty at the start (what the warm-up put there is its own)
        self._before: bytes | None = None  # stderr read while waiting for the ready line (once waited)

    def matches(self, env: Mapping[str, str], limits: Limits, ro_binds: Sequence[Path]) -> bool:
        """Whether a run with these settings may use this sandbox (same env, binds, spawn-time limits)."""
        return (dict(env) == self.env and _spawn_key(limits) == _spawn_key(self.limits)
                and [Path(b).resolve() for b in ro_binds] == [b.resolve() for b in self.ro_binds])

    def start(self) -> WarmSandbox:
        """Launch the sandbox process with the launcher (returns at once; the warm-up runs in there)."""
        try:
            ok, why = self.backend.available()
            if not ok:
                raise RuntimeError(why)
            binds = []
            for b in self.ro_binds:
                if not b.exists():
                    raise RuntimeError(f"read-only bind source does not exist: {b}")
                binds.append(b.resolve())
            own = {}
            if self.host != self.workspace:
                if not self.backend.isolated or not self.workspace.is_dir():
                    raise RuntimeError("a folder of its own needs an isolated backend and an existing workspace")
                own = {"source": self.host.absolute()}
            missing = [p for p in (self.host, *self.host.parents) if not p.exists()]
            self.host.mkdir(parents=True, exist_ok=True)
            self._created = missing
            self._fresh = not any(self.host.iterdir())
            ws = self.workspace.resolve()
            launch = self.backend.launch(ws, env=self.env, limits=self.limits, ro_binds=binds,  # type: ignore[attr-defined]
                                         program=launcher_program(self.modules), **own)
            self._spawned = start(launch, cwd=ws, limits=self.limits, backend=self.backend.name,
                                  isolated=self.backend.isolated, stdin=subprocess.PIPE)
        except Exception as exc:  # recorded; run() falls back to a cold start (which raises if it must)
            self.failure = f"could not start: {exc}"
            log.info("warm sandbox for %s: %s", self.workspace, self.failure)
        return self

    def ready(self) -> bool:
        """Block until the warm-up is over; whether the script can be handed over."""
        if self._spawned is not None and self.failure is None and self._before is None:
            self._before = self._wait_ready()
        return self._spawned is not None and self.failure is None

    def _read_line(self, timeout: float) -> tuple[bytes | None, bytes, bytes]:
        """The launcher's next stdout line (None: it exited or took longer than ``timeout``), the stdout bytes
        after it, and the stderr read meanwhile."""
        sp = self._spawned
        assert sp is not None and sp.proc.stdout is not None and sp.proc.stderr is not None
        out, err = bytearray(), bytearray()
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as sel:
            sel.register(sp.proc.stdout, selectors.EVENT_READ, out)
            sel.register(sp.proc.stderr, selectors.EVENT_READ, err)
            while b"\n" not in out and sel.get_map():
                left = deadline - time.monotonic()
                if left <= 0:
                    return None, bytes(out), bytes(err)
                for key, _ in sel.select(min(left, 1.0)):
                    data = os.read(key.fd, 1 << 16)
                    if data:
                        key.data.extend(data)
                    else:
                        sel.unregister(key.fileobj)
        line, nl, rest = bytes(out).partition(b"\n")
        return (line if nl else None), rest, bytes(err)

    def _wait_ready(self) -> bytes:
        """Block until the launcher says it is ready; the stderr it produced before (interpreter start-up, which
        a cold run shows too). Sets ``failure`` when it will not be."""
        line, _, err = self._read_line(self.ready_timeout_s)
        if line is None or not line.startswith(MARKER):
            tail = err.decode(errors="replace").strip()[-300:]
            assert self._spawned is not None
            rc = self._spawned.proc.poll()
            self.failure = (f"warm-up not ready after {self.ready_timeout_s:.0f} s" if rc is None and line is None
                            else f"launcher exited before it was ready (exit {rc}){': ' + tail if tail else ''}")
            return err
        try:
            status: dict[str, Any] = json.loads(line[len(MARKER):])
        except ValueError:
            status = {"ready": False, "why": "unreadable ready line"}
        if not status.get("ready"):
            self.failure = str(status.get("why") or "not ready")
        return err

    def run(self, script: str, limits: Limits | None = None) -> ExecResult:
        """Hand ``script`` over and supervise it under ``limits`` (default: the start's), clock from now.
        Falls back to a cold run of the backend when this sandbox is not usable."""
        if self._used:
            raise RuntimeError("a warm sandbox runs one script only")
        self._used = True
        limits = limits or self.limits
        if hasattr(self.backend, "warn") and not self.backend.isolated:
            self.backend.warn()
        sp = self._spawned
        try:
            if self.host != self.workspace:  # it never took the workspace's place: its folder is not the run's
                self.failure = self.failure or "not in the workspace (its prepared sandbox was not set aside for it)"
            elif self.ready():
                assert sp is not None and sp.proc.stdin is not None
                (self.workspace.resolve() / SCRIPT_NAME).write_text(script)
                t0 = time.monotonic()
                try:
                    sp.proc.stdin.write(b"run\n")
                    sp.proc.stdin.close()
                except OSError as exc:  # the launcher died after it was ready
                    self.failure = f"launcher gone at hand-over: {exc}"
                else:  # its acknowledgement: from here on, whatever happens is the script's
                    ack, out, err = self._read_line(HANDOVER_TIMEOUT_S)
                    if ack != MARKER + b"go":
                        self.failure = "launcher gone at hand-over"
                    else:
                        self._spawned = None  # finish() owns it now (and removes its cgroup)
                        result = sp.finish(limits, started=t0, stdout_before=out,
                                           stderr_before=(self._before or b"") + err)
                        return result.model_copy(update={"start": "warm"})
        finally:
            self.close()
        log.info("warm sandbox for %s unusable (%s): cold start", self.workspace, self.failure)
        result = self._cold(script, limits)
        return result.model_copy(update={"start": "fallback", "start_note": self.failure})

    def _cold(self, script: str, limits: Limits) -> ExecResult:
        import warnings

        from .process import UnisolatedExecutionWarning

        with warnings.catch_warnings():  # already warned for this run
            warnings.simplefilter("ignore", UnisolatedExecutionWarning)
            return self.backend.run(script, self.workspace, env=self.env, limits=limits, ro_binds=self.ro_binds)

    def close(self) -> None:
        """Kill the sandbox (if still there). Unused: what the warm-up wrote in its (fresh) workspace is removed,
        and the folders its start created unless a file was put in them meanwhile (a bundle's attempt folder
        with the attempt's records stays)."""
        sp, self._spawned = self._spawned, None
        if sp is not None:
            sp.kill()
        if not self._used and self._fresh:  # the warm-up's traces (e.g. astropy's ~/.config, HOME=workspace)
            for child in list(self.host.iterdir()) if self.host.is_dir() else ():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    child.unlink(missing_ok=True)
        if not self._used and self._created:  # folders it made, removed when nobody has put a file there since
            top = self._created[-1]
            if not any(files for _, _, files in os.walk(top)):
                shutil.rmtree(top, ignore_errors=True)
        self._created = []

    def set_aside(self, successor: WarmSandbox | None = None) -> tuple[threading.Thread | None, bool]:
        """Discard this unused sandbox off the caller's path, for another run in the same workspace: the process
        is sent SIGKILL, its fresh workspace (with whatever the warm-up wrote) is moved aside and an empty one
        put in its place at once, or ``successor``'s own folder (a sandbox started with ``source=`` for this
        workspace, which then runs there); reaping and removing the moved folder run in the returned thread.
        Only for a backend that binds the workspace into the sandbox (the process follows the moved folder, so
        nothing it still writes reaches the new one); otherwise, or when the workspace held files before the
        start, it is closed here and None returned. Also returns whether ``successor`` took the place.
        A sandbox with a folder of its own just has that folder removed in the thread."""
        sp = self._spawned
        if sp is None or self._used or not self._fresh or not self.backend.isolated:
            self.close()
            return None, False
        self._spawned, self._used = None, True
        sp.signal_kill()
        took = False
        if self.host != self.workspace:  # its own folder: nobody else's, nothing to put in its place
            aside, made = self.host, self._created
            self._created = []
        else:
            self._created = []  # the folders made stay: the next run uses them
            aside = self.workspace.with_name(f".{self.workspace.name}.warm-{os.getpid()}-{id(self):x}")
            made = []
            try:
                self.workspace.rename(aside)
            except OSError:  # moved nothing: finish here, as close() would
                sp.kill()
                return None, False
            try:
                if successor is not None and successor.host != successor.workspace and not successor._used:
                    successor.host.rename(self.workspace)
                    successor.host, successor._created, took = successor.workspace, [], True
            except OSError:
                pass
            if not took:
                self.workspace.mkdir(exist_ok=True)

        def finish() -> None:
            sp.kill()
            shutil.rmtree(aside, ignore_errors=True)
            for folder in made[1:]:  # parents it made for its own folder, if nobody has used them since
                try:
                    folder.rmdir()
                except OSError:
                    break

        # not a daemon: the interpreter waits for it at exit, so no moved folder or cgroup is left behind
        thread = threading.Thread(target=finish, name="hpc-agent-warm-discard")
        thread.start()
        return thread, took

    def __enter__(self) -> WarmSandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


class WarmPool:
    """A :class:`~hpc_agent.sandbox.Sandbox` that runs scripts on warm sandboxes prepared ahead.

    ``prepare(workspaces, ...)`` starts one per workspace (before a model request: ready when the answer
    arrives) and, on a backend that binds the workspace, a blank one beside it (the launcher importing nothing,
    in a folder of its own) for a script that imports none of the modules: that one takes the workspace's
    place, so such a script neither waits for the warm-up nor pays the interpreter's start. ``run`` uses the
    sandbox prepared for its workspace when the settings match, else runs cold. ``run_fresh`` runs in a
    throwaway workspace on a spare, and starts the next spare for the same settings. With no modules, or a
    backend that cannot launch (a test double), everything runs cold. Thread-safe.
    """

    def __init__(self, sandbox: Sandbox, modules: Sequence[str] | None = DEFAULT_MODULES):
        self.backend: Sandbox = sandbox.backend if isinstance(sandbox, WarmPool) else sandbox
        self.modules = tuple(modules or ())
        if self.modules:
            launcher_program(self.modules)  # a bad name is a usage error now, not a fallback on every run
        self.name = self.backend.name
        self.isolated = self.backend.isolated
        self._lock = threading.Lock()
        self._prepared: dict[Path, tuple[WarmSandbox, WarmSandbox | None]] = {}  # workspace -> (warm, blank)
        self._spares: dict[tuple, WarmSandbox] = {}
        self._discarding: list[threading.Thread] = []  # cleanups of sandboxes set aside, joined on close()

    @property
    def enabled(self) -> bool:
        return bool(self.modules) and hasattr(self.backend, "launch")

    def available(self) -> tuple[bool, str]:
        return self.backend.available()

    def _new(self, workspace: Path, env: Mapping[str, str], limits: Limits, ro_binds: Sequence[Path]) -> WarmSandbox:
        return WarmSandbox(self.backend, workspace, env=env, limits=limits, ro_binds=ro_binds, modules=self.modules)

    def _blank(self, warm: WarmSandbox) -> WarmSandbox | None:
        """The blank sandbox beside ``warm`` (same settings, no modules, a sibling folder of its own), when the
        backend binds the workspace and ``warm`` started in a fresh one."""
        if not self.backend.isolated or warm.failure is not None or not warm._fresh:
            return None
        ws = warm.workspace
        own = ws.with_name(f".{ws.name}.blank-{os.getpid()}-{id(warm):x}")
        return WarmSandbox(self.backend, ws, env=warm.env, limits=warm.limits, ro_binds=warm.ro_binds, modules=(),
                           source=own).start()

    def prepare(self, workspaces: Iterable[Path], *, env: Mapping[str, str], limits: Limits,
                ro_binds: Sequence[Path] = ()) -> None:
        """Start a warm sandbox (and a blank one) for each workspace; those prepared earlier and never used are
        killed."""
        self.discard_prepared()
        if not self.enabled:
            return
        fresh = {}
        for w in workspaces:
            warm = self._new(Path(w), env, limits, ro_binds).start()
            fresh[Path(w).absolute()] = (warm, self._blank(warm))
        with self._lock:
            self._prepared.update(fresh)

    def discard_prepared(self) -> None:
        with self._lock:
            stale, self._prepared = list(self._prepared.values()), {}
        for warm, blank in stale:
            if blank is not None:
                blank.close()
            warm.close()

    def run(self, script: str, workspace: Path, *, env: Mapping[str, str], limits: Limits,
            ro_binds: Sequence[Path] = ()) -> ExecResult:
        with self._lock:
            warm, blank = self._prepared.pop(Path(workspace).absolute(), (None, None))
        if warm is None:
            return self.backend.run(script, workspace, env=env, limits=limits, ro_binds=ro_binds)
        if imports_any(script, warm.modules):
            if blank is not None:
                self._set_aside(blank)
            if warm.matches(env, limits, ro_binds):
                return warm.run(script, limits)
            self._set_aside(warm)
            return self.backend.run(script, workspace, env=env, limits=limits, ro_binds=ro_binds)
        # the warm-up gains such a script nothing (it would wait for the rest of it, and the workspace holds
        # its traces, e.g. matplotlib's config folder): the blank sandbox takes the workspace's place, else cold
        note = "blank: the script imports none of the warm modules"
        if blank is not None and blank.matches(env, limits, ro_binds) and blank.ready():
            if self._set_aside(warm, successor=blank):
                result = blank.run(script, limits)  # a launcher gone at the hand-over: cold, with its own note
                return result.model_copy(update={"start_note": note}) if result.start == "warm" else result
        if blank is not None:
            self._set_aside(blank)
        self._set_aside(warm)
        result = self.backend.run(script, workspace, env=env, limits=limits, ro_binds=ro_binds)
        return result.model_copy(update={"start_note": "cold: the script imports none of the warm modules"})

    def _set_aside(self, warm: WarmSandbox, successor: WarmSandbox | None = None) -> bool:
        """Discard a prepared sandbox whose workspace another run takes next (``successor``, when given, in its
        place: whether it did); its cleanup is joined on close()."""
        thread, took = warm.set_aside(successor)
        if thread is not None:
            with self._lock:
                self._discarding = [t for t in self._discarding if t.is_alive()] + [thread]
        return took

    def run_fresh(self, script: str, *, env: Mapping[str, str], limits: Limits, ro_binds: Sequence[Path] = (),
                  prefix: str = "hpc-agent-run-") -> ExecResult:
        """``script`` in a new workspace, removed afterwards: on a spare when one with these settings is
        ready (else cold); then a spare for the next such run is started."""
        key = (tuple(sorted(env.items())), _spawn_key(limits), tuple(str(Path(b).resolve()) for b in ro_binds))
        with self._lock:
            spare = self._spares.pop(key, None)
        try:
            if spare is not None:
                return spare.run(script, limits)
            with tempfile.TemporaryDirectory(prefix=prefix) as ws:
                return self.backend.run(script, Path(ws), env=env, limits=limits, ro_binds=ro_binds)
        finally:
            if spare is not None:
                shutil.rmtree(spare.workspace, ignore_errors=True)
            if self.enabled:
                fresh = self._new(Path(tempfile.mkdtemp(prefix=prefix)), env, limits, ro_binds).start()
                with self._lock:
                    old = self._spares.pop(key, None)
                    self._spares[key] = fresh
                if old is not None:
                    old.close()
                    shutil.rmtree(old.workspace, ignore_errors=True)

    def close(self, wait: bool = True) -> None:
        """Kill every warm sandbox not used (prepared and spares); the pool stays usable. ``wait=False`` leaves
        the cleanups of sandboxes set aside running (the interpreter still waits for them at exit)."""
        self.discard_prepared()
        with self._lock:
            spares, self._spares = list(self._spares.values()), {}
        for s in spares:
            s.close()
            shutil.rmtree(s.workspace, ignore_errors=True)
        with self._lock:
            discarding, self._discarding = self._discarding, []
        for t in discarding if wait else ():
            t.join()

    def __enter__(self) -> WarmPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def run_fresh(sandbox: Sandbox, script: str, *, env: Mapping[str, str], limits: Limits,
              ro_binds: Sequence[Path] = (), prefix: str = "hpc-agent-run-") -> ExecResult:
    """``script`` in a throwaway workspace: warm when ``sandbox`` is a :class:`WarmPool`, else cold."""
    if isinstance(sandbox, WarmPool):
        return sandbox.run_fresh(script, env=env, limits=limits, ro_binds=ro_binds, prefix=prefix)
    with tempfile.TemporaryDirectory(prefix=prefix) as ws:
        return sandbox.run(script, Path(ws), env=env, limits=limits, ro_binds=ro_binds)
