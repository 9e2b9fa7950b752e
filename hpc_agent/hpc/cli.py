"""Batch commands: `submit serve|bench`, `status`, `logs`, `cancel`, `container`. Thin: parse, call, print.

Imports only leaves at start-up (settings, job monitoring and submitting load inside the commands), so every
command and every Slurm array element starts fast (benchmarks/cli_start.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from hpc_agent._cli_common import make_sweep_options, progress, settings, sweep_options
from hpc_agent.choices import CLUSTERS, ClusterKind
from hpc_agent.errors import EXIT_INFRASTRUCTURE, EXIT_OK
from hpc_agent.hpc import containers
from hpc_agent.hpc.executor import Placement, ShardPlan
from hpc_agent.hpc.jobs import RECENT_JOBS

_placement = [
    click.option("--cluster", type=click.Choice(CLUSTERS),
                 help="slurm (sbatch), local (background processes) or debug (this process); "
                      "default: slurm when sbatch is on PATH"),
    click.option("--profile", help="site profile under `clusters:` in the config file (partition, account, ...)"),
    click.option("--time", "time_min", type=click.IntRange(min=1), help="wall-clock limit per job, minutes"),
]


def placement_options(f: Any) -> Any:
    for option in reversed(_placement):
        f = option(f)
    return f


def _print_states(states: dict[str, str]) -> None:
    click.echo("  " + ", ".join(f"{j}: {s}" for j, s in sorted(states.items())), err=True)


@click.group()
def submit() -> None:
    """Submit a model server or a benchmark sweep as batch jobs (Slurm through submitit)."""


@submit.command("serve")
@click.argument("name")
@placement_options
@click.option("--cpus", type=click.IntRange(min=1), help="CPUs (default: the model config's slurm section)")
@click.option("--mem-gb", type=click.FloatRange(min=0.5), help="memory (default: the model config's)")
def submit_serve_cmd(name: str, cluster: ClusterKind | None, profile: str | None, time_min: int | None,
                     cpus: int | None, mem_gb: float | None) -> None:
    """Run the server of model config NAME in a job; it publishes its state file for other jobs to find."""
    from hpc_agent.hpc.submit import submit_serve

    record = submit_serve(settings(), name, Placement(cluster, profile, time_min),
                          cpus_per_task=cpus, mem_gb=mem_gb)
    click.echo(record.job_id)
    click.echo(f"serve job {record.job_id} ({record.cluster}); state file {record.detail['state_file']} once ready; "
               f"`hpc-agent logs {record.job_id}`, `hpc-agent cancel {record.job_id}`", err=True)


@submit.command("bench")
@sweep_options
@placement_options
@click.option("--shards", type=click.IntRange(min=1), default=ShardPlan.shards, show_default=True,
              help="job array elements; the cells are split between them")
@click.option("--cpus", type=click.IntRange(min=1), default=ShardPlan.cpus_per_task, show_default=True,
              help="CPUs per shard")
@click.option("--mem-gb", type=click.FloatRange(min=0.5), default=ShardPlan.mem_gb, show_default=True,
              help="memory per shard")
@click.option("--after-serve", help="a `submit serve` job id: shards start after it and use its server")
@click.option("--wait", "wait_", is_flag=True, help="wait for the shards and print their states")
def submit_bench_cmd(data_root: Path | None, cluster: ClusterKind | None, profile: str | None, time_min: int | None,
                     shards: int, cpus: int, mem_gb: float, after_serve: str | None, wait_: bool,
                     **opts: Any) -> None:
    """Run a benchmark sweep as a job array; results land in one sweep folder (`hpc-agent report` it)."""
    effective = settings(data_root=data_root)
    options = make_sweep_options(effective, **opts)
    from hpc_agent.hpc import monitor
    from hpc_agent.hpc.submit import submit_bench, wait

    records = submit_bench(effective, options, Placement(cluster, profile, time_min),
                           ShardPlan(shards, cpus, mem_gb, after_serve), progress=progress)
    for r in records:
        click.echo(r.job_id)
    if not wait_:
        click.echo(f"follow with `hpc-agent status`; then `hpc-agent report {options.out}`", err=True)
        return
    final = wait(effective, records, on_change=_print_states)
    bad = monitor.failed_jobs(records, final)
    for job_id, err in bad.items():
        click.echo(f"shard {job_id} {final[job_id]}" + (f":\n{err}" if err else ""), err=True)
    click.echo(f"sweep folder {options.out}: `hpc-agent report {options.out}`", err=True)
    sys.exit(EXIT_INFRASTRUCTURE if bad else EXIT_OK)


@click.command()
@click.option("--json", "as_json", is_flag=True)
@click.option("--last", type=int, default=RECENT_JOBS, show_default=True, help="how many recent jobs")
def status(as_json: bool, last: int) -> None:
    """Jobs submitted by hpc-agent and their states (from sacct, squeue or the job's result file)."""
    from hpc_agent.hpc import monitor

    rows = monitor.job_statuses(settings(), last)
    if as_json:
        click.echo(json.dumps([row.to_json() for row in rows], indent=2))
        return
    if not rows:
        click.echo("no jobs submitted yet (`hpc-agent submit serve|bench`)")
    for row in rows:
        click.echo(f"{row.job:>12}  {row.state:<11} {row.kind:<6} {row.cluster:<6} {row.name}  {row.where}")
        if row.error:
            click.echo(f"{'':>14}{row.error}  (`hpc-agent logs {row.job}`)")


@click.command()
@click.argument("job_id")
@click.option("--err", "stream", flag_value="err", help="stderr instead of stdout")
@click.option("--tail", type=int, default=0, help="only the last N lines")
def logs(job_id: str, stream: str | None, tail: int) -> None:
    """Print a job's log (an array id prints every element's)."""
    from hpc_agent.hpc import monitor

    for log in monitor.job_logs(settings(), job_id, stderr=stream == "err", tail=tail):
        click.echo(f"==> {log.job}: {log.path}", err=True)
        if log.text is None:
            click.echo("   (no log yet: the job has not started)", err=True)
            continue
        click.echo(log.text)
        if log.failure:
            click.echo(f"--- {log.job} failed:\n{log.failure}", err=True)


@click.command()
@click.argument("job_id")
def cancel(job_id: str) -> None:
    """Cancel a job (or a whole array) submitted by hpc-agent."""
    from hpc_agent.hpc import monitor

    done = monitor.cancel_jobs(settings(), job_id)
    click.echo(f"cancelled {', '.join(done)}" if done else f"{job_id}: nothing running to cancel")


@click.group()
def container() -> None:
    """Apptainer images: the sandbox for generated code, the vLLM server."""


@container.command("list")
def container_list() -> None:
    for name, path in containers.definitions().items():
        click.echo(f"{name:10} {path}  {containers.summary(path)}")


@container.command("build")
@click.argument("name")
@click.option("--out", type=click.Path(path_type=Path), help="image file (default: NAME.sif here)")
@click.option("--print", "print_only", is_flag=True, help="print the command instead of running it")
def container_build(name: str, out: Path | None, print_only: bool) -> None:
    """Build containers/NAME.def with apptainer (or print the command to run where apptainer is)."""
    build = containers.plan_container_build(name, out)
    if print_only or not build.runnable:
        click.echo(build.command)
        if print_only:
            return
    sys.exit(containers.build_container(build))  # without apptainer: the UsageError saying where to run it
