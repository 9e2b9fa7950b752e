import json
import os

from astropy.coordinates import SkyCoord
from gammapy.data import DataStore

data_store = DataStore.from_dir(os.path.join(os.environ["PHOTON_STORAGE"], "hess-dl3-dr1"))
table = data_store.obs_table
target = SkyCoord(228.32, -59.08, unit="deg", frame="icrs")
ra = table["RA_PNT"]  # a Column: the static stage cannot type `ra`, so this fails only when it runs
n_obs = int((ra.separation(target) < 2).sum())
print("RESULT " + json.dumps({"n_obs": n_obs}))
