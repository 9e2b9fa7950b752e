import json
import os

import astropy.units as u
from astropy.coordinates import SkyCoord
from gammapy.data import DataStore

data_store = DataStore.from_dir(os.path.join(os.environ["PHOTON_STORAGE"], "hess-dl3-dr1"))
table = data_store.obs_table
target = SkyCoord(228.32, -59.08, unit="deg", frame="icrs")  # MSH 15-52
pointing = SkyCoord(table["RA_PNT"], table["DEC_PNT"], unit="deg", frame="icrs")
n_obs = int((pointing.separation(target) < 2 * u.deg).sum())
print("RESULT " + json.dumps({"n_obs": n_obs}))
