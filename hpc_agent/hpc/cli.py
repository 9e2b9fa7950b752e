"""Batch commands: `submit serve|bench`, `status`, `logs`, `cancel`, `container`. Thin: parse, call, print."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import click

from hpc_agent._cli_common import make_sweep_options, progress, sweep_options
from hpc_agent.config import load_settings
from hpc_agent.errors import EXIT_INFRASTRUCTURE, EXIT_OK, HpcAgentError, UsageError
from hpc_agent.hpc import containers, jobs
from hpc_agent.choices import CLUSTERS
from hpc_agent.serve.lifecycle import ServerState

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
def submit_serve_cmd(name: str, cluster: str | None, profile: str | None, time_min: int | None,
                     cpus: int | None, mem_gb: float | None) -> None:
    """Run the server of model config NAME in a job; it publishes its state file for other jobs to find."""
    settings = load_settings()
    from hpc_agent.hpc.submit import Placement, submit_serve

    record = submit_serve(settings, name, Placement(cluster, profile, time_min),  # type: ignore[arg-type]
                          cpus_per_task=cpus, mem_gb=mem_gb)
    click.echo(record.job_id)
    click.echo(f"serve job {record.job_id} ({record.cluster}); state file {record.detail['state_file']} once ready; "
               f"`hpc-agent logs {record.job_id}`, `hpc-agent cancel {record.job_id}`", err=True)


@submit.command("bench")
@sweep_options
@placement_options
@click.option("--shards", type=click.IntRange(min=1), default=1, show_default=True,
              help="job array elements; the cells are split between them")
@click.option("--cpus", type=click.IntRange(min=1), default=2, show_default=True, help="CPUs per shard")
@click.option("--mem-gb", type=click.FloatRange(min=0.5), default=8, show_default=True, help="memory per shard")
@click.option("--after-serve", help="a `submit serve` job id: shards start after it and use its server")
@click.option("--wait", "wait_", is_flag=True, help="wait for the shards and print their states")
def submit_bench_cmd(data_root: Path | None, cluster: str | None, profile: str | None, time_min: int | None,
                     shards: int, cpus: int, mem_gb: float, after_serve: str | None, wait_: bool,
                     **opts: Any) -> None:
    """Run a benchmark sweep as a job array; results land in one sweep folder (`hpc-agent report` it)."""
    settings = load_settings(data_root=data_root)
    options = make_sweep_options(settings, **opts)
    from hpc_agent.hpc.submit import Placement, ShardPlan, submit_bench, wait

    records = submit_bench(settings, options, Placement(cluster, profile, time_min),  # type: ignore[arg-type]
                           ShardPlan(shards, cpus, mem_gb, after_serve), progress=progress)
    for r in records:
        click.echo(r.job_id)
    if not wait_:
        click.echo(f"follow with `hpc-agent status`; then `hpc-agent report {options.out}`", err=True)
        return
    final = wait(settings, records, on_change=_print_states)
    bad = {j: s for j, s in final.items() if s != "COMPLETED"}
    for job_id in bad:
        err = jobs.error_of(next(r for r in records if r.job_id == job_id))
        click.echo(f"shard {job_id} {bad[job_id]}" + (f":\n{err}" if err else ""), err=True)
    click.echo(f"sweep folder {options.out}: `hpc-agent report {options.out}`", err=True)
    sys.exit(EXIT_INFRASTRUCTURE if bad else EXIT_OK)


def _server_url(record: jobs.JobRecord, state: str) -> dict[str, str]:
    """The base URL a running serve job published (its state file), once the server answers."""
    if record.kind != "serve" or state != "RUNNING":
        return {}
    try:
        server = ServerState.read(Path(record.detail["state_file"]))
    except (KeyError, HpcAgentError):
        return {}
    return {"base_url": server.base_url} if server.alive(timeout=2) else {}


def _failure(record: jobs.JobRecord, state: str) -> dict[str, str]:
    """The last line of a failed job's traceback: the one-line reason `status` shows."""
    if state != "FAILED":
        return {}
    err = jobs.error_of(record, lines=1)
    return {"error": err.strip()} if err else {}


@click.command()
@click.option("--json", "as_json", is_flag=True)
@click.option("--last", type=int, default=20, show_default=True, help="how many recent jobs")
def status(as_json: bool, last: int) -> None:
    """Jobs submitted by hpc-agent and their states (from sacct, squeue or the job's result file)."""
    settings = load_settings()
    records = jobs.load_all(settings.jobs_dir)[-last:]
    states = jobs.states(records)
    rows = [{"job": r.job_id, "kind": r.kind, "name": r.name, "cluster": r.cluster, "state": states[r.job_id],
             "submitted": r.submitted_at, **r.detail, **_server_url(r, states[r.job_id]),
             **_failure(r, states[r.job_id])} for r in records]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no jobs submitted yet (`hpc-agent submit serve|bench`)")
    for row in rows:
        where = row.get("sweep_out") or row.get("base_url") or row.get("state_file") or ""
        click.echo(f"{row['job']:>12}  {row['state']:<11} {row['kind']:<6} {row['cluster']:<6} {row['name']}  {where}")
        if "error" in row:
            click.echo(f"{'':>14}{row['error']}  (`hpc-agent logs {row['job']}`)")


@click.command()
@click.argument("job_id")
@click.option("--err", "stream", flag_value="err", help="stderr instead of stdout")
@click.option("--tail", type=int, default=0, help="only the last N lines")
def logs(job_id: str, stream: str | None, tail: int) -> None:
    """Print a job's log (an array id prints every element's)."""
    settings = load_settings()
    for record in jobs.find(settings.jobs_dir, job_id):
        path = record.paths().stderr if stream == "err" else record.paths().stdout
        click.echo(f"==> {record.job_id}: {path}", err=True)
        if not path.exists():
            click.echo("   (no log yet: the job has not started)", err=True)
            continue
        text = path.read_text(errors="replace")
        click.echo("\n".join(text.splitlines()[-tail:]) if tail else text.rstrip())
        if stream != "err" and jobs.states([record])[record.job_id] == "FAILED":
            err = jobs.error_of(record)
            if err:
                click.echo(f"--- {record.job_id} failed:\n{err}", err=True)


@click.command()
@click.argument("job_id")
def cancel(job_id: str) -> None:
    """Cancel a job (or a whole array) submitted by hpc-agent."""
    settings = load_settings()
    done = jobs.cancel(jobs.find(settings.jobs_dir, job_id))
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
    binary = containers.apptainer_binary()
    argv = containers.build_command(name, out, binary=binary or "apptainer")
    if print_only or binary is None:
        click.echo(shlex.join(argv))
        if binary is None and not print_only:
            raise UsageError("apptainer is not installed here: run the command above on a node that has it "
                             "(`module load apptainer` on most clusters)")
        return
    sys.exit(subprocess.run(argv).returncode)
