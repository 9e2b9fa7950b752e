"""Each dataset a per-observation loop makes, collected for the fit or stack after it (real Gammapy datasets)."""

from __future__ import annotations

from hpc_agent.reduction_loop import append_each_dataset
from hpc_agent.static import static_stage

DROPPED = ("import astropy.units as u\n"
           "from gammapy.datasets import Datasets, SpectrumDataset\n"
           "from gammapy.maps import MapAxis, RegionGeom\n"
           "axis = MapAxis.from_energy_bounds(1, 10, 3, unit='TeV')\n"
           "empty = SpectrumDataset.create(RegionGeom.create('icrs;circle(83.6, 22.0, 0.1)', axes=[axis]))\n"
           "\n"
           "class Maker:  # stands for a data maker: its run fills a copy per observation\n"
           "    def run(self, dataset, observation):\n"
           "        return dataset.copy(name=f'obs-{observation}')\n"
           "\n"
           "maker = Maker()\n"
           "datasets = Datasets()\n"
           "for obs in [1, 2, 3]:\n"
           "    dataset = maker.run(empty, obs)\n"
           "    # background next\n"
           "    dataset = maker.run(dataset, obs)\n"
           "same = datasets.is_all_same_type  # what stack_reduce and info_table check first\n")


def test_a_loop_that_drops_each_dataset_appends_it_and_the_stack_runs() -> None:
    """The 1.5B's reflected-region loop made each dataset and never appended it: the fit after it failed with
    `No free parameters for fitting` on an empty `Datasets`."""
    as_written: dict[str, object] = {}
    exec(compile(DROPPED, "<as written>", "exec"), as_written)
    assert as_written["same"] is False  # empty: "Stacking impossible: all Datasets contained are not of a unique type"
    fixed, notes = append_each_dataset(DROPPED)
    assert "    dataset = maker.run(dataset, obs)\n    datasets.append(dataset)\nsame = " in fixed
    assert notes == ["line 13: the loop made `dataset` for each observation and dropped it, so `datasets` stayed "
                     "empty for what follows; it now ends with `datasets.append(dataset)`"]
    namespace: dict[str, object] = {}
    exec(compile(fixed, "<fixed>", "exec"), namespace)
    assert len(namespace["datasets"]) == 3 and namespace["same"] is True  # type: ignore[arg-type]
    assert static_stage(fixed, require_result=False).repairs == ()  # applied once


def test_a_loop_whose_dataset_is_used_or_a_collection_filled_elsewhere_is_left_alone() -> None:
    used = DROPPED.replace("    dataset = maker.run(dataset, obs)\n", "    dataset = maker.run(dataset, obs)\n"
                                                                      "    print(dataset.name)\n")
    filled = DROPPED.replace("same =", "datasets.extend([empty])\nsame =")
    two = DROPPED.replace("datasets = Datasets()\n", "datasets = Datasets()\nothers = []\n").replace(
        "same = datasets", "print(others)\nsame = datasets")
    nothing_after = DROPPED[:DROPPED.index("same =")]
    for code in (used, filled, two, nothing_after):
        assert append_each_dataset(code) == (code, [])
