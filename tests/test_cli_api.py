"""The thin CLI's homes: Click choices from the name registry, and the API functions the CLI only prints
(job status rows and failure reasons, logs, cancel, container builds, the sweep summary), called directly."""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
from pathlib import Path
from typing import get_args

import click
import pytest
from click.testing import CliRunner

from doubles.openai_server import ScriptedOpenAIServer
from hpc_agent import api, choices
from hpc_agent.cli import main
from hpc_agent.config import Backend, Settings, load_settings
from hpc_agent.errors import EXIT_INFRASTRUCTURE, EXIT_OK, ConfigError, UsageError
from hpc_agent.hpc import containers, jobs
from hpc_agent.records import ExecResult, Limits
from hpc_agent.sandbox import BACKENDS, get_sandbox
from hpc_agent.serve.lifecycle import ServerState
from hpc_agent.serve.session import DEFAULT_MODEL


def _option(command: click.Command, name: str) -> click.Parameter:
    return next(p for p in command.params if p.name == name)


def _choices(command: click.Command, name: str) -> tuple[str, ...]:
    kind = _option(command, name).type
    assert isinstance(kind, click.Choice)
    return tuple(kind.choices)


def test_click_choices_types_and_messages_come_from_the_registry() -> None:
    run, bench = main.commands["run"], main.commands["bench"]
    submit = main.commands["submit"]
    assert isinstance(submit, click.Group)
    assert _choices(run, "sandbox") == choices.SANDBOXES == BACKENDS == ("bwrap", "apptainer", "process")
    assert _choices(run, "reasoning_effort") == choices.REASONING_EFFORTS
    assert _choices(bench, "rag") == _choices(bench, "repairs") == choices.SWITCHES
    assert _choices(submit.commands["serve"], "cluster") == _choices(submit.commands["bench"], "cluster") \
        == choices.CLUSTERS
    # the settings' and backends' types are the registry's Literals
    assert get_args(Settings.model_fields["sandbox"].annotation)[0] == choices.SandboxName
    assert get_args(Backend.model_fields["reasoning_effort"].annotation)[0] == choices.ReasoningEffort
    try:
        get_sandbox("docker")
    except Exception as exc:  # the message lists the registry's names
        assert all(name in str(exc) for name in choices.SANDBOXES)
    assert choices.switch_values("both") == ("off", "on") and choices.switch_choice(("off", "on")) == "both"
    assert choices.switch_choice(choices.switch_values("on")) == "on"


# ---- job status, logs, cancel: the API functions the CLI prints ------------------------------------------

def _record(settings: Settings, job_id: str, kind: str = "bench", **detail: object) -> jobs.JobRecord:
    record = jobs.JobRecord(job_id=job_id, kind=kind, cluster="local", folder=str(settings.jobs_dir / "submitit" / "%j"),
                            name=f"name-{job_id}", detail=dict(detail))
    jobs.save(record, settings.jobs_dir)
    return record


def _outcome(record: jobs.JobRecord, outcome: tuple[str, object]) -> None:
    """The result file submitit writes when a job ends: ("success", value) or ("error", traceback)."""
    path = record.paths().result_pickle
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(outcome))


def test_job_statuses_rows_states_and_failure_reasons(tmp_path: Path) -> None:
    settings = load_settings()
    ok = _record(settings, "done", sweep_out=str(tmp_path / "s1"))
    bad = _record(settings, "broken", sweep_out=str(tmp_path / "s2"))
    _record(settings, "gone")  # never wrote a result: its process is not there
    _outcome(ok, ("success", None))
    _outcome(bad, ("error", "Traceback (most recent call last):\n  File \"x\", line 1\nValueError: boom"))
    with ScriptedOpenAIServer() as srv:  # a serve job whose server answers: its base URL is in the row
        state_file = settings.servers_dir / "m.json"
        ServerState(base_url=srv.base_url, model=srv.model, pid=os.getpid(), engine="llama.cpp", started_at="now",
                    host="127.0.0.1", port=0, log_file="", config="m").write(state_file)
        _record(settings, str(os.getpid()), kind="serve", state_file=str(state_file))  # a live pid: RUNNING
        rows = {r.job: r for r in api.job_statuses(settings)}
    assert [(rows[j].state, rows[j].error) for j in ("done", "broken", "gone")] == [
        ("COMPLETED", None), ("FAILED", "ValueError: boom"), ("INTERRUPTED", None)]
    assert rows["broken"].where == str(tmp_path / "s2")
    serve = rows[str(os.getpid())]
    assert (serve.state, serve.base_url, serve.where) == ("RUNNING", srv.base_url, srv.base_url)
    as_json = rows["broken"].to_json()
    assert list(as_json)[:6] == ["job", "kind", "name", "cluster", "state", "submitted"]
    assert as_json["sweep_out"] == str(tmp_path / "s2") and as_json["error"] == "ValueError: boom"
    assert "base_url" not in as_json
    assert [r.job for r in api.job_statuses(settings, last=2)] == [j for j in rows][-2:]
    # the CLI prints the same rows
    printed = json.loads(CliRunner().invoke(main, ["status", "--json"]).output)
    assert {r["job"]: r["state"] for r in printed}["broken"] == "FAILED"


