"""Batch work on a real Slurm cluster (slurm/dev-cluster.sh) through submitit, plus the pure parts.

The Slurm tests submit real jobs to a real single-node cluster on localhost (slurmctld, slurmd,
slurmdbd + MariaDB so that `sacct` answers) and check states with `sacct`/`scontrol` themselves.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from conftest import REPO
from hpc_agent.bench.sweep import Cell, shard_cells
from hpc_agent.cli import main
from hpc_agent.errors import ConfigError, UsageError
from hpc_agent.hpc import ClusterProfile, Resources, make_executor
from hpc_agent.hpc.executor import sbatch_text
from hpc_agent.hpc import containers, jobs
from hpc_agent.report import build_report
from hpc_agent.serve.lifecycle import served_ids

FINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL"}


# ---- pure parts -------------------------------------------------------------------------------------------

def test_shards_cover_every_cell_once() -> None:
    cells = [Cell("m", f"t{i}", 0, "off") for i in range(11)]
    for count in (1, 2, 3, 4, 11):
        parts = [shard_cells(cells, i, count) for i in range(count)]
        assert [c for p in parts for c in p] == cells  # contiguous, in order, nothing twice
        assert max(map(len, parts)) - min(map(len, parts)) <= 1
    with pytest.raises(UsageError, match="0..2"):
        shard_cells(cells, 3, 3)


GOLDEN = Path(__file__).parent / "golden"


@pytest.mark.parametrize("name, resources", [("profile-gpu", Resources(timeout_min=30, gpus_per_node=4)),
                                             ("profile-cpu", Resources())])
def test_profile_sbatch_matches_its_golden_file(name: str, resources: Resources, tmp_path: Path) -> None:
    """The whole batch script a site profile gives, line for line (GPU jobs on the GPU partition, extra
    sbatch lines, setup before srun); `UPDATE_GOLDEN=1` rewrites the files after a deliberate change."""
    profile = ClusterProfile(partition="cpu", gpu_partition="booster", account="hpc-agent", qos="normal",
                             constraint="a100", sbatch=["#SBATCH --reservation=hack", "--exclusive"],
                             setup=["module load CUDA/12.4"])
    text = sbatch_text(make_executor("slurm", tmp_path, resources, profile)).replace(str(tmp_path), "<FOLDER>")
    golden = GOLDEN / f"{name}.sbatch"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(text)
    assert text == golden.read_text()
    assert text.index("module load CUDA/12.4") < text.index("srun")


def test_bad_profile_and_unknown_profile_are_one_line_errors(tmp_path: Path, isolated_config: Path) -> None:
    isolated_config.write_text("clusters:\n  juwels:\n    sbatch: ['partition booster']\n")
    result = CliRunner().invoke(main, ["status"])
    assert result.exit_code == 2
    assert "clusters.juwels.sbatch" in result.output and "--name=value" in result.output
    isolated_config.write_text("clusters:\n  juwels: {partition: booster}\n")
    from hpc_agent.config import load_settings
    from hpc_agent.hpc.submit import resolve_profile

    assert resolve_profile(load_settings(), "juwels").partition == "booster"
    with pytest.raises(ConfigError, match="unknown cluster profile 'jureca'.*juwels"):
        resolve_profile(load_settings(), "jureca")


def test_container_build_command(tmp_path: Path) -> None:
    assert set(containers.definitions()) >= {"sandbox", "vllm"}
    argv = containers.build_command("vllm", tmp_path / "v.sif", fakeroot=True)
    assert argv == ["apptainer", "build", "--fakeroot", str(tmp_path / "v.sif"), str(REPO / "containers/vllm.def")]
    result = CliRunner().invoke(main, ["container", "build", "sandbox", "--print"])
    assert result.exit_code == 0 and result.output.strip().endswith("containers/sandbox.def")
    with pytest.raises(UsageError, match="unknown container 'gpu'.*sandbox"):
        containers.build_command("gpu")
    if shutil.which("apptainer") is None:  # this machine: the command is printed and the reason given
        result = CliRunner().invoke(main, ["container", "build", "sandbox"])
        assert result.exit_code == 2 and "apptainer build" in result.output and "not installed" in result.output


def test_unknown_job_is_a_one_line_error(tmp_path: Path) -> None:
    jobs.save(jobs.JobRecord(job_id="41", kind="serve", cluster="slurm", folder=str(tmp_path / "%j"), name="m"),
              tmp_path)
    with pytest.raises(UsageError, match=r"no job '42' submitted by hpc-agent \(recent: 41\)"):
        jobs.find(tmp_path, "42")
    result = CliRunner().invoke(main, ["logs", "42"])
    assert result.exit_code == 2 and result.output.startswith("error: no job '42'")


def test_bench_shard_option_is_checked() -> None:
    result = CliRunner().invoke(main, ["bench", "--models", "oracle", "--shard", "2/2"])
    assert result.exit_code == 2 and "INDEX/COUNT" in result.output


# ---- local and debug executors (no Slurm needed) ----------------------------------------------------------

def _cells(out: Path) -> pl.DataFrame:
    return pl.read_parquet(out / "cells.parquet")


@pytest.mark.slow
def test_local_executor_runs_a_shard_in_the_background(tmp_path: Path, data_root: Path) -> None:
    out = tmp_path / "sweep"
    result = CliRunner().invoke(main, ["submit", "bench", "--cluster", "local", "--models", "oracle", "--tasks",
                                       "total-livetime-crab", "--attempts", "1", "--out", str(out),
                                       "--data-root", str(data_root), "--wait"])
    assert result.exit_code == 0, result.output
    assert _cells(out)["status"].to_list() == ["passed"]
    status = json.loads(CliRunner().invoke(main, ["status", "--json"]).output)
    assert [(r["kind"], r["cluster"], r["state"]) for r in status] == [("bench", "local", "COMPLETED")]


@pytest.mark.slow
def test_debug_executor_runs_in_this_process(tmp_path: Path, data_root: Path) -> None:
    out = tmp_path / "sweep"
    result = CliRunner().invoke(main, ["submit", "bench", "--cluster", "debug", "--models", "oracle", "--tasks",
                                       "observation-list-crab", "--attempts", "1", "--out", str(out),
                                       "--data-root", str(data_root)])
    assert result.exit_code == 0, result.output
    assert _cells(out)["status"].to_list() == ["passed"]


# ---- a real Slurm cluster ---------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def slurm() -> None:
    """The dev cluster, brought up here when we are root (CI runs slurm/dev-cluster.sh up first anyway)."""
    def answers() -> bool:
        return shutil.which("sinfo") is not None and subprocess.run(
            ["sinfo", "-h"], capture_output=True, timeout=20).returncode == 0

    if not answers() and os.geteuid() == 0:
        subprocess.run([str(REPO / "slurm/dev-cluster.sh"), "up"], check=True, capture_output=True, timeout=600)
    if not answers():
        if os.environ.get("CI"):
            pytest.fail("no Slurm in CI: .ci/run must run slurm/dev-cluster.sh up")
        pytest.skip("no Slurm here: run `sudo slurm/dev-cluster.sh up`")


def sacct_states(job: str) -> dict[str, str]:
    out = subprocess.run(["sacct", "-n", "-X", "-P", "-o", "JobID,State", "-j", job], capture_output=True,
                         text=True, check=True).stdout
    return {line.split("|")[0]: line.split("|")[1].split()[0] for line in out.splitlines() if "|" in line}


def wait_final(job: str, n: int = 1, timeout_s: float = 600) -> dict[str, str]:
    """Poll sacct (not our own code) until `n` jobs/elements of `job` are in a final state."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        states = sacct_states(job)
        if len(states) >= n and all(s in FINAL for s in states.values()):
            return states
        time.sleep(1)
    raise AssertionError(f"job {job} not finished after {timeout_s} s: {sacct_states(job)}")


