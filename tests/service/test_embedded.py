"""`xmatch serve` as a real process on a free loopback port: the Python client and the CLI
talk to it, answers equal the in-process kernels, and SIGTERM drains it cleanly."""

import os
import re
import signal
import subprocess
import sys
import time

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord

from xmatch import SkyIndex
from xmatch.cli import main
from xmatch.service.client import Client


@pytest.fixture(scope="module")
def server(session_data):
    """`xmatch serve` over the session's data directory, a real process (its signals are
    what is tested)."""
    process = subprocess.Popen([sys.executable, "-m", "xmatch", "serve", "--port", "0",
                                "--plaintext", "--data", str(session_data.root)],
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
    yield address, session_data.root, process
    if process.poll() is None:
        process.kill()
    process.communicate()


def test_client_answers_equal_in_process(server, default_catalogs):
    address, _, _ = server
    with Client(address) as client:
        names = {c["name"]: c for c in client.catalogs()}
        assert names["gaia_dr3"]["rows"] == 482_176
        assert client.describe("hipparcos2")["id_column"] == "hip"
        gaia = SkyIndex.from_catalog(default_catalogs["gaia_dr3"])
        cone = client.cone_search("gaia_dr3", SkyCoord(56.75, 24.12, unit="deg"),
                                  radius_arcsec=1 * u.deg, arrow=True)
        assert cone.equals(gaia.cone_search(56.75, 24.12, 3600.0))
        rng = np.random.default_rng(0)
        ra, dec = rng.uniform(0, 360, 30_000), np.degrees(np.arcsin(rng.uniform(-1, 1, 30_000)))
        ra[:10_000] = gaia.table["ra"].to_numpy()[:10_000]
        dec[:10_000] = gaia.table["dec"].to_numpy()[:10_000]
        remote = client.crossmatch("gaia_dr3", ra, dec, radius_arcsec=2.0, batch_size=7_000,
                                   columns=["source_id"], arrow=True)
        local = gaia.crossmatch(ra, dec, radius_arcsec=2.0, columns=["source_id"])
        assert remote.equals(local)
        table = client.crossmatch("gaia_dr3", ra[:5], dec[:5], radius_arcsec=2.0, mode="k",
                                  k=2)
        expected = gaia.crossmatch(ra[:5], dec[:5], radius_arcsec=2.0, mode="k", k=2)
        assert table.colnames == expected.column_names  # an astropy Table
        assert list(table["source_id"]) == expected["source_id"].to_pylist()
        assert list(table["match_rank"]) == expected["match_rank"].to_pylist()


def test_cli_through_the_server(server, tmp_path, capsys):
    address, data, _ = server
    assert main(["cone", "hipparcos2", "269.448503", "4.739420", "--radius", "5arcsec",
                 "--epoch", "2016.0", "--server", address, "--format", "csv"]) == 0
    assert "87937" in capsys.readouterr().out  # Barnard's star
    queries = tmp_path / "queries.csv"
    queries.write_text("name,ra,dec\nalcyone,56.871152,24.105136\nnowhere,10.0,-5.0\n")
    for via in (["--server", address], ["--data", str(data)]):
        out = tmp_path / f"out{len(via[0])}.csv"
        assert main(["crossmatch", str(queries), "--catalog", "gaia_dr3", "--radius", "2arcsec",
                     "--columns", "source_id", "--out", str(out), *via]) == 0
        lines = out.read_text().splitlines()
        assert lines[0] == ("row,name,ra,dec,match_rank,source_id,separation_arcsec,"
                            "position_angle_deg")
        assert lines[1].startswith("1,alcyone,") and "66714384142368256" in lines[1]
        assert lines[2] == "2,nowhere,10.0,-5.0,,,,"  # the left join keeps it
    capsys.readouterr()
    assert main(["cone", "nope", "1", "2", "--radius", "1arcsec", "--server", address]) == 2
    assert "NOT_FOUND: no catalog 'nope' here" in capsys.readouterr().err
    assert main(["cone", "gaia_dr3", "1", "2", "--radius", "1arcsec", "--server",
                 "127.0.0.1:1"]) == 2
    assert capsys.readouterr().err.startswith(
        "xmatch cone: error: UNAVAILABLE: cannot reach an xmatch server at 127.0.0.1:1")


def test_a_second_serve_on_the_same_port_is_refused(server, session_data):
    """Refused in one line, before indexing anything: the first server goes on."""
    address, _, _ = server
    second = subprocess.run([sys.executable, "-m", "xmatch", "serve", "--plaintext",
                             "--port", address.rsplit(":", 1)[1], "--data", str(session_data.root)],
                            capture_output=True, text=True, timeout=300)
    assert second.returncode == 2 and second.stdout == ""
    assert second.stderr == (
        f"xmatch serve: error: cannot listen on {address}: the port is in use (another "
        "xmatch server?); choose another with --port (0: any free port)\n")
    with Client(address) as client:
        assert client.catalogs()


def test_sigterm_drains_and_exits(server):
    _, _, process = server
    os.kill(process.pid, signal.SIGTERM)
    out, _ = process.communicate(timeout=60)
    assert process.returncode == 0
    assert "stopping (health NOT_SERVING" in out and "stopped" in out
