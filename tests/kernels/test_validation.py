"""Invalid arguments raise InputError (a ValueError) with a message saying what is allowed;
every form of positions users hand in is read alike."""

import astropy.units as u
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from astropy.coordinates import Angle, SkyCoord
from astropy.table import Column, MaskedColumn, Table

from xmatch import InputError, SkyIndex
from xmatch.index import moc_contains, propagate
from xmatch.sky import coords


@pytest.fixture(scope="module")
def index():
    rng = np.random.default_rng(0)
    return SkyIndex.from_table(pa.table({"ra": rng.uniform(0, 360, 100),
                                         "dec": rng.uniform(-90, 90, 100)}))


@pytest.mark.parametrize("ra, dec, message", [
    ([np.nan], [0.0], r"ra is missing \(empty, null or NaN\); every row needs one"),
    ([1.0, 400.0], [0.0, 0.0], r"ra = 400\.0 \(at position 1\) is not allowed; ra must be "
                               r"finite and within 0\.\.360 deg"),
    ([-1.0], [0.0], r"ra = -1\.0 is not allowed"),
    ([1.0], [90.5], r"dec = 90\.5 is not allowed; dec must be finite and within -90\.\.90 deg"),
    ([1.0], [np.inf], r"dec = inf is not allowed"),
    ([1.0, 2.0], [0.0], r"array lengths differ \(ra has 2, dec has 1\)"),
    (["abc"], [0.0], r"ra = 'abc' is not an angle; give degrees"),
    ([1.0, None], [0.0, 1.0], r"ra is missing \(empty, null or NaN\); every row needs one "
                              r"\(at position 1\)"),
    ([1.0], [""], r"dec is missing"),
    (pa.array([1.0, None]), pa.array([0.0, 0.0]), r"ra is missing .* \(at position 1\)"),
    (MaskedColumn([1.0, 2.0], mask=[False, True]), [0.0, 0.0], r"ra is missing .*position 1"),
    (pd.Series([1.0, np.nan]), pd.Series([0.0, 0.0]), r"ra is missing .*position 1"),
    (Column([1.0], unit="m"), [0.0], r"ra has unit m, not an angle"),
])
def test_bad_positions(index, ra, dec, message):
    with pytest.raises(InputError, match=message):
        index.crossmatch(ra, dec, radius_arcsec=1.0)


def test_every_position_form_reads_alike():
    """numpy, lists, astropy Column (with and without a unit), MaskedColumn without masked
    values, Quantity, Angle, SkyCoord, pandas Series, pyarrow arrays and sexagesimal strings:
    the same degrees."""
    ra = np.array([0.0, 56.75, 359.999, 180.0])
    dec = np.array([-90.0, 24.12, 0.0, 89.5])
    table = Table({"ra": Column(ra, unit="deg"), "dec": Column(dec, unit="deg")})
    forms = [
        (ra, dec), (list(ra), list(dec)), (table["ra"], table["dec"]),
        (Column(ra), Column(dec)), (MaskedColumn(ra), MaskedColumn(dec)),
        (ra * u.deg, dec * u.deg), (Angle(ra * 60, u.arcmin), Angle(dec, u.deg)),
        (SkyCoord(ra, dec, unit="deg"), None), (pd.Series(ra), pd.Series(dec)),
        (pa.array(ra), pa.array(dec)), (pa.chunked_array([ra[:2], ra[2:]]), pa.array(dec)),
        (np.radians(ra) * u.rad, np.radians(dec) * u.rad),
    ]
    for got_ra, got_dec in forms:
        r, d, _ = coords.positions(got_ra, got_dec)
        np.testing.assert_allclose(r, ra, rtol=0, atol=1e-12, err_msg=str(type(got_ra)))
        np.testing.assert_allclose(d, dec, rtol=0, atol=1e-12)
    # Sexagesimal: right ascension in hours unless a unit says otherwise.
    r, d, _ = coords.positions(["03:47:00", "3 47 00", "03h47m00s", "56.75", "56d45m"],
                               ["+24:07:12", "24 07 12", "24d07m12s", "24.12", "24.12"])
    np.testing.assert_allclose(r, 56.75, atol=1e-12)
    np.testing.assert_allclose(d, 24.12, atol=1e-12)
    # A SkyCoord in another frame is converted to ICRS; its obstime is the epoch.
    galactic = SkyCoord(l=[10.0] * u.deg, b=[20.0] * u.deg, frame="galactic")
    r, d, epoch = coords.positions(galactic)
    icrs = galactic.icrs
    assert abs(r[0] - icrs.ra.deg) < 1e-12 and abs(d[0] - icrs.dec.deg) < 1e-12
    assert epoch is None


