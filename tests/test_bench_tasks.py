"""Tasks as data, expected values from reference solutions run in the real sandbox on the real data,
their cache, and variant stores that catch scripts printing memorised numbers."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.table import Table

from hpc_agent.bench.references import expected_values, store_checksum
from hpc_agent.bench.tasks import load_task, load_tasks, reference_script
from hpc_agent.bench.variants import make_variant_store
from hpc_agent.data import check_dataset, data_binds
from hpc_agent.errors import ConfigError
from hpc_agent.records import ExecResult, Limits
from hpc_agent.sandbox import get_sandbox
from hpc_agent.validate import validate

CRAB = (83.6331, 22.0145)
REFERENCE = textwrap.dedent("""\
    import json
    PARAMS = json.loads('{}')  # replaced by the harness with the task's params
    import os
    import astropy.units as u
    from astropy.coordinates import SkyCoord
    from gammapy.data import DataStore

    store = DataStore.from_dir(os.path.join(os.environ["PHOTON_STORAGE"], "hess-dl3-dr1"))
    t = store.obs_table
    pnt = SkyCoord(t["RA_PNT"], t["DEC_PNT"], unit="deg")
    target = SkyCoord(PARAMS["ra"], PARAMS["dec"], unit="deg")
    print("RESULT " + json.dumps({"n_obs": int((pnt.separation(target) < PARAMS["radius_deg"] * u.deg).sum())}))
""")
TASK = textwrap.dedent("""\
    id: observation-list-crab
    kind: observation-list
    source: crab
    prompt: |
      How many H.E.S.S. DR1 observations point within 2 degrees of the Crab nebula (RA 83.6331, Dec 22.0145)?
      Print RESULT {"n_obs": <int>}.
    outputs:
      n_obs: {rtol: 0, atol: 0, why: "a count: exact"}
    reference: observation_list.py
    params: {ra: 83.6331, dec: 22.0145, radius_deg: 2.0}
    time_limit_s: 120
""")


@pytest.fixture
def bench_root(tmp_path: Path) -> Path:
    (tmp_path / "tasks").mkdir()
    (tmp_path / "reference").mkdir()
    (tmp_path / "reference" / "observation_list.py").write_text(REFERENCE)
    (tmp_path / "tasks" / "observation-list-crab.yaml").write_text(TASK)
    return tmp_path


def _count(data_root: Path, radius: float = 2.0) -> int:
    """The answer computed here, independently of the reference and of Gammapy."""
    t = Table.read(data_root / "hess-dl3-dr1" / "obs-index.fits.gz")
    sep = SkyCoord(t["RA_PNT"], t["DEC_PNT"], unit="deg").separation(SkyCoord(*CRAB, unit="deg")).deg
    return int(np.sum(sep < radius))


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
    assert first.values == {"n_obs": _count(data_root)} and len(runs) == 1
    again = expected_values(task, data_root, box)  # type: ignore[arg-type]
    assert again.values == first.values and len(runs) == 1  # served from the cache

    variant_root = make_variant_store(data_root, tmp_path / "variant")
    assert check_dataset(variant_root / "hess-dl3-dr1").n_observations < 105
    assert store_checksum(variant_root) != store_checksum(data_root)
    var = expected_values(task, variant_root, box)  # type: ignore[arg-type]
    assert len(runs) == 2 and var.key != first.key
    assert var.values == {"n_obs": _count(variant_root)} != first.values


def test_variant_store_catches_memorised_numbers(bench_root: Path, data_root: Path, tmp_path: Path) -> None:
    """A script printing the full store's answer passes there and fails on the variant; an honest one passes both."""
    task = load_task(bench_root / "tasks" / "observation-list-crab.yaml")
    variant_root = make_variant_store(data_root, tmp_path / "variant")
    assert variant_root / "hess-dl3-dr1" / "data" in [p for p in (variant_root / "hess-dl3-dr1").iterdir()]
    assert len(data_binds(variant_root)) == 2  # the variant and the real event files its data/ links to
    box = get_sandbox("bwrap")
    honest = reference_script(task, bench_root)
    cheat = f"import json\nprint('RESULT ' + json.dumps({{'n_obs': {_count(data_root)}}}))\n"
    for root in (data_root, variant_root):
        expected = {"n_obs": _count(root)}
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
