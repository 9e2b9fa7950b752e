"""Submitting model servers and benchmark sweeps as batch jobs (submitit), and waiting for them."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from submitit.helpers import clean_env

from hpc_agent.bench.oracle import ORACLE
from hpc_agent.bench.sweep import SweepOptions, shard_cells
from hpc_agent.config import Settings
from hpc_agent.errors import ConfigError, UsageError
from hpc_agent.hpc import jobs
from hpc_agent.hpc.executor import Placement, Resources, ShardPlan, default_cluster, make_executor
from hpc_agent.hpc.profiles import ClusterProfile
from hpc_agent.hpc.work import BenchShard, ServeWork
from hpc_agent.serve.configs import get_model_config
from hpc_agent.serve.session import default_state_file, resolve_backend, running_server

Progress = Callable[[str], None]


def resolve_profile(settings: Settings, name: str | None) -> ClusterProfile:
    name = name or settings.cluster_profile
    if name is None:
        return ClusterProfile()
    if name not in settings.clusters:
        known = ", ".join(sorted(settings.clusters)) or "none"
        raise ConfigError(f"unknown cluster profile {name!r} (configured: {known}); add it under `clusters:` "
                          "in the config file")
    return settings.clusters[name]


def _submitit_folder(settings: Settings) -> Path:
    return settings.jobs_dir / "submitit"


def submit_serve(settings: Settings, name: str, placement: Placement = Placement(), *,
                 cpus_per_task: int | None = None, mem_gb: float | None = None) -> jobs.JobRecord:
    """A job that runs the server of model config `name` and publishes its state file in the shared folder.

    Resources come from the model config's `slurm:` section (local llama.cpp models: 2 CPUs, 4 GB);
    `cpus_per_task` / `mem_gb` override them.
    """
    cfg = get_model_config(name, settings)
    if cfg.kind == "remote":
        raise UsageError(f"{name!r} is a remote endpoint: there is no server to submit; use it with --backend")
    cluster = placement.cluster or default_cluster()
    if cluster == "debug":
        raise UsageError("a server cannot run in the debug executor (it would block this process); "
                         f"use `hpc-agent serve {name}` or --cluster local|slurm")
    state_file = default_state_file(settings, name)
    live = running_server(settings, cfg)
    if live is not None:
        raise UsageError(f"a {name} server is already running at {live.base_url} (state file {state_file}); "
                         "use it, or `hpc-agent cancel` its job first")
    res = cfg.slurm
    resources = Resources(
        timeout_min=placement.time_min or (res.time_min if res else 240),
        cpus_per_task=cpus_per_task or (res.cpus_per_task if res else 2),
        mem_gb=mem_gb or (res.mem_gb if res else 4),
        gpus_per_node=res.gpus_per_node if res else 0, job_name=f"hpc-agent-serve-{name}")
    executor = make_executor(cluster, _submitit_folder(settings), resources, resolve_profile(settings, placement.profile))
    # other nodes must reach a Slurm-hosted server; a local one stays on loopback
    host = "0.0.0.0" if cluster == "slurm" else "127.0.0.1"
    with clean_env():  # from inside a job: its SLURM_* variables must not leak into the new one
        job = executor.submit(ServeWork(settings, name, host, state_file))
    record = jobs.JobRecord(job_id=str(job.job_id), kind="serve", cluster=cluster,
                            folder=str(_submitit_folder(settings) / "%j"), name=name,
                            detail={"state_file": str(state_file), "time_min": resources.timeout_min})
    jobs.save(record, settings.jobs_dir)
    return record


def _vllm_models(settings: Settings, options: SweepOptions) -> list[str]:
    """The sweep's models that need a vLLM server (resolved like `bench` resolves them: a configured backend
    of the same name wins); an unknown name is reported here, before anything queues."""
    if options.base_url:
        return []
    resolved = [resolve_backend(settings, m) for m in options.models if m != ORACLE]
    return [r.name for r in resolved if r.endpoint is None and r.config is not None and r.config.kind == "vllm"]


def submit_bench(settings: Settings, options: SweepOptions, placement: Placement = Placement(),
                 plan: ShardPlan = ShardPlan(), progress: Progress = lambda _m: None) -> list[jobs.JobRecord]:
    """The sweep's cells as a job array of `plan.shards` checkpointable shards writing into `options.out`."""
    from hpc_agent.bench.sweep import Sweep

    cluster = placement.cluster or default_cluster()
    sweep = Sweep.from_settings(options, settings)  # validates models, tasks and the data root before anything queues
    count = max(1, min(plan.shards, len(sweep.cells)))
    registry = settings.jobs_dir
    extra: dict[str, str] = {}
    wait_for: tuple[str, ...] = ()
    if plan.after_serve:
        serve = jobs.find(registry, plan.after_serve)
        if any(r.kind != "serve" for r in serve):
            raise UsageError(f"--after-serve {plan.after_serve}: that job is not a `submit serve` job")
        wait_for = tuple(sorted({r.name for r in serve}))
        if cluster == "slurm":
            extra["dependency"] = "after:" + ":".join(r.job_id for r in serve)  # starts once the server job has
    # without a serve job to wait for, a shard starts its vLLM server itself: size it for that
    vllm_models = [] if plan.after_serve else _vllm_models(settings, options)
    res = get_model_config(vllm_models[0], settings).slurm if vllm_models else None
    resources = Resources(
        timeout_min=placement.time_min or (res.time_min if res else 120),
        cpus_per_task=res.cpus_per_task if res else plan.cpus_per_task,
        mem_gb=res.mem_gb if res else plan.mem_gb,
        gpus_per_node=res.gpus_per_node if res else 0,
        job_name=f"hpc-agent-bench-{options.out.name}", extra=extra)
    executor = make_executor(cluster, _submitit_folder(settings), resources, resolve_profile(settings, placement.profile))
    shards = [BenchShard(options, settings, i, count, wait_for=wait_for, start_servers=not plan.after_serve)
              for i in range(count)]
    options.out.mkdir(parents=True, exist_ok=True)
    with clean_env():
        with executor.batch():
            submitted = [executor.submit(shard) for shard in shards]
    records = []
    for i, job in enumerate(submitted):
        job_id = str(job.job_id)
        group = job_id.split("_")[0] if "_" in job_id else None
        record = jobs.JobRecord(job_id=job_id, kind="bench", cluster=cluster,
                                folder=str(_submitit_folder(settings) / "%j"), name=options.out.name, group=group,
                                detail={"sweep_out": str(options.out), "shard": i, "shards": count,
                                        "cells": len(shard_cells(sweep.all_cells, i, count))})
        jobs.save(record, registry)
        records.append(record)
    if cluster == "debug":  # the debug executor runs a job when its result is asked for: run them now
        for job in submitted:
            try:
                job.result()
            except Exception as exc:  # recorded like any failed job; `status` and `logs` show it
                progress(f"debug shard failed: {exc}")
    progress(f"{len(records)} shard(s) of {len(sweep.cells)} cells submitted to {cluster}; sweep folder {options.out}")
    return records


def wait(settings: Settings, records: list[jobs.JobRecord], *, poll_s: float = 5.0, timeout_s: float | None = None,
         on_change: Callable[[dict[str, str]], None] = lambda _s: None) -> dict[str, str]:
    """Poll until every job is in a final state (or `timeout_s` passes); returns the last states."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    last: dict[str, str] = {}
    while True:
        now = jobs.states(records)
        if now != last:
            on_change(now)
            last = now
        if all(s in jobs.FINAL_STATES for s in now.values()):
            return now
        if deadline is not None and time.monotonic() > deadline:
            return now
        time.sleep(poll_s)
