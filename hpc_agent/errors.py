"""The two kinds of failure hpc-agent distinguishes.

A script that crashes or fails validation is a *result* (recorded in an Attempt), never an exception.
Exceptions are for the user's mistakes (`UsageError`) and for broken infrastructure
(`InfrastructureError`: server down, sandbox unusable) — those are never counted against a model.
"""

from __future__ import annotations

# The command line's exit codes, spelled once: every command and the error classes below use these.
EXIT_OK = 0              # passed / every check fine
EXIT_FAILED = 1          # a run spent its budget, a check found something to fix
EXIT_USAGE = 2           # bad input (UsageError)
EXIT_INFRASTRUCTURE = 3  # broken infrastructure (InfrastructureError, a sweep's infrastructure errors, failed jobs)


class HpcAgentError(Exception):
    """Base class; the CLI prints these as one line, without a traceback."""

    exit_code = EXIT_USAGE


class UsageError(HpcAgentError):
    """Bad input: a flag, a config file, a path. The message names what and how to fix it."""


class ConfigError(UsageError):
    """A configuration file or value is invalid."""


class InfrastructureError(HpcAgentError):
    """Something outside the model's control failed (server, network, sandbox)."""

    exit_code = EXIT_INFRASTRUCTURE


class LLMUnavailableError(InfrastructureError):
    """The model server could not be reached or kept failing after retries."""


class SandboxUnavailableError(InfrastructureError):
    """The sandbox itself could not run (missing binary, broken mount), not the user's script."""


class SandboxInterruptedError(InfrastructureError):
    """A sandboxed run was stopped from outside the harness (SIGTERM/SIGINT/SIGHUP: a job being preempted or
    cancelled, Ctrl-C). Not the script's failure: the run is retried, never counted."""


class ContextOverflowError(HpcAgentError):
    """The server refused a conversation longer than the model's context window (HTTP 400 "maximum context
    length"). A result of the model's long answers, not of the infrastructure: the loop records an attempt of
    failure class `context` and starts the conversation afresh."""
