import json
PARAMS = json.loads('{}')  # replaced by the harness with the task's params

import os

import astropy.units as u
from astropy.coordinates import SkyCoord
from gammapy.data import DataStore

data_store = DataStore.from_dir(os.path.join(os.environ["PHOTON_STORAGE"], "hess-dl3-dr1"))
table = data_store.obs_table
source = SkyCoord(PARAMS["ra"], PARAMS["dec"], unit="deg", frame="icrs")
pointing = SkyCoord(table["RA_PNT"], table["DEC_PNT"], unit="deg", frame="icrs")
mask = pointing.separation(source) < PARAMS["selection_radius_deg"] * u.deg

livetime = u.Quantity(table["LIVETIME"][mask], "s").sum().to_value("h")

print("RESULT " + json.dumps({"n_obs": int(mask.sum()), "livetime_hours": float(livetime)}))
