"""Warm sandboxes: the same results as cold ones, clean fallbacks, single use, the pool's bookkeeping.

The hostile-script self-check runs warm too (tests/test_sandbox.py, `*-warm` ids). Speed is measured in
benchmarks/warm_sandbox.py, not here.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
import warnings
from pathlib import Path

import pytest

from hpc_agent.records import ExecResult, Limits
from hpc_agent.sandbox import BwrapSandbox, UnisolatedExecutionWarning, get_sandbox
from hpc_agent.sandbox.warm import DEFAULT_MODULES, WarmPool, WarmSandbox, run_fresh

BWRAP_OK, BWRAP_WHY = BwrapSandbox().available()
NAMES = ["bwrap", "process"] if BWRAP_OK else ["process"]
LIGHT = ("json",)


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnisolatedExecutionWarning)
        yield


def same(cold: ExecResult, warm: ExecResult) -> None:
    assert warm.start == "warm", warm.start_note
    assert cold.start == "cold"
    keep = {"duration_s", "start", "start_note"}
    assert cold.model_dump(exclude=keep) == warm.model_dump(exclude=keep)


def both(sb, script: str, ws: Path, *, modules=LIGHT, env=None, ro_binds=(), **limits) -> tuple[ExecResult, ExecResult]:
    """The script cold, then warm, in the same (emptied) workspace path."""
    lim = Limits(**{"wall_s": 20, **limits})
    cold = sb.run(script, ws, env=env or {}, limits=lim, ro_binds=ro_binds)
    shutil.rmtree(ws)
    warm = WarmSandbox(sb, ws, env=env or {}, limits=lim, ro_binds=ro_binds, modules=modules).start()
    assert warm.ready(), warm.failure
    return cold, warm.run(script)


SCRIPTS = {
    "context": """import os, sys, __main__
