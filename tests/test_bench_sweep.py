"""Sweeps for real: the oracle gold run, a cheating model, a fault-injecting server, kill and resume.

Real sandbox (bwrap), real data, real HTTP to the scripted test double; a one-task benchmark folder
(observation-list-crab) keeps each cell to a few seconds.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from fixtures.bench import crab_count, run_bench, write_bench_root
from doubles.openai_server import Reply, ScriptedOpenAIServer
from hpc_agent.bench.tasks import reference_script, load_task
from hpc_agent.cli import main

ENV_KEYS = ("HPC_AGENT_BENCHMARKS", "HPC_AGENT_CACHE")


@pytest.fixture
def bench_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data_root: Path) -> dict[str, str]:
    root = tmp_path / "benchmarks"
    write_bench_root(root)
    env = {"HPC_AGENT_BENCHMARKS": str(root), "HPC_AGENT_CACHE": str(tmp_path / "cache"),
           "PHOTON_STORAGE": str(data_root)}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return env


def test_oracle_gold_run_passes_every_cell(bench_env: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    code, output = run_bench(["--models", "oracle", "--seeds", "2", "--out", str(out)])
    assert code == 0, output
    cells = pl.read_parquet(out / "cells.parquet")
    assert cells.height == 2 and cells["passed"].all() and (cells["attempts_to_pass"] == 1).all()
    attempts = pl.read_parquet(out / "attempts.parquet")
    assert attempts.height == 2 and attempts["passed"].all()
    details = json.loads(attempts["validator_details"][0])
    assert {"numeric:n_obs", "variant:numeric:n_obs"} <= {d["name"] for d in details}  # variant store checked
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["gammapy"] == "2.1" and manifest["servers"]["oracle"]["engine"] == "oracle"


def test_cheating_model_fails_on_the_variant_store(bench_env: dict[str, str], tmp_path: Path,
                                                   data_root: Path) -> None:
    # a separation for show (a script that selects nothing is stopped before running), then the memorised count
    cheat = ("import json\nfrom astropy.coordinates import SkyCoord\n"
             "d = SkyCoord(0, 0, unit='deg').separation(SkyCoord(1, 1, unit='deg'))\n"
             f"print('RESULT ' + json.dumps({{'n_obs': {crab_count(data_root)}}}))\n")
    out = tmp_path / "sweep"
    with ScriptedOpenAIServer([Reply(code=cheat)] * 2) as srv:
        code, output = run_bench(["--base-url", srv.base_url, "--model", srv.model, "--attempts", "2", "--out", str(out)])
    assert code == 0, output
    cells = pl.read_parquet(out / "cells.parquet")
    assert cells["status"].to_list() == ["failed"]
    attempts = pl.read_parquet(out / "attempts.parquet")
    first = json.loads(attempts["validator_details"][0])
    by_name = {d["name"]: d["passed"] for d in first}
    assert by_name["numeric:n_obs"] is True and by_name["variant:numeric:n_obs"] is False
    assert attempts["failure"].to_list() == ["validation", "validation"]


def test_faults_never_crash_a_sweep_and_infra_errors_are_retried(bench_env: dict[str, str], tmp_path: Path) -> None:
    good = reference_script(load_task(Path(bench_env["HPC_AGENT_BENCHMARKS"]) / "tasks" / "observation-list-crab.yaml"))
    replies = [
        Reply(status=500), Reply(status=429, headers={"Retry-After": "0.1"}),  # retried inside one call
        Reply(code=None, mode="text", text='{"name": "return_python", "arguments": "{not json'),  # malformed
        Reply(code=None, mode="text", text="```python\nimport json\nprint('RESULT ' + json.dumps({"),  # truncated
        Reply(code=good),
    ]
    out = tmp_path / "sweep"
    with ScriptedOpenAIServer(replies + [Reply(status=503)] * 40) as srv:
        res = CliRunner().invoke(main, ["bench", "--base-url", srv.base_url, "--model", srv.model, "--seeds", "2",
                                        "--attempts", "3", "--out", str(out)],
                                 env={"HPC_AGENT_LLM_RETRIES": "2"}, catch_exceptions=False)
        assert res.exit_code == 3, res.output  # one cell hit a dead server: infrastructure, not the model
        cells = pl.read_parquet(out / "cells.parquet").sort("seed")
        assert sorted(cells["status"].to_list()) == ["error", "passed"]
        passed = cells.filter(pl.col("status") == "passed")
        assert passed["attempts_to_pass"].to_list() == [3]
        failures = pl.read_parquet(out / "attempts.parquet").filter(pl.col("cell") == passed["cell"][0])["failure"]
        assert failures.to_list() == ["no_code", "static", "none"]
        # resume: the server answers again; only the errored cell runs, nothing is duplicated
        srv.replies[:] = [Reply(code=good)]
        res = CliRunner().invoke(main, ["bench", "--base-url", srv.base_url, "--model", srv.model, "--seeds", "2",
                                        "--attempts", "3", "--out", str(out)], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    cells = pl.read_parquet(out / "cells.parquet")
    assert cells.height == 2 and cells["passed"].all()


def test_kill_and_resume_loses_and_duplicates_nothing(bench_env: dict[str, str], tmp_path: Path) -> None:
    good = reference_script(load_task(Path(bench_env["HPC_AGENT_BENCHMARKS"]) / "tasks" / "observation-list-crab.yaml"))
    out = tmp_path / "sweep"
    hpc_agent = str(Path(sys.executable).with_name("hpc-agent"))
    with ScriptedOpenAIServer([Reply(code=good, delay_s=1.0)] * 20) as srv:
        args = [hpc_agent, "bench", "--base-url", srv.base_url, "--model", srv.model, "--seeds", "4", "--out", str(out)]
        proc = subprocess.Popen(args, env={**os.environ, **bench_env}, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and len(list(out.glob("cells/*/cell.json"))) < 2:
            time.sleep(0.2)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        done_before = {p.parent.name: json.loads(p.read_text())["finished_at"] for p in out.glob("cells/*/cell.json")}
        assert 2 <= len(done_before) < 4, done_before
        res = subprocess.run(args, env={**os.environ, **bench_env}, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    cells = pl.read_parquet(out / "cells.parquet")
    assert cells.height == 4 and cells["cell"].n_unique() == 4 and cells["passed"].all()
    for cell, finished_at in done_before.items():  # finished cells were not run again
        assert cells.filter(pl.col("cell") == cell)["finished_at"][0] == finished_at
    assert pl.read_parquet(out / "attempts.parquet").height == 4


def test_report_from_two_sweeps(bench_env: dict[str, str], tmp_path: Path, data_root: Path) -> None:
    """Oracle and a cheating model in two sweep folders, merged into one report."""
    oracle, cheat_dir = tmp_path / "oracle", tmp_path / "cheat"
    assert run_bench(["--models", "oracle", "--seeds", "2", "--out", str(oracle)])[0] == 0
    cheat = f"import json\nprint('RESULT ' + json.dumps({{'n_obs': {crab_count(data_root)}}}))\n"
    with ScriptedOpenAIServer([Reply(code=cheat)] * 4) as srv:
        assert run_bench(["--base-url", srv.base_url, "--model", srv.model, "--attempts", "1", "--seeds", "2",
                       "--out", str(cheat_dir)])[0] == 0
    res = CliRunner().invoke(main, ["report", str(oracle), str(cheat_dir), "--out", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    summary = pl.read_parquet(tmp_path / "r" / "summary.parquet").sort("model")
    assert summary["model"].to_list() == ["adhoc-scripted-model", "oracle"]
    assert summary["pass_rate"].to_list() == [0.0, 1.0]
    assert summary["ci95_high"][0] > 0 and summary["ci95_low"][1] < 1  # Wilson intervals, not 0/1 points
    assert summary["pass_at_k"].to_list() == [0.0, 1.0] and summary["k"].to_list() == [2, 2]
    for name in ("report.md", "report.html", "attempts_to_pass.png", "pass_rate.png", "tokens_per_task.png"):
        assert (tmp_path / "r" / name).stat().st_size > 200
    assert "| oracle | no rag, repairs | other |" in (tmp_path / "r" / "report.md").read_text()


def test_repairs_both_measures_the_model_alone_and_with_the_agent(bench_env: dict[str, str], tmp_path: Path) -> None:
    """The same answer (the reference without its `import json`) fails alone and passes once repaired."""
    task = load_task(Path(bench_env["HPC_AGENT_BENCHMARKS"]) / "tasks" / "observation-list-crab.yaml")
    lines = [f"PARAMS = {task.params!r}" if line.startswith("PARAMS =") else line
             for line in reference_script(task).splitlines() if line != "import json"]
    answer = "\n".join(lines) + "\n"
    out = tmp_path / "sweep"
    with ScriptedOpenAIServer([Reply(code=answer)] * 2) as srv:
        code, output = run_bench(["--base-url", srv.base_url, "--model", srv.model, "--attempts", "1",
                               "--repairs", "both", "--out", str(out)])
    assert code == 0, output
    cells = pl.read_parquet(out / "cells.parquet").sort("repairs")
    assert cells["repairs"].to_list() == ["off", "on"] and cells["passed"].to_list() == [False, True]
    attempts = pl.read_parquet(out / "attempts.parquet").sort("repairs")
    assert attempts["failure"].to_list() == ["static", "none"]
    assert json.loads(attempts["repairs_made"][1]) == ["added `import json`"] and attempts["n_repairs"][0] == 0
    res = CliRunner().invoke(main, ["report", str(out)])
    assert res.exit_code == 0, res.output
    summary = pl.read_parquet(out / "report" / "summary.parquet").sort("configuration")
    assert summary["configuration"].to_list() == ["no rag, no repairs", "no rag, repairs"]
    assert summary["pass_rate"].to_list() == [0.0, 1.0]


def test_statistics() -> None:
    from hpc_agent.report import pass_at_k, wilson

    lo, hi = wilson(8, 10)
    assert (round(lo, 3), round(hi, 3)) == (0.49, 0.943)  # textbook values for 8/10
    assert wilson(0, 5)[0] == 0.0 and wilson(5, 5)[1] == 1.0
    assert pass_at_k(5, 1, 1) == pytest.approx(0.2) and pass_at_k(5, 1, 5) == 1.0
    assert pass_at_k(4, 2, 2) == pytest.approx(1 - 1 / 6)


def test_a_configuration_error_stops_the_sweep_and_a_context_overflow_is_a_model_result(
        bench_env: dict[str, str], tmp_path: Path) -> None:
    good = reference_script(load_task(Path(bench_env["HPC_AGENT_BENCHMARKS"]) / "tasks" / "observation-list-crab.yaml"))
    out = tmp_path / "sweep"
    # a wrong API key fails every cell alike: the sweep stops with the message, no cell is recorded as error
    with ScriptedOpenAIServer([Reply(status=401, text="invalid api key")] * 4) as srv:
        res = CliRunner().invoke(main, ["bench", "--base-url", srv.base_url, "--model", srv.model, "--seeds", "2",
                                        "--out", str(out)])
        assert res.exit_code == 2 and res.output.strip().splitlines()[-1].startswith("error: backend 'adhoc'"), \
            res.output
        assert len(srv.requests) == 1  # the second cell never asked
    assert not list((out / "cells").glob("*/cell.json"))
    # the server's "maximum context length" 400 is the model's failure `context`; the next turn starts afresh
    overflow = Reply(status=400, text="This model's maximum context length is 8192 tokens. However, you requested "
                                      "9000 tokens.")
    with ScriptedOpenAIServer([Reply(code="import json\nprint('RESULT ' + json.dumps({'n_obs': m}))\n"), overflow,
                               Reply(code=good)]) as srv:
        res = CliRunner().invoke(main, ["bench", "--base-url", srv.base_url, "--model", srv.model,
                                        "--attempts", "3", "--out", str(out)], catch_exceptions=False)
        assert res.exit_code == 0, res.output
        assert srv.requests[2]["messages"][-1]["content"].count("Earlier scripts for this request failed") == 1
        assert all(m["role"] != "assistant" for m in srv.requests[2]["messages"])  # a fresh conversation
    failures = pl.read_parquet(out / "attempts.parquet")["failure"].to_list()
    assert failures == ["static", "context", "none"]


def test_eight_kinds_of_server_fault_cost_the_model_nothing(bench_env: dict[str, str], tmp_path: Path) -> None:
    """Transport faults, broken answers and a restarting server are retried inside the model call: the only
    failure counted is the model's own malformed tool call."""
    good = reference_script(load_task(Path(bench_env["HPC_AGENT_BENCHMARKS"]) / "tasks" / "observation-list-crab.yaml"))
    replies = [
        Reply(fault="restart", delay_s=1.5), Reply(fault="reset"), Reply(status=429, headers={"Retry-After": "0.1"}),
        Reply(fault="bad-tool-args"),  # the model's answer: a tool call whose arguments are not JSON
        Reply(fault="trickle", delay_s=3.0), Reply(fault="empty-choices"), Reply(status=500), Reply(status=503),
        Reply(code=good),
    ]
    out = tmp_path / "sweep"
    with ScriptedOpenAIServer(replies) as srv:
        res = CliRunner().invoke(main, ["bench", "--base-url", srv.base_url, "--model", srv.model, "--attempts", "3",
                                        "--out", str(out)],
                                 env={"HPC_AGENT_LLM_RETRIES": "6", "HPC_AGENT_LLM_TIMEOUT_S": "2"},
                                 catch_exceptions=False)
        assert srv.restarts == 1 and srv.replies == []
    assert res.exit_code == 0, res.output
    cells = pl.read_parquet(out / "cells.parquet")
    assert cells["status"].to_list() == ["passed"]
    assert pl.read_parquet(out / "attempts.parquet")["failure"].to_list() == ["no_code", "none"]
