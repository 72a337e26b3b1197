"""The xmatch command line, run as a user runs it: a real process."""

import json
import os
import subprocess
import sys

import pyarrow.parquet as pq
import pytest
from astropy.table import Table

from conftest import random_sky_table


def xmatch(*args, data=None, check=True):
    env = dict(os.environ)
    if data is not None:
        env["XMATCH_DATA"] = str(data)
    done = subprocess.run([sys.executable, "-m", "xmatch", *args], capture_output=True,
                          text=True, env=env, timeout=300)
    if check:
        assert done.returncode == 0, done.stderr
    return done


@pytest.fixture(scope="module")
def gcvs_data(tmp_path_factory):
    data = tmp_path_factory.mktemp("cli")
    out = xmatch("load", "gcvs", "--no-progress", data=data)
    assert "gcvs: 59,099 rows" in out.stdout
    return data


def test_help_lists_every_command():
    out = xmatch("--help").stdout
    for command in ("demo", "load", "list", "info", "verify", "cone", "specs", "loaders"):
        assert command in out
    assert "--skip-invalid" in xmatch("load", "--help").stdout


def test_list_info_verify(gcvs_data):
    assert "gcvs" in xmatch("list", data=gcvs_data).stdout
    info = json.loads(xmatch("info", "gcvs", "--json", data=gcvs_data).stdout)
    assert info["rows"] == 59_099 and info["columns"]["VarType"] == "string"
    assert info["provenance"]["sources"][0]["rows_read"] == 59_099
    assert "rows" in xmatch("info", "gcvs", data=gcvs_data).stdout
    assert "intact" in xmatch("verify", "gcvs", data=gcvs_data).stdout


@pytest.mark.parametrize("fmt", ["csv", "ecsv", "json", "votable", "parquet", "table"])
def test_cone_formats(gcvs_data, tmp_path, fmt):
    out = tmp_path / f"rr.{fmt}"
    xmatch("cone", "gcvs", "291.36588", "42.784363", "--radius", "0.5arcmin", "--format", fmt,
           "--out", str(out), data=gcvs_data)
    if fmt == "parquet":
        table = pq.read_table(out).to_pylist()
    elif fmt == "json":
        table = json.loads(out.read_text())
    elif fmt == "table":
        assert "RRAB" in out.read_text()
        return
    else:
        table = Table.read(out, format={"csv": "ascii.csv", "ecsv": "ascii.ecsv",
                                        "votable": "votable"}[fmt])
        table = [dict(zip(table.colnames, row, strict=True)) for row in table]
    assert table[0]["VarType"] == "RRAB" and table[0]["separation_arcsec"] < 2


def test_errors_are_clear_and_exit_2(gcvs_data, tmp_path):
    bad = xmatch("cone", "gcvs", "10", "95", "--radius", "5arcsec", data=gcvs_data, check=False)
    assert bad.returncode == 2
    assert "dec = 95.0 is not allowed; dec must be finite and within -90..90 deg" in bad.stderr
    bad = xmatch("cone", "gcvs", "10", "5", "--epoch", "soon", data=gcvs_data, check=False)
    assert bad.returncode == 2 and "'soon' is not an epoch" in bad.stderr
    bad = xmatch("cone", "nope", "10", "5", data=gcvs_data, check=False)
    assert bad.returncode == 2 and "no catalog 'nope'" in bad.stderr
    bad = xmatch("cone", "gcvs", "10", "5", "--radius", "five", data=gcvs_data, check=False)
    assert bad.returncode == 2 and "'five' is not an angle" in bad.stderr
    frame = random_sky_table(100).to_pandas().drop(columns=["ra"])
    frame.to_csv(tmp_path / "nora.csv", index=False)
    spec = tmp_path / "s.toml"
    spec.write_text('name = "s"\n[columns]\nid = "id"\nra = "ra"\ndec = "dec"\n')
    bad = xmatch("load", "--spec", str(spec), "--from", str(tmp_path / "nora.csv"),
                 data=gcvs_data, check=False)
    assert bad.returncode == 2
    assert "nora.csv, column 'ra': required column 'ra' is missing" in bad.stderr
    bad = xmatch("load", "unknown_catalog", data=gcvs_data, check=False)
    assert bad.returncode == 2 and "not a bundled catalog" in bad.stderr


@pytest.mark.slow
def test_demo_loads_defaults_and_answers_cones(tmp_path):
    out = xmatch("demo", data=tmp_path).stdout
    assert "gaia_dr3: 482,176 rows" in out and "hipparcos2: 117,955 rows" in out
    assert "cone hipparcos2 around Vega" in out and "91262" in out
    assert "Barnard's star at its Gaia J2016.0 position" in out and "87937" in out
    assert "embedded gRPC server on 127.0.0.1:" in out
    assert "cross-match of 8 Hipparcos 2 stars, moved to J2016.0" in out
    again = xmatch("demo", data=tmp_path).stdout
    assert "loaded:" not in again  # second run reuses the published catalogs


def test_output_cut_short_by_the_reader_is_not_an_error(gcvs_data):
    env = dict(os.environ, XMATCH_DATA=str(gcvs_data))
    command = f"{sys.executable} -m xmatch cone gcvs 10 20 --radius 60deg --format csv | head -1"
    done = subprocess.run(command,
                          shell=True, capture_output=True, text=True, env=env, timeout=120)
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr

