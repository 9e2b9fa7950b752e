"""Expected values: run each task's reference solution in the sandbox on the real data, and cache them.

Nothing is typed in by hand. The cache key covers everything that can change an answer: the reference
script text (with the task's params), the data store's index tables (so a variant store with observations
removed gets its own values), and the Gammapy version.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hpc_agent._files import atomic_write_text
from hpc_agent.agent import package_version
from hpc_agent.assemble import limits_for
from hpc_agent.bench.tasks import Task, reference_script
from hpc_agent.config import cache_root, load_settings
from hpc_agent.data import INDEX_FILES, RELEASE, contract_env, data_binds
from hpc_agent.errors import InfrastructureError
from hpc_agent.records import ExecResult, Limits
from hpc_agent.sandbox import Sandbox
from hpc_agent.sandbox.warm import run_fresh
from hpc_agent.validate import parse_results


def store_checksum(data_root: Path) -> str:
    """sha256 over the release's index tables: identifies a store and any variant cut from it.

    The tables are hashed decompressed: a gzip header carries its write time, which would make two
    identical variant stores look different.
    """
    h = hashlib.sha256()
    for name in INDEX_FILES:
        raw = (data_root / RELEASE / name).read_bytes()
        h.update(gzip.decompress(raw) if name.endswith(".gz") else raw)
    return h.hexdigest()


def cache_path() -> Path:
    return cache_root() / "reference-values.json"


@dataclass(frozen=True)
class ReferenceValues:
    task: str
    values: dict[str, Any]
    key: str
    duration_s: float


def _key(task: Task, script: str, data_root: Path) -> str:
    h = hashlib.sha256()
    for part in (task.id, script, store_checksum(data_root), package_version("gammapy")):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()


def _load_cache() -> dict[str, Any]:
    path = cache_path()
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _store_cache(key: str, entry: dict[str, Any]) -> None:
    cache = _load_cache()  # re-read: another process may have added entries meanwhile
    cache[key] = entry
    atomic_write_text(cache_path(), json.dumps(cache, indent=1, sort_keys=True))


def expected_values(task: Task, data_root: Path, sandbox: Sandbox, *, limits: Limits | None = None,
                    use_cache: bool = True) -> ReferenceValues:
    """The task's expected RESULT values on this data root, computed by its reference (cached)."""
    script = reference_script(task)
    key = _key(task, script, data_root)
    if use_cache:
        hit = _load_cache().get(key)
        if hit is not None:
            return ReferenceValues(task=task.id, values=hit["values"], key=key, duration_s=hit["duration_s"])
    if limits is None:  # the settings' memory and process caps with the task's own time limit
        limits = limits_for(load_settings(), task.time_limit_s)
    result = run_fresh(sandbox, script, env=contract_env(data_root), limits=limits, ro_binds=data_binds(data_root),
                       prefix=f"ref-{task.id}-")
    values = _values_or_raise(task, result)
    _store_cache(key, {"task": task.id, "values": values, "duration_s": result.duration_s})
    return ReferenceValues(task=task.id, values=values, key=key, duration_s=result.duration_s)


def _values_or_raise(task: Task, result: ExecResult) -> dict[str, Any]:
    # A failing reference is broken infrastructure (our task, data or sandbox), never a model failure.
    if not result.ok:
        tail = "\n".join(result.stderr.strip().splitlines()[-8:])
        raise InfrastructureError(f"reference of {task.id} failed (exit {result.exit_code}, killed "
                                  f"{result.killed}):\n{tail}")
    values, bad = parse_results(result.stdout)
    missing = [k for k in task.outputs if k not in values]
    if bad or missing:
        raise InfrastructureError(f"reference of {task.id} printed no usable RESULT (missing {missing}, bad {bad})")
    return values
