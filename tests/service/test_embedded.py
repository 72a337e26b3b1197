"""`xmatch serve` as a real process on a free loopback port: the Python client and the CLI
talk to it, answers equal the in-process kernels, and SIGTERM drains it cleanly."""

import os
import re
import shutil
import signal
import subprocess
import sys
import time

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord

from xmatch import SkyIndex
from xmatch.service.client import Client


@pytest.fixture(scope="module")
def server(default_catalogs, tmp_path_factory):
    data = tmp_path_factory.mktemp("serve")
    for name, catalog in default_catalogs.items():  # a data directory with both catalogs
        shutil.copytree(catalog.root.resolve(), data / "src" / name)
        subprocess.run([sys.executable, "-m", "xmatch", "load", name, "--from",
                        str(data / "src" / name), "--data", str(data / "catalogs")],
                       check=True, capture_output=True)
    process = subprocess.Popen([sys.executable, "-m", "xmatch", "serve", "--port", "0",
                                "--data", str(data / "catalogs")],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    address = None
    deadline = time.monotonic() + 120
    while address is None and time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        found = re.search(r"serving .* on (\S+:\d+)", line)
        address = found and found[1]
    assert address, process.stderr.read()
    yield address, data / "catalogs", process
    if process.poll() is None:
        process.kill()


def test_client_answers_equal_in_process(server, default_catalogs):
    address, _, _ = server
    with Client(address) as client:
        names = {c["name"]: c for c in client.catalogs()}
        assert names["gaia_dr3"]["rows"] == 482_176
        assert client.describe("hipparcos2")["id_column"] == "hip"
        gaia = SkyIndex.from_catalog(default_catalogs["gaia_dr3"])
        cone = client.cone("gaia_dr3", SkyCoord(56.75, 24.12, unit="deg"), radius=1 * u.deg,
                           arrow=True)
        assert cone.equals(gaia.cone(56.75, 24.12, 3600.0))
        rng = np.random.default_rng(0)
        ra, dec = rng.uniform(0, 360, 30_000), np.degrees(np.arcsin(rng.uniform(-1, 1, 30_000)))
        ra[:10_000] = gaia.table["ra"].to_numpy()[:10_000]
        dec[:10_000] = gaia.table["dec"].to_numpy()[:10_000]
        remote = client.crossmatch(ra, dec, catalog="gaia_dr3", radius=2.0, batch_size=7_000,
                                   columns=["source_id"], arrow=True)
        local = gaia.crossmatch(ra, dec, radius=2.0, columns=["source_id"])
        assert remote.equals(local)
        table = client.crossmatch(ra[:5], dec[:5], catalog="gaia_dr3", radius=2.0, mode="k",
                                  k=2)
        assert "separation_arcsec" in table.colnames and len(table) >= 5  # astropy Table


def test_cli_through_the_server(server, tmp_path):
    address, data, _ = server
    cone = subprocess.run([sys.executable, "-m", "xmatch", "cone", "hipparcos2", "269.448503",
                           "4.739420", "--radius", "5arcsec", "--epoch", "2016.0", "--server",
                           address, "--format", "csv"], capture_output=True, text=True,
                          check=True)
    assert "87937" in cone.stdout  # Barnard's star
    queries = tmp_path / "queries.csv"
    queries.write_text("name,ra,dec\nalcyone,56.871152,24.105136\nnowhere,10.0,-5.0\n")
    for via in (["--server", address], ["--data", str(data)]):
        out = tmp_path / f"out{len(via[0])}.csv"
        subprocess.run([sys.executable, "-m", "xmatch", "crossmatch", str(queries),
                        "--catalog", "gaia_dr3", "--radius", "2arcsec", "--columns",
                        "source_id", "--out", str(out), *via], check=True, capture_output=True)
        lines = out.read_text().splitlines()
        assert lines[0].startswith("name,ra,dec,match_rank,source_id,separation_arcsec")
        assert lines[1].startswith("alcyone,") and "66714384142368256" in lines[1]
        assert lines[2].startswith("nowhere,") and lines[2].endswith(",,,")  # left join
    bad = subprocess.run([sys.executable, "-m", "xmatch", "cone", "nope", "1", "2", "--radius",
                          "1arcsec", "--server", address], capture_output=True, text=True)
    assert bad.returncode == 2 and "NOT_FOUND: no catalog 'nope' here" in bad.stderr
    gone = subprocess.run([sys.executable, "-m", "xmatch", "cone", "gaia_dr3", "1", "2",
                           "--radius", "1arcsec", "--server", "127.0.0.1:1"],
                          capture_output=True, text=True)
    assert gone.returncode == 2 and "cannot reach the server at 127.0.0.1:1" in gone.stderr


def test_sigterm_drains_and_exits(server):
    _, _, process = server
    os.kill(process.pid, signal.SIGTERM)
    out, _ = process.communicate(timeout=60)
    assert process.returncode == 0
    assert "stopping (health NOT_SERVING" in out and "stopped" in out