print(__name__, __file__, sys.argv, sys.path[0], os.getcwd(), __spec__, __package__, __cached__, __doc__)
print(type(__loader__).__name__, __main__.__file__, sorted(k for k in globals() if not k.startswith('__')))
print(repr(sys.stdin.read()), sys.orig_argv[1:])
""",
    "traceback": "def f():\n    return 1 / 0\nprint('before')\nf()\n",
    "chained": "try:\n    {}['x']\nexcept KeyError as e:\n    raise ValueError('wrapped') from e\n",
    "syntax": "print('x')\n1 +\n",
    "exit-code": "import sys\nprint('out')\nsys.exit(3)\n",
    "exit-message": "import sys\nsys.exit('goodbye')\n",
    "warning-in-main": "import warnings\nwarnings.warn('old', DeprecationWarning)\nwarnings.warn('w')\nprint('ok')\n",
    "atexit-thread": ("import atexit, threading, time\natexit.register(lambda: print('atexit'))\n"
                      "threading.Thread(target=lambda: (time.sleep(0.2), print('thread'))).start()\n"),
    "local-import": "open('helper.py', 'w').write('X = 42\\n')\nimport helper\nprint(helper.X, helper.__file__)\n",
    "pickle-main": ("import pickle\nclass A:\n    pass\ndef f():\n    pass\n"
                    "print(pickle.loads(pickle.dumps(A())).__class__.__module__, pickle.loads(pickle.dumps(f)) is f)\n"),
    "stderr-and-unicode": "import sys\nprint('é ∑', file=sys.stderr)\nprint('ü')\n",
    # the launcher's exit skips the teardown of the preloaded modules, not what the script's exit does:
    "del-and-atexit": ("class D:\n    def __del__(self):\n        print('del at exit')\nd = D()\n"
                       "fh = open('out.txt', 'w')\nfh.write('kept')\n"
                       "import atexit\natexit.register(lambda: print('atexit sees open file:', not fh.closed))\n"),
    "exit-odd-codes": "import sys\nprint('a')\nsys.exit(256 + 7)\n",
    "exit-bool": "import sys\nsys.exit(True)\n",
    "stdout-closed": "import sys\nprint('x')\nsys.stdout.close()\n",
    "thread-exception": ("import threading\ndef f():\n    raise RuntimeError('in thread')\n"
                         "t = threading.Thread(target=f)\nt.start()\nt.join()\nprint('main done')\n"),
    "daemon-thread": ("import threading, time\nthreading.Thread(target=lambda: (time.sleep(5), print('late')),"
                      " daemon=True).start()\nprint('main')\n"),
}


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("case", sorted(SCRIPTS))
def test_warm_and_cold_give_identical_results(name, case, tmp_path):
    cold, warm = both(get_sandbox(name), SCRIPTS[case], tmp_path / "ws")
    same(cold, warm)


@pytest.mark.parametrize("name", NAMES)
def test_a_file_the_script_left_open_is_complete_after_a_warm_run(name, tmp_path):
    """The launcher ends the process without tearing down the preloaded stack, after releasing the script's
    own objects: a file it never closed is flushed as at a normal exit."""
    script = "fh = open('left-open.txt', 'w')\nfh.write('y' * 100000)\nprint('done')\n"
    cold, warm = both(get_sandbox(name), script, tmp_path / "ws")
    same(cold, warm)
    assert (tmp_path / "ws" / "left-open.txt").read_text() == "y" * 100000


@pytest.mark.parametrize("name", NAMES)
def test_limits_are_the_same_warm(name, tmp_path):
    """Memory, file size and output caps as cold; the wall clock counts from the script's arrival."""
    sb = get_sandbox(name)
    ws = tmp_path / "ws"
    warm = WarmSandbox(sb, ws, env={}, limits=Limits(wall_s=4, file_size_mb=1), modules=LIGHT).start()
    assert warm.ready()
    time.sleep(5)  # longer than the wall clock: the time before the hand-over does not count
    r = warm.run("import time\ntime.sleep(0.5)\nopen('big', 'wb').write(b'x' * 2**21)\n")
    assert r.start == "warm" and r.killed is None and r.exit_code == 1 and "File too large" in r.stderr, r
    warm = WarmSandbox(sb, tmp_path / "ws2", env={}, limits=Limits(wall_s=1.5), modules=LIGHT).start()
    t0 = time.monotonic()
    r = warm.run("while True:\n    pass\n")
    assert r.start == "warm" and r.killed == "timeout" and r.exit_code is None
    assert 1.5 <= r.duration_s < 4 and time.monotonic() - t0 < 8


@pytest.mark.parametrize("name", NAMES)
def test_failed_warm_up_falls_back_cold_and_says_why(name, tmp_path):
    sb = get_sandbox(name)
    script = "import sys\nprint('hello', sys.argv)\n"
    cold = sb.run(script, tmp_path / "cold", env={}, limits=Limits(wall_s=10))
    ws = tmp_path / "ws"
    crashing = WarmSandbox(sb, ws, env={}, limits=Limits(wall_s=10), modules=("no_such_module_hpc",)).start()
    assert not crashing.ready() and "ModuleNotFoundError" in crashing.failure
    r = crashing.run(script)
    assert r.start == "fallback" and "ModuleNotFoundError" in r.start_note
    assert (r.stdout, r.stderr, r.exit_code) == (cold.stdout, cold.stderr, cold.exit_code)
    with pytest.raises(RuntimeError, match="one script only"):  # never reused
        crashing.run(script)

    noisy_ws = tmp_path / "noisy"  # a module that prints while being imported: its output would be lost warm
    noisy_ws.mkdir()
    (noisy_ws / "noisy.py").write_text("import sys\nprint('import-time chatter', file=sys.stderr)\n")
    noisy = WarmSandbox(sb, noisy_ws, env={}, limits=Limits(wall_s=10), modules=("noisy",)).start()
    r = noisy.run(script)
    assert r.start == "fallback" and "import-time chatter" in r.start_note and r.stdout == cold.stdout

    dying = WarmSandbox(sb, tmp_path / "dying", env={}, limits=Limits(wall_s=10), modules=LIGHT).start()
    assert dying.ready()
    os.killpg(dying._spawned.proc.pid, signal.SIGKILL)  # the launcher dies after it was ready
    dying._spawned.proc.wait(5)
    r = dying.run(script)
    assert r.start == "fallback" and r.stdout == cold.stdout and r.exit_code == 0, r

    slow_ws = tmp_path / "slow"
    slow_ws.mkdir()
    (slow_ws / "slow.py").write_text("import time\ntime.sleep(30)\n")
    slow = WarmSandbox(sb, slow_ws, env={}, limits=Limits(wall_s=10), modules=("slow",), ready_timeout_s=1).start()
    r = slow.run(script)
    assert r.start == "fallback" and "not ready" in r.start_note and r.stdout == cold.stdout
    assert not [p for p in _processes_in(tmp_path)], "a discarded warm sandbox is still running"


