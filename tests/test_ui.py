"""The web page's logic through Streamlit's AppTest: real agent runs (bwrap, real data, real HTTP to the scripted
test double), earlier runs read back from disk, and a report built from a real oracle sweep."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from streamlit.testing.v1 import AppTest

from conftest import script
from fixtures.bench import write_bench_root
from doubles.openai_server import Reply, ScriptedOpenAIServer
from hpc_agent.cli import main
from hpc_agent.config import load_settings
from hpc_agent.ui import PAGE
from hpc_agent.ui.command import streamlit_argv
from hpc_agent.ui.logic import ADHOC, RunForm, backend_choices, run_kwargs, sweeps_dir

PROMPT = "How many H.E.S.S. DR1 observations point within 2 degrees of MSH 15-52?"
OK = script("msh1552_count_ok.py").strip()  # st.code shows text without the final newline
BROKEN = script("msh1552_count_broken.py")


@pytest.fixture
def one_task_benchmarks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The one-task benchmark folder of the sweep tests (observation-list-crab: a few seconds per cell)."""
    root = tmp_path / "benchmarks"
    write_bench_root(root)
    monkeypatch.setenv("HPC_AGENT_BENCHMARKS", str(root))
    monkeypatch.setenv("HPC_AGENT_CACHE", str(tmp_path / "cache"))
    return root