@pytest.mark.parametrize("radius, message", [
    (-1.0, r"radius_arcsec = -1\.0 is not allowed; radius_arcsec must be finite, above 0 and "
           r"at most 180 deg"),
    (0.0, r"radius_arcsec = 0\.0 is not allowed"),
    (180 * 3600 + 1, r"radius_arcsec = 648001\.0 is not allowed"),
    (np.nan, r"radius_arcsec = nan is not allowed"),
    (181 * u.deg, r"radius_arcsec = 651600\.0 is not allowed"),
    (3 * u.m, r"radius has unit m, not an angle"),
    ("five", r"radius = 'five' is not a number of arcsec"),
    ([1.0, 2.0, 3.0], r"array lengths differ \(positions has 2, radius has 3\)"),
])
def test_bad_radius(index, radius, message):
    with pytest.raises(InputError, match=message):
        index.crossmatch([1.0, 2.0], [0.0, 0.0], radius_arcsec=radius)


@pytest.mark.parametrize("text, expected", [("5arcsec", 5.0), ("1.5 arcmin", 90.0),
                                            ("0.1deg", 360.0), ('3"', 3.0), ("2'", 120.0)])
def test_radius_text_needs_its_unit(text, expected):
    assert coords.radius_of_text(text) == pytest.approx(expected)


@pytest.mark.parametrize("text, message", [("2", "radius '2' has no unit; write 2arcsec"),
                                           ("0arcsec", "radius_arcsec = 0.0 is not allowed"),
                                           ("five", "radius 'five' is not an angle"),
                                           ("3 m", "radius '3 m' is not an angle")])
def test_bad_radius_text(text, message):
    with pytest.raises(InputError, match=message):
        coords.radius_of_text(text)


def test_bad_mode_k_limit_epoch_and_columns(index):
    with pytest.raises(InputError, match="mode = 'best' is not allowed; mode must be one of "
                                         "nearest, k, all"):
        index.crossmatch([1.0], [0.0], radius_arcsec=1.0, mode="best")
    for k in (0, -3, 1.5, True):
        with pytest.raises(InputError, match=r"k = .* is not allowed; k must be an integer >= 1"):
            index.crossmatch([1.0], [0.0], radius_arcsec=1.0, mode="k", k=k)
    with pytest.raises(InputError, match=r"k = 3 applies to mode 'k' only"):
        index.crossmatch([1.0], [0.0], radius_arcsec=1.0, mode="all", k=3)
    with pytest.raises(InputError, match=r"limit = 0 is not allowed; limit must be an integer"):
        index.cone_search(1.0, 0.0, 1.0, limit=0)
    with pytest.raises(InputError, match=r"epoch = nan is not allowed"):
        index.crossmatch([1.0], [0.0], radius_arcsec=1.0, epoch=np.nan)
    with pytest.raises(InputError, match=r"unknown column\(s\) \['nope'\]; catalog has: ra, dec"):
        index.crossmatch([1.0], [0.0], radius_arcsec=1.0, columns=["nope"])
    with pytest.raises(InputError, match="columns must be a list of names, not the string"):
        index.crossmatch([1.0], [0.0], radius_arcsec=1.0, columns="ra")
    with pytest.raises(InputError, match="a cone has one centre, not 2"):
        index.cone_search([1.0, 2.0], [0.0, 0.0], 1.0)
    with pytest.raises(InputError, match="a cone needs its radius"):
        index.cone_search(1.0, 0.0)
    with pytest.raises(InputError, match="give positions as a SkyCoord"):
        index.crossmatch([1.0], radius_arcsec=1.0)
    with pytest.raises(InputError, match="give radius_arcsec: catalog has no default"):
        index.crossmatch([1.0], [0.0])
    with pytest.raises(InputError, match="epoch applies to cones and cross-matches"):
        index.search(__import__("xmatch").Moc.of("3/1-5"), epoch=2000.0)


def test_bad_propagation_and_moc_inputs():
    with pytest.raises(InputError, match=r"array lengths differ \(positions has 2, pmra has 3\)"):
        propagate([1.0, 2.0], [0.0, 0.0], [1.0, 2.0, 3.0], [1.0, 2.0], 2000, 2010)
    with pytest.raises(InputError, match=r"dec = 91\.0 is not allowed"):
        moc_contains([[0, 10]], [1.0], [91.0])


def test_the_index_keeps_serving_after_bad_requests(index):
    for _ in range(3):
        with pytest.raises(InputError):
            index.crossmatch([np.nan], [0.0], radius_arcsec=1.0)
    assert index.crossmatch([1.0], [0.0], radius_arcsec=3600.0 * 180).num_rows == 1
