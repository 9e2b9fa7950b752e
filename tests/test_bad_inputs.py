"""Every bad input is refused up front: exit 2, one line naming it, no model request, nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from doubles.openai_server import ScriptedOpenAIServer
from hpc_agent.cli import main

PROMPT = "How many H.E.S.S. DR1 observations point within 2 degrees of MSH 15-52?"


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture()
def place(tmp_path: Path) -> Path:
    """A folder with what a user made before: a file, an earlier run, an earlier sweep (3 attempts)."""
    (tmp_path / "a-file").write_text("mine\n")
    (tmp_path / "earlier-run").mkdir()
    (tmp_path / "earlier-run" / "run.json").write_text('{"passed": true}\n')
    (tmp_path / "earlier-sweep").mkdir()
    (tmp_path / "earlier-sweep" / "manifest.json").write_text(json.dumps({"options": {"attempts": 3}}))
    return tmp_path


# (arguments after the command, with {srv}, {place} and {data} filled in; what the one line must say)
RUN_CASES = [
    (["run", " ", "--base-url", "{srv}", "--model", "m"], "the prompt is empty"),
    (["run", PROMPT, "--base-url", "notaurl", "--model", "m"], "--base-url 'notaurl'"),
    (["run", PROMPT, "--base-url", "ftp://host/v1", "--model", "m"], "must start with http:// or https://"),
    (["run", PROMPT, "--base-url", "http:///v1", "--model", "m"], "names no host"),
    (["run", PROMPT, "--base-url", "{srv}", "--model", "m", "--temperature", "-3"], "--temperature -3.0"),
    (["run", PROMPT, "--base-url", "{srv}", "--model", "m", "--temperature", "9"], "--temperature 9.0"),
    (["run", PROMPT, "--base-url", "{srv}", "--model", "m", "--max-tokens", "0"], "--max-tokens 0"),
    (["run", PROMPT, "--base-url", "{srv}", "--model", "m", "--attempts", "0"], "field `attempts`"),
    (["run", PROMPT, "--base-url", "{srv}", "--model", "m", "--out", "{place}/a-file"], "is a file"),
    (["run", PROMPT, "--base-url", "{srv}", "--model", "m", "--out", "{place}/earlier-run"], "holds an earlier run"),
    (["run", PROMPT, "--base-url", "{srv}", "--model", "m", "--data-root", "{place}"], "no hess-dl3-dr1 release"),
    (["run", PROMPT, "--base-url", "{srv}"], "--base-url and --model go together"),
    (["bench", "--base-url", "{srv}", "--model", "m", "--out", "{place}/a-file"], "is a file"),
    (["bench", "--base-url", "{srv}", "--model", "m", "--out", "{place}/earlier-run"], "holds a run's bundle"),
    (["bench", "--base-url", "{srv}", "--model", "m", "--out", "{place}/earlier-sweep", "--attempts", "5"],
     "resume it with --attempts 3"),
    (["bench", "--base-url", "{srv}", "--model", "m", "--out", "{place}/new", "--data-root", "{place}"],
     "no hess-dl3-dr1 release"),
    (["serve", "qwen2.5-coder-0.5b", "--port", "99999"], "a TCP port is 1-65535"),
]


@pytest.mark.parametrize(("args", "says"), RUN_CASES, ids=[" ".join(a[:1] + [s]) for a, s in RUN_CASES])
def test_a_bad_input_is_refused_before_anything_acts(args: list[str], says: str, place: Path,
                                                     data_root: Path) -> None:
    before = _tree(place)
    with ScriptedOpenAIServer([]) as srv:
        filled = [a.format(srv=srv.base_url, place=place) for a in args]
        if "--data-root" not in filled and filled[0] != "serve":
            filled += ["--data-root", str(data_root)]
        res = CliRunner().invoke(main, filled)
        assert srv.requests == []  # no model was asked
    lines = res.output.strip().splitlines()
    assert res.exit_code == 2, res.output
    assert len(lines) == 1 and lines[0].startswith("error: ") and says in lines[0], res.output
    assert "Traceback" not in res.output
    assert _tree(place) == before  # nothing created or changed
