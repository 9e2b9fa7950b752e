"""A sweep: cells (model x task x seed x rag x repairs), run concurrently, resumable, traced to Parquet.

Layout of a sweep folder:

    DIR/manifest.json                      versions, the sweep's options, the servers that answered
    DIR/cells/<cell-id>/run.json, attempt-*/   the agent's bundle for that cell
    DIR/cells/<cell-id>/cell.json          written last: the cell's outcome (its presence = finished)
    DIR/attempts.parquet, DIR/cells.parquet  rebuilt from the cell.json files (never appended: no duplicates)

A killed sweep loses only the cells in flight (no cell.json); re-running the same command skips
finished cells and retries those that ended in an infrastructure error.

Several processes may work on one folder at once (the shards of a Slurm job array, `shard=(i, n)`):
each takes a contiguous slice of the cells, and the shared steps (variant store, reference values,
manifest, traces) run under an exclusive lock on `DIR/.lock`.
"""

from __future__ import annotations

import fcntl
import fnmatch
import json
import re
import shutil
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterator

from hpc_agent._files import atomic_write_text
from hpc_agent.agent import package_version, run_agent
from hpc_agent.assemble import candidates_for, chat_client, limits_for, run_spec, warm_modules_from
from hpc_agent.bench.cells import AttemptRow, CellRecord, read_cell
from hpc_agent.bench.options import SweepOptions
from hpc_agent.bench.oracle import ORACLE, OracleModel
from hpc_agent.bench.references import expected_values
from hpc_agent.bench.tasks import Task, load_tasks
from hpc_agent.bench.traces import write_traces
from hpc_agent.bench.variants import VariantCheck, make_variant_store
from hpc_agent.config import Settings
from hpc_agent.data import RELEASE, resolve_data_root
from hpc_agent.errors import ConfigError, HpcAgentError, UsageError
from hpc_agent.llm import ChatModel
from hpc_agent.records import RunResult
from hpc_agent.preflight import check_release, check_sweep_out
from hpc_agent.sandbox import Sandbox
from hpc_agent.sandbox import from_settings as sandbox_from_settings
from hpc_agent.sandbox.warm import WarmPool
from hpc_agent.static import prepare as prepare_static_stage
from hpc_agent.serve.configs import find_model_config, get_model_config
from hpc_agent.serve.session import open_backend, resolve_backend

CELL_FILE = "cell.json"
FINAL = ("passed", "failed")


@dataclass(frozen=True)
class Cell:
    model: str
    task: str
    seed: int
    rag: str
    repairs: str = "on"
    candidates: int = 1

    @property
    def id(self) -> str:
        model = re.sub(r"[^A-Za-z0-9._-]+", "_", self.model)  # hub ids hold "/": keep one folder per cell
        cand = f"__cand{self.candidates}" if self.candidates > 1 else ""
        return f"{model}__{self.task}__seed{self.seed}__rag-{self.rag}__repairs-{self.repairs}{cand}"


def select_tasks(pattern: str) -> list[Task]:
    tasks = load_tasks()
    chosen = [t for tid, t in tasks.items() if any(fnmatch.fnmatch(tid, p.strip()) for p in pattern.split(","))]
    if not chosen:
        raise UsageError(f"--tasks {pattern!r} matches no task; known: {', '.join(tasks)}")
    return chosen


def cells_for(models: list[str], tasks: list[Task], seeds: int, rag: tuple[str, ...],
              repairs: tuple[str, ...] = ("on",), candidates: dict[str, int] | None = None) -> list[Cell]:
    return [Cell(m, t.id, s, r, p, (candidates or {}).get(m, 1))
            for m in models for t in tasks for s in range(seeds) for r in rag for p in repairs]


