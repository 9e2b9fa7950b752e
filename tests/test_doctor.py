"""`hpc-agent doctor` on this machine: real Gammapy, real data, real bwrap, a real HTTP endpoint."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from doubles.openai_server import ScriptedOpenAIServer
from hpc_agent.cli import main


def test_doctor_all_ok(data_root: Path) -> None:
    with ScriptedOpenAIServer() as srv:
        res = CliRunner().invoke(main, ["doctor", "--data-root", str(data_root), "--base-url", srv.base_url,
                                        "--model", srv.model])
    assert res.exit_code == 0, res.output
    for name in ("gammapy: gammapy 2.1", "regions: regions 0.11", "data: hess-dl3-dr1: ok, 105 observations",
                 "sandbox: bwrap", "backend: adhoc at"):
        assert f"ok  {name}" in res.output, res.output


def test_doctor_says_how_to_fix(tmp_path: Path) -> None:
    res = CliRunner().invoke(main, ["doctor", "--data-root", str(tmp_path), "--base-url", "http://127.0.0.1:9/v1",
                                    "--model", "m"])
    assert res.exit_code == 1
    assert "BAD data: hess-dl3-dr1: missing" in res.output
    assert f"fix: hpc-agent data fetch hess-dl3-dr1 --to {tmp_path}" in res.output
    assert "BAD backend: adhoc at http://127.0.0.1:9/v1: /models did not answer" in res.output
