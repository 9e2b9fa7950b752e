"""Submitted jobs, remembered on disk so that `status`, `logs` and `cancel` work from any later shell.

One JSON record per job in `<jobs dir>/<job id>.json` (array elements: `<array>_<index>`). Job states come
from `sacct` when accounting answers, else `squeue`, else submitit's result file: `job.state` alone is not
trusted (it needs `sacct`, and lags).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from hpc_agent._files import atomic_write_text
from hpc_agent.errors import UsageError

RECENT_JOBS = 20  # how many jobs `status` shows by default

FINAL_STATES = ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "BOOT_FAIL",
                "DEADLINE", "PREEMPTED", "INTERRUPTED")


@dataclass(frozen=True)
class JobRecord:
    job_id: str          # Slurm id (`123`, `123_4` for array elements) or the local controller's pid
    kind: str            # serve | bench
    cluster: str         # slurm | local | debug
    folder: str          # submitit's folder pattern, with %j
    name: str            # model (serve) or sweep folder name (bench)
    submitted_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    group: str | None = None  # the array id, for array elements
    detail: dict[str, Any] = field(default_factory=dict)  # state_file / sweep_out / shard index ...

    def paths(self) -> Any:
        from submitit.core.utils import JobPaths

        return JobPaths(self.folder, job_id=self.job_id, task_id=0)


def save(record: JobRecord, directory: Path) -> Path:
    path = directory / f"{record.job_id}.json"
    atomic_write_text(path, json.dumps(asdict(record), indent=2) + "\n")
    return path


def load_all(directory: Path) -> list[JobRecord]:
    records = []
    for path in sorted(directory.glob("*.json"), key=lambda p: p.stat().st_mtime):
        try:
            records.append(JobRecord(**json.loads(path.read_text())))
        except (OSError, ValueError, TypeError):
            continue  # written by another version or half-copied: not ours to judge
    return records


def find(directory: Path, job_id: str) -> list[JobRecord]:
    """The job `job_id`, or every element of the array `job_id`."""
    found = [r for r in load_all(directory) if r.job_id == job_id or r.group == job_id]
    if not found:
        known = ", ".join(r.job_id for r in load_all(directory)[-10:]) or "none"
        raise UsageError(f"no job {job_id!r} submitted by hpc-agent (recent: {known}); see `hpc-agent status`")
    return found


def _run(argv: list[str]) -> str | None:
    if not shutil.which(argv[0]):
        return None
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout if out.returncode == 0 else None


def _sacct_states(job_ids: list[str]) -> dict[str, str]:
    out = _run(["sacct", "-n", "-X", "-P", "-o", "JobID,State", "-j", ",".join(job_ids)])
    states: dict[str, str] = {}
    for line in (out or "").splitlines():
        jid, _, state = line.partition("|")
        if jid and state:
            states[jid.strip()] = state.split()[0].strip()  # "CANCELLED by 0" -> CANCELLED
    return states


def _squeue_states(job_ids: list[str]) -> dict[str, str]:
    out = _run(["squeue", "-h", "-r", "-o", "%i|%T", "-j", ",".join(sorted({j.split("_")[0] for j in job_ids}))])
    states = {}
    for line in (out or "").splitlines():
        jid, _, state = line.partition("|")
        states[jid.strip()] = state.strip()
    return states


def _outcome(record: JobRecord) -> tuple[str, Any] | None:
    """submitit's result pickle: ('success', value) or ('error', traceback); None while there is none."""
    path = record.paths().result_pickle
    if not path.exists():
        return None
    from submitit.core.utils import pickle_load

    try:
        return pickle_load(path)
    except Exception:  # a pickle being written: the caller asks again
        return None


def _result_state(record: JobRecord) -> str | None:
    outcome = _outcome(record)
    if outcome is None:
        return None
    return "COMPLETED" if outcome[0] == "success" else "FAILED"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (our own finished child) is not alive
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def states(records: list[JobRecord]) -> dict[str, str]:
    """Job id -> state (Slurm's names; local jobs: RUNNING, COMPLETED, FAILED or INTERRUPTED)."""
    result: dict[str, str] = {}
    slurm = [r for r in records if r.cluster == "slurm"]
    if slurm:
        ids = [r.job_id for r in slurm]
        acct, queue = _sacct_states(ids), _squeue_states(ids)
        for r in slurm:
            state = acct.get(r.job_id) or queue.get(r.job_id)
            result[r.job_id] = state or _result_state(r) or "UNKNOWN"
    for r in records:
        if r.cluster != "slurm":
            if r.job_id.isdigit() and _pid_alive(int(r.job_id)):
                result[r.job_id] = "RUNNING"
            else:
                result[r.job_id] = _result_state(r) or "INTERRUPTED"
    return result


def error_of(record: JobRecord, lines: int = 20) -> str | None:
    """The traceback a failed job left (submitit's result pickle), else the tail of its stderr."""
    outcome = _outcome(record)
    if outcome is not None and outcome[0] == "error":
        return "\n".join(str(outcome[1]).rstrip().splitlines()[-lines:])
    err = record.paths().stderr
    if err.exists():
        return "\n".join(err.read_text(errors="replace").rstrip().splitlines()[-lines:])
    return None


def cancel(records: list[JobRecord]) -> list[str]:
    """Cancel jobs (a whole array when given its id); returns what was signalled."""
    done = []
    slurm_ids = sorted({r.group or r.job_id for r in records if r.cluster == "slurm"})
    if slurm_ids:
        if not shutil.which("scancel"):
            raise UsageError("scancel not on PATH: load the Slurm module on this node")
        subprocess.run(["scancel", *slurm_ids], check=True, capture_output=True, timeout=30)
        done += slurm_ids
    for r in records:
        if r.cluster != "slurm" and r.job_id.isdigit() and _pid_alive(int(r.job_id)):
            os.kill(int(r.job_id), signal.SIGTERM)  # submitit's local controller forwards it to the job
            done.append(r.job_id)
    return done
