"""The `hpc-agent` command line: parse, call the Python API, print. No logic lives only here.

Start-up imports only click and the package's leaves; settings, the API and what it pulls in (pydantic, the
OpenAI client, Gammapy, Polars, rich) load inside the commands that need them: `hpc-agent --help`, `models`
and every Slurm array element start without them (benchmarks/cli_start.py)."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from hpc_agent._cli_common import data_root_opt, make_sweep_options, progress, sweep_options
from hpc_agent._cli_common import settings as load_settings
from hpc_agent.choices import DEFAULT_MODEL, REASONING_EFFORTS, SANDBOXES
from hpc_agent.data import DATASETS, check_dataset, fetch_dataset, resolve_data_root
from hpc_agent.errors import EXIT_FAILED, EXIT_OK, HpcAgentError, UsageError
from hpc_agent.hpc.cli import cancel, container, logs, status, submit
from hpc_agent.rag import cli as rag_cli
from hpc_agent.ui.command import ui as ui_command

if TYPE_CHECKING:
    from hpc_agent.records import Attempt
    from hpc_agent.serve import ServerState


class _Group(click.Group):
    """Prints our errors as one line (no traceback) and maps them to exit codes."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except HpcAgentError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)


@click.group(cls=_Group)
@click.option("-v", "--verbose", is_flag=True, help="log retries and sandbox decisions")
def main(verbose: bool) -> None:
    """Write, run, check and repair Gammapy analysis scripts with an LLM."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


def _print_attempt(a: Attempt) -> None:
    status = "PASS" if a.passed else f"fail ({a.failure}{': ' + a.exception if a.exception else ''})"
    took = f", ran {a.execution.duration_s:.1f}s" if a.execution else ""
    click.echo(f"attempt {a.index}: {status} — {a.usage.completion_tokens} tokens in "
               f"{a.usage.latency_s:.1f}s{took}", err=True)


@main.command()
@click.argument("prompt")
@click.option("--backend", "backend_name",
              help=f"a backend from the config file or a model config (default: the local {DEFAULT_MODEL})")
@click.option("--base-url", help="an OpenAI-compatible base URL (ad hoc backend, with --model)")
@click.option("--model", help="model name at --base-url")
@click.option("--api-key-env", help="environment variable holding the API key")
@click.option("--reasoning-effort", type=click.Choice(REASONING_EFFORTS))
@click.option("--max-tokens", type=int, help="completion token cap per model call")
@click.option("--temperature", type=float)
@click.option("--attempts", type=int, help="attempt budget")
@click.option("--timeout", type=float, help="wall-clock limit of one sandboxed run, seconds")
@click.option("--sandbox", type=click.Choice(SANDBOXES))
@click.option("--out", type=click.Path(path_type=Path), help="bundle folder (default: a new folder under runs_dir)")
@data_root_opt
@click.option("--json", "as_json", is_flag=True, help="print run.json instead of the script")
@click.option("--rag", is_flag=True, help="inject Gammapy documentation snippets from the index (hpc-agent rag build)")
@click.option("--repairs/--no-repairs", default=None,
              help="fix one-reading slips (missing imports, wrong import homes, display calls) before checking "
                   "[default: on]")
@click.option("--candidates", type=click.IntRange(1, 16), help="answers per turn, run side by side; the first "
              "that passes wins (default: the model config's, else 1)")
@click.option("--warm/--no-warm", default=None,
              help="start the next sandbox (scientific stack imported) while the model answers [default: on]")
def run(prompt: str, backend_name: str | None, base_url: str | None, model: str | None, api_key_env: str | None,
        reasoning_effort: str | None, max_tokens: int | None, temperature: float | None, attempts: int | None,
        timeout: float | None, sandbox: str | None, out: Path | None, data_root: Path | None, as_json: bool,
        rag: bool, repairs: bool | None, candidates: int | None, warm: bool | None) -> None:
    """Ask for an analysis in words; get back a script that ran. Exit 0 passed, 1 budget spent, 2 bad input."""
    settings = load_settings(attempts=attempts, exec_timeout_s=timeout, sandbox=sandbox, data_root=data_root,
                             repairs=repairs, candidates=candidates, warm_sandbox=warm)
    overrides = {"api_key_env": api_key_env, "reasoning_effort": reasoning_effort, "max_tokens": max_tokens,
                 "temperature": temperature}
    from hpc_agent import api

    result = api.run(prompt, backend=backend_name, base_url=base_url, model=model, overrides=overrides,
                     settings=settings, out_dir=out, on_attempt=_print_attempt, progress=progress, rag=rag)
    if as_json:
        click.echo((Path(result.out_dir or ".") / "run.json").read_text())
    elif result.final_script:
        click.echo(result.final_script)
    u = result.usage
    click.echo(f"{'PASSED' if result.passed else 'FAILED'} after {len(result.attempts)} attempt(s); "
               f"tokens: {u.prompt_tokens} prompt, {u.completion_tokens} completion; bundle: {result.out_dir}",
               err=True)
    sys.exit(EXIT_OK if result.passed else EXIT_FAILED)


@main.group()
def config() -> None:
    """Show, save or install the configuration."""


@config.command("show")
@click.option("--json", "as_json", is_flag=True)
def config_show(as_json: bool) -> None:
    """The effective settings (flags > HPC_AGENT_* env > config file > defaults)."""
    from hpc_agent.config import default_config_path

    data = load_settings().to_file_dict()
    if as_json:
        click.echo(json.dumps(data, indent=2))
    else:
        import yaml

        click.echo(f"# config file: {default_config_path()}"
                   f"{'' if default_config_path().exists() else ' (absent)'}")
        click.echo(yaml.safe_dump(data, sort_keys=True).rstrip())


@config.command("save")
@click.argument("path", required=False, type=click.Path(path_type=Path))
def config_save(path: Path | None) -> None:
    """Write the effective settings to PATH (default: the config file). API keys are never written."""
    from hpc_agent.config import default_config_path, write_config_file

    target = write_config_file(load_settings(), path or default_config_path())
    click.echo(f"saved {target}")


@config.command("load")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def config_load(path: Path) -> None:
    """Validate PATH and install it as the config file."""
    from hpc_agent.config import default_config_path, validate_config_file, write_config_file

    settings = validate_config_file(path)
    target = write_config_file(settings, default_config_path())
    click.echo(f"installed {path} as {target}")


@main.group()
def data() -> None:
    """Fetch and check data releases."""


@data.command("fetch")
@click.argument("name", type=click.Choice(sorted(DATASETS)))
@click.option("--to", "to", type=click.Path(path_type=Path), help="data root to put it in (default: the data root)")
@click.option("--from", "from_path", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="copy a local copy instead of downloading")
@click.option("--link", is_flag=True, help="with --from: symlink instead of copying")
@click.option("--url", help="mirror base URL to download from")
def data_fetch(name: str, to: Path | None, from_path: Path | None, link: bool, url: str | None) -> None:
    """Download (or copy) a release and verify it."""
    root = to or resolve_data_root(load_settings().data_root)
    result = fetch_dataset(name, root, from_path=from_path, link=link, base_url=url,
                           progress=lambda m: click.echo(m, err=True))
    click.echo(result.summary())
    click.echo(f"export PHOTON_STORAGE={root.expanduser().resolve()}")
    sys.exit(EXIT_OK if result.ok else EXIT_FAILED)


@data.command("check")
@data_root_opt
def data_check(data_root: Path | None) -> None:
    """Say which releases are under the data root and what is missing."""
    root = resolve_data_root(load_settings(data_root=data_root).data_root)
    results = [check_dataset(root / name, name) for name in DATASETS]
    for r in results:
        click.echo(r.summary())
        for f in r.missing[:10]:
            click.echo(f"  missing: {f}")
    sys.exit(EXIT_OK if all(r.ok for r in results) else EXIT_FAILED)


@main.command()
@click.option("--backend", "backend_name")
@click.option("--base-url")
@click.option("--model")
@data_root_opt
def doctor(backend_name: str | None, base_url: str | None, model: str | None, data_root: Path | None) -> None:
    """Check Gammapy and its pins, the data, the sandbox and the backend; say how to fix each."""
    settings = load_settings(data_root=data_root)
    from hpc_agent import api

    findings = api.doctor(settings, backend_name, base_url=base_url, model=model)
    for f in findings:
        click.echo(f"{'ok ' if f.ok else 'BAD'} {f.name}: {f.detail}" + ("" if f.ok else f"\n    fix: {f.fix}"))
    sys.exit(EXIT_OK if all(f.ok for f in findings) else EXIT_FAILED)


def _shard(_ctx: click.Context, _param: click.Parameter, value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    try:
        index, count = (int(x) for x in value.split("/"))
        if 0 <= index < count:
            return index, count
    except ValueError:
        pass
    raise click.BadParameter(f"{value!r}: write INDEX/COUNT with 0 <= INDEX < COUNT, e.g. "
                             "$SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT")


@main.group(invoke_without_command=True)
@sweep_options
@click.option("--shard", callback=_shard, metavar="I/N",
              help="run only the I-th of N slices of the cells (0-based; one element of a job array)")
@click.option("--warm/--no-warm", default=None,
              help="start the next sandbox (scientific stack imported) while the model answers [default: on]")
@click.pass_context
def bench(ctx: click.Context, data_root: Path | None, shard: tuple[int, int] | None, warm: bool | None,
          **opts: Any) -> None:
    """Run a benchmark sweep: models x tasks x seeds x rag, resumable; traces in --out."""
    if ctx.invoked_subcommand is not None:
        return
    settings = load_settings(data_root=data_root, warm_sandbox=warm)
    options = make_sweep_options(settings, **opts)
    # inside an allocation (an array element) a vLLM server may be started for the shard
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from hpc_agent import api
    from hpc_agent.bench.sweep import finished
    from hpc_agent.hpc.executor import in_slurm_job

    sweep = api.make_sweep(options, settings, progress=progress, shard=shard, start_servers=in_slurm_job())
    summary = api.SweepSummary(options.out)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=Console(stderr=True)) as bar:
        todo = bar.add_task("cells", total=len(sweep.cells))

        def done(record: dict[str, Any]) -> None:
            summary.add(record["status"])
            bar.update(todo, advance=1, description=f"cells: {summary.counts()}")

        sweep.on_cell = done
        bar.update(todo, completed=len(sweep.cells) - len([c for c in sweep.cells if not finished(options.out, c)]))
        sweep.run()
    click.echo(summary.line())
    sys.exit(summary.exit_code)


@main.command()
@click.argument("dirs", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), help="report folder (default: DIR/report for one DIR)")
def report(dirs: tuple[Path, ...], out: Path | None) -> None:
    """Compare models from one or more sweep folders: summary.parquet, report.md, report.html, PNG plots."""
    if out is None and len(dirs) > 1:
        raise UsageError("several sweep folders: say where the merged report goes with --out")
    from hpc_agent.report import build_report

    target = build_report(list(dirs), out or dirs[0] / "report")
    click.echo(f"report: {target / 'report.html'}")


@bench.command("tasks")
@click.option("--json", "as_json", is_flag=True, help="machine-readable, with expected values under `expected`")
@data_root_opt
def bench_tasks(as_json: bool, data_root: Path | None) -> None:
    """List the benchmark tasks with their expected values (computed by the references, cached)."""
    from hpc_agent import api

    listing = api.bench_tasks(load_settings(data_root=data_root), progress=progress)
    if as_json:
        click.echo(json.dumps(listing, indent=2))
        return
    for t in listing:
        click.echo(f"{t['id']:34} {json.dumps(t['expected'])}")


@main.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def models(ctx: click.Context, as_json: bool) -> None:
    """List the model configs (model_configs/*.yaml and $HPC_AGENT_MODEL_CONFIGS)."""
    if ctx.invoked_subcommand is not None:
        return
    from hpc_agent.serve.configs import model_configs

    configs = model_configs()
    if as_json:
        click.echo(json.dumps({n: c.model_dump(mode="json") for n, c in configs.items()}, indent=2))
        return
    for name, cfg in configs.items():
        weights = "open" if cfg.open_weight else "proprietary"
        click.echo(f"{name:24} {cfg.kind:15} {weights:12} {cfg.description}")


@models.command("show")
@click.argument("name")
def models_show(name: str) -> None:
    """Print one model config (validated) as YAML."""
    import yaml

    from hpc_agent.serve.configs import get_model_config

    click.echo(yaml.safe_dump(get_model_config(name).model_dump(mode="json", exclude_none=True), sort_keys=False))


@main.command()
@click.argument("name")
@click.option("--port", type=int, help="default: a free port")
@click.option("--host", default="127.0.0.1", show_default=True, help="0.0.0.0 to serve other nodes")
@click.option("--state-file", type=click.Path(path_type=Path),
              help="where to publish base_url/pid (default: <data dir>/servers/NAME.json); the log goes beside it")
def serve(name: str, port: int | None, host: str, state_file: Path | None) -> None:
    """Run a model server in the foreground until interrupted; print `ready <base_url>` once it answers."""
    from hpc_agent.serve.session import default_state_file, serve_foreground

    settings = load_settings()

    def ready(state: ServerState) -> None:
        click.echo(f"ready {state.base_url}", err=False)
        click.echo(f"state file {(state_file or default_state_file(settings, name)).resolve()}; "
                   f"log {state.log_file}", err=True)
        sys.stdout.flush()

    sys.exit(serve_foreground(settings, name, host=host, port=port, state_file=state_file, on_ready=ready,
                              progress=progress))


main.add_command(submit)  # batch work: submit, status, logs, cancel, container
for _command in (status, logs, cancel, container):
    main.add_command(_command)
main.add_command(ui_command)  # `hpc-agent ui`: the web page
main.add_command(rag_cli.rag)  # `hpc-agent rag build|query`


if __name__ == "__main__":  # pragma: no cover
    main()
