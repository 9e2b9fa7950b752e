"""Each dataset a per-observation loop makes, collected for the fit or stack after it (real Gammapy datasets)."""

from __future__ import annotations
import os


from hpc_agent.reduction_loop import append_each_dataset, load_each_observation
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


UNLOADED = ("import os\n"
            "from gammapy.data import DataStore\n"
            "datastore = DataStore.from_dir(os.path.join(os.environ['PHOTON_STORAGE'], 'hess-dl3-dr1'))\n"
            "obs_ids = datastore.obs_table.select_observations({'type': 'par_box', 'variable': 'OBS_ID', "
            "'value_range': [23523, 23527]})\n"
            "\n"
            "class Maker:  # stands for a data maker: it reads the observation it is handed\n"
            "    def run(self, dataset, observation):\n"
            "        return dataset + [int(observation.obs_id)]\n"
            "\n"
            "loaded = []\n"
            "for obs_id in obs_ids:\n"
            "    loaded = Maker().run(loaded, obs)\n")


def test_a_loop_over_ids_or_index_rows_loads_the_observation_its_makers_are_handed(data_root) -> None:
    """The 1.5B's reflected-region loop ran `for obs_id in obs_ids:` (the rows of a selection) and handed each
    maker an `obs` it never loaded: 4 of its 5 attempts on the Crab significance stopped there."""
    fixed, notes = load_each_observation(UNLOADED)
    assert '    obs = datastore.obs(obs_id["OBS_ID"])\n    loaded = Maker()' in fixed
    assert notes == ["line 11: the loop ran makers on `obs`, which it never loaded; it now starts with "
                     '`obs = datastore.obs(obs_id["OBS_ID"])`']
    old = os.environ.get("PHOTON_STORAGE")
    os.environ["PHOTON_STORAGE"] = str(data_root)
    try:
        scope: dict[str, object] = {}
        exec(compile(fixed, "fixed.py", "exec"), scope)
    finally:
        if old is not None:
            os.environ["PHOTON_STORAGE"] = old
    assert scope["loaded"] == [23523, 23526]
    ids = UNLOADED.replace("for obs_id in obs_ids:", "for obs_id in obs_ids['OBS_ID'].tolist():")
    assert "    obs = datastore.obs(obs_id)\n" in load_each_observation(ids)[0]
    # an item that is already an observation, or two data stores, leave the name to the model
    items = UNLOADED.replace("for obs_id in obs_ids:", "for obs_id in datastore.get_observations([23523]):")
    assert load_each_observation(items) == (items, [])
    two = UNLOADED.replace("loaded = []\n", "loaded = []\nother = DataStore.from_dir('x')\n")
    assert load_each_observation(two) == (two, [])