def submit(*args: str) -> list[str]:
    result = CliRunner().invoke(main, ["submit", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return [line for line in result.stdout.splitlines() if line.strip()]


@pytest.mark.slow
def test_bench_array_with_the_oracle(slurm: None, tmp_path: Path, data_root: Path) -> None:
    out = tmp_path / "sweep"
    ids = submit("bench", "--cluster", "slurm", "--models", "oracle", "--tasks", "observation-list-*",
                 "--attempts", "1", "--shards", "2", "--cpus", "1", "--mem-gb", "2", "--out", str(out),
                 "--data-root", str(data_root))
    array = ids[0].split("_")[0]
    assert sorted(ids) == [f"{array}_0", f"{array}_1"]  # one job array, two elements
    assert wait_final(array, 2) == {f"{array}_0": "COMPLETED", f"{array}_1": "COMPLETED"}
    cells = _cells(out)
    assert cells.height == 4 and cells["cell"].n_unique() == 4 and cells["passed"].all()
    report = build_report([out], tmp_path / "report")
    assert "oracle" in (report / "report.md").read_text()
    status = json.loads(CliRunner().invoke(main, ["status", "--json"]).output)
    assert {r["job"]: r["state"] for r in status} == {f"{array}_0": "COMPLETED", f"{array}_1": "COMPLETED"}
    log = CliRunner().invoke(main, ["logs", array]).output
    assert "shard 1/2: 2 of 4 cells" in log and "shard 2/2: 2 of 4 cells" in log


@pytest.mark.slow
def test_failing_job_shows_its_error(slurm: None, tmp_path: Path, data_root: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from hpc_agent.serve.lifecycle import free_port

    monkeypatch.setenv("HPC_AGENT_LLM_RETRIES", "0")
    dead = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    result = CliRunner().invoke(main, ["submit", "bench", "--cluster", "slurm", "--base-url", dead, "--model", "m",
                                       "--tasks", "observation-list-crab", "--attempts", "1", "--cpus", "1",
                                       "--mem-gb", "2", "--out", str(tmp_path / "sweep"), "--data-root",
                                       str(data_root), "--wait"])
    assert result.exit_code == 3, result.output
    job = result.stdout.split()[0]
    assert wait_final(job.split("_")[0]) [job] == "FAILED"
    assert "infrastructure error" in result.output  # --wait prints the job's own traceback
    logs = CliRunner().invoke(main, ["logs", job])
    assert "failed:" in logs.output and "InfrastructureError" in logs.output
    status = CliRunner().invoke(main, ["status"]).output
    assert "FAILED" in status and "infrastructure error" in status.splitlines()[-1]
    cell = json.loads(next((tmp_path / "sweep" / "cells").glob("*/cell.json")).read_text())
    assert cell["status"] == "error" and "LLMUnavailableError" in cell["error"]


@pytest.mark.slow
def test_cancel_a_pending_array(slurm: None, tmp_path: Path, data_root: Path, isolated_config: Path,
                                request: pytest.FixtureRequest) -> None:
    # a site profile whose extra sbatch line holds the jobs: the cancel is certain to hit jobs that never ran
    isolated_config.write_text("clusters:\n  held: {sbatch: ['--hold']}\n")
    ids = submit("bench", "--cluster", "slurm", "--profile", "held", "--models", "oracle", "--tasks",
                 "total-livetime-*", "--attempts", "1", "--shards", "2", "--cpus", "1", "--mem-gb", "1", "--out",
                 str(tmp_path / "sweep"), "--data-root", str(data_root), "--time", "5")
    array = ids[0].split("_")[0]
    request.addfinalizer(lambda: subprocess.run(["scancel", array]))  # never leave a held job behind
    queued = subprocess.run(["squeue", "-h", "-r", "-j", array, "-o", "%i %T %r"], capture_output=True, text=True,
                            check=True).stdout.splitlines()
    assert sorted(queued) == [f"{array}_0 PENDING JobHeldUser", f"{array}_1 PENDING JobHeldUser"]
    result = CliRunner().invoke(main, ["cancel", array])
    assert result.exit_code == 0 and f"cancelled {array}" in result.output
    # a never-started array is one accounting record (`N_[0-1]`)
    assert set(wait_final(array, 1).values()) == {"CANCELLED"}
    assert not (tmp_path / "sweep" / "cells").exists()


@pytest.mark.slow
def test_requeued_shard_resumes_without_duplicates(slurm: None, tmp_path: Path, data_root: Path) -> None:
    out = tmp_path / "sweep"
    (job,) = submit("bench", "--cluster", "slurm", "--models", "oracle", "--tasks", "total-livetime-*",
                    "--attempts", "1", "--cpus", "1", "--mem-gb", "2", "--out", str(out),
                    "--data-root", str(data_root))
    deadline = time.monotonic() + 300
    while not list((out / "cells").glob("*/cell.json")):
        assert time.monotonic() < deadline, "no cell finished"
        time.sleep(0.5)
    first = {p: json.loads(p.read_text())["finished_at"] for p in (out / "cells").glob("*/cell.json")}
    # what Slurm sends on preemption: SIGTERM, then submitit's USR2 (checkpoint + requeue)
    subprocess.run(["scancel", "--signal", "SIGTERM", job], check=True)
    subprocess.run(["scancel", "--signal", "USR2", job], check=True)
    # Slurm holds a requeued batch job back ~2 minutes (BeginTime); let it start again at once
    deadline = time.monotonic() + 60
    while "Reason=BeginTime" not in subprocess.run(["scontrol", "show", "job", job], capture_output=True,
                                                   text=True).stdout:
        assert time.monotonic() < deadline, "the shard was not requeued"
        time.sleep(0.5)
    subprocess.run(["scontrol", "update", f"jobid={job}", "StartTime=now"], check=True)
    assert wait_final(job) == {job: "COMPLETED"}
    restarts = subprocess.run(["scontrol", "show", "job", job], capture_output=True, text=True).stdout
    assert "Restarts=1" in restarts
    cells = _cells(out)
    assert cells.height == 4 and cells["cell"].n_unique() == 4 and cells["passed"].all()
    for path, finished_at in first.items():  # finished before the requeue: kept, not run again
        assert json.loads(path.read_text())["finished_at"] == finished_at
    log = CliRunner().invoke(main, ["logs", job]).output
    assert f"{len(first)} already finished" in log or f"{len(first) + 1} already finished" in log


@pytest.mark.slow
def test_sbatch_array_template(slurm: None, tmp_path: Path, data_root: Path) -> None:
    out = tmp_path / "sweep"
    env = {**os.environ, "HPC_AGENT": str(Path(sys.executable).with_name("hpc-agent")),
           "PHOTON_STORAGE": str(data_root)}
    job = subprocess.run(
        ["sbatch", "--parsable", "--array=0-1", "--mem=2G", "--cpus-per-task=1", f"--output={tmp_path}/%A_%a.out",
         str(REPO / "slurm/bench-array.sbatch"), "--models", "oracle", "--tasks",
         "total-livetime-crab,observation-list-crab", "--attempts", "1", "--out", str(out)],
        env=env, capture_output=True, text=True, check=True, cwd=tmp_path).stdout.strip()
    assert wait_final(job, 2) == {f"{job}_0": "COMPLETED", f"{job}_1": "COMPLETED"}
    assert _cells(out).height == 2 and _cells(out)["passed"].all()


@pytest.mark.slow
def test_serve_job_then_bench_with_the_local_model_then_cancel(slurm: None, tmp_path: Path,
                                                                data_root: Path) -> None:
    """The real 0.5B model served by a Slurm job; a dependent shard finds it through the state file."""
    (serve,) = submit("serve", "qwen2.5-coder-0.5b", "--cluster", "slurm", "--cpus", "1", "--mem-gb", "3",
                      "--time", "20")
    out = tmp_path / "sweep"
    result = CliRunner().invoke(main, ["submit", "bench", "--cluster", "slurm", "--models", "qwen2.5-coder-0.5b",
                                       "--after-serve", serve, "--tasks", "observation-list-crab", "--attempts",
                                       "1", "--cpus", "1", "--mem-gb", "2", "--out", str(out), "--data-root",
                                       str(data_root), "--wait"])
    try:
        assert result.exit_code == 0, result.output
        status = {r["job"]: r for r in json.loads(CliRunner().invoke(main, ["status", "--json"]).output)}
        assert status[serve]["state"] == "RUNNING"
        url = status[serve]["base_url"]
        state_file = Path(status[serve]["state_file"])
        cell = json.loads(next((out / "cells").glob("*/cell.json")).read_text())
        assert cell["status"] in ("passed", "failed") and cell["n_attempts"] == 1  # a model answer, not an error
        assert cell["server"]["base_url"] == url and cell["server"]["engine"] == "llama.cpp"
    finally:
        cancelled = CliRunner().invoke(main, ["cancel", serve])
    assert cancelled.exit_code == 0, cancelled.output
    assert wait_final(serve) == {serve: "CANCELLED"}
    deadline = time.monotonic() + 30
    while state_file.exists() or served_ids(url, timeout=2):
        assert time.monotonic() < deadline, "server or its state file outlived the cancelled job"
        time.sleep(0.5)


def test_conda_environment_matches_the_pip_setup() -> None:
    """environment.yml (clusters with conda) must carry every dependency pyproject.toml declares."""
    import re
    import tomllib

    import yaml

    def name(requirement: str) -> str:
        return re.split(r"[\[<>=!~; ]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = {name(r) for r in project["dependencies"] + project["optional-dependencies"]["test"]}
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    have = {name(d) for d in env["dependencies"] if isinstance(d, str)}
    have |= {name(d) for d in next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))}
    assert wanted - have == set(), f"add to environment.yml: {sorted(wanted - have)}"
