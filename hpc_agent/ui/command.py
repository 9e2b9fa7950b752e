"""`hpc-agent ui [--port P] [--host H]`: serve the web page with `streamlit run` (headless, no usage stats)."""

from __future__ import annotations

import os
import sys

import click

from hpc_agent.ui import PAGE


def streamlit_argv(port: int, host: str) -> list[str]:
    """The command that serves the packaged page; the same Python, so the same installed hpc-agent."""
    return [sys.executable, "-m", "streamlit", "run", str(PAGE),
            "--server.port", str(port), "--server.address", host,
            "--server.headless", "true", "--browser.gatherUsageStats", "false",
            "--server.fileWatcherType", "none", "--server.runOnSave", "false", "--client.toolbarMode", "minimal"]


@click.command()
@click.option("--port", type=click.IntRange(1, 65535), default=8501, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True, help="0.0.0.0 to let other machines connect (there is no authentication)")
def ui(port: int, host: str) -> None:
    """Serve the web page: run a prompt, watch its attempts, browse earlier runs and benchmark reports."""
    click.echo(f"hpc-agent web page on http://{host}:{port} (Ctrl-C stops it)", err=True)
    sys.stdout.flush()
    sys.stderr.flush()
    argv = streamlit_argv(port, host)
    os.execv(argv[0], argv)  # Streamlit takes over this process: signals reach it directly
