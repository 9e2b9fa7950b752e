"""Tasks as data, expected values from reference solutions run in the real sandbox on the real data,
their cache, and variant stores that catch scripts printing memorised numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fixtures.bench import TASK, crab_count, write_bench_root
from hpc_agent.bench.references import expected_values, store_checksum
from hpc_agent.bench.tasks import load_task, load_tasks, reference_script
from hpc_agent.bench.variants import make_variant_store
from hpc_agent.data import check_dataset, data_binds
from hpc_agent.errors import ConfigError
from hpc_agent.records import ExecResult, Limits
from hpc_agent.sandbox import get_sandbox
from hpc_agent.validate import validate


@pytest.fixture
def bench_root(tmp_path: Path) -> Path:
    return write_bench_root(tmp_path)


def test_tasks_load_and_reference_gets_params(bench_root: Path) -> None:
    task = load_tasks(bench_root)["observation-list-crab"]
    script = reference_script(task, bench_root)
    assert "PARAMS = json.loads('{}')" not in script
    line = next(x for x in script.splitlines() if x.startswith("PARAMS ="))
    assert eval(line.split("=", 1)[1].replace("json.loads", "__import__('json').loads")) == task.params


@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        (lambda t: t.replace("id: observation-list-crab", "id: observation-list-crabby"), "must be <kind>-<source>"),
        (lambda t: t.replace("observation_list.py", "missing.py"), "reference/missing.py does not exist"),
        (lambda t: t + "colour: red\n", "field `colour`"),
        (lambda t: t.replace("why: \"a count: exact\"", "why: \"\""), "field `outputs.n_obs.why`"),
    ],
)
def test_bad_task_names_file_and_field(bench_root: Path, edit, needle: str) -> None:  # type: ignore[no-untyped-def]
    path = bench_root / "tasks" / "observation-list-crab.yaml"
    path.write_text(edit(TASK))
    with pytest.raises(ConfigError) as err:
        load_task(path)
    assert str(path) in str(err.value) and needle in str(err.value)


def test_expected_values_come_from_the_reference_and_are_cached(
    bench_root: Path, data_root: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HPC_AGENT_BENCHMARKS", str(bench_root))
    monkeypatch.setenv("HPC_AGENT_CACHE", str(tmp_path / "cache"))
    task = load_tasks()["observation-list-crab"]
    runs: list[int] = []

    class Counting:
        """The real bwrap sandbox, counting its runs."""

        def __init__(self) -> None:
            self._inner = get_sandbox("bwrap")
            self.name, self.isolated = self._inner.name, self._inner.isolated

        def available(self) -> tuple[bool, str]:
            return self._inner.available()

        def run(self, *a, **kw) -> ExecResult:  # type: ignore[no-untyped-def]
            runs.append(1)
            return self._inner.run(*a, **kw)

    box = Counting()
    first = expected_values(task, data_root, box)  # type: ignore[arg-type]
    assert first.values == {"n_obs": crab_count(data_root)} and len(runs) == 1
    again = expected_values(task, data_root, box)  # type: ignore[arg-type]
    assert again.values == first.values and len(runs) == 1  # served from the cache

    variant_root = make_variant_store(data_root, tmp_path / "variant")
    assert check_dataset(variant_root / "hess-dl3-dr1").n_observations < 105
    assert store_checksum(variant_root) != store_checksum(data_root)
    var = expected_values(task, variant_root, box)  # type: ignore[arg-type]
    assert len(runs) == 2 and var.key != first.key
    assert var.values == {"n_obs": crab_count(variant_root)} != first.values


def test_variant_store_catches_memorised_numbers(bench_root: Path, data_root: Path, tmp_path: Path) -> None:
    """A script printing the full store's answer passes there and fails on the variant; an honest one passes both."""
    task = load_task(bench_root / "tasks" / "observation-list-crab.yaml")
    variant_root = make_variant_store(data_root, tmp_path / "variant")
    assert variant_root / "hess-dl3-dr1" / "data" in [p for p in (variant_root / "hess-dl3-dr1").iterdir()]
    assert len(data_binds(variant_root)) == 2  # the variant and the real event files its data/ links to
    box = get_sandbox("bwrap")
    honest = reference_script(task, bench_root)
    cheat = f"import json\nprint('RESULT ' + json.dumps({{'n_obs': {crab_count(data_root)}}}))\n"
    for root in (data_root, variant_root):
        expected = {"n_obs": crab_count(root)}
        for script, should_pass in ((honest, True), (cheat, root == data_root)):
            ws = tmp_path / f"ws-{len(list(tmp_path.iterdir()))}"
            res = box.run(script, ws, env={"PHOTON_STORAGE": str(root)}, limits=Limits(wall_s=120),
                          ro_binds=data_binds(root))
            assert validate(res, task.validators(expected)).passed is should_pass, (root, script[:40], res.stderr)


def test_shipped_tasks_validate_when_present() -> None:
    tasks = load_tasks()
    for task in tasks.values():
        assert task.id == f"{task.kind}-{task.source}"
        json.dumps(task.params)


def test_identical_variant_stores_share_a_checksum(data_root: Path, tmp_path: Path) -> None:
    import time

    a = make_variant_store(data_root, tmp_path / "a")
    time.sleep(1.1)  # gzip headers carry a write time in seconds
    b = make_variant_store(data_root, tmp_path / "b")
    assert store_checksum(a) == store_checksum(b) != store_checksum(data_root)
