"""The web page in a real browser: `hpc-agent ui` as a subprocess, Debian's Chromium driven headless by Playwright,
a prompt answered by the scripted test double with a script that works on the real data (bwrap)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import script
from doubles.openai_server import Reply, ScriptedOpenAIServer
from hpc_agent.serve import free_port

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
PROMPT = "How many H.E.S.S. DR1 observations point within 2 degrees of MSH 15-52?"

pytestmark = pytest.mark.skipif(not CHROMIUM.is_file(),
                                reason="/usr/bin/chromium is absent: apt-get install chromium (CI installs it)")


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path, timeout_s: float = 60) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        if proc.poll() is not None:
            pytest.fail(f"hpc-agent ui exited with {proc.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return time.monotonic() - start
        except OSError:
            pass
        time.sleep(0.2)
    pytest.fail(f"hpc-agent ui not healthy after {timeout_s} s:\n{log.read_text()}")


def test_prompt_in_the_browser_shows_script_and_log(tmp_path: Path, data_root: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    replies = [Reply(code=script("msh1552_count_broken.py")),  # fails in the sandbox: AttributeError
               Reply(code=script("msh1552_count_ok.py"), delay_s=3.0, prompt_tokens=1200, completion_tokens=180)]
    with ScriptedOpenAIServer(replies) as srv:
        config = tmp_path / "config.yaml"  # the default backend is the scripted server, configured by name
        config.write_text(f"backend: scripted\nsandbox: bwrap\nexec_timeout_s: 120\nbackends:\n"
                          f"  scripted: {{base_url: '{srv.base_url}', model: {srv.model}}}\n")
        env = {**os.environ, "HPC_AGENT_CONFIG": str(config), "XDG_DATA_HOME": str(tmp_path / "data"),
               "PHOTON_STORAGE": str(data_root)}
        runs_dir = tmp_path / "data" / "hpc-agent" / "runs"
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        log = tmp_path / "ui.log"
        started = time.monotonic()
        with log.open("wb") as out:
            proc = subprocess.Popen([str(Path(sys.executable).with_name("hpc-agent")), "ui", "--port", str(port)],
                                    env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            ready_s = _wait_healthy(url, proc, log)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
                try:
                    page = browser.new_page(viewport={"width": 1400, "height": 1000})
                    page.goto(url)
                    prompt = page.get_by_label("Prompt")
                    prompt.wait_for(timeout=60_000)
                    backend = page.get_by_role("combobox", name="Backend")
                    expect(backend).to_have_value(re.compile(r"^scripted — configured"))  # the configured default
                    prompt.fill(PROMPT)
                    page.get_by_role("button", name="Run", exact=True).click()
                    # while it runs: the first attempt's outcome, and the second attempt under way
                    expect(page.get_by_text("Attempt 2 of 5 running… (attempt 1: runtime)", exact=True)
                           ).to_be_visible(timeout=240_000)
                    expect(page.get_by_text(re.compile(r"^attempt 1: fail \(runtime: AttributeError\)"))
                           ).to_be_visible()
                    # using the page meanwhile (a widget that reruns the whole page) does not interrupt the run
                    page.get_by_role("tab", name="Benchmark reports").click()
                    other = page.get_by_role("textbox", name="Open another report folder")
                    other.fill(str(tmp_path / "no-report"))
                    other.press("Enter")
                    expect(page.get_by_text("not a report folder")).to_be_visible(timeout=30_000)
                    assert not list(runs_dir.glob("*/run.json"))  # that rerun happened while the run was working
                    page.get_by_role("tab", name="Run", exact=True).click()
                    expect(page.get_by_text("Passed after 2 attempt(s)", exact=True)).to_be_visible(timeout=240_000)
                    panel = page.get_by_role("tabpanel", name="Run")  # "Earlier runs" shows the same run
                    code = panel.get_by_test_id("stCode")
                    # the working script first (the attempts' scripts follow, folded); then the log
                    expect(code.first).to_contain_text("pointing.separation(target)")
                    expect(code.first).to_be_visible()
                    expect(code.filter(has_text='RESULT {"n_obs": 20}')).to_be_visible()
                    expect(panel.get_by_text("validation passed", exact=True)).to_be_visible()
                    expect(panel.get_by_role("button", name="Download script.py")).to_be_visible()
                    shot = tmp_path / "ui-after-run.png"  # kept as a CI artefact
                    page.set_viewport_size({"width": 1400, "height": 3600})  # Streamlit scrolls inside its own pane
                    page.screenshot(path=str(shot))
                finally:
                    browser.close()
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
        total_s = time.monotonic() - started
        assert len(srv.requests) == 2 and PROMPT in srv.requests[0]["messages"][-1]["content"]
    assert shot.stat().st_size > 10_000
    runs = list(runs_dir.glob("*/run.json"))
    assert len(runs) == 1 and json.loads(runs[0].read_text())["status"] == "passed"
    print(f"\nui healthy after {ready_s:.1f} s; browser test {total_s:.1f} s; screenshot {shot}")