def test_job_logs_tail_failure_and_unknown_job() -> None:
    settings = load_settings()
    bad = _record(settings, "broken")
    waiting = _record(settings, "queued")
    bad.paths().stdout.parent.mkdir(parents=True, exist_ok=True)
    bad.paths().stdout.write_text("one\ntwo\nthree\n")
    bad.paths().stderr.write_text("warning\n")
    _outcome(bad, ("error", "Traceback\nValueError: boom"))
    (log,) = api.job_logs(settings, "broken", tail=2)
    assert (log.job, log.path, log.text) == ("broken", bad.paths().stdout, "two\nthree")
    assert log.failure is not None and log.failure.endswith("ValueError: boom")
    (err,) = api.job_logs(settings, "broken", stderr=True)
    assert err.text == "warning" and err.failure is None  # the traceback goes with stdout only
    (none,) = api.job_logs(settings, "queued")
    assert none.text is None and none.path == waiting.paths().stdout
    with pytest.raises(UsageError, match="no job 'nope'"):
        api.job_logs(settings, "nope")


def test_cancel_jobs_signals_a_running_local_job() -> None:
    settings = load_settings()
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        _record(settings, str(child.pid))
        assert api.cancel_jobs(settings, str(child.pid)) == [str(child.pid)]
        assert child.wait(timeout=10) == -signal.SIGTERM
        assert api.cancel_jobs(settings, str(child.pid)) == []  # nothing running any more
    finally:
        child.kill()
        child.wait()


def test_container_build_plan(tmp_path: Path) -> None:
    build = api.plan_container_build("sandbox", tmp_path / "s.sif")
    assert build.argv[-2:] == [str(tmp_path / "s.sif"), str(containers.definitions()["sandbox"])]
    assert build.command.split()[1] == "build" and build.runnable == (containers.apptainer_binary() is not None)
    if not build.runnable:
        with pytest.raises(UsageError, match="not installed here: run `apptainer build"):
            api.build_container(build)
    with pytest.raises(UsageError, match="unknown container 'gpu'"):
        api.plan_container_build("gpu")


# ---- the sweep summary -------------------------------------------------------------------------------------

def test_sweep_summary_counts_lines_and_exit_code(tmp_path: Path) -> None:
    summary = api.SweepSummary(tmp_path)
    for status in ("passed", "passed", "failed"):
        summary.add(status)
    assert (summary.cells, summary.exit_code) == (3, EXIT_OK)
    assert summary.counts() == "2 passed, 1 failed, 0 errors"
    assert summary.line() == (f"this run: 2 passed, 1 failed, 0 infrastructure errors (retried on resume); "
                              f"traces in {tmp_path}")
    summary.add("error")
    assert summary.exit_code == EXIT_INFRASTRUCTURE == 3
    with pytest.raises(ValueError, match="unknown cell status"):
        summary.add("maybe")
    # a sweep folder read back: finished cells counted, a cell in flight (no cell.json) or a broken one not
    for cell, status in (("a", "passed"), ("b", "failed"), ("c", "error"), ("d", "passed")):
        (tmp_path / "cells" / cell).mkdir(parents=True)
        (tmp_path / "cells" / cell / "cell.json").write_text(json.dumps({"status": status}))
    (tmp_path / "cells" / "in-flight").mkdir()
    (tmp_path / "cells" / "torn").mkdir()
    (tmp_path / "cells" / "torn" / "cell.json").write_text("{")
    folder = api.sweep_summary(tmp_path)
    assert (folder.passed, folder.failed, folder.error, folder.exit_code) == (2, 1, 1, EXIT_INFRASTRUCTURE)
    assert api.sweep_summary(tmp_path / "empty").cells == 0


# ---- one home per lookup: backends, layout, HPC_AGENT_* settings, run assembly -------------------------------