def test_unavailable_backend_falls_back_to_its_own_error(tmp_path):
    from hpc_agent.errors import SandboxUnavailableError

    warm = WarmSandbox(BwrapSandbox(binary="no-such-bwrap"), tmp_path / "ws", env={}, limits=Limits()).start()
    assert "could not start" in warm.failure
    with pytest.raises(SandboxUnavailableError):
        warm.run("print(1)")


def _processes_in(root: Path) -> list[int]:
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            if str(root) in os.readlink(f"/proc/{entry}/cwd"):
                found.append(int(entry))
        except OSError:
            continue
    return found


def test_pool_runs_prepared_workspaces_warm_and_cleans_up(tmp_path):
    sb = get_sandbox(NAMES[0])
    pool = WarmPool(sb, LIGHT)
    limits = Limits(wall_s=10)
    a, b, unused = tmp_path / "a" / "workspace", tmp_path / "b" / "workspace", tmp_path / "c" / "workspace"
    pool.prepare([a, b, unused], env={"K": "1"}, limits=limits)
    assert a.is_dir() and unused.is_dir()
    r = pool.run("import json\nprint('a')", a, env={"K": "1"}, limits=limits)
    assert r.start == "warm" and r.stdout == "a\n"
    r = pool.run("import json\nprint('a again')", a, env={"K": "1"}, limits=limits)  # single use: now cold
    assert r.start == "cold" and r.stdout == "a again\n"
    r = pool.run("import json\nprint('b')", b, env={"K": "2"}, limits=limits)  # other settings than prepared
    assert r.start == "cold" and r.stdout == "b\n"
    pool.prepare([tmp_path / "d" / "workspace"], env={}, limits=limits)  # the unused ones of a turn are discarded
    assert not (tmp_path / "c").exists()  # ... with the folders made for them
    pool.close()
    assert not (tmp_path / "d").exists()
    assert _processes_in(tmp_path) == []
    assert pool.run("print('after')", tmp_path / "e", env={}, limits=limits).stdout == "after\n"


@pytest.mark.parametrize("name", NAMES)
def test_pool_hands_a_script_that_imports_none_of_the_warm_modules_to_a_bare_sandbox(name, tmp_path):
    """Such a script gains nothing from the warm-up (it would wait for the rest of it): on a backend binding the
    workspace, the blank sandbox prepared beside the warm one (its launcher imports nothing) takes the workspace
    over; on `process`, which cannot bind a folder of its own at the workspace, it starts cold."""
    pool = WarmPool(get_sandbox(name), LIGHT)
    limits = Limits(wall_s=10)
    needs, plain = tmp_path / "needs" / "workspace", tmp_path / "plain" / "workspace"
    pool.prepare([needs, plain], env={}, limits=limits)
    r = pool.run("from json import dumps\nprint(dumps(1))", needs, env={}, limits=limits)
    assert (r.start, r.start_note, r.stdout) == ("warm", None, "1\n")
    script = "import os\nprint(os.getcwd() == os.environ['HOME'] == str(__import__('pathlib').Path.cwd()))"
    r = pool.run(script, plain, env={}, limits=limits)
    assert r.stdout == "True\n" and r.exit_code == 0
    if get_sandbox(name).isolated:
        assert (r.start, r.start_note) == ("warm", "blank: the script imports none of the warm modules")
    else:
        assert (r.start, r.start_note) == ("cold", "cold: the script imports none of the warm modules")
    pool.close()
    assert _processes_in(tmp_path) == []
    assert sorted(p.name for p in (tmp_path / "needs").iterdir()) == ["workspace"]  # no blank folder left beside
    assert sorted(p.name for p in (tmp_path / "plain").iterdir()) == ["workspace"]


