"""Self-check of the sandboxes with real bwrap and real processes (no mocks).

Hostile scripts are run through every backend: ``bwrap``, ``apptainer`` (through a stand-in, see
``APPTAINER_STAND_IN``) and ``process`` for the properties it can honour (limits and env scrubbing; it
has no isolation, so isolation tests skip it). Each backend is checked started cold for the script and
pre-started warm (``WarmStart``: the launcher warmed up, then the script handed over); the isolated ones also
blank (``BlankStart``: the interpreter alone pre-started beside a warm sandbox, taking its workspace over).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

from hpc_agent.errors import SandboxInterruptedError, SandboxUnavailableError, UsageError
from hpc_agent.records import ExecResult, Limits
from hpc_agent.sandbox import (
    BACKENDS,
    BwrapSandbox,
    UnisolatedExecutionWarning,
    apptainer_argv,
    default_sandbox_name,
    get_sandbox,
)
from hpc_agent.sandbox import _seed
from hpc_agent.sandbox._cgroup import Cgroup
from hpc_agent.sandbox._exec import CappedBuffer
from hpc_agent.sandbox.bwrap import interpreter_paths
from hpc_agent.sandbox.warm import WarmPool, WarmSandbox

BWRAP_OK, BWRAP_WHY = BwrapSandbox().available()
needs_bwrap = pytest.mark.skipif(not BWRAP_OK, reason=f"bwrap unusable here: {BWRAP_WHY}")

ALLOWED_ENV = {"PATH", "HOME", "TMPDIR", "LANG", "MPLBACKEND", "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE"}
ALLOWED_ENV |= {"PWD"}  # set by the launcher (bwrap --chdir / sh) to the workspace: harmless

# --------------------------------------------------------------------------------------------------
# The Apptainer stand-in. THIS IS A TEST DOUBLE, NOT APPTAINER: Apptainer cannot be installed here,
# so this small script, named `apptainer`, accepts exactly the `apptainer exec` flags our backend
# emits and translates them into an equivalent bwrap invocation (the "image" is the host's root,
# read-only). It rejects any unknown flag and refuses to run without --containall/--cleanenv/
# --network none, so the argv the backend builds is exercised end to end, and the limits machinery
# (cgroups, kill of the host process tree, output caps) is tested on a real process tree.
# --------------------------------------------------------------------------------------------------
APPTAINER_STAND_IN = r'''
"""Test double for `apptainer exec` (NOT Apptainer): translates its flags to bwrap."""
import csv, os, sys

args = sys.argv[1:]
if not args or args.pop(0) != "exec":
    sys.exit("FATAL: stand-in only supports 'exec'")
flags, binds, env, pwd, network = set(), [], {}, None, None
while args and args[0].startswith("--"):
    a = args.pop(0)
    if a in ("--containall", "--no-home", "--cleanenv", "--net"):
        flags.add(a)
    elif a == "--network":
        network = args.pop(0)
    elif a == "--bind":
        binds.append(args.pop(0))
    elif a == "--pwd":
        pwd = args.pop(0)
    elif a == "--env":
        for item in next(csv.reader([args.pop(0)])):  # pflag stringToString parses CSV
            key, _, value = item.partition("=")
            env[key] = value
    else:
        sys.exit(f"FATAL: stand-in: unsupported flag {a}")
if not {"--containall", "--cleanenv", "--net"} <= flags or network != "none":
    sys.exit("FATAL: stand-in refuses to run without --containall --cleanenv --net --network none")
image, cmd = args[0], args[1:]
if not os.path.isfile(image):
    sys.exit(f"FATAL: image {image} not found")
bw = ["bwrap", "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
      "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp", "--tmpfs", "/run"]
# The interpreter stands for the image's own Python: it stays visible where real Apptainer would show the
# image's files, even when it lives under the /tmp that --containall replaces (a venv on node-local /tmp).
exe = cmd[0] if os.path.isabs(cmd[0]) else None
for root in {os.path.dirname(os.path.dirname(exe)), os.path.dirname(os.path.dirname(os.path.realpath(exe)))} if exe else ():
    if root == "/tmp" or root.startswith("/tmp/"):
        bw += ["--ro-bind", root, root]
for b in binds:
    src, dst, *opt = b.split(":")
    bw += ["--ro-bind" if opt == ["ro"] else "--bind", src, dst]
bw += ["--chdir", pwd or "/", "--clearenv"]
for key, value in env.items():
    bw += ["--setenv", key, value]
os.execvp("bwrap", bw + ["--", *cmd])
'''


@pytest.fixture(scope="session")
def apptainer_stand_in(tmp_path_factory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("apptainer-stand-in")
    binary = d / "apptainer"
    binary.write_text(f"#!{sys.executable}\n{APPTAINER_STAND_IN}")
    binary.chmod(0o755)
    image = d / "fake-gammapy.sif"
    image.write_text("not a real image: the stand-in uses the host root read-only\n")
    return binary, image


WARM_TEST_MODULES = ("json", "decimal")  # light: the hostile scripts need no scientific stack


class WarmStart:
    """The backend, but each run on a warm sandbox started for it: warmed up, then the script handed over."""

    def __init__(self, backend, modules=WARM_TEST_MODULES):
        self.backend, self.modules = backend, modules
        self.name, self.isolated = backend.name, backend.isolated

    def available(self):
        return self.backend.available()

    def run(self, script, workspace, *, env, limits, ro_binds=()):
        warm = WarmSandbox(self.backend, workspace, env=env, limits=limits, ro_binds=ro_binds,
                           modules=self.modules).start()
        warm.ready()
        result = warm.run(script, limits)
        assert result.start == "warm", result.start_note
        return result


class BlankStart:
    """The backend, but each run on the blank sandbox a pool prepares beside a warm one (its launcher imports
    nothing): the script, which imports none of the warm modules, is handed to it in the workspace's place."""

    def __init__(self, backend, modules=("decimal",)):
        self.pool = WarmPool(backend, modules)
        self.name, self.isolated = backend.name, backend.isolated

    def available(self):
        return self.pool.available()

    def run(self, script, workspace, *, env, limits, ro_binds=()):
        self.pool.prepare([workspace], env=env, limits=limits, ro_binds=ro_binds)
        try:
            result = self.pool.run(script, workspace, env=env, limits=limits, ro_binds=ro_binds)
        finally:
            self.pool.close()
        assert result.start == "warm" and result.start_note.startswith("blank"), result
        return result


