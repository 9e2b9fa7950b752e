"""The whole loop on real H.E.S.S. data, in real bwrap, over real HTTP to the scripted test double."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import script
from doubles.openai_server import Reply, ScriptedOpenAIServer
from hpc_agent import prompts
from hpc_agent.cli import main

PROMPT = "How many H.E.S.S. DR1 observations point within 2 degrees of MSH 15-52?"
ATTEMPT_FILES = {"prompt.txt", "messages.jsonl", "script.py", "stdout.txt", "stderr.txt",
                 "validation.json", "usage.json", "workspace"}


def _run(args: list[str]) -> tuple[int, str]:
    res = CliRunner().invoke(main, args, catch_exceptions=False)
    return res.exit_code, res.output


def _base(srv: ScriptedOpenAIServer, out: Path, data_root: Path, *extra: str) -> list[str]:
    return ["run", PROMPT, "--base-url", srv.base_url, "--model", srv.model, "--out", str(out),
            "--data-root", str(data_root), "--sandbox", "bwrap", "--timeout", "120", *extra]


def test_failing_then_working_script_passes_with_traceback_fed_back(
    tmp_path: Path, data_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCRIPTED_KEY", "sk-do-not-leak-123456")
    replies = [Reply(code=script("msh1552_count_broken.py"), prompt_tokens=900, completion_tokens=210),
               Reply(code=script("msh1552_count_ok.py"), prompt_tokens=1400, completion_tokens=230)]
    out = tmp_path / "bundle"
    with ScriptedOpenAIServer(replies) as srv:
        code, output = _run(_base(srv, out, data_root, "--api-key-env", "SCRIPTED_KEY"))
        requests = srv.requests
    assert code == 0, output
    assert 'RESULT " + json.dumps({"n_obs": n_obs})' in output  # the final script is printed

    # the second request carried the repair summary of the first failure
    assert len(requests) == 2
    repair = requests[1]["messages"][-1]["content"]
    assert requests[1]["messages"][-1]["role"] == "user"
    assert "Exception: AttributeError" in repair
    assert "'Column' object has no attribute 'separation'" in repair
    assert "Traceback" in repair and "SkyCoord(table['RA_PNT']" in repair
    assert requests[1]["messages"][-2]["role"] == "assistant"

    run = json.loads((out / "run.json").read_text())
    assert run["passed"] is True and run["status"] == "passed" and run["attempts"] == 2
    assert run["final_script"] == script("msh1552_count_ok.py")
    assert run["usage"]["prompt_tokens"] == 2300 and run["usage"]["completion_tokens"] == 440
    assert run["gammapy_version"] == "2.1" and run["sandbox"] == "bwrap" and run["model"] == srv.model
    assert run["server"]["models"][0]["id"] == "scripted-model"
    for n in (1, 2):
        assert ATTEMPT_FILES <= {p.name for p in (out / f"attempt-{n}").iterdir()}
    assert (out / "attempt-2" / "stdout.txt").read_text().strip() == 'RESULT {"n_obs": 20}'
    assert "AttributeError" in (out / "attempt-1" / "stderr.txt").read_text()
    v1 = json.loads((out / "attempt-1" / "validation.json").read_text())
    assert v1["failure"] == "runtime" and v1["exception"] == "AttributeError" and v1["execution"]["exit_code"] == 1
    assert json.loads((out / "attempt-2" / "usage.json").read_text())["completion_tokens"] == 230
    # system, source positions (the prompt names MSH 15-52), request, answer, repair turn, then the raw answer
    sent = [json.loads(line) for line in (out / "attempt-2" / "messages.jsonl").read_text().splitlines()]
    assert [m["role"] for m in sent] == ["system", "user", "user", "assistant", "user", "assistant"]
    assert "MSH 15-52: RA = 228.529 deg, Dec = -59.1575 deg (ICRS)" in sent[1]["content"]
    assert "### system" in (out / "attempt-1" / "prompt.txt").read_text()
    for f in out.rglob("*"):
        if f.is_file():
            assert "sk-do-not-leak-123456" not in f.read_text(errors="replace")


def test_static_violation_costs_no_sandbox_run_and_budget_exhaustion_exits_1(
    tmp_path: Path, data_root: Path
) -> None:
    by_name = script("msh1552_count_ok.py").replace(
        "n_obs = int(", "n_obs = int((table['TARGET_NAME'] == 'MSH 15-52').sum()) + 0 * int(")
    out = tmp_path / "bundle"
    with ScriptedOpenAIServer([Reply(code=by_name), Reply(text="no idea", mode="text")]) as srv:
        code, _ = _run(_base(srv, out, data_root, "--attempts", "2"))
        second = srv.requests[1]["messages"][-1]["content"]
    assert code == 1
    assert "TARGET_NAME column" in second and "rejected before running" in second
    v1 = json.loads((out / "attempt-1" / "validation.json").read_text())
    assert v1["failure"] == "static" and v1["execution"] is None
    assert list((out / "attempt-1" / "workspace").iterdir()) == []  # nothing ran
    v2 = json.loads((out / "attempt-2" / "validation.json").read_text())
    assert v2["failure"] == "no_code"
    run = json.loads((out / "run.json").read_text())
    assert run["passed"] is False and run["status"] == "failed" and run["attempts"] == 2


def test_server_down_is_infrastructure_error_recorded_in_bundle(tmp_path: Path, data_root: Path) -> None:
    out = tmp_path / "bundle"
    with ScriptedOpenAIServer([Reply(status=500)] * 20) as srv:
        res = CliRunner().invoke(main, _base(srv, out, data_root, "--attempts", "3"),
                                 env={"HPC_AGENT_LLM_RETRIES": "1"})
    assert res.exit_code == 3, res.output
    assert res.output.startswith("error: backend 'adhoc'")
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "error" and "LLMUnavailableError" in run["error"] and run["attempts"] == 0
    trace = (out / "error.txt").read_text()  # the whole traceback beside the one-line error
    assert trace.startswith("Traceback (most recent call last)") and "LLMUnavailableError" in trace


def test_usage_errors_exit_2(tmp_path: Path, data_root: Path) -> None:
    code, output = _run(["run", PROMPT, "--base-url", "http://127.0.0.1:1/v1", "--data-root", str(data_root)])
    assert code == 2 and "--base-url and --model go together" in output
    code, output = _run(["run", PROMPT, "--backend", "nope", "--data-root", str(data_root)])
    assert code == 2 and "unknown backend 'nope'" in output and "qwen2.5-coder-0.5b" in output
    code, output = _run(["run", PROMPT, "--base-url", "http://x/v1", "--model", "m",
                         "--data-root", str(tmp_path / "missing")])
    assert code == 2 and "not a folder" in output


def _three_turns(replies: list[Reply], out: Path, data_root: Path) -> tuple[int, list[dict], list[dict]]:
    """Three turns against the scripted server: exit code, the requests sent, the attempt summaries."""
    with ScriptedOpenAIServer(replies) as srv:
        code, _ = _run(_base(srv, out, data_root, "--attempts", "3"))
    return code, srv.requests, json.loads((out / "run.json").read_text())["attempt_summaries"]


def _restarted(first: list[dict], third: list[dict], summaries: list[dict]) -> None:
    """The third request is the first one again with the lessons: no assistant turn left to copy."""
    assert [m["role"] for m in third] == [m["role"] for m in first]
    assert "Earlier scripts for this request failed" in third[-1]["content"]
    assert [a.get("restart") for a in summaries[:2]] == [False, True]


def test_a_stuck_model_gets_a_fresh_conversation_with_lessons(tmp_path: Path, data_root: Path) -> None:
    bad = "import json\nprint('RESULT ' + json.dumps({'n': n_obs}))\n"
    replies = [Reply(code=bad), Reply(code=bad + "\n\n# same again\n"), Reply(code=script("msh1552_count_ok.py"))]
    out = tmp_path / "b"
    code, requests, summaries = _three_turns(replies, out, data_root)
    first, second, third = (r["messages"] for r in requests)
    assert code == 0
    assert "undefined name 'n_obs'" in second[-1]["content"] and second[-2]["role"] == "assistant"
    # attempt 2 repeated attempt 1 (layout and comments do not make a script new): the third request is the
    # first one again, its request followed by the lessons, with no failed script left to copy
    _restarted(first, third, summaries)
    assert third[-1]["content"].startswith(first[-1]["content"].removesuffix("Return the complete script now."))
    assert third[-1]["content"].endswith("Return the complete script now.")
    assert "`print('RESULT ' + json.dumps({'n': n_obs}))` was rejected: undefined name 'n_obs'" in third[-1]["content"]
    assert "n_obs}))\n```" not in third[-1]["content"]
    temps = [r["temperature"] for r in requests]
    assert temps[0] == temps[1] == 0.2 and temps[2] == pytest.approx(0.6)  # being stuck raises the temperature
    assert json.loads((out / "attempt-2" / "validation.json").read_text())["restart"] is True


def test_an_answer_that_drifts_off_the_request_restarts_the_conversation(tmp_path: Path, data_root: Path) -> None:
    """The 0.5B (s31): after feedback on a script that ran, its next answers printed other things (the data
    store's info, an event list's mean energy) for the rest of its turns. An answer that no longer prints a
    RESULT, when an earlier one got further, sends the next turn back to the request with the lessons; it is not
    a repeat, so the temperature stays."""
    ran = script("msh1552_count_ok.py").replace("print(", "raise RuntimeError('lost the table')\nprint(")
    drift = ("import os\nfrom gammapy.data import DataStore\n"
             "data_store = DataStore.from_dir(os.path.join(os.environ['PHOTON_STORAGE'], 'hess-dl3-dr1'))\n"
             "print(data_store.obs_table[:3])\n")
    replies = [Reply(code=ran), Reply(code=drift), Reply(code=script("msh1552_count_ok.py"))]
    code, requests, summaries = _three_turns(replies, tmp_path / "d", data_root)
    first, second, third = (r["messages"] for r in requests)
    assert code == 0
    assert "RuntimeError: lost the table" in second[-1]["content"] and second[-2]["role"] == "assistant"
    _restarted(first, third, summaries)  # the request again, no off-request answer
    assert "obs_table[:3]" not in third[-1]["content"]
    assert [r["temperature"] for r in requests] == [0.2, 0.2, 0.2]


def test_an_answer_copying_the_feedback_restarts_the_conversation(tmp_path: Path, data_root: Path) -> None:
    """The 0.5B answered a traceback with its script cut at the failing line, then the traceback's carets and
    the feedback's headings; kept in the conversation, it was copied again. It counts as stuck: the next
    request is the first one with the lessons, holding neither that answer nor the feedback it copied."""
    bad = "import json\nprint('RESULT ' + json.dumps({'n': n_obs}))\n"
    echo = ("import json\nn = len(\n      ^^^^^^^\nNameError: name 'n_obs' is not defined\n\n"
            "Return the complete corrected script.\n")
    replies = [Reply(code=bad), Reply(code=echo), Reply(code=script("msh1552_count_ok.py"))]
    code, requests, summaries = _three_turns(replies, tmp_path / "b", data_root)
    first, _, third = (r["messages"] for r in requests)
    assert code == 0
    _restarted(first, third, summaries)  # no assistant turn left to copy
    assert "^^^^" not in third[-1]["content"]
    assert prompts.echoes_feedback(echo) and not prompts.echoes_feedback(script("msh1552_count_ok.py"))
    assert prompts.echoes_feedback("x = 1\n--- snippet 2: gammapy.data.DataStore (class) ---\n")
    assert not prompts.echoes_feedback("s = '^^^'\nprint(s)\n")  # carets inside code are code


def test_a_numpy_number_in_json_is_repaired_after_the_run_in_the_same_attempt(
    tmp_path: Path, data_root: Path
) -> None:
    answer = script("msh1552_count_ok.py").replace(
        "n_obs = int((pointing.separation(target) < 2 * u.deg).sum())",
        "n_obs = (pointing.separation(target) < 2 * u.deg).sum()")  # a numpy integer: json refuses it
    out = tmp_path / "bundle"
    with ScriptedOpenAIServer([Reply(code=answer)]) as srv:
        code, output = _run(_base(srv, out, data_root))
        assert len(srv.requests) == 1  # no model turn spent on it
    assert code == 0, output
    run = json.loads((out / "run.json").read_text())
    assert run["passed"] and run["attempts"] == 1
    assert run["attempt_summaries"][0]["repairs"] == [
        "`json.dumps` (line 13) writes numpy numbers as plain numbers: added `default=lambda o: o.tolist()`"]
    assert (out / "attempt-1" / "answer.py").read_text() == answer
    assert "default=lambda o: o.tolist()" in (out / "attempt-1" / "script.py").read_text()
    assert (out / "attempt-1" / "stdout.txt").read_text().strip() == 'RESULT {"n_obs": 20}'


def _without_imports(code: str, *names: str) -> str:
    return "\n".join(line for line in code.splitlines() if not any(line.startswith(n) for n in names)) + "\n"


def test_missing_imports_are_repaired_and_recorded(tmp_path: Path, data_root: Path) -> None:
    answer = _without_imports(script("msh1552_count_ok.py"), "import json", "import os", "from astropy.coordinates")
    out = tmp_path / "bundle"
    with ScriptedOpenAIServer([Reply(code=answer)]) as srv:
        code, output = _run(_base(srv, out, data_root))
    assert code == 0, output
    run = json.loads((out / "run.json").read_text())
    assert run["passed"] and run["attempts"] == 1
    assert run["attempt_summaries"][0]["repairs"] == [
        "added `import json`", "added `import os`", "added `from astropy.coordinates import SkyCoord`"]
    assert (out / "attempt-1" / "answer.py").read_text() == answer  # the model's own text is kept
    ran = (out / "attempt-1" / "script.py").read_text()
    assert ran.startswith("import json\nimport os\nfrom astropy.coordinates import SkyCoord\n")
    assert (out / "attempt-1" / "stdout.txt").read_text().strip() == 'RESULT {"n_obs": 20}'


def test_without_repairs_the_same_answer_is_rejected(tmp_path: Path, data_root: Path) -> None:
    answer = _without_imports(script("msh1552_count_ok.py"), "import json")
    out = tmp_path / "bundle"
    with ScriptedOpenAIServer([Reply(code=answer)]) as srv:
        code, _ = _run(_base(srv, out, data_root, "--attempts", "1", "--no-repairs"))
    assert code == 1
    v1 = json.loads((out / "attempt-1" / "validation.json").read_text())
    assert v1["failure"] == "static" and v1["repairs"] == []
    assert any("undefined name 'json'" in e for e in v1["static_errors"])


def test_invented_api_never_reaches_the_sandbox_and_the_next_turn_names_the_real_one(
    tmp_path: Path, data_root: Path
) -> None:
    invented = script("msh1552_count_ok.py").replace("DataStore.from_dir(", "DataStore.from_directory(")
    out = tmp_path / "bundle"
    with ScriptedOpenAIServer([Reply(code=invented), Reply(code=script("msh1552_count_ok.py"))]) as srv:
        code, output = _run(_base(srv, out, data_root))
        second = srv.requests[1]["messages"][-1]["content"]
    assert code == 0, output
    v1 = json.loads((out / "attempt-1" / "validation.json").read_text())
    assert v1["failure"] == "static" and v1["execution"] is None
    assert list((out / "attempt-1" / "workspace").iterdir()) == []  # nothing ran
    assert "`DataStore` has no `from_directory`; did you mean `DataStore.from_dir(base_dir," in second
    assert "> data_store = DataStore.from_directory(" in second  # the offending line quoted back


def test_candidates_run_side_by_side_and_the_passing_one_wins(tmp_path: Path, data_root: Path) -> None:
    out = tmp_path / "bundle"
    replies = [Reply(code=script("msh1552_count_broken.py"), prompt_tokens=300, completion_tokens=40),
               Reply(code=script("msh1552_count_ok.py"), prompt_tokens=300, completion_tokens=60)]
    with ScriptedOpenAIServer(replies) as srv:
        code, output = _run(_base(srv, out, data_root, "--candidates", "2"))
        seeds = sorted(r.get("seed") for r in srv.requests)
    assert code == 0, output
    run = json.loads((out / "run.json").read_text())
    assert run["passed"] and run["attempts"] == 1
    assert run["usage"]["prompt_tokens"] == 600 and run["usage"]["completion_tokens"] == 100  # both counted
    assert len(set(seeds)) == 2  # distinct seeds
    outcomes = {json.loads((out / "attempt-1" / f"candidate-{j}" / "validation.json").read_text())["failure"]
                for j in (1, 2)}
    assert outcomes == {"none", "runtime"}  # each candidate ran in its own sandbox and is kept
    chosen = json.loads((out / "attempt-1" / "validation.json").read_text())
    assert chosen["failure"] == "none" and chosen["candidates"] == 2
    assert (out / "attempt-1" / "script.py").read_text() == script("msh1552_count_ok.py")


def test_an_answer_that_breaks_what_ran_is_merged_into_the_best_script(tmp_path: Path, data_root: Path) -> None:
    """Attempt 1 runs and fails on its last lines; attempt 2 fixes them but breaks the data store call. The
    harness keeps attempt 1 with only the fix taken from attempt 2, and that passes."""
    broken = script("msh1552_count_broken.py")
    fix = ('pointing = SkyCoord(table["RA_PNT"], table["DEC_PNT"], unit="deg", frame="icrs")\n'
           "n_obs = int((pointing.separation(target) < 2 * u.deg).sum())\n")
    regressed = (broken.replace("DataStore.from_dir(", "DataStore.from_directory(")
                 .replace("n_obs = int((ra.separation(target) < 2).sum())\n", fix)
                 .replace("import os\n", "import os\n\nimport astropy.units as u\n"))
    out = tmp_path / "bundle"
    with ScriptedOpenAIServer([Reply(code=broken), Reply(code=regressed)]) as srv:
        code, output = _run(_base(srv, out, data_root))
        assert len(srv.requests) == 2
    assert code == 0, output
    run = json.loads((out / "run.json").read_text())
    assert run["passed"] and run["attempts"] == 2
    chosen = json.loads((out / "attempt-2" / "validation.json").read_text())
    assert chosen["failure"] == "none" and chosen["repairs"][0].startswith("kept attempt 1's script")
    assert "from_directory" not in run["final_script"] and "pointing.separation(target)" in run["final_script"]
    assert (out / "attempt-2" / "answer.py").read_text() == regressed  # the model's own answer is kept
    own = json.loads((out / "attempt-2" / "candidate-1" / "validation.json").read_text())
    assert own["failure"] == "static" and "from_directory" in own["static_errors"][0]
    assert (out / "attempt-2" / "candidate-2" / "stdout.txt").read_text().strip() == 'RESULT {"n_obs": 20}'
