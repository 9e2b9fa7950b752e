"""The data root (`PHOTON_STORAGE`) and the data releases hpc-agent knows how to fetch and verify."""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable

from hpc_agent.errors import InfrastructureError, UsageError


@dataclass(frozen=True)
class Dataset:
    """A data release: where it lives under the data root and what a complete copy holds."""

    name: str
    n_observations: int
    base_url: str  # folder URL holding the index tables and the `data/` files
    license: str


RELEASE = "hess-dl3-dr1"  # the release every run and task reads: its folder name under the data root

DATASETS: dict[str, Dataset] = {
    RELEASE: Dataset(
        name=RELEASE,
        n_observations=105,
        # gammapy-data's copy of the release: the official files plus the background IRFs that
        # 3D analyses need (https://www.mpi-hd.mpg.de/hfm/HESS/pages/dl3-dr1/ has the original).
        base_url=f"https://raw.githubusercontent.com/gammapy/gammapy-data/main/{RELEASE}",
        license="CC BY 4.0, H.E.S.S. collaboration (see README.txt in the release)",
    ),
}

INDEX_FILES = ("obs-index.fits.gz", "hdu-index.fits.gz")
# The release terms require README.txt (terms of use) in every copy.
EXTRA_FILES = ("README.txt",)


def get_dataset(name: str) -> Dataset:
    if name not in DATASETS:
        raise UsageError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    return DATASETS[name]


def resolve_data_root(data_root: Path | None) -> Path:
    """The data root from settings (flag > HPC_AGENT_DATA_ROOT > PHOTON_STORAGE > config file)."""
    if data_root is None:
        raise UsageError(
            "no data root: pass --data-root DIR or export PHOTON_STORAGE=DIR "
            f"(get the data with `hpc-agent data fetch {RELEASE} --to DIR`)"
        )
    root = Path(data_root).expanduser().resolve()
    if not root.is_dir():
        raise UsageError(f"data root {root} is not a folder; fix --data-root / PHOTON_STORAGE")
    return root


def contract_env(data_root: Path) -> dict[str, str]:
    """What generated code sees: PHOTON_STORAGE, plus GAMMAPY_DATA (same value) for tutorial code."""
    return {"PHOTON_STORAGE": str(data_root), "GAMMAPY_DATA": str(data_root)}


def data_binds(data_root: Path) -> list[Path]:
    """What a sandbox must mount read-only for `data_root`: the root, plus the targets of symlinks in it.

    Releases linked in (`data fetch --link`) and variant stores (whose `data/` links to the real files)
    would otherwise point at paths the sandbox hides.
    """
    binds = [data_root]
    for entry in [*data_root.iterdir(), *(p / "data" for p in data_root.iterdir() if p.is_dir())]:
        if entry.is_symlink():
            target = entry.resolve()
            if target.exists() and not any(target.is_relative_to(b) for b in binds):
                binds.append(target)
    return binds


@dataclass
class DataCheck:
    """What `data check` found for one dataset."""

    dataset: str
    path: Path
    present: bool = False
    n_observations: int = 0
    expected_observations: int = 0
    missing: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (
            self.present
            and not self.missing
            and not self.errors
            and self.n_observations == self.expected_observations
        )

    def summary(self) -> str:
        if not self.present:
            return f"{self.dataset}: missing at {self.path} (run `hpc-agent data fetch {self.dataset}`)"
        if self.ok:
            return f"{self.dataset}: ok, {self.n_observations} observations at {self.path}"
        parts = []
        if self.n_observations != self.expected_observations:
            parts.append(f"{self.n_observations}/{self.expected_observations} observations")
        if self.missing:
            parts.append(f"{len(self.missing)} files missing (e.g. {self.missing[0]})")
        parts.extend(self.errors)
        return f"{self.dataset}: INCOMPLETE at {self.path}: " + "; ".join(parts)


def _read_table(path: Path):  # noqa: ANN202 - astropy Table
    from astropy.table import Table

    return Table.read(path)


MEANINGS = Path(__file__).with_name("column_meanings.yaml")


@lru_cache(maxsize=1)
def column_meanings() -> dict[str, dict[str, str]]:
    """table -> column -> what it means (`column_meanings.yaml`), for the tables' listing in the system message."""
    import yaml

    with MEANINGS.open() as fh:
        return {table: {str(c): str(m) for c, m in columns.items()} for table, columns in yaml.safe_load(fh).items()}


def _columns(table, label: str) -> str:  # noqa: ANN001 - astropy Table
    """One line per column: `- ZEN_PNT [deg]: pointing zenith angle`."""
    meanings = column_meanings().get(label, {})
    return "\n".join(f"- {c}" + (f" [{table[c].unit}]" if table[c].unit else "")
                     + (f": {meanings[c]}" if c in meanings else "") for c in table.colnames)


@lru_cache(maxsize=8)
def _release_tables(data_root: Path, name: str = RELEASE):  # noqa: ANN202 - (obs index, one event list) Tables
    folder = data_root / name
    try:
        obs = _read_table(folder / "obs-index.fits.gz")
        hdu = _read_table(folder / "hdu-index.fits.gz")
        row = next(r for r in hdu if str(r["HDU_TYPE"]).strip() == "events")
        from astropy.table import Table

        events = Table.read(folder / str(row["FILE_DIR"]).strip() / str(row["FILE_NAME"]).strip(),
                            hdu=str(row["HDU_NAME"]).strip())
    except Exception:  # no release, or not readable: the rules still name the path
        return None
    return obs, events


