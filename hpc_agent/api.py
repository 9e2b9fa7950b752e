"""The small Python API the CLI, the web page and scripts call: runs, doctor, sweeps, batch jobs.

Functions whose home is a domain module (job status, logs, cancel, container builds, the sweep summary,
backend resolution) are re-exported here, so that front ends need only this module."""

from __future__ import annotations

import importlib
import itertools
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

from hpc_agent.agent import RunSpec, package_version, run_agent
from hpc_agent.assemble import candidates_for, chat_client, limits_for, run_spec
from hpc_agent.bench.references import expected_values
from hpc_agent.bench.options import SweepSummary, sweep_summary
from hpc_agent.bench.sweep import Sweep, SweepOptions
from hpc_agent.bench.tasks import load_tasks
from hpc_agent.config import Backend, Settings, check_backend_fields, load_settings
from hpc_agent.data import RELEASE, check_dataset, resolve_data_root
from hpc_agent.hpc.containers import ContainerBuild, build_container, plan_container_build
from hpc_agent.hpc.monitor import JobLog, JobStatus, cancel_jobs, job_logs, job_statuses
from hpc_agent.hpc.submit import Placement, ShardPlan, submit_bench, submit_serve
from hpc_agent.hpc.submit import wait as wait_for_jobs
from hpc_agent.serve.session import ResolvedBackend, open_backend, resolve_backend, running_server
from hpc_agent.serve.weights import cache_dir
from hpc_agent.llm import ChatClient
from hpc_agent.preflight import check_prompt, check_release, check_run_out
from hpc_agent.records import Attempt, RunResult
from hpc_agent.sandbox import Sandbox
from hpc_agent.sandbox import from_settings as sandbox_from_settings


make_sandbox = sandbox_from_settings  # the API's name for it


def default_out_dir(settings: Settings, prompt: str) -> Path:
    """A new folder name under `runs_dir`: time and prompt, with `-2`, `-3`... when a run of the same prompt
    started in the same second (two runs from the page, one after the other)."""
    slug = re.sub(r"[^a-z0-9]+", "-", prompt.lower()).strip("-")[:40] or "run"
    base = settings.runs_dir / f"{datetime.now():%Y%m%d-%H%M%S}-{slug}"
    return next(p for n in itertools.count(1) if not (p := base.with_name(base.name + (f"-{n}" if n > 1 else ""))).exists())


def run(
    prompt: str,
    *,
    backend: Backend | str | None = None,
    base_url: str | None = None,
    model: str | None = None,
    overrides: dict[str, Any] | None = None,
    settings: Settings | None = None,
    out_dir: Path | None = None,
    sandbox: str | None = None,
    on_attempt: Callable[[Attempt], None] | None = None,
    progress: Callable[[str], None] = lambda _m: None,
    rag: bool = False,
) -> RunResult:
    """Write, run, check and repair a script for `prompt`; returns the RunResult (bundle on disk).

    `backend` is a Backend, a backend or model-config name, or None for the configured default (else the
    local `qwen2.5-coder-0.5b`, started for this run and stopped after it); `base_url` + `model` make an
    ad hoc backend; `overrides` replace backend fields (max_tokens, temperature, reasoning_effort, ...).
    `rag` injects snippets from the retrieval index (settings `rag_*`) on every turn.
    """
    settings = settings or load_settings()
    check_prompt(prompt)
    data_root = check_release(resolve_data_root(settings.data_root))
    out = check_run_out((out_dir or default_out_dir(settings, prompt)).resolve())
    check_backend_fields(overrides or {})
    retriever = None
    if rag:
        from hpc_agent.rag import open_retriever

        retriever = open_retriever(settings, progress=progress)
    spec = run_spec(settings, prompt=prompt, data_root=data_root, out_dir=out, retriever=retriever)
    box = make_sandbox(settings, sandbox)
    if isinstance(backend, Backend):
        return _run_with(spec, backend, settings, box, on_attempt)
    with open_backend(settings, backend, base_url=base_url, model=model, progress=progress,
                      **(overrides or {})) as opened:
        return _run_with(spec, opened, settings, box, on_attempt)


def _run_with(spec: RunSpec, backend: Backend, settings: Settings, box: Sandbox,
              on_attempt: Callable[[Attempt], None] | None) -> RunResult:
    spec.candidates = candidates_for(settings, backend.candidates)  # known once the backend is
    return run_agent(spec, chat_client(settings, backend), box, on_attempt=on_attempt)


@dataclass(frozen=True)
class Finding:
    """One `doctor` check: what, whether it is fine, and how to fix it when it is not."""

    name: str
    ok: bool
    detail: str
    fix: str = ""