@pytest.fixture
def page(data_root: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("PHOTON_STORAGE", str(data_root))
    monkeypatch.setenv("HPC_AGENT_SANDBOX", "bwrap")
    monkeypatch.setenv("HPC_AGENT_EXEC_TIMEOUT_S", "120")
    at = AppTest.from_file(str(PAGE), default_timeout=240)
    at.run()
    assert not at.exception, at.exception
    return at


def _submit(at: AppTest, srv: ScriptedOpenAIServer, attempts: int = 3, keep: bool = True,
            running: bool = False) -> AppTest:
    at.text_area(key="prompt").input(PROMPT)
    at.selectbox(key="backend").select(ADHOC)
    at.text_input(key="base_url").input(srv.base_url)
    at.text_input(key="model").input(srv.model)
    at.slider(key="attempts").set_value(attempts)
    at.checkbox(key="keep").set_value(keep)
    next(b for b in at.button if b.label == "Run").click()
    at.run()
    assert not at.exception, at.exception
    job = at.session_state["job"]
    if running:
        assert at.tabs[0].status[0].state == "running" and not job.done  # the page is back while the run works
    assert job.wait(240), "the run did not finish within 240 s"
    at.run()  # what the page's one-second poll does once the run is done
    assert not at.exception, at.exception
    return at


def _codes(block) -> list[str]:
    return [c.value.strip() for c in block.code]


def test_run_shows_progress_script_log_validation_history_and_tokens(page: AppTest) -> None:
    replies = [Reply(code=BROKEN, prompt_tokens=900, completion_tokens=210, delay_s=1.0),
               Reply(code=OK, prompt_tokens=1400, completion_tokens=230)]
    with ScriptedOpenAIServer(replies) as srv:
        at = _submit(page, srv, running=True)
        assert len(srv.requests) == 2
    run_tab = at.tabs[0]
    # progress per attempt, then the final state
    status = run_tab.status[0]
    assert status.label == "Passed after 2 attempt(s)" and status.state == "complete"
    lines = [m.value for m in status.markdown]
    assert any(line.startswith("attempt 1: fail (runtime: AttributeError)") for line in lines), lines
    assert any(line.startswith("attempt 2: PASS — 230 tokens") for line in lines), lines
    # the script (highlighted as Python, downloadable), its log and validation
    codes = _codes(run_tab)
    assert OK in codes
    assert next(c for c in run_tab.code if c.value.strip() == OK).language == "python"
    assert 'RESULT {"n_obs": 20}' in codes
    assert [b.label for b in run_tab.get("download_button")] == ["Download script.py"]
    assert any("validation passed" in s.value for s in run_tab.success)
    # attempt history with the error summary that went back to the model, and tokens
    history = run_tab.dataframe[-1].value
    assert history["failure"].tolist() == ["runtime", "none"]
    assert history["exception"].tolist()[0] == "AttributeError"
    feedback = next(c for c in codes if "Exception: AttributeError" in c and "Traceback" in c)
    assert "'Column' object has no attribute 'separation'" in feedback
    metrics = {m.label: m.value for m in run_tab.metric}
    assert metrics["prompt tokens"] == "2300" and metrics["completion tokens"] == "440"
    assert metrics["attempts"] == "2"
    # kept: the bundle is under runs_dir, and the other tab lists it and opens it
    runs = list(load_settings().runs_dir.glob("*/run.json"))
    assert len(runs) == 1 and json.loads(runs[0].read_text())["status"] == "passed"
    assert any(str(runs[0].parent) in c.value for c in run_tab.caption)
    browse = at.tabs[1]
    table = browse.dataframe[0].value
    assert table["folder"].tolist() == [runs[0].parent.name] and table["status"].tolist() == ["passed"]
    assert OK in _codes(browse) and 'RESULT {"n_obs": 20}' in _codes(browse)


def test_keep_off_runs_in_a_temporary_folder_that_is_removed(
    page: AppTest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    with ScriptedOpenAIServer([Reply(code=OK)]) as srv:
        at = _submit(page, srv, attempts=1, keep=False)
    run_tab = at.tabs[0]
    assert OK in _codes(run_tab) and 'RESULT {"n_obs": 20}' in _codes(run_tab)
    assert any("Run folder removed" in c.value for c in run_tab.caption)
    assert list(scratch.iterdir()) == []  # the temporary bundle is gone ...
    assert not load_settings().runs_dir.exists() or not any(load_settings().runs_dir.iterdir())  # ... none kept
    assert any("No runs under" in i.value for i in at.tabs[1].info)


def test_budget_spent_and_server_down_are_shown_not_raised(page: AppTest, monkeypatch: pytest.MonkeyPatch) -> None:
    with ScriptedOpenAIServer([Reply(text="no idea", mode="text")]) as srv:
        at = _submit(page, srv, attempts=1)
    run_tab = at.tabs[0]
    assert run_tab.status[0].label == "Failed: attempt budget of 1 spent" and run_tab.status[0].state == "error"
    assert any("validation failed: no_code" in e.value for e in run_tab.error)
    assert any("No attempt returned a script" in i.value for i in run_tab.info)

    monkeypatch.setenv("HPC_AGENT_LLM_RETRIES", "0")
    with ScriptedOpenAIServer([Reply(status=500)] * 5) as srv:
        at = _submit(page, srv, attempts=2)
    run_tab = at.tabs[0]
    assert run_tab.status[0].label == "Stopped by an error"
    errors = [e.value for e in run_tab.error]
    assert any(e.startswith("backend 'adhoc'") for e in errors), errors  # the library's message
    assert any("LLMUnavailableError" in e for e in errors), errors  # run.json's error, from the bundle


def test_form_errors_start_nothing(page: AppTest) -> None:
    next(b for b in page.button if b.label == "Run").click()
    page.run()
    assert [w.value for w in page.warning] == ["enter a prompt first"]
    page.text_area(key="prompt").input(PROMPT)
    page.selectbox(key="backend").select(ADHOC)
    next(b for b in page.button if b.label == "Run").click()
    page.run()
    assert [w.value for w in page.warning] == ["an ad hoc endpoint needs both a base URL and a model name"]
    page.text_input(key="base_url").input("ftp://host/v1")
    page.text_input(key="model").input("m")
    next(b for b in page.button if b.label == "Run").click()
    page.run()
    assert [w.value for w in page.warning] == [
        "ad hoc endpoint: field `base_url`: Value error, must start with http:// or https://"]
    assert len(page.status) == 0 and "job" not in page.session_state


def test_rag_checkbox_follows_the_index(data_root: Path, isolated_config: Path, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PHOTON_STORAGE", str(data_root))
    monkeypatch.setenv("HPC_AGENT_CACHE", str(tmp_path / "cache"))  # no index built there
    at = AppTest.from_file(str(PAGE), default_timeout=60)
    at.run()
    rag = at.checkbox(key="rag")
    assert rag.disabled and "hpc-agent rag build" in rag.help and str(tmp_path / "cache") in rag.help
    isolated_config.write_text("rag_index: ':memory:'\n")  # built in the run itself: nothing to build first
    at = AppTest.from_file(str(PAGE), default_timeout=60)
    at.run()
    assert not at.checkbox(key="rag").disabled and ":memory:" in at.checkbox(key="rag").help
    assert run_kwargs(RunForm(prompt="p", backend="x", attempts=1, rag=True))["rag"] is True
    assert "rag" not in run_kwargs(RunForm(prompt="p", backend="x", attempts=1))


def test_backend_menu_lists_configured_backends_model_configs_and_ad_hoc(isolated_config: Path) -> None:
    isolated_config.write_text("backend: gpu\nbackends:\n  gpu: {base_url: 'http://gpu17:8000/v1', model: qwen3-8b}\n")
    choices = backend_choices(load_settings())
    assert choices[0].name == "gpu" and "qwen3-8b at http://gpu17:8000/v1" in choices[0].label
    names = [c.name for c in choices]
    assert "qwen2.5-coder-0.5b" in names and "openai-gpt-5" in names and names[-1] is None
    assert "started on demand" in next(c.label for c in choices if c.name == "qwen2.5-coder-0.5b")
    assert run_kwargs(RunForm(prompt="p", backend="gpu", attempts=2)) == {"backend": "gpu"}
    assert run_kwargs(RunForm(prompt="p", backend=None, attempts=2, base_url=" http://h:1/v1 ", model="m",
                              api_key_env="KEY")) == {"base_url": "http://h:1/v1", "model": "m",
                                                      "overrides": {"api_key_env": "KEY"}}


def test_reports_tab_builds_and_shows_a_report_of_a_real_sweep(one_task_benchmarks: Path, page: AppTest) -> None:
    sweep = sweeps_dir(load_settings()) / "gold"
    res = CliRunner().invoke(main, ["bench", "--models", "oracle", "--out", str(sweep)], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    page.run()
    tab = page.tabs[2]
    assert tab.dataframe[0].value["sweep"].tolist() == ["gold"]
    assert page.selectbox(key="pending_sweep").value == "gold"
    page.button(key="build_report").click()
    page.run()
    assert not page.exception, page.exception
    assert (sweep / "report" / "report.html").is_file()
    tab = page.tabs[2]
    assert page.selectbox(key="report").value == str(sweep / "report")
    summary = tab.dataframe[1].value
    assert summary["model"].tolist() == ["oracle"] and summary["pass_rate"].tolist() == [1.0]
    per_task = tab.dataframe[2].value
    assert per_task["task"].tolist() == ["observation-list-crab"]
    assert len(tab.image) == 3


def test_ui_command_serves_the_packaged_page_headless() -> None:
    argv = streamlit_argv(9999, "0.0.0.0")
    assert argv[1:5] == ["-m", "streamlit", "run", str(PAGE)] and PAGE.is_file()
    pairs = dict(zip(argv[5::2], argv[6::2]))
    assert pairs["--server.port"] == "9999" and pairs["--server.address"] == "0.0.0.0"
    assert pairs["--server.headless"] == "true" and pairs["--browser.gatherUsageStats"] == "false"


def test_bundles_read_back_in_order_and_unfinished_runs_skipped(tmp_path: Path) -> None:
    from hpc_agent.bundle import list_runs, load_attempts

    for name, started in (("old", "2026-01-01T10:00:00Z"), ("new", "2026-02-01T10:00:00Z")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "run.json").write_text(json.dumps({"started_at": started, "status": "passed"}))
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "run.json").write_text('{"started_at": ')  # being written
    (tmp_path / "running" / "attempt-1").mkdir(parents=True)  # no run.json yet
    assert [p.name for p, _ in list_runs(tmp_path)] == ["new", "old"]
    assert list_runs(tmp_path / "absent") == []
    for n in (10, 2):
        d = tmp_path / "new" / f"attempt-{n}"
        d.mkdir()
        (d / "stdout.txt").write_text(f"out {n}")
    (tmp_path / "new" / "attempt-x").mkdir()
    attempts = load_attempts(tmp_path / "new")
    assert [(a.index, a.stdout, a.script, a.validation) for a in attempts] == [(2, "out 2", None, {}),
                                                                              (10, "out 10", None, {})]


def test_two_runs_of_one_prompt_get_two_bundles(tmp_path: Path) -> None:
    """Two runs from the page within one second once shared a folder: the second read the first's run.json."""
    from hpc_agent.api import default_out_dir
    from hpc_agent.config import load_settings

    settings = load_settings(runs_dir=tmp_path)
    first = default_out_dir(settings, PROMPT)
    first.mkdir(parents=True)
    second = default_out_dir(settings, PROMPT)
    assert second != first and not second.exists() and second.parent == tmp_path
