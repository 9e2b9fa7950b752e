"""A built wheel, installed non-editable into a fresh environment, is a working tool (run from outside the
repository): its model configs, tasks, references and container definitions ship inside it."""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import script
from doubles.openai_server import Reply, ScriptedOpenAIServer

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`pip wheel .`, then a fresh venv with that wheel alone (its dependencies are read from this
    environment's site-packages through a path entry, whose editable finder is not run there)."""
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "src"  # a copy: building leaves build/ and egg-info behind, never in the checkout
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(".venv", ".git", "build", "runs", "results",
                                                                "__pycache__", "*.egg-info", "tests"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(source),
                    "-w", str(tmp / "dist")], check=True, cwd=tmp)
    (wheel,) = (tmp / "dist").glob("hpc_agent-*.whl")
    venv = tmp / "fresh"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--no-deps", str(wheel)], check=True)
    fresh_site = subprocess.run([str(venv / "bin" / "python"), "-c", "import site; print(site.getsitepackages()[0])"],
                                capture_output=True, text=True, check=True).stdout.strip()
    Path(fresh_site, "_dependencies.pth").write_text(site.getsitepackages()[0] + "\n")
    return venv


def _cli(venv: Path, *args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(venv / "bin" / "hpc-agent"), *args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, **(env or {})}, timeout=900)


def test_the_installed_package_is_not_the_checkout(installed: Path, tmp_path: Path) -> None:
    where = subprocess.run([str(installed / "bin" / "python"), "-c", "import hpc_agent; print(hpc_agent.__file__)"],
                           capture_output=True, text=True, check=True, cwd=tmp_path).stdout
    assert where.startswith(str(installed)) and not where.startswith(str(REPO))


def test_models_tasks_and_containers_come_with_the_wheel(installed: Path, tmp_path: Path, data_root: Path) -> None:
    models = json.loads(_cli(installed, "models", "--json", cwd=tmp_path).stdout)
    assert {"qwen2.5-coder-1.5b", "qwen2.5-coder-0.5b", "openai-gpt-5"} <= set(models)
    containers = _cli(installed, "container", "list", cwd=tmp_path).stdout
    assert "sandbox" in containers and "vllm" in containers and "_data/containers/sandbox.def" in containers
    tasks = _cli(installed, "bench", "tasks", "--json", "--data-root", str(data_root), cwd=tmp_path)
    assert tasks.returncode == 0, tasks.stderr[-2000:]
    listed = json.loads(tasks.stdout)
    ids = {t["id"] for t in listed} if isinstance(listed, list) else set(listed)
    assert len(ids) == 17 and "reflected-significance-crab" in ids


def test_a_run_through_the_installed_cli_passes(installed: Path, tmp_path: Path, data_root: Path) -> None:
    out = tmp_path / "run"
    with ScriptedOpenAIServer([Reply(code=script("msh1552_count_ok.py"))]) as srv:
        done = _cli(installed, "run", "How many H.E.S.S. DR1 observations point within 2 degrees of MSH 15-52?",
                    "--base-url", srv.base_url, "--model", srv.model, "--out", str(out), "--data-root",
                    str(data_root), "--sandbox", "bwrap", "--timeout", "120", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads((out / "run.json").read_text())["passed"] is True