def doctor(settings: Settings, backend: str | None = None, *, base_url: str | None = None,
           model: str | None = None) -> list[Finding]:
    findings: list[Finding] = []
    gv = package_version("gammapy")
    findings.append(Finding("gammapy", gv == "2.1", f"gammapy {gv}", "pip install 'gammapy==2.1'"))
    rv = package_version("regions")
    try:
        regions_ok = tuple(int(x) for x in rv.split(".")[:2]) < (0, 12)
    except ValueError:
        regions_ok = False
    findings.append(Finding("regions", regions_ok, f"regions {rv}",
                            "pip install 'regions<0.12' (gammapy 2.1 fails to import with 0.12+)"))
    try:
        importlib.import_module("gammapy.data")  # the import itself is the check
        findings.append(Finding("gammapy import", True, "gammapy.data imports"))
    except Exception as exc:  # any import failure is a finding
        findings.append(Finding("gammapy import", False, f"{exc.__class__.__name__}: {exc}",
                                "reinstall with the pins in pyproject.toml"))
    try:
        root = resolve_data_root(settings.data_root)
        check = check_dataset(root / RELEASE)
        findings.append(Finding("data", check.ok, check.summary(),
                                f"hpc-agent data fetch {RELEASE} --to {root}"))
    except Exception as exc:
        findings.append(Finding("data", False, str(exc), "export PHOTON_STORAGE=DIR or pass --data-root DIR"))
    try:
        sb = make_sandbox(settings)
        ok, why = sb.available()
        detail = f"{sb.name}: {why}" + ("" if sb.isolated else " (NO ISOLATION)")
        findings.append(Finding("sandbox", ok and sb.isolated, detail,
                                "apt-get install bubblewrap (or set sandbox: apptainer with an image)"))
    except Exception as exc:
        findings.append(Finding("sandbox", False, str(exc), "apt-get install bubblewrap"))
    findings.append(_backend_finding(settings, backend, base_url, model))
    from hpc_agent.rag import index_status

    ready, where = index_status(settings)
    # optional: only `--rag` needs it, so a missing index is reported, never a failed check
    findings.append(Finding("retrieval index", True, where if ready else f"not built (only --rag needs it); {where}"))
    return findings


def _backend_finding(settings: Settings, name: str | None, base_url: str | None, model: str | None) -> Finding:
    """Reachability of an endpoint, or readiness of a local model, without starting anything."""
    try:
        resolved = resolve_backend(settings, name, base_url=base_url, model=model)
        if resolved.endpoint is not None:
            return _reachable(resolved.endpoint)
        cfg = resolved.config
        assert cfg is not None  # a model config that needs a server
        name = cfg.name
        state = running_server(settings, cfg)
        if state is not None:
            return _reachable(cfg.backend(state.base_url))
        if cfg.kind == "vllm":
            return Finding("backend", False, f"{name}: no running vLLM server",
                           f"hpc-agent serve {name} on a GPU node")
        engine = package_version("llama-cpp-python")
        weights = cache_dir() / f"{name}.gguf"
        ok = engine != "not installed"
        detail = (f"{name}: llama-cpp-python {engine}; weights "
                  f"{'cached at ' + str(weights) if weights.is_file() else 'assembled on first use'}")
        return Finding("backend", ok, detail, "pip install 'llama-cpp-python[server]' (make setup does it)")
    except Exception as exc:
        return Finding("backend", False, str(exc), "fix the backend configuration")


def _reachable(backend: Backend) -> Finding:
    info = ChatClient(backend, timeout_s=10, retries=0).server_info()
    ids = [str(m.get("id")) for m in info.models]
    if ids:
        return Finding("backend", True, f"{backend.name} at {backend.base_url}: models {ids}")
    return Finding("backend", False, f"{backend.name} at {backend.base_url}: /models did not answer",
                   "start the server or fix base_url / the API key variable")


def make_sweep(options: SweepOptions, settings: Settings, *, sandbox: str | None = None,
               on_cell: Callable[[dict[str, Any]], None] = lambda _r: None,
               progress: Callable[[str], None] = lambda _m: None,
               shard: tuple[int, int] | None = None, start_servers: bool = False) -> Sweep:
    """A benchmark sweep over `options` (call `.run()`; `.cells` lists what it will run); see
    `Sweep.from_settings`."""
    return Sweep.from_settings(options, settings, sandbox=sandbox, on_cell=on_cell, progress=progress, shard=shard,
                               start_servers=start_servers)


def bench_tasks(settings: Settings, *, sandbox: str | None = None,
                progress: Callable[[str], None] = lambda _m: None) -> list[dict[str, Any]]:
    """Every task with its expected values on the data root (computed by the reference, cached)."""
    root = resolve_data_root(settings.data_root)
    box = make_sandbox(settings, sandbox)
    listing = []
    for task in load_tasks().values():
        progress(f"expected values of {task.id}")
        values = expected_values(task, root, box, limits=limits_for(settings, task.time_limit_s)).values
        listing.append({**task.model_dump(mode="json"), "expected": values})
    return listing


__all__ = [
    "ContainerBuild", "Finding", "JobLog", "JobStatus", "Placement", "ResolvedBackend", "ShardPlan", "SweepOptions",
    "SweepSummary", "bench_tasks", "build_container", "cancel_jobs", "default_out_dir", "doctor", "job_logs",
    "job_statuses", "make_sandbox", "make_sweep", "plan_container_build", "resolve_backend", "run", "submit_bench",
    "submit_serve", "sweep_summary", "wait_for_jobs",
]
