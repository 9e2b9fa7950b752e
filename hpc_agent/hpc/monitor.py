"""What `status`, `logs` and `cancel` show, as data: the CLI prints it, the page and scripts may call it
(re-exported by `hpc_agent.api`). Reads the job records in `settings.jobs_dir`; never submits anything."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hpc_agent.config import Settings
from hpc_agent.errors import HpcAgentError
from hpc_agent.hpc import jobs
from hpc_agent.hpc.jobs import RECENT_JOBS
from hpc_agent.serve.lifecycle import ServerState



@dataclass(frozen=True)
class JobStatus:
    """One row of `hpc-agent status`: a submitted job, its state now, and what it offers or why it failed."""

    job: str
    kind: str
    name: str
    cluster: str
    state: str
    submitted: str
    detail: dict[str, Any] = field(default_factory=dict)  # state_file / sweep_out / shard ...
    base_url: str | None = None  # a running serve job's server, once it answers
    error: str | None = None     # a failed job's one-line reason (the last line of its traceback)

    @property
    def where(self) -> str:
        """The one place to look: the sweep folder, the server's URL, or its state file."""
        return str(self.detail.get("sweep_out") or self.base_url or self.detail.get("state_file") or "")

    def to_json(self) -> dict[str, Any]:
        """The flat mapping `status --json` prints (detail fields inline; base_url and error when known)."""
        row: dict[str, Any] = {"job": self.job, "kind": self.kind, "name": self.name, "cluster": self.cluster,
                               "state": self.state, "submitted": self.submitted, **self.detail}
        if self.base_url:
            row["base_url"] = self.base_url
        if self.error:
            row["error"] = self.error
        return row


def _server_url(record: jobs.JobRecord, state: str) -> str | None:
    """The base URL a running serve job published (its state file), once the server answers."""
    if record.kind != "serve" or state != "RUNNING":
        return None
    try:
        server = ServerState.read(Path(record.detail["state_file"]))
    except (KeyError, HpcAgentError):
        return None
    return server.base_url if server.alive(timeout=2) else None


def _failure(record: jobs.JobRecord, state: str) -> str | None:
    """The last line of a failed job's traceback: the one-line reason `status` shows."""
    if state != "FAILED":
        return None
    err = jobs.error_of(record, lines=1)
    return err.strip() if err else None


def job_statuses(settings: Settings, last: int = RECENT_JOBS) -> list[JobStatus]:
    """The `last` jobs hpc-agent submitted, oldest first, with their states (sacct, squeue or the result file)."""
    records = jobs.load_all(settings.jobs_dir)[-last:]
    states = jobs.states(records)
    return [JobStatus(job=r.job_id, kind=r.kind, name=r.name, cluster=r.cluster, state=states[r.job_id],
                      submitted=r.submitted_at, detail=dict(r.detail), base_url=_server_url(r, states[r.job_id]),
                      error=_failure(r, states[r.job_id])) for r in records]


@dataclass(frozen=True)
class JobLog:
    """One job's log (one element of an array): the file, its text (None before the job started) and, for a
    failed job's stdout, the traceback it left."""

    job: str
    path: Path
    text: str | None
    failure: str | None = None


def job_logs(settings: Settings, job_id: str, *, stderr: bool = False, tail: int = 0) -> list[JobLog]:
    """The log of job `job_id` (every element's, for an array id); `tail` keeps the last lines only. An unknown
    id is a UsageError naming the recent ones."""
    logs = []
    for record in jobs.find(settings.jobs_dir, job_id):
        path = record.paths().stderr if stderr else record.paths().stdout
        if not path.exists():
            logs.append(JobLog(record.job_id, path, None))
            continue
        text = path.read_text(errors="replace")
        text = "\n".join(text.splitlines()[-tail:]) if tail else text.rstrip()
        failed = not stderr and jobs.states([record])[record.job_id] == "FAILED"
        logs.append(JobLog(record.job_id, path, text, (jobs.error_of(record) or None) if failed else None))
    return logs


def cancel_jobs(settings: Settings, job_id: str) -> list[str]:
    """Cancel job `job_id` (a whole array for an array id); returns the ids signalled (none: nothing ran)."""
    return jobs.cancel(jobs.find(settings.jobs_dir, job_id))


def failed_jobs(records: list[jobs.JobRecord], final: dict[str, str]) -> dict[str, str | None]:
    """Of jobs in their final states, those that did not complete: id -> the traceback (or stderr tail) left."""
    by_id = {r.job_id: r for r in records}
    return {j: jobs.error_of(by_id[j]) for j, s in final.items() if s != "COMPLETED" and j in by_id}