def release_layout(data_root: Path, name: str = RELEASE) -> str | None:
    """The release's tables as a script sees them (columns with units), read from the data themselves;
    None when the release is not there. Small models guess column names; this tells them."""
    tables = _release_tables(data_root, name)
    if tables is None:
        return None
    obs, events = tables
    index, listed = _columns(obs, "obs_table"), _columns(events, "events")
    return (f"`data_store.obs_table` (astropy Table, {len(obs)} rows, one per observation) columns:\n{index}\n"
            f"`observation.events.table` (one observation's event list) columns:\n{listed}")


def release_obs_ids(data_root: Path, name: str = RELEASE) -> frozenset[int]:
    """The OBS_ID column of the release's observation index; empty without data (ids are then named unchecked)."""
    tables = _release_tables(data_root, name)
    return frozenset(int(i) for i in tables[0]["OBS_ID"]) if tables is not None else frozenset()


def release_columns(data_root: Path, name: str = RELEASE) -> dict[str, tuple[str, ...]]:
    """Column names of the observation index (`obs_table`) and of an event list (`events`); empty without data."""
    return {table: tuple(units) for table, units in release_units(data_root, name).items()}


def release_units(data_root: Path, name: str = RELEASE) -> dict[str, dict[str, str]]:
    """table -> column -> its unit ("" for none), for the observation index and an event list."""
    tables = _release_tables(data_root, name)
    if tables is None:
        return {}
    return {label: {c: str(t[c].unit or "") for c in t.colnames} for label, t in zip(("obs_table", "events"), tables)}


def data_files(folder: Path) -> list[str]:
    """Relative paths of the event/IRF files the HDU index refers to."""
    hdu = _read_table(folder / "hdu-index.fits.gz")
    names = {
        str(Path(str(d).strip()) / str(f).strip()) if str(d).strip() not in ("", ".") else str(f).strip()
        for d, f in zip(hdu["FILE_DIR"], hdu["FILE_NAME"])
    }
    return sorted(names)


def check_dataset(folder: Path, name: str = RELEASE) -> DataCheck:
    """Verify a copy: index tables readable, observation count right, every referenced file there."""
    spec = get_dataset(name)
    result = DataCheck(dataset=name, path=folder, expected_observations=spec.n_observations)
    if not folder.is_dir():
        return result
    result.present = True
    for index in INDEX_FILES:
        if not (folder / index).is_file():
            result.missing.append(index)
    if result.missing:
        return result
    try:
        obs = _read_table(folder / "obs-index.fits.gz")
        result.n_observations = len(set(int(x) for x in obs["OBS_ID"]))
        files = data_files(folder)
    except Exception as exc:  # a corrupt table is a finding, not a crash
        result.errors.append(f"index tables unreadable: {exc.__class__.__name__}: {exc}")
        return result
    result.missing.extend(f for f in files if not (folder / f).is_file())
    return result


def _download(url: str, dest: Path, timeout: float = 120.0) -> None:
    import urllib.error  # here: the command line imports this module at start-up (`data fetch` choices)
    import urllib.request

    tmp = dest.with_name(dest.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp, tmp.open("wb") as fh:
            shutil.copyfileobj(resp, fh, 1 << 20)
        os.replace(tmp, dest)
    except urllib.error.HTTPError as exc:
        raise InfrastructureError(f"download failed: {url} answered HTTP {exc.code}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise InfrastructureError(f"download failed: {url}: {exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)


def fetch_dataset(
    name: str,
    to: Path,
    *,
    from_path: Path | None = None,
    link: bool = False,
    base_url: str | None = None,
    progress: Callable[[str], None] = lambda _msg: None,
) -> DataCheck:
    """Put a verified copy of `name` at `to/name`; nothing half-written is left behind.

    Files go to a temporary folder beside the destination and are moved into place only after the copy
    verifies; an existing complete copy is kept as is (idempotent).
    """
    spec = get_dataset(name)
    dest = to.expanduser().resolve() / name
    existing = check_dataset(dest, name)
    if existing.ok:
        progress(f"already complete: {dest}")
        return existing
    if dest.exists() or dest.is_symlink():
        raise UsageError(f"{dest} exists but is incomplete ({existing.summary()}); remove it and fetch again")
    if from_path is not None:
        source = check_dataset(from_path.expanduser().resolve(), name)
        if not source.ok:
            raise UsageError(f"--from {from_path}: not a complete copy: {source.summary()}")

    dest.parent.mkdir(parents=True, exist_ok=True)
    if from_path is not None and link:
        tmp_link = dest.with_name(f".{name}.link-{os.getpid()}")
        tmp_link.symlink_to(from_path.expanduser().resolve(), target_is_directory=True)
        os.replace(tmp_link, dest)
        return check_dataset(dest, name)

    staging = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=dest.parent))
    try:
        if from_path is not None:
            progress(f"copying {from_path} -> {dest}")
            shutil.copytree(from_path.expanduser().resolve(), staging, dirs_exist_ok=True)
        else:
            url = (base_url or spec.base_url).rstrip("/")
            for index in (*INDEX_FILES, *EXTRA_FILES):
                progress(f"downloading {index}")
                _download(f"{url}/{index}", staging / index)
            files = data_files(staging)
            for i, rel in enumerate(files, 1):
                progress(f"downloading [{i}/{len(files)}] {rel}")
                (staging / rel).parent.mkdir(parents=True, exist_ok=True)
                _download(f"{url}/{rel}", staging / rel)
        result = check_dataset(staging, name)
        if not result.ok:
            raise InfrastructureError(f"fetched copy failed verification: {result.summary()}")
        os.replace(staging, dest)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return check_dataset(dest, name)