STARTS = {"cold": lambda b: b, "warm": WarmStart, "blank": BlankStart}


@pytest.fixture(params=[(b, m) for b in BACKENDS for m in STARTS if b != "process" or m != "blank"],
                ids=lambda p: f"{p[0]}-{p[1]}")
def sandbox(request, apptainer_stand_in):
    name, start = request.param
    if name in ("bwrap", "apptainer") and not BWRAP_OK:
        pytest.skip(f"bwrap unusable here: {BWRAP_WHY}")
    if name == "apptainer":
        binary, image = apptainer_stand_in
        backend = get_sandbox("apptainer", image=image, binary=str(binary), python=sys.executable)
    else:
        backend = get_sandbox(name)
    return STARTS[start](backend)


@pytest.fixture(autouse=True)
def host_secrets(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
    monkeypatch.setenv("HPC_AGENT_API_KEY", "hpc-secret")


def isolation_only(sb) -> None:
    if not sb.isolated:
        pytest.skip("the process backend provides no isolation (by design)")


def run(sb, script: str, ws: Path, *, env=None, ro_binds=(), **limits) -> ExecResult:
    limits.setdefault("wall_s", 10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnisolatedExecutionWarning)
        return sb.run(script, ws, env=env or {}, limits=Limits(**limits), ro_binds=ro_binds)


def processes_mentioning(token: str) -> list[int]:
    """Host pids whose command line contains ``token`` (works across PID namespaces)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if token.encode() in cmdline:
                found.append(int(entry))
    return found


def cgroups_writable() -> bool:
    cg = Cgroup.create(64 * 1024 * 1024, 16)
    try:
        return cg.memory is not None and cg.pids is not None
    finally:
        cg.destroy()


CGROUPS = cgroups_writable()


# --------------------------------------------------------------------------------------------- basics
def test_clean_run_and_workspace_persists(sandbox, tmp_path):
    ws = tmp_path / "ws"  # does not exist yet: run() creates it
    r = run(sandbox, "open('result.txt', 'w').write('hello from the sandbox')\nprint('done')", ws)
    assert r.ok, r
    assert r.exit_code == 0 and r.stdout == "done\n" and r.killed is None
    assert r.backend == sandbox.name and r.isolated == sandbox.isolated
    assert (ws / "result.txt").read_text() == "hello from the sandbox"
    assert (ws / "script.py").is_file()


FONT_PROBE = ("import glob, os\nf, = glob.glob(os.path.expanduser('~/.cache/matplotlib/fontlist-*.json'))\n"
              "before = os.stat(f).st_mtime_ns\nimport matplotlib.font_manager\n"
              "print(before == os.stat(f).st_mtime_ns)\nopen(f, 'w').write('{}')\n")


@pytest.mark.parametrize("name", ["bwrap", "process"])
def test_a_fresh_workspace_starts_with_the_seeded_font_list(name, tmp_path, monkeypatch):
    """Gammapy imports matplotlib, which builds its font list wherever HOME (the workspace) has none. The
    harness builds it once per backend and interpreter, by a run of its own, and copies it into each fresh
    workspace: matplotlib takes it as it is (never rewrites it), and what a script does to its copy never
    reaches the next run."""
    if name == "bwrap" and not BWRAP_OK:
        pytest.skip(f"bwrap unusable here: {BWRAP_WHY}")
    monkeypatch.setenv("HPC_AGENT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(_seed, "_BUILT", {})
    sb = get_sandbox(name)
    first = run(sb, FONT_PROBE, tmp_path / "a", wall_s=120)
    assert first.stdout == "True\n", first.stderr
    seed, = (tmp_path / "cache" / "sandbox-seed").glob(f"{name}-*/fontlist-*.json")
    second = run(sb, FONT_PROBE, tmp_path / "b", wall_s=120)  # the first run spoilt its own copy only
    assert second.stdout == "True\n", second.stderr
    assert seed.read_bytes() != b"{}" and (tmp_path / "a" / ".cache" / "matplotlib" / seed.name).read_text() == "{}"


def test_without_matplotlib_nothing_is_seeded(tmp_path, monkeypatch):
    """An interpreter whose build fails (no matplotlib) runs as before: an unseeded workspace, no seed kept."""
    python = "/usr/bin/python3"
    if not Path(python).exists() or subprocess.run([python, "-c", "import matplotlib"], capture_output=True).returncode == 0:
        pytest.skip(f"needs a {python} without matplotlib")
    monkeypatch.setenv("HPC_AGENT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(_seed, "_BUILT", {})
    r = run(get_sandbox("process", python=python), "import os\nprint(os.listdir('.'))", tmp_path / "ws")
    assert r.stdout == "['script.py']\n", r.stderr
    assert not list((tmp_path / "cache").rglob("*.json"))
    assert not list((tmp_path / "cache" / "sandbox-seed").iterdir())  # no empty folder per failed build


def test_crash_is_a_result(sandbox, tmp_path):
    r = run(sandbox, "print('before')\n1 / 0\n", tmp_path / "ws")
    assert r.exit_code == 1 and r.killed is None and not r.ok
    assert r.stdout == "before\n" and "ZeroDivisionError" in r.stderr


def test_env_is_scrubbed_and_contract_vars_visible(sandbox, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    ws = tmp_path / "ws"
    env = {"PHOTON_STORAGE": str(data), "GAMMAPY_DATA": str(data), "WITH_COMMA": "a,b=c"}
    r = run(sandbox, "import os, json; print(json.dumps(dict(os.environ)))", ws, env=env, ro_binds=[data])
    assert r.ok, r
    seen = json.loads(r.stdout)
    assert "OPENAI_API_KEY" not in seen and not any(k.startswith("HPC_AGENT") for k in seen)
    assert "sk-secret" not in r.stdout and "hpc-secret" not in r.stdout
    assert set(seen) <= ALLOWED_ENV | set(env), set(seen) - ALLOWED_ENV - set(env)
    assert seen["PHOTON_STORAGE"] == str(data) and seen["GAMMAPY_DATA"] == str(data)
    assert seen["WITH_COMMA"] == "a,b=c"
    assert seen["HOME"] == str(ws.resolve()) and seen["TMPDIR"] == "/tmp"
    assert seen["MPLBACKEND"] == "Agg" and seen["PYTHONUNBUFFERED"] == "1"


def test_data_is_readable_and_read_only(sandbox, tmp_path):
    isolation_only(sandbox)
    data = tmp_path / "data"
    data.mkdir()
    (data / "events.fits").write_text("photons")
    script = """
import os, pathlib
root = pathlib.Path(os.environ["PHOTON_STORAGE"])
print((root / "events.fits").read_text())
for attempt in (lambda: (root / "events.fits").write_text("x"), lambda: (root / "new").write_text("x")):
    try:
        attempt()
        print("WROTE")
    except OSError as exc:
        print("denied", exc.errno)
"""
    r = run(sandbox, script, tmp_path / "ws", env={"PHOTON_STORAGE": str(data)}, ro_binds=[data])
    assert r.ok, r
    assert r.stdout.splitlines()[0] == "photons" and "WROTE" not in r.stdout
    assert (data / "events.fits").read_text() == "photons" and not (data / "new").exists()


@pytest.mark.parametrize("start", ["cold", "warm"])
@pytest.mark.parametrize("name", BACKENDS)
def test_every_backend_works_from_tmp_and_paths_with_spaces(name, start, apptainer_stand_in, tmp_path):
    """A venv, a workspace and a data root under /tmp (where clusters put node-local venvs) in folders whose
    names hold spaces: the scientific stack imports and the data is read."""
    import subprocess
    import sysconfig

    if name != "process" and not BWRAP_OK:
        pytest.skip(f"bwrap unusable here: {BWRAP_WHY}")
    place = tmp_path / "node local" / "my venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(place)], check=True, timeout=120)
    site = next(place.glob("lib/python*/site-packages"))
    (site / "host-stack.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")  # gammapy & co from this venv
    python = str(place / "bin" / "python")
    data = tmp_path / "data root" / "release"
    data.mkdir(parents=True)
    (data / "obs.txt").write_text("23523\n")
    options = {"python": python}
    if name == "apptainer":
        binary, image = apptainer_stand_in
        options.update(image=image, binary=str(binary))
    sb = get_sandbox(name, **options)
    if start == "warm":
        sb = WarmStart(sb, modules=("gammapy.data",))
    script = ("import os, sys, gammapy.data\nprint(sys.prefix)\n"
              "print(open(os.path.join(os.environ['PHOTON_STORAGE'], 'obs.txt')).read().strip())\n")
    r = run(sb, script, tmp_path / "work space" / "ws", env={"PHOTON_STORAGE": str(data)}, ro_binds=[data],
            wall_s=120)
    assert r.ok, r.stderr
    assert r.stdout.splitlines() == [str(place), "23523"]


def test_missing_data_root_is_a_usage_error(sandbox, tmp_path):
    with pytest.raises(UsageError):
        run(sandbox, "pass", tmp_path / "ws", ro_binds=[tmp_path / "nope"])


# ------------------------------------------------------------------------------------------ isolation
def test_host_writes_do_not_reach_host(sandbox, tmp_path):
    isolation_only(sandbox)
    outside = tmp_path / "outside.txt"
    etc = Path("/etc/hpc-agent-sandbox-probe")
    script = f"""
for target in ({str(outside)!r}, {str(etc)!r}, "/usr/hpc-agent-probe"):
    try:
        open(target, "w").write("escaped")
        print("wrote", target)
    except OSError as exc:
        print("denied", target, exc.errno)
"""
    try:
        r = run(sandbox, script, tmp_path / "ws")
        assert r.ok, r
        assert not outside.exists() and not etc.exists() and not Path("/usr/hpc-agent-probe").exists()
        assert f"denied {etc}" in r.stdout
    finally:
        etc.unlink(missing_ok=True)


def test_network_is_unreachable(sandbox, tmp_path):
    isolation_only(sandbox)
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    port = server.getsockname()[1]
    script = f"""
import socket
for host, port in (("127.0.0.1", {port}), ("1.1.1.1", 443), ("8.8.8.8", 53)):
    try:
        socket.create_connection((host, port), timeout=2).close()
        print("CONNECTED", host)
    except OSError as exc:
        print("blocked", host, type(exc).__name__)
try:
    socket.getaddrinfo("pypi.org", 443)
    print("RESOLVED")
except OSError:
    print("no dns")
"""
    try:
        r = run(sandbox, script, tmp_path / "ws")
    finally:
        server.close()
    assert r.ok, r
    assert "CONNECTED" not in r.stdout and "RESOLVED" not in r.stdout, r.stdout
    assert r.stdout.count("blocked") == 3


@needs_bwrap
def test_bwrap_hides_home_and_drops_capabilities(tmp_path):
    home = Path(os.path.expanduser("~")).resolve()
    keep = {p.relative_to(home).parts[0] for p in interpreter_paths(sys.executable) if home in p.parents}
    script = f"""
import os
print(sorted(os.listdir({str(home)!r})))
print(open("/proc/self/status").read().split("CapEff:")[1].split()[0])
"""
    r = run(get_sandbox("bwrap"), script, tmp_path / "ws")
    assert r.ok, r
    listed, capeff = r.stdout.splitlines()
    assert set(eval(listed)) <= keep, listed
    assert int(capeff, 16) == 0


@needs_bwrap
def test_bwrap_hides_the_harness_from_generated_code(tmp_path):
    # an editable install's finder is masked: scripts cannot import the harness (and do not load its finder),
    # while the scientific stack of the same environment imports as before
    from hpc_agent.sandbox.bwrap import harness_pth_files

    if not harness_pth_files():
        pytest.skip("the harness is not an editable install here: no finder to mask")
    script = """
import importlib.util, sys
print(importlib.util.find_spec("hpc_agent") is None, importlib.util.find_spec("gammapy") is not None)
print(any("hpc_agent" in type(f).__module__ for f in sys.meta_path))
"""
    r = run(get_sandbox("bwrap"), script, tmp_path / "ws")
    assert r.ok, r
    assert r.stdout.splitlines() == ["True True", "False"]
    argv = get_sandbox("bwrap").command(tmp_path / "ws", env={}, limits=Limits())
    assert all(str(p) in argv for p in harness_pth_files())


@needs_bwrap
def test_bwrap_setup_failure_raises(tmp_path):
    with pytest.raises(SandboxUnavailableError):
        run(BwrapSandbox(python="/nonexistent/python3"), "pass", tmp_path / "ws")
    with pytest.raises(SandboxUnavailableError):
        run(BwrapSandbox(binary="no-such-bwrap-binary"), "pass", tmp_path / "ws")


# ------------------------------------------------------------------------------------------- limits
RUNAWAY = """
import os, subprocess, sys, time
child = (
    "import os, sys, time\\n"
    "open(f'pid-{os.getpid()}', 'w').write(str(os.getpid()))\\n"
    "while True:\\n"
    "    open(f'beat-{os.getpid()}', 'a').write('.')\\n"
    "    time.sleep(0.05)\\n"
)
for i in range(3):  # one of them tries to leave the session
    subprocess.Popen([sys.executable, "-c", child, "MARKER"], start_new_session=(i == 0))
print("spawned", flush=True)
while True:
    pass
"""


def test_wall_clock_kills_the_whole_tree(sandbox, tmp_path):
    ws = tmp_path / "ws"
    marker = f"hpc-agent-runaway-{os.getpid()}-{time.monotonic_ns()}"
    t0 = time.monotonic()
    r = run(sandbox, RUNAWAY.replace("MARKER", marker), ws, wall_s=2)
    elapsed = time.monotonic() - t0
    assert r.killed == "timeout" and r.exit_code is None, r
    assert 2 <= elapsed < 6, elapsed
    assert "spawned" in r.stdout
    beats = sorted(ws.glob("beat-*"))
    assert len(beats) == 3, list(ws.iterdir())
    sizes = [b.stat().st_size for b in beats]
    time.sleep(0.4)
    assert [b.stat().st_size for b in beats] == sizes, "children kept running after the kill"
    assert processes_mentioning(marker) == []
    if not sandbox.isolated:  # same PID namespace: the pids the children wrote are host pids
        for pidfile in ws.glob("pid-*"):
            assert not Path(f"/proc/{pidfile.read_text()}").exists() or marker.encode() not in Path(
                f"/proc/{pidfile.read_text()}/cmdline"
            ).read_bytes()


def test_sigterm_from_outside_is_an_infrastructure_error(sandbox, tmp_path):
    """What Slurm does on preemption or cancel: SIGTERM to every process of the job, the sandbox's included.
    That is not the script's failure: it must not be recorded as one."""
    import signal
    import threading

    ws = tmp_path / f"ws-preempted-{os.getpid()}-{time.monotonic_ns()}"
    box: dict[str, BaseException | ExecResult] = {}

    def target() -> None:
        try:
            box["r"] = run(sandbox, "import time\ntime.sleep(30)\n", ws, wall_s=20)
        except BaseException as exc:
            box["r"] = exc

    def in_workspace() -> list[int]:  # the backend process (its argv names ws) and the script (its cwd is ws)
        pids = set(processes_mentioning(ws.name))
        for entry in filter(str.isdigit, os.listdir("/proc")):
            try:
                if ws.name in os.readlink(f"/proc/{entry}/cwd"):
                    pids.add(int(entry))
            except OSError:
                continue
        return sorted(pids)

    t = threading.Thread(target=target)
    t.start()
    deadline = time.monotonic() + 10
    while not in_workspace() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    for pid in in_workspace():
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    t.join(15)
    assert isinstance(box.get("r"), SandboxInterruptedError), box
    assert "SIGTERM" in str(box["r"])


def test_memory_hog_is_stopped(sandbox, tmp_path):
    script = """
chunks = []
for i in range(20):  # 2 GB, touched
    chunks.append(bytearray(100 * 1024 * 1024))
    print("allocated", (i + 1) * 100, "MB", flush=True)
print("SURVIVED")
"""
    r = run(sandbox, script, tmp_path / "ws", memory_mb=512, wall_s=20)
    assert "SURVIVED" not in r.stdout
    assert r.killed == "memory" or (r.exit_code not in (0, None) and "MemoryError" in r.stderr), r
    if CGROUPS:
        assert r.killed == "memory" and r.exit_code is None
    assert "allocated 100 MB" in r.stdout  # it really ran until it hit the limit


@pytest.mark.skipif(not CGROUPS and os.geteuid() == 0, reason="no pids cgroup and RLIMIT_NPROC does not bind root")
def test_fork_bomb_is_contained(sandbox, tmp_path):
    ws = tmp_path / "ws"
    script = """
import os
print("bombing", flush=True)
while True:
    try:
        os.fork()
    except OSError:
        pass
"""
    t0 = time.monotonic()
    r = run(sandbox, script, ws, wall_s=3, max_procs=32)
    elapsed = time.monotonic() - t0
    assert r.killed == "timeout" and elapsed < 8, (r, elapsed)
    assert "bombing" in r.stdout
    assert processes_mentioning(str(ws.resolve())) == []
    assert run(get_sandbox("process"), "print('host fine')", tmp_path / "after").stdout == "host fine\n"


def test_stdout_flood_is_capped(sandbox, tmp_path):
    cap = 64 * 1024
    script = """
import sys
block = b"A" * (1024 * 1024 - 1) + b"\\n"
sys.stdout.buffer.write(b"HEAD-OF-OUTPUT\\n")
for _ in range(1024):  # 1 GB
    sys.stdout.buffer.write(block)
print("not reached if killed")
"""
    t0 = time.monotonic()
    r = run(sandbox, script, tmp_path / "ws", output_bytes=cap, wall_s=30)
    elapsed = time.monotonic() - t0
    assert elapsed < 10, elapsed
    assert r.truncated and r.stdout_bytes > 4 * cap
    assert len(r.stdout) <= 2 * cap + 100
    assert r.stdout.startswith("HEAD-OF-OUTPUT\n") and "bytes omitted ...]" in r.stdout
    assert r.killed in ("output", None)
    if r.killed is None:
        assert r.stdout_bytes >= 1024**3


def test_file_size_limit(sandbox, tmp_path):
    script = """
try:
    with open("big.bin", "wb") as fh:
        fh.write(b"x" * (3 * 1024 * 1024))
    print("WROTE")
except OSError as exc:
    print("refused", exc.errno)
"""
    r = run(sandbox, script, tmp_path / "ws", file_size_mb=1)
    assert r.ok and r.stdout.strip() == "refused 27", r  # EFBIG
    assert (tmp_path / "ws" / "big.bin").stat().st_size <= 1024 * 1024


def test_process_backend_warns_on_every_run(tmp_path):
    sb = get_sandbox("process")
    assert sb.isolated is False
    for i in range(2):
        with pytest.warns(UnisolatedExecutionWarning, match="WITHOUT ISOLATION"):
            r = sb.run("print(1)", tmp_path / f"ws{i}", env={}, limits=Limits(wall_s=5))
        assert r.ok and r.isolated is False


def test_cgroups_are_cleaned_up(sandbox, tmp_path):
    before = {p.name for p in Path("/sys/fs/cgroup/memory").rglob("hpc-agent-*")}
    run(sandbox, "print('x')", tmp_path / "ws")
    after = {p.name for p in Path("/sys/fs/cgroup/memory").rglob("hpc-agent-*")}
    assert after <= before


# ------------------------------------------------------------------------------------------- units
def test_capped_buffer_keeps_head_and_tail():
    buf = CappedBuffer(10)
    for chunk in (b"0123", b"456789", b"abcdefghij", b"KLMNO"):
        buf.feed(chunk)
    assert buf.total == 25 and buf.truncated
    assert buf.text() == "01234\n[... 15 bytes omitted ...]\nKLMNO"
    small = CappedBuffer(10)
    small.feed(b"short")
    assert small.text() == "short" and not small.truncated


def test_apptainer_argv():
    argv = apptainer_argv(
        "/images/gammapy.sif",
        Path("/runs/ws"),
        env={"HOME": "/runs/ws", "PHOTON_STORAGE": "/data", "ODD": 'a,"b"'},
        ro_binds=[Path("/data")],
    )
    assert argv == [
        "apptainer", "exec", "--containall", "--no-home", "--cleanenv", "--net", "--network", "none",
        "--bind", "/data:/data:ro",
        "--bind", "/runs/ws:/runs/ws", "--pwd", "/runs/ws",
        "--env", "HOME=/runs/ws", "--env", "PHOTON_STORAGE=/data", "--env", '"ODD=a,""b"""',
        "/images/gammapy.sif", "python3", "script.py",
    ]
    assert apptainer_argv("i.sif", Path("/w"), env={}, python="python", binary="/opt/apptainer")[0] == "/opt/apptainer"
    with pytest.raises(UsageError):
        apptainer_argv("i.sif", Path("/w:x"), env={})


def test_apptainer_unavailable_without_image_or_binary(tmp_path):
    assert get_sandbox("apptainer", binary="no-such-apptainer").available()[0] is False
    sb = get_sandbox("apptainer", image=tmp_path / "missing.sif", binary=sys.executable)
    ok, why = sb.available()
    assert not ok and "missing.sif" in why
    with pytest.raises(SandboxUnavailableError):
        sb.run("pass", tmp_path / "ws", env={}, limits=Limits())


def test_unknown_backend_is_a_usage_error():
    with pytest.raises(UsageError) as info:
        get_sandbox("docker")
    for name in BACKENDS:
        assert name in str(info.value)
    with pytest.raises(UsageError):
        get_sandbox("process", image="x.sif")


def test_default_sandbox_name():
    assert default_sandbox_name() in BACKENDS
    assert set(BACKENDS) == {"bwrap", "apptainer", "process"}
    if BWRAP_OK:
        assert default_sandbox_name() == "bwrap"


def test_backends_satisfy_the_protocol(apptainer_stand_in):
    from hpc_agent.sandbox import Sandbox

    for name in BACKENDS:
        sb = get_sandbox(name)
        assert isinstance(sb, Sandbox) and sb.name == name
        ok, why = sb.available()
        assert isinstance(ok, bool) and why


# ------------------------------------------------------------------- without writable cgroups (fallback)
@pytest.fixture
def no_cgroups(monkeypatch, tmp_path):
    """Point the cgroup code at an empty directory, as on a machine without writable cgroup v1."""
    import hpc_agent.sandbox._cgroup as cgroup_module

    monkeypatch.setattr(cgroup_module, "CGROUP_ROOT", tmp_path / "no-cgroups")
    assert not Cgroup.create(1 << 26, 8).groups


@needs_bwrap
@pytest.mark.parametrize("name", ["bwrap", "apptainer"])
def test_fallback_timeout_kill_collapses_pid_namespace(name, no_cgroups, apptainer_stand_in, tmp_path):
    """Without a cgroup, SIGKILL of the outer bwrap (--die-with-parent + PID namespace) ends the tree."""
    binary, image = apptainer_stand_in
    sb = get_sandbox(name) if name == "bwrap" else get_sandbox(
        name, image=image, binary=str(binary), python=sys.executable
    )
    ws = tmp_path / "ws"
    marker = f"hpc-agent-fallback-{os.getpid()}-{time.monotonic_ns()}"
    r = run(sb, RUNAWAY.replace("MARKER", marker), ws, wall_s=2)
    assert r.killed == "timeout", r
    time.sleep(0.2)
    assert processes_mentioning(marker) == []
    beats = sorted(ws.glob("beat-*"))
    sizes = [b.stat().st_size for b in beats]
    time.sleep(0.3)
    assert len(beats) == 3 and [b.stat().st_size for b in beats] == sizes


@pytest.mark.parametrize("name", ["bwrap", "process"])
def test_fallback_memory_limit_is_rlimit_as(name, no_cgroups, tmp_path):
    if name == "bwrap" and not BWRAP_OK:
        pytest.skip(BWRAP_WHY)
    script = "chunks = [bytearray(100 * 1024 * 1024) for _ in range(20)]\nprint('SURVIVED')"
    r = run(get_sandbox(name), script, tmp_path / "ws", memory_mb=512)
    assert "SURVIVED" not in r.stdout and r.exit_code == 1 and "MemoryError" in r.stderr, r
