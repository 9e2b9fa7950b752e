import json
PARAMS = json.loads('{}')  # replaced by the harness with the task's params

import os

import astropy.units as u
from astropy.coordinates import SkyCoord
from regions import CircleSkyRegion
from gammapy.data import DataStore
from gammapy.datasets import MapDataset
from gammapy.makers import FoVBackgroundMaker, MapDatasetMaker, SafeMaskMaker
from gammapy.maps import MapAxis, WcsGeom
from gammapy.modeling import Fit
from gammapy.modeling.models import (
    FoVBackgroundModel,
    Models,
    PointSpatialModel,
    PowerLawSpectralModel,
    SkyModel,
)

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
geom = WcsGeom.create(
    skydir=source,
    binsz=PARAMS["binsz_deg"],
    width=(PARAMS["width_deg"], PARAMS["width_deg"]),
    frame="icrs",
    proj="CAR",
    axes=[energy_axis],
)
empty = MapDataset.create(geom=geom, energy_axis_true=energy_axis_true, name="empty")

exclusion_region = CircleSkyRegion(center=source, radius=PARAMS["exclusion_radius_deg"] * u.deg)
exclusion_mask = ~geom.to_image().region_mask([exclusion_region])

maker = MapDatasetMaker(selection=["counts", "exposure", "background", "psf", "edisp"])
safe_mask_maker = SafeMaskMaker(methods=["offset-max", "aeff-max"], offset_max=PARAMS["offset_max_deg"] * u.deg, aeff_percent=PARAMS["aeff_percent"])
bkg_maker = FoVBackgroundMaker(method="scale", exclusion_mask=exclusion_mask)

stacked = empty.copy(name="stacked")
for obs in observations:
    cutout = empty.cutout(stacked.counts.geom.center_skydir, width=PARAMS["width_deg"] * u.deg, name=f"obs-{obs.obs_id}")
    ds = maker.run(cutout, obs)
    ds = safe_mask_maker.run(ds, obs)
    ds = bkg_maker.run(ds)
    stacked.stack(ds)

spatial_model = PointSpatialModel(lon_0=PARAMS["ra"] * u.deg, lat_0=PARAMS["dec"] * u.deg, frame="icrs")
spectral_model = PowerLawSpectralModel(
    index=2.0, amplitude=1e-12 * u.Unit("cm-2 s-1 TeV-1"), reference=PARAMS["reference_tev"] * u.TeV
)
sky_model = SkyModel(spatial_model=spatial_model, spectral_model=spectral_model, name="source")
bkg_model = FoVBackgroundModel(dataset_name=stacked.name)
stacked.models = Models([sky_model, bkg_model])

result = Fit().run(datasets=[stacked])

print("RESULT " + json.dumps({
    "n_obs": len(observations),
    "fit_success": bool(result.success),
    "index": float(spectral_model.index.value),
    "index_err": float(spectral_model.index.error),
    "amplitude": float(spectral_model.amplitude.quantity.to_value("cm-2 s-1 TeV-1")),
    "ra": float(spatial_model.lon_0.value),
    "dec": float(spatial_model.lat_0.value),
}))
