import json
PARAMS = json.loads('{}')  # replaced by the harness with the task's params

import os

import numpy as np
import astropy.units as u
from astropy.coordinates import SkyCoord
from regions import CircleSkyRegion
from gammapy.data import DataStore
from gammapy.datasets import Datasets, SpectrumDataset
from gammapy.makers import (
    ReflectedRegionsBackgroundMaker,
    SafeMaskMaker,
    SpectrumDatasetMaker,
)
from gammapy.maps import MapAxis, RegionGeom
from gammapy.estimators import LightCurveEstimator
from gammapy.modeling.models import PowerLawSpectralModel, SkyModel

data_store = DataStore.from_dir(os.path.join(os.environ["PHOTON_STORAGE"], "hess-dl3-dr1"))
table = data_store.obs_table
source = SkyCoord(PARAMS["ra"], PARAMS["dec"], unit="deg", frame="icrs")
pointing = SkyCoord(table["RA_PNT"], table["DEC_PNT"], unit="deg", frame="icrs")
mask = pointing.separation(source) < PARAMS["selection_radius_deg"] * u.deg
obs_ids = [int(o) for o in table["OBS_ID"][mask]]
observations = data_store.get_observations(obs_ids)

energy_axis = MapAxis.from_energy_bounds(
    PARAMS["e_reco_min_tev"], PARAMS["e_reco_max_tev"], nbin=PARAMS["e_reco_nbin"], unit="TeV", name="energy"
)
energy_axis_true = MapAxis.from_energy_bounds(
    PARAMS["e_true_min_tev"], PARAMS["e_true_max_tev"], nbin=PARAMS["e_true_nbin"], unit="TeV", name="energy_true"
)
on_region = CircleSkyRegion(center=source, radius=PARAMS["on_radius_deg"] * u.deg)
geom = RegionGeom.create(region=on_region, axes=[energy_axis])
empty = SpectrumDataset.create(geom=geom, energy_axis_true=energy_axis_true)

dataset_maker = SpectrumDatasetMaker(
    selection=["counts", "exposure", "edisp"], containment_correction=True
)
bkg_maker = ReflectedRegionsBackgroundMaker()
safe_mask_maker = SafeMaskMaker(methods=["aeff-max"], aeff_percent=PARAMS["aeff_percent"])

datasets = Datasets()
for obs in observations:
    ds = dataset_maker.run(empty.copy(name=str(obs.obs_id)), obs)
    ds_on_off = bkg_maker.run(ds, obs)
    ds_on_off = safe_mask_maker.run(ds_on_off, obs)
    datasets.append(ds_on_off)

spectral_model = PowerLawSpectralModel(
    index=PARAMS["lc_index"], amplitude=1e-12 * u.Unit("cm-2 s-1 TeV-1"), reference=PARAMS["reference_tev"] * u.TeV
)
spectral_model.index.frozen = True
model = SkyModel(spectral_model=spectral_model, name="source")
datasets.models = [model]

estimator = LightCurveEstimator(
    energy_edges=[PARAMS["lc_e_min_tev"], PARAMS["lc_e_max_tev"]] * u.TeV,
    source="source",
    selection_optional=[],
)
lc = estimator.run(datasets)
table = lc.to_table(format="lightcurve", sed_type="flux")
flux = np.asarray(table["flux"].quantity.to_value("cm-2 s-1")).reshape(-1)

print("RESULT " + json.dumps({
    "n_bins": int(len(table)),
    "mean_flux": float(np.nanmean(flux)),
    "min_flux": float(np.nanmin(flux)),
    "max_flux": float(np.nanmax(flux)),
}))