def _listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.mark.skipif(not BWRAP_OK, reason=f"bwrap unusable here: {BWRAP_WHY}")
@pytest.mark.parametrize("case", sorted(SCRIPTS))
def test_bare_and_cold_give_identical_results_and_workspaces(case, tmp_path):
    sb = get_sandbox("bwrap")
    limits = Limits(wall_s=20)
    ws = tmp_path / "attempt" / "ws"
    cold = sb.run(SCRIPTS[case], ws, env={}, limits=limits)
    after_cold = _listing(tmp_path)
    shutil.rmtree(tmp_path / "attempt")
    pool = WarmPool(sb, ("decimal",))
    pool.prepare([ws], env={}, limits=limits)
    blank = pool.run(SCRIPTS[case], ws, env={}, limits=limits)
    pool.close()
    assert blank.start_note == "blank: the script imports none of the warm modules"
    same(cold, blank)
    assert _listing(tmp_path) == after_cold


@pytest.mark.skipif(not BWRAP_OK, reason="bubblewrap unavailable: setting aside needs a backend binding the workspace")
@pytest.mark.parametrize("taker", ["blank", "fallback", "cold"])
def test_a_sandbox_set_aside_leaves_the_workspace_clean_to_the_next_run(taker, tmp_path):
    """Discarded off the critical path: its workspace, with what the warm-up wrote there (HOME is the workspace),
    is moved aside and removed in a thread; the blank sandbox's own folder takes its place (or, when the blank
    one is unusable, an empty folder for a cold run): the script sees its workspace as fresh (its script and
    the seeded font list, nothing of the warm-up's), and close() waits for the cleanup."""
    pool = WarmPool(get_sandbox("bwrap"), ("matplotlib.font_manager",))
    limits = Limits(wall_s=30)
    ws = tmp_path / "attempt" / "workspace"
    pool.prepare([ws], env={}, limits=limits)
    warm, blank = pool._prepared[ws.absolute()]
    assert warm.ready() and blank is not None  # the warm-up is over: matplotlib's folders are in the workspace
    assert (ws / ".config" / "matplotlib").is_dir()
    if taker == "fallback":  # it died after it was ready: gone at the hand-over
        blank._spawned.signal_kill()
        blank._spawned.proc.wait()
    if taker == "cold":  # it never got ready
        blank.failure = "warm-up not ready"
    r = pool.run("import os\nprint(sorted(os.listdir('.')), sorted(os.listdir('.cache')))", ws, env={}, limits=limits)
    assert r.stdout == "['.cache', 'script.py'] ['matplotlib']\n"
    note = {"blank": "blank: the script", "fallback": "launcher gone at hand-over", "cold": "cold: the script"}[taker]
    assert r.start == {"blank": "warm"}.get(taker, taker) and r.start_note.startswith(note), r
    pool.close()
    assert sorted(p.name for p in ws.parent.iterdir()) == ["workspace"]
    assert _processes_in(tmp_path) == []


def test_pool_spares_for_throwaway_workspaces(tmp_path):
    pool = WarmPool(get_sandbox(NAMES[0]), LIGHT)
    try:
        env, limits = {"DATA": str(tmp_path)}, Limits(wall_s=10)
        first = pool.run_fresh("import os\nprint(os.getcwd())", env=env, limits=limits, ro_binds=[tmp_path])
        second = pool.run_fresh("import os\nprint(os.getcwd())", env=env, limits=limits, ro_binds=[tmp_path])
        assert (first.start, second.start) == ("cold", "warm") and first.ok and second.ok
        assert not Path(second.stdout.strip()).exists()  # the spare's workspace is gone afterwards
        other = pool.run_fresh("print(1)", env={}, limits=limits)
        assert other.start == "cold"
    finally:
        pool.close()
    assert run_fresh(get_sandbox(NAMES[0]), "print(2)", env={}, limits=limits).stdout == "2\n"


