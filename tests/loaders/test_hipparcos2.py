"""Hipparcos 2 loader: fixed-width parse checked against a plain whitespace split of the
same file and against the original Hipparcos catalogue (ESA 1997) for the bright stars."""

import gzip

import numpy as np
import pyarrow.compute as pc
import pytest
from astropy.coordinates import SkyCoord

from conftest import shared_file
from xmatch import LoadError
from xmatch.loaders.hipparcos2 import package_file, parse_hip2


@pytest.fixture(scope="module")
def hip2():
    with open(package_file(), "rb") as handle:
        raw = handle.read()
    return raw, parse_hip2(raw, package_file())


def test_every_record_parses_as_a_whitespace_split_does(hip2):
    raw, table = hip2
    assert table.num_rows == 117_955
    fields = np.array([line.split()[:26] for line in raw.decode().splitlines()], dtype=float)
    np.testing.assert_array_equal(table["hip"].to_numpy(), fields[:, 0])
    np.testing.assert_array_equal(table["ra"].to_numpy(), np.degrees(fields[:, 4]))
    np.testing.assert_array_equal(table["dec"].to_numpy(), np.degrees(fields[:, 5]))
    for column, index in (("parallax", 6), ("pmra", 7), ("pmdec", 8)):
        np.testing.assert_array_equal(table[column].to_numpy(), fields[:, index])
    for column, index in (("ra_error", 9), ("dec_error", 10), ("parallax_error", 11),
                          ("pmra_error", 12), ("pmdec_error", 13), ("n_transits", 14),
                          ("hpmag", 19), ("hpmag_error", 20), ("b_v", 23), ("b_v_error", 24),
                          ("v_i", 25), ("solution_type", 1)):
        np.testing.assert_allclose(table[column].to_numpy(), fields[:, index], rtol=1e-6,
                                   err_msg=column)


def test_positions_agree_with_the_original_hipparcos_catalogue(hip2):
    _, table = hip2
    lines = gzip.open(shared_file("catalogs/hip_main.dat.gz"), "rt").read().splitlines()
    fields = [line.split("|") for line in lines if line.split("|")[8].strip()]
    hip = np.array([int(f[1]) for f in fields])
    ra = np.array([float(f[8]) for f in fields])
    dec = np.array([float(f[9]) for f in fields])
    ours = table["hip"].to_numpy()
    index = np.searchsorted(ours, hip)
    assert np.all(ours[index] == hip), "every HIP of the excerpt is in Hipparcos 2"
    separation = SkyCoord(ra, dec, unit="deg").separation(SkyCoord(
        table["ra"].to_numpy()[index], table["dec"].to_numpy()[index], unit="deg")).arcsec
    # Same epoch (J1991.25) and frame; the 2007 re-reduction moves stars by mas.
    assert len(hip) > 9000
    assert np.median(separation) < 0.005 and np.percentile(separation, 99) < 0.02
    assert separation.max() < 0.5


def test_vega(hip2):
    _, table = hip2
    vega = table.filter(pc.equal(table["hip"], 91262)).to_pylist()[0]
    assert vega["ra"] == pytest.approx(279.2341, abs=1e-4)
    assert vega["dec"] == pytest.approx(38.7830, abs=1e-4)
    assert vega["pmra"] == pytest.approx(200.94, abs=0.01)
    assert vega["parallax"] == pytest.approx(130.23, abs=0.01)


def test_truncated_and_garbled_records_are_located(hip2):
    raw, _ = hip2
    lines = raw.split(b"\n")
    cut = b"\n".join(lines[:10] + [lines[10][:100]] + lines[11:20])
    with pytest.raises(LoadError,
                       match=r"hip2.dat, row 11: record has 100 characters, at least 171"):
        parse_hip2(cut, "hip2.dat")
    garbled = bytearray(b"\n".join(lines[:20]))
    start = sum(len(line) + 1 for line in lines[:4]) + 52  # pmRA of record 5
    garbled[start:start + 8] = b"  ab.cd "
    with pytest.raises(LoadError, match=r"row 5, column 'pmra': value 'ab.cd' is not a number"):
        parse_hip2(bytes(garbled), "hip2.dat")
    with pytest.raises(LoadError, match="contains no data rows"):
        parse_hip2(b"", "hip2.dat")
