"""Variant data stores for anti-hard-coding checks: the real release with some observations removed.

A script that computes its answer from the data gives the variant's answer there; one that prints
memorised numbers does not. The variant shares the event files (a symlink to `data/`) and differs only in
its index tables, so making one costs milliseconds and no disk.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from hpc_agent.data import INDEX_FILES, RELEASE, contract_env, data_binds
from hpc_agent.records import Check, ExecResult, Limits
from hpc_agent.sandbox import Sandbox
from hpc_agent.sandbox.warm import run_fresh
from hpc_agent.validate import Validator


def make_variant_store(data_root: Path, dest_root: Path, *, keep_every: int = 3, drop_offset: int = 1) -> Path:
    """Write `dest_root/RELEASE` (hess-dl3-dr1) keeping observations except every `keep_every`-th (from `drop_offset`).

    Returns `dest_root`, the data root to publish as PHOTON_STORAGE. Built in a staging folder and moved
    into place, so a reader never sees half a store; an existing variant is replaced.
    """
    from astropy.table import Table

    src = data_root / RELEASE
    obs = Table.read(src / "obs-index.fits.gz")
    hdu = Table.read(src / "hdu-index.fits.gz")
    ids = sorted(int(x) for x in obs["OBS_ID"])
    dropped = set(ids[drop_offset::keep_every])
    dest_root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".variant-", dir=dest_root))
    try:
        obs[[int(x) not in dropped for x in obs["OBS_ID"]]].write(staging / INDEX_FILES[0])
        hdu[[int(x) not in dropped for x in hdu["OBS_ID"]]].write(staging / INDEX_FILES[1])
        os.symlink((src / "data").resolve(), staging / "data", target_is_directory=True)
        for extra in ("README.txt",):
            if (src / extra).is_file():
                shutil.copy2(src / extra, staging / extra)
        final = dest_root / RELEASE
        if final.exists():
            shutil.rmtree(final)
        os.replace(staging, final)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return dest_root


@dataclass(frozen=True)
class VariantCheck:
    """Runs the script again on a variant store; its RESULT must match the reference's values there.

    Expensive (a second sandbox run), so it runs only after every other check passed.
    """

    sandbox: Sandbox
    variant_root: Path
    validators: tuple[Validator, ...]
    limits: Limits
    name: str = "variant"
    expensive: bool = True

    def __call__(self, execution: ExecResult, script: str = "") -> list[Check]:
        rerun = run_fresh(self.sandbox, script, env=contract_env(self.variant_root), limits=self.limits,
                          ro_binds=data_binds(self.variant_root), prefix="variant-run-")
        checks = [c for v in self.validators for c in v(rerun, script)]
        return [Check(name=f"{self.name}:{c.name}", passed=c.passed,
                      message=f"on a store with observations removed: {c.message}") for c in checks]