def test_pool_passes_through_without_modules_or_launch(tmp_path):
    class Double:
        name, isolated = "double", True

        def available(self):
            return True, "test double"

        def run(self, script, workspace, *, env, limits, ro_binds=()):
            return ExecResult(backend="double", exit_code=0, duration_s=0.0, stdout=script, stderr="")

    for pool in (WarmPool(Double()), WarmPool(get_sandbox("process"), None)):
        pool.prepare([tmp_path / "ws"], env={}, limits=Limits())
        assert pool.run("print(1)", tmp_path / "ws", env={}, limits=Limits()).start == "cold"
        assert pool.run_fresh("print(1)", env={}, limits=Limits()).start == "cold"
        pool.close()


# -------------------------------------------------------------------------------- reference solutions
DATA = Path(os.environ.get("PHOTON_STORAGE", "/work/shared/data"))
needs_data = pytest.mark.skipif(not (DATA / "hess-dl3-dr1").is_dir(), reason="no H.E.S.S. DL3 DR1 data here")


@needs_data
@pytest.mark.skipif(not BWRAP_OK, reason=f"bwrap unusable here: {BWRAP_WHY}")
@pytest.mark.parametrize("task_id", ["observation-list-crab", "total-livetime-pks2155", "reflected-significance-crab"])
def test_reference_solutions_identical_warm_and_cold(task_id, tmp_path):
    from hpc_agent.bench.tasks import load_tasks, reference_script
    from hpc_agent.data import contract_env, data_binds

    script = reference_script(load_tasks()[task_id])
    cold, warm = both(get_sandbox("bwrap"), script, tmp_path / "ws", modules=DEFAULT_MODULES,
                      env=contract_env(DATA), ro_binds=data_binds(DATA), wall_s=300)
    assert cold.ok, cold.stderr
    same(cold, warm)
    assert "RESULT" in warm.stdout


def test_bad_module_name_is_a_usage_error():
    from hpc_agent.errors import UsageError

    with pytest.raises(UsageError):
        WarmPool(get_sandbox("process"), ["numpy; import os"])


# ------------------------------------------------------------------------------------------ the agent
@pytest.mark.skipif(not BWRAP_OK, reason=f"bwrap unusable here: {BWRAP_WHY}")
@pytest.mark.parametrize("flag", ["--warm", "--no-warm"])
def test_agent_runs_each_turn_on_a_sandbox_warmed_during_the_request(flag, tmp_path, data_root):
    """Every turn's sandbox is started before the request (warm at the answer); `--no-warm` starts them cold.
    Nothing is left running afterwards, and the bundle holds no folders of unused warm sandboxes."""
    import json

    from click.testing import CliRunner
    from conftest import script
    from doubles.openai_server import Reply, ScriptedOpenAIServer
    from hpc_agent.cli import main

    replies = [Reply(code=script("msh1552_count_broken.py")), Reply(code=script("msh1552_count_ok.py"))]
    out = tmp_path / "bundle"
    with ScriptedOpenAIServer(replies) as srv:
        res = CliRunner().invoke(main, ["run", "How many H.E.S.S. DR1 observations point within 2 degrees of "
                                        "MSH 15-52?", "--base-url", srv.base_url, "--model", srv.model, "--out",
                                        str(out), "--data-root", str(data_root), "--sandbox", "bwrap", flag],
                                 catch_exceptions=False)
    assert res.exit_code == 0, res.output
    starts = [json.loads((out / f"attempt-{n}" / "validation.json").read_text())["execution"]["start"]
              for n in (1, 2)]
    assert starts == (["warm", "warm"] if flag == "--warm" else ["cold", "cold"])
    assert sorted(p.name for p in out.iterdir() if p.name.startswith("attempt-")) == ["attempt-1", "attempt-2"]
    assert _processes_in(tmp_path) == []
