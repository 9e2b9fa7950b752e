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
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

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


@dataclass
class Ui:
    url: str
    proc: subprocess.Popen[bytes]
    runs_dir: Path
    ready_s: float


@contextmanager
def serve_ui(tmp_path: Path, srv: ScriptedOpenAIServer, data_root: Path) -> Iterator[Ui]:
    """`hpc-agent ui` on a free port, isolated config and runs dir; its default backend is the scripted server."""
    config = tmp_path / "config.yaml"
    config.write_text(f"backend: scripted\nsandbox: bwrap\nexec_timeout_s: 120\nbackends:\n"
                      f"  scripted: {{base_url: '{srv.base_url}', model: {srv.model}}}\n")
    env = {**os.environ, "HPC_AGENT_CONFIG": str(config), "XDG_DATA_HOME": str(tmp_path / "data"),
           "PHOTON_STORAGE": str(data_root)}
    port = free_port()
    log = tmp_path / "ui.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([str(Path(sys.executable).with_name("hpc-agent")), "ui", "--port", str(port)],
                                env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        ready_s = _wait_healthy(f"http://127.0.0.1:{port}", proc, log)
        yield Ui(f"http://127.0.0.1:{port}", proc, tmp_path / "data" / "hpc-agent" / "runs", ready_s)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        proc.wait(timeout=60)


@contextmanager
def browser_page(url: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url)
            page.get_by_label("Prompt").wait_for(timeout=60_000)
            yield page
        finally:
            browser.close()


def _submit(page: Any) -> None:
    from playwright.sync_api import expect

    expect(page.get_by_role("combobox", name="Backend")).to_have_value(re.compile(r"^scripted — configured"))
    page.get_by_label("Prompt").fill(PROMPT)
    page.get_by_role("button", name="Run", exact=True).click()


def test_prompt_in_the_browser_shows_script_and_log(tmp_path: Path, data_root: Path) -> None:
    from playwright.sync_api import expect

    replies = [Reply(code=script("msh1552_count_broken.py")),  # fails in the sandbox: AttributeError
               Reply(code=script("msh1552_count_ok.py"), delay_s=3.0, prompt_tokens=1200, completion_tokens=180)]
    started = time.monotonic()
    with ScriptedOpenAIServer(replies) as srv:
        with serve_ui(tmp_path, srv, data_root) as ui, browser_page(ui.url) as page:
            _submit(page)
            # while it runs: the first attempt's outcome, and the second attempt under way
            expect(page.get_by_text("Attempt 2 of 5 running… (attempt 1: runtime)", exact=True)
                   ).to_be_visible(timeout=240_000)
            expect(page.get_by_text(re.compile(r"^attempt 1: fail \(runtime: AttributeError\)"))).to_be_visible()
            # using the page meanwhile (a widget that reruns the whole page) does not interrupt the run
            page.get_by_role("tab", name="Benchmark reports").click()
            other = page.get_by_role("textbox", name="Open another report folder")
            other.fill(str(tmp_path / "no-report"))
            other.press("Enter")
            expect(page.get_by_text("not a report folder")).to_be_visible(timeout=30_000)
            assert not list(ui.runs_dir.glob("*/run.json"))  # that rerun happened while the run was working
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
        total_s = time.monotonic() - started
        assert len(srv.requests) == 2 and PROMPT in srv.requests[0]["messages"][-1]["content"]
    assert shot.stat().st_size > 10_000
    runs = list(ui.runs_dir.glob("*/run.json"))
    assert len(runs) == 1 and json.loads(runs[0].read_text())["status"] == "passed"
    print(f"\nui healthy after {ui.ready_s:.1f} s; browser test {total_s:.1f} s; screenshot {shot}")


def test_stopping_the_page_lets_the_run_in_flight_finish(tmp_path: Path, data_root: Path) -> None:
    """SIGTERM mid-run: the page stops serving, but the run completes and is recorded (a local model it started
    would be stopped by its `with` block instead of being left behind)."""
    from playwright.sync_api import expect

    with ScriptedOpenAIServer([Reply(code=script("msh1552_count_ok.py"), delay_s=6.0)]) as srv:
        with serve_ui(tmp_path, srv, data_root) as ui:
            with browser_page(ui.url) as page:
                _submit(page)
                expect(page.get_by_text("Attempt 1 of 5 running…", exact=True)).to_be_visible(timeout=60_000)
            deadline = time.monotonic() + 30
            while not srv.requests and time.monotonic() < deadline:  # the model call is under way
                time.sleep(0.1)
            stopped = time.monotonic()
            ui.proc.send_signal(signal.SIGTERM)  # the page's process only, as Ctrl-C would
            ui.proc.wait(timeout=120)
            waited_s = time.monotonic() - stopped
            runs = list(ui.runs_dir.glob("*/run.json"))
    assert len(runs) == 1 and json.loads(runs[0].read_text())["status"] == "passed"
    assert waited_s > 2, waited_s  # it waited for the 6 s answer and the sandbox run
    print(f"\nstopped page exited {waited_s:.1f} s after SIGTERM, once its run had finished")