def shard_cells(cells: list[Cell], index: int, count: int) -> list[Cell]:
    """Shard `index` of `count`: a contiguous slice, so a shard mostly shares tasks (and references)."""
    if not 0 <= index < count:
        raise UsageError(f"shard {index} of {count}: the index must be in 0..{count - 1}")
    size, extra = divmod(len(cells), count)
    start = index * size + min(index, extra)
    return cells[start:start + size + (1 if index < extra else 0)]


@contextmanager
def sweep_lock(out: Path) -> Iterator[None]:
    """Exclusive lock on a sweep folder's shared files (fcntl: also between nodes on NFS v4)."""
    out.mkdir(parents=True, exist_ok=True)
    with open(out / ".lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def finished(out: Path, cell: Cell) -> bool:
    """Whether the cell has a cell.json with a final status (an unreadable one is not; one written by a newer
    hpc-agent is a RecordError, not silently rerun)."""
    try:
        return read_cell(out / "cells" / cell.id / CELL_FILE).status in FINAL
    except (OSError, ValueError):
        return False


def _write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, default=str))


def cell_record(cell: Cell, task: Task, result: RunResult | None, error: str | None, wall_s: float,
                open_weight: bool | None) -> CellRecord:
    """What cell.json holds: the cell, its outcome, and one row per attempt for the traces."""
    rows = tuple(AttemptRow.from_attempt(a) for a in (result.attempts if result else ()))
    passed = bool(result and result.passed)
    return CellRecord(
        cell=cell.id, model=cell.model, task=cell.task, kind=task.kind, source=task.source, seed=cell.seed,
        rag=cell.rag, repairs=cell.repairs, candidates=cell.candidates,
        status="error" if error else ("passed" if passed else "failed"), passed=passed, error=error,
        attempts_to_pass=len(rows) if passed else None, n_attempts=len(rows), wall_s=wall_s,
        open_weight=open_weight, server=result.server if result else None, code_commit=code_commit(),
        finished_at=datetime.now(timezone.utc).isoformat(), attempt_rows=rows,
    )


