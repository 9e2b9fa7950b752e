"""The thin CLI's homes: Click choices from the name registry, and the API functions the CLI only prints
(job status rows and failure reasons, logs, cancel, container builds, the sweep summary), called directly."""

from __future__ import annotations

from typing import get_args

import click

from hpc_agent import choices
from hpc_agent.cli import main
from hpc_agent.config import Backend, Settings
from hpc_agent.sandbox import BACKENDS, get_sandbox


def _option(command: click.Command, name: str) -> click.Parameter:
    return next(p for p in command.params if p.name == name)


def _choices(command: click.Command, name: str) -> tuple[str, ...]:
    kind = _option(command, name).type
    assert isinstance(kind, click.Choice)
    return tuple(kind.choices)


def test_click_choices_types_and_messages_come_from_the_registry() -> None:
    run, bench = main.commands["run"], main.commands["bench"]
    submit = main.commands["submit"]
    assert isinstance(submit, click.Group)
    assert _choices(run, "sandbox") == choices.SANDBOXES == BACKENDS == ("bwrap", "apptainer", "process")
    assert _choices(run, "reasoning_effort") == choices.REASONING_EFFORTS
    assert _choices(bench, "rag") == _choices(bench, "repairs") == choices.SWITCHES
    assert _choices(submit.commands["serve"], "cluster") == _choices(submit.commands["bench"], "cluster") \
        == choices.CLUSTERS
    # the settings' and backends' types are the registry's Literals
    assert get_args(Settings.model_fields["sandbox"].annotation)[0] == choices.SandboxName
    assert get_args(Backend.model_fields["reasoning_effort"].annotation)[0] == choices.ReasoningEffort
    try:
        get_sandbox("docker")
    except Exception as exc:  # the message lists the registry's names
        assert all(name in str(exc) for name in choices.SANDBOXES)
    assert choices.switch_values("both") == ("off", "on") and choices.switch_choice(("off", "on")) == "both"
    assert choices.switch_choice(choices.switch_values("on")) == "on"
