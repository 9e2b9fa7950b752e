import json
import os

from astropy.coordinates import SkyCoord
from gammapy.data import DataStore

data_store = DataStore.from_dir(os.path.join(os.environ["PHOTON_STORAGE"], "hess-dl3-dr1"))
table = data_store.obs_table
target = SkyCoord(228.32, -59.08, unit="deg", frame="icrs")
n_obs = int((table["RA_PNT"].separation(target) < 2).sum())
print("RESULT " + json.dumps({"n_obs": n_obs}))
