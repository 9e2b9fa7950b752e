"""Data root resolution, verification of the real release, fetch by copy, link and real HTTP download."""

from __future__ import annotations

import functools
import shutil
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

import pytest
from click.testing import CliRunner

from hpc_agent.cli import main
from hpc_agent.data import (check_dataset, column_meanings, contract_env, fetch_dataset, release_layout,
                             resolve_data_root)
from hpc_agent.errors import InfrastructureError, UsageError


@pytest.fixture
def mirror(data_root: Path) -> Iterator[tuple[str, Path]]:
    """A local HTTP mirror of the release (real HTTP; the folder can be damaged by the test)."""
    folder = data_root / "hess-dl3-dr1"
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *a: None  # type: ignore[method-assign]
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", folder
    httpd.shutdown()
    httpd.server_close()


def test_real_release_verifies(data_root: Path) -> None:
    c = check_dataset(data_root / "hess-dl3-dr1")
    assert c.ok and c.n_observations == 105, c.summary()


def test_the_release_layout_lists_every_column_with_its_unit_and_meaning(data_root: Path) -> None:
    # f43: "which observation recorded the largest number of events" loaded all 105 event lists; the index
    # column for it is EVENT_COUNT, which the listing now says in words
    layout = release_layout(data_root)
    assert layout is not None
    lines = layout.splitlines()
    assert "- ZEN_PNT [deg]: pointing zenith angle" in lines and "- EVENT_COUNT: number of events in the observation" in lines
    assert "- ENERGY [TeV]: reconstructed energy" in lines
    # every column of the real release is listed once; every meaning names a column the release has
    columns = [line[2:].split(" ", 1)[0].rstrip(":") for line in lines if line.startswith("- ")]
    assert len(columns) == len(set(columns)) == 31 + 5
    assert set(column_meanings()["obs_table"]) <= set(columns) and set(column_meanings()["events"]) <= set(columns)


def test_resolve_and_contract(tmp_path: Path) -> None:
    assert resolve_data_root(tmp_path) == tmp_path.resolve()
    with pytest.raises(UsageError, match="no data root"):
        resolve_data_root(None)
    with pytest.raises(UsageError, match="not a folder"):
        resolve_data_root(tmp_path / "nope")
    env = contract_env(tmp_path)
    assert env["PHOTON_STORAGE"] == env["GAMMAPY_DATA"] == str(tmp_path)


def test_fetch_from_local_copy_and_link(data_root: Path, tmp_path: Path) -> None:
    copied = fetch_dataset("hess-dl3-dr1", tmp_path / "copy", from_path=data_root / "hess-dl3-dr1")
    assert copied.ok and not (tmp_path / "copy" / "hess-dl3-dr1").is_symlink()
    linked = fetch_dataset("hess-dl3-dr1", tmp_path / "link", from_path=data_root / "hess-dl3-dr1", link=True)
    assert linked.ok and (tmp_path / "link" / "hess-dl3-dr1").is_symlink()
    # idempotent: a complete copy is kept as is
    assert fetch_dataset("hess-dl3-dr1", tmp_path / "copy").ok


def test_fetch_by_http_download(mirror: tuple[str, Path], tmp_path: Path) -> None:
    url, _ = mirror
    res = CliRunner().invoke(main, ["data", "fetch", "hess-dl3-dr1", "--to", str(tmp_path), "--url", url])
    assert res.exit_code == 0, res.output
    assert "ok, 105 observations" in res.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hess-dl3-dr1"]


def test_broken_download_leaves_nothing(data_root: Path, tmp_path: Path) -> None:
    damaged = tmp_path / "damaged"
    shutil.copytree(data_root / "hess-dl3-dr1", damaged)
    victim = sorted((damaged / "data").iterdir())[50]
    victim.unlink()
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(damaged))
    handler.log_message = lambda *a: None  # type: ignore[method-assign]
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        dest = tmp_path / "root"
        with pytest.raises(InfrastructureError, match="HTTP 404"):
            fetch_dataset("hess-dl3-dr1", dest, base_url=f"http://127.0.0.1:{httpd.server_address[1]}")
        assert list(dest.iterdir()) == []  # no half-written release, no staging folder
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_incomplete_copy_is_reported(data_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    shutil.copytree(data_root / "hess-dl3-dr1", root / "hess-dl3-dr1")
    (root / "hess-dl3-dr1" / "data" / "hess_dl3_dr1_obs_id_020136.fits.gz").unlink()
    res = CliRunner().invoke(main, ["data", "check", "--data-root", str(root)])
    assert res.exit_code == 1
    assert "INCOMPLETE" in res.output and "hess_dl3_dr1_obs_id_020136.fits.gz" in res.output
    with pytest.raises(UsageError, match="incomplete"):
        fetch_dataset("hess-dl3-dr1", root, from_path=data_root / "hess-dl3-dr1")
    res = CliRunner().invoke(main, ["data", "check", "--data-root", str(data_root)])
    assert res.exit_code == 0 and "ok, 105 observations" in res.output