@lru_cache(maxsize=1)
def code_commit() -> str | None:
    """The git commit of the hpc-agent checkout running this, `-dirty` with uncommitted changes (a sweep
    resumed across sessions may mix versions: each cell says which one ran it); None outside a checkout.
    Read when the sweep starts, so later commits in the checkout do not relabel a running sweep."""
    try:
        out = subprocess.run(["git", "-C", str(Path(__file__).resolve().parent), "describe", "--always", "--dirty",
                              "--abbrev=12"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return (out.stdout.strip() or None) if out.returncode == 0 else None


@lru_cache(maxsize=None)
def _open_weight(name: str) -> bool | None:
    """True/False for model configs; None for the oracle, ad hoc endpoints and configured backends (read
    once per model: finding a config loads the settings)."""
    return get_model_config(name).open_weight if find_model_config(name) else None


class Sweep:
    """Runs the cells of one sweep folder; `run()` returns the cell records of this sweep, each in its cell.json
    form (`CellRecord.to_json()`), as `on_cell` receives them."""

    @classmethod
    def from_settings(cls, options: SweepOptions, settings: Settings, *, sandbox: str | None = None,
                      on_cell: Callable[[dict[str, Any]], None] = lambda _r: None,
                      progress: Callable[[str], None] = lambda _m: None,
                      shard: tuple[int, int] | None = None, start_servers: bool = False) -> Sweep:
        """A sweep over `options` with the settings' sandbox, after checking its folder and the data root.
        `shard=(i, n)` restricts it to the i-th of n slices of the cells (one element of a job array)."""
        check_sweep_out(options.out, {"attempts": options.attempts})
        check_release(resolve_data_root(settings.data_root))
        return cls(options, settings, sandbox_from_settings(settings, sandbox), on_cell=on_cell, progress=progress,
                   shard=shard, start_servers=start_servers)

    def __init__(self, options: SweepOptions, settings: Settings, sandbox: Sandbox,
                 on_cell: Callable[[dict[str, Any]], None] = lambda _r: None,
                 progress: Callable[[str], None] = lambda _m: None,
                 shard: tuple[int, int] | None = None, start_servers: bool = False) -> None:
        self.o = options
        self.settings = settings
        self.warm_modules = warm_modules_from(settings)
        self.sandbox = WarmPool(sandbox, self.warm_modules)  # references and variant re-runs start on spares
        self.on_cell = on_cell
        self.progress = progress
        self.data_root = resolve_data_root(settings.data_root)
        self.tasks = {t.id: t for t in select_tasks(options.tasks)}
        self.models = [f"adhoc-{options.model}"] if options.base_url else list(options.models)
        self.all_cells = cells_for(self.models, list(self.tasks.values()), options.seeds, options.rag,
                                   options.repairs, {m: self._candidates(m) for m in self.models})
        self.cells = shard_cells(self.all_cells, *shard) if shard else self.all_cells
        self.start_servers = start_servers  # inside a batch allocation: vLLM servers may be started too
        # set when the job is being preempted or cancelled: no new cell starts, and a cell that ends after
        # it is discarded (its runs may have been killed), so it reruns on resume instead of counting
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self._retriever: Any = None  # one retriever (one Qdrant client, one model) shared by every rag=on cell
        code_commit()  # read now: the code this process runs

    def _candidates(self, model: str) -> int:
        """Answers per turn for `model`: the sweep's option, else its model config's or backend's, else 1."""
        if self.o.candidates or model == ORACLE:
            return self.o.candidates or 1
        try:
            own = None if self.o.base_url else resolve_backend(self.settings, model).candidates
        except ConfigError:  # an unknown name fails where its backend is opened (only cells still to run need one)
            own = None
        return candidates_for(self.settings, own)

    def retriever(self) -> Any:
        """The retrieval index for rag=on cells, opened once; it must not hold the benchmark references."""
        with self._lock:
            if self._retriever is None:
                from hpc_agent.rag import open_retriever

                self._retriever = open_retriever(self.settings, for_benchmark=True, progress=self.progress)
            return self._retriever

    def expected(self, task_ids: set[str]) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]], Path]:
        """Reference values on the full store and on the variant store, for the given tasks."""
        variant_root = self.o.out / "variant-store"
        if not (variant_root / RELEASE).is_dir():  # deterministic: made once, never replaced under a reader
            make_variant_store(self.data_root, variant_root)
        full, variant = {}, {}
        for task in (t for t in self.tasks.values() if t.id in task_ids):
            self.progress(f"reference values for {task.id}")
            limits = limits_for(self.settings, task.time_limit_s)
            full[task.id] = expected_values(task, self.data_root, self.sandbox, limits=limits).values
            if task.numeric:
                variant[task.id] = expected_values(task, variant_root, self.sandbox, limits=limits).values
        return full, variant, variant_root

    def run(self) -> list[dict[str, Any]]:
        try:
            return self._run()
        finally:
            self.sandbox.close()  # the spares left

    def _run(self) -> list[dict[str, Any]]:
        out = self.o.out
        out.mkdir(parents=True, exist_ok=True)
        todo = [c for c in self.cells if not finished(out, c)]
        self.progress(f"{len(self.cells)} cells, {len(self.cells) - len(todo)} already finished")
        if any(c.rag == "on" for c in todo):
            self.retriever()  # a missing or mismatched index is a usage error before any cell runs
        with sweep_lock(out):
            full, variant, variant_root = self.expected({c.task for c in todo}) if todo else ({}, {}, out)
        records: list[dict[str, Any]] = []
        servers: dict[str, Any] = {}
        with ExitStack() as stack:
            # one client per model, shared by its cells: the SDK client is thread-safe, and building one
            # (its TLS context) cost ~25 ms per cell
            clients = {m: self._chat_client(stack, m) for m in {c.model for c in todo}}
            # the static stage's name index and tutorials: built beside the first model requests
            threading.Thread(target=prepare_static_stage, name="prepare-static-stage", daemon=True).start()
            with ThreadPoolExecutor(max_workers=self.o.concurrency) as pool:
                futures = {pool.submit(self._run_cell, c, clients[c.model], full, variant, variant_root): c
                           for c in todo}
                for fut in as_completed(futures):
                    record = fut.result()
                    if record is None:  # stopped: left for the resume
                        continue
                    records.append(record.to_json())
                    if record.server:
                        servers[record.model] = record.server.model_dump(mode="json")
                    self.on_cell(records[-1])
        with sweep_lock(out):
            self._manifest(servers)
            write_traces(out)
        return records

    def _chat_client(self, stack: ExitStack, model: str) -> ChatModel | None:
        """The client of `model`'s backend (opened, or started, for the sweep); None for the oracle."""
        if model == ORACLE:
            return None
        if self.o.base_url:
            backend = stack.enter_context(open_backend(self.settings, base_url=self.o.base_url, model=self.o.model))
        else:
            backend = stack.enter_context(open_backend(self.settings, model, progress=self.progress,
                                                       start_vllm=self.start_servers))
        return chat_client(self.settings, backend)

    def _run_cell(self, cell: Cell, client: ChatModel | None, full: dict[str, Any], variant: dict[str, Any],
                  variant_root: Path) -> CellRecord | None:
        if self.stop.is_set():
            return None
        task = self.tasks[cell.task]
        cell_dir = self.o.out / "cells" / cell.id
        if cell_dir.exists():
            shutil.rmtree(cell_dir)  # leftovers of a killed or failed run: start the cell afresh
        limits = limits_for(self.settings, task.time_limit_s)
        validators = list(task.validators(full[task.id]))
        if task.numeric:
            validators.append(VariantCheck(self.sandbox, variant_root,
                                           tuple(task.validators(variant[task.id])), limits))
        spec = run_spec(self.settings, prompt=task.prompt, data_root=self.data_root, out_dir=cell_dir,
                        wall_s=task.time_limit_s, attempts=self.o.attempts, validators=validators, seed=cell.seed,
                        retriever=self.retriever() if cell.rag == "on" else None, repairs=cell.repairs == "on",
                        candidates=cell.candidates, warm_modules=self.warm_modules)
        t0 = time.monotonic()
        result, error = None, None
        try:
            result = run_agent(spec, client or OracleModel(task), self.sandbox)
        except UsageError:  # the configuration is wrong: it would fail every cell, so the sweep stops with it
            self.stop.set()
            shutil.rmtree(cell_dir, ignore_errors=True)
            raise
        except HpcAgentError as exc:  # infrastructure: recorded, retried on resume, never a model failure
            error = f"{exc.__class__.__name__}: {exc}"
        if self.stop.is_set():
            shutil.rmtree(cell_dir, ignore_errors=True)
            return None
        record = cell_record(cell, task, result, error, time.monotonic() - t0, _open_weight(cell.model))
        _write_json(cell_dir / CELL_FILE, record.to_json())
        return record

    def _manifest(self, servers: dict[str, Any]) -> None:
        path = self.o.out / "manifest.json"
        try:
            old = json.loads(path.read_text())
        except (OSError, ValueError):
            old = {}
        _write_json(path, {
            "hpc_agent": package_version("hpc-agent"), "gammapy": package_version("gammapy"),
            "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in self.o.__dict__.items()},
            "tasks": sorted(self.tasks), "models": self.models,
            "servers": {**old.get("servers", {}), **servers},
            "rag_index": ({"location": self._retriever.index.location, **self._retriever.index.meta,
                           "k": self._retriever.k, "min_score": self._retriever.min_score, "mode": self._retriever.mode}
                          if self._retriever is not None else old.get("rag_index")),
            "created_at": old.get("created_at", datetime.now(timezone.utc).isoformat()),
            "updated_at": datetime.now(timezone.utc).isoformat(),
        })
