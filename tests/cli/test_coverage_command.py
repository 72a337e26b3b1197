"""``xmatch coverage``, run through ``xmatch.cli.main`` on the session's data directory and
through a real embedded server: the MOC written is the cells mocpy finds at the catalog's
positions, the same bytes either way, in each IVOA MOC 2.0 form; bad input is one clear
line and exit code 2."""

from __future__ import annotations

import io
import json

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import Latitude, Longitude
from astropy.io import fits
from mocpy import MOC

from xmatch import open_catalog
from xmatch.cli import main
from xmatch.errors import out_of_range
from xmatch.service.embedded import running_server, served_catalogs
from xmatch.sky.moc import COVERAGE_ORDERS


def xmatch(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def server(session_data):
    with running_server(served_catalogs(session_data, load_defaults=False,
                                        names=["random", "hipparcos2"])) as address:
        yield address


def expected(session_data, name: str, order: int) -> MOC:
    table = open_catalog(name, session_data).read(columns=["ra", "dec"])
    return MOC.from_lonlat(Longitude(table["ra"].to_numpy(), u.deg),
                           Latitude(table["dec"].to_numpy(), u.deg), max_norder=order)


@pytest.mark.parametrize("suffix, fmt", [(".fits", "fits"), (".txt", "ascii"),
                                         (".json", "json")])
def test_each_format_from_the_data_directory_and_a_server(capsys, tmp_path, session_data,
                                                         server, suffix, fmt):
    want = expected(session_data, "random", 8)
    written = []
    for where in (["--data", session_data.root], ["--server", server]):
        out = tmp_path / f"{where[0][2:]}{suffix}"
        code, stdout, err = xmatch(capsys, "coverage", "random", "--order", 8, "--out", out,
                                   *where)
        assert code == 0, err
        cells = int(sum((b - a) >> 42 for a, b in want.to_depth29_ranges.astype(np.int64)))
        assert stdout.startswith(f"random: {cells:,} cells at order 8, ")
        assert stdout.rstrip().endswith(f"of the sky) -> {out}")
        written.append(out.read_bytes())
    assert written[0] == written[1]  # the same document, in process or from a server
    data = written[0]
    if fmt == "fits":
        got = MOC.from_fits(io.BytesIO(data))
        header = fits.open(io.BytesIO(data))[1].header
        assert (header["MOCVERS"], header["ORDERING"], header["MOCTYPE"]) == (
            "2.0", "RANGE", "CATALOG")
    elif fmt == "json":
        got = MOC.from_json(json.loads(data))
    else:
        got = MOC.from_str(data.decode())
    assert got == want and got.max_order == 8


def test_standard_output_and_format_over_suffix(capsys, tmp_path, session_data):
    code, out, err = xmatch(capsys, "coverage", "hipparcos2", "--order", 3, "--data",
                            session_data.root)
    assert code == 0 and MOC.from_str(out) == expected(session_data, "hipparcos2", 3)
    assert err.startswith("hipparcos2: ") and "cells at order 3" in err
    code, out, _ = xmatch(capsys, "coverage", "hipparcos2", "--order", 0, "--format", "json",
                          "--data", session_data.root)
    assert code == 0 and json.loads(out) == {"0": list(range(12))}
    path = tmp_path / "moc.txt"
    code, _, _ = xmatch(capsys, "coverage", "hipparcos2", "--order", 2, "--format", "json",
                        "--out", path, "--data", session_data.root)
    assert code == 0 and MOC.from_json(json.loads(path.read_text())).max_order == 2


@pytest.mark.parametrize("args, message", [
    (["--order", "14"], out_of_range("order", 14, None, COVERAGE_ORDERS)),
    (["--order", "1.5"], out_of_range("order", "1.5", None, COVERAGE_ORDERS)),
    ([], "the following arguments are required: --order"),
    (["--order", "5", "--format", "fits"], "a FITS MOC is binary: write it to a file with "
                                            "--out FILE"),
    (["--order", "5", "--out", "moc.png"], "cannot tell the MOC format of moc.png from its "
                                           "suffix"),
])
def test_bad_options_are_one_line(capsys, session_data, args, message):
    code, out, err = xmatch(capsys, "coverage", "random", *args, "--data", session_data.root)
    assert code == 2 and out == ""
    assert err.startswith("xmatch coverage: error: ") and message in err
    assert err.count("\n") == 1


def test_an_unknown_catalog_is_one_line(capsys, session_data, server):
    for where in (["--data", session_data.root], ["--server", server]):
        code, _, err = xmatch(capsys, "coverage", "nope", "--order", 5, *where)
        assert code == 2 and err.count("\n") == 1 and "nope" in err, err