def test_resolve_backend_one_lookup_order(isolated_config: Path) -> None:
    isolated_config.write_text("backends:\n  qwen3-8b:\n    base_url: http://proxy:9/v1\n    model: q\n"
                               "    candidates: 3\n")
    settings = load_settings()
    configured = api.resolve_backend(settings, "qwen3-8b")  # a configured backend shadows the model config
    assert (configured.source, configured.endpoint.base_url, configured.candidates) == (  # type: ignore[union-attr]
        "configured", "http://proxy:9/v1", 3)
    remote = api.resolve_backend(settings, "openai-gpt-5")
    assert remote.source == "model-config" and remote.endpoint is not None and remote.config is not None
    local = api.resolve_backend(settings)  # no name: the embedded default, which needs a server
    assert (local.name, local.endpoint, local.config.kind) == (DEFAULT_MODEL, None, "local-llamacpp")  # type: ignore[union-attr]
    adhoc = api.resolve_backend(settings, base_url="http://h:1/v1", model="m")
    assert adhoc.source == "adhoc" and adhoc.endpoint.model == "m"  # type: ignore[union-attr]
    with pytest.raises(ConfigError, match="unknown backend 'gpt-9'; model configs: .*configured backends: qwen3-8b"):
        api.resolve_backend(settings, "gpt-9")
    with pytest.raises(UsageError, match="go together"):
        api.resolve_backend(settings, model="m")


def test_layout_and_hpc_agent_variables_are_settings(tmp_path: Path, isolated_config: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from hpc_agent.bench.tasks import REPO_BENCHMARKS, benchmarks_dir
    from hpc_agent.serve.configs import REPO_CONFIGS, config_dirs
    from hpc_agent.serve.engines import vllm_command

    settings = load_settings(runs_dir=tmp_path / "data" / "runs")
    assert (settings.servers_dir, settings.jobs_dir, settings.sweeps_dir) == (
        tmp_path / "data" / "servers", tmp_path / "data" / "jobs", tmp_path / "data" / "sweeps")
    assert config_dirs() == [REPO_CONFIGS] and benchmarks_dir() == REPO_BENCHMARKS
    monkeypatch.setenv("HPC_AGENT_MODEL_CONFIGS", f"{tmp_path / 'a'}:{tmp_path / 'b'}")
    monkeypatch.setenv("HPC_AGENT_VLLM", "apptainer exec --nv vllm.sif vllm")
    monkeypatch.setenv("HPC_AGENT_BENCHMARKS", str(tmp_path / "bench"))
    env = load_settings()
    assert env.model_config_dirs == [tmp_path / "a", tmp_path / "b"] and config_dirs() == [*env.model_config_dirs,
                                                                                          REPO_CONFIGS]
    assert vllm_command() == ["apptainer", "exec", "--nv", "vllm.sif", "vllm"] and benchmarks_dir() == tmp_path / "bench"
    for key in ("HPC_AGENT_MODEL_CONFIGS", "HPC_AGENT_VLLM", "HPC_AGENT_BENCHMARKS"):
        monkeypatch.delenv(key)
    isolated_config.write_text(f"vllm: /opt/vllm\nbenchmarks: {tmp_path / 'b2'}\n")  # the config file works too
    assert vllm_command() == ["/opt/vllm"] and benchmarks_dir() == tmp_path / "b2"
    assert vllm_command(load_settings(vllm="v")) == ["v"]  # an explicit Settings wins


def test_run_assembly_carries_every_limit(tmp_path: Path) -> None:
    from hpc_agent.assemble import candidates_for, limits_for, run_spec

    settings = load_settings(memory_mb=1234, max_procs=7, exec_timeout_s=50, attempts=4, repairs=False)
    assert limits_for(settings) == Limits(wall_s=50, memory_mb=1234, max_procs=7)
    assert limits_for(settings, 9).wall_s == 9
    spec = run_spec(settings, prompt="p", data_root=tmp_path, out_dir=tmp_path / "o", wall_s=9, attempts=2)
    assert (spec.attempts, spec.repairs, spec.limits.memory_mb, spec.limits.wall_s) == (2, False, 1234, 9)
    assert candidates_for(settings, None) == 1 and candidates_for(settings, 3) == 3
    assert candidates_for(load_settings(candidates=2), 3) == 2


def test_reference_values_run_with_the_settings_limits(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                       data_root: Path) -> None:
    """The reference run gets the settings' memory cap (it used to get the default whatever was configured)."""
    from hpc_agent.bench.references import expected_values
    from hpc_agent.bench.tasks import load_tasks

    monkeypatch.setenv("HPC_AGENT_MEMORY_MB", "3000")
    monkeypatch.setenv("HPC_AGENT_CACHE", str(tmp_path / "cache"))
    task = load_tasks()["total-livetime-crab"]
    seen: list[Limits] = []

    class Recording:
        name, isolated = "recording", True

        def available(self) -> tuple[bool, str]:
            return True, "records"

        def run(self, script: str, workspace: Path, *, env: object, limits: Limits, ro_binds: object = ()) -> ExecResult:
            seen.append(limits)
            values = json.dumps({k: 1.0 for k in task.outputs})
            return ExecResult(backend="recording", exit_code=0, stdout=f"RESULT {values}\n", stderr="", duration_s=0.1)

    expected_values(task, data_root, Recording(), use_cache=False)  # type: ignore[arg-type]
    assert seen[0].memory_mb == 3000 and seen[0].wall_s == task.time_limit_s
