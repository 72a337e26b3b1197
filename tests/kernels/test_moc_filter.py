"""MOC filter (order-29 ranges) against mocpy.MOC.contains_lonlat."""

import astropy.units as u
import cdshealpix.nested
import numpy as np
import pyarrow as pa
import pytest
from astropy.coordinates import Latitude, Longitude
from hypothesis import given, settings
from hypothesis import strategies as st
from mocpy import MOC

from xmatch.index import SkyIndex, moc_contains


def random_moc(rng, n_cells):
    """Cells at mixed orders 0-29 (overlaps merged by mocpy), plus a few clustered fine ones."""
    depth = rng.integers(0, 30, n_cells)
    ipix = (rng.random(n_cells) * 12 * 4.0**depth).astype(np.uint64)
    return MOC.from_healpix_cells(ipix, depth.astype(np.uint8), 29)


def positions(rng, n):
    ra = rng.uniform(0, 360, n)
    dec = np.degrees(np.arcsin(rng.uniform(-1, 1, n)))
    edges = np.array([[0.0, 0.0], [360.0, 0.0], [0.0, 90.0], [0.0, -90.0], [45.0, 41.8103149]])
    return np.concatenate([edges[:, 0], ra]), np.concatenate([edges[:, 1], dec])


def mocpy_contains(moc, ra, dec):
    return moc.contains_lonlat(Longitude(ra % 360, u.deg), Latitude(dec, u.deg))


@settings(max_examples=60, derandomize=True, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_cells=st.integers(1, 300))
def test_moc_contains_equals_mocpy(seed, n_cells):
    rng = np.random.default_rng(seed)
    moc = random_moc(rng, n_cells)
    ra, dec = positions(rng, 5000)
    # Points inside the MOC's own cells (centres of random order-29 pixels in its ranges),
    # so that both answers are well exercised.
    ranges = moc.to_depth29_ranges.astype(np.int64)
    pick = rng.integers(0, len(ranges), 2000)
    pixels = ranges[pick, 0] + (rng.random(2000) * (ranges[pick, 1] - ranges[pick, 0])).astype(
        np.int64)
    lon, lat = cdshealpix.nested.healpix_to_lonlat(pixels.astype(np.uint64), 29)
    ra = np.concatenate([ra, lon.deg])
    dec = np.concatenate([dec, lat.deg])
    ours = moc_contains(moc.to_depth29_ranges, ra, dec)
    expected = mocpy_contains(moc, ra, dec)
    assert expected[-2000:].all()
    np.testing.assert_array_equal(ours, expected)


def test_rows_in_moc_equal_mocpy_on_an_index():
    rng = np.random.default_rng(1)
    ra, dec = positions(rng, 200_000)
    index = SkyIndex.from_table(pa.table({"ra": ra, "dec": dec, "row": np.arange(len(ra))}))
    for moc in (MOC.from_str("3/1-5 4/120 9/1000-1500 29/1234567"), random_moc(rng, 500),
                MOC.from_str("0/0-11")):
        rows = index.moc_search(moc.to_depth29_ranges, columns=["row"])["row"].to_numpy()
        expected = np.flatnonzero(mocpy_contains(moc, ra, dec))
        np.testing.assert_array_equal(np.sort(rows), expected)
    empty = index.moc_search(np.empty((0, 2), dtype=np.int64))
    assert empty.num_rows == 0


def test_bad_ranges_are_rejected():
    with pytest.raises(ValueError, match="sorted, disjoint"):
        moc_contains([[5, 3]], [1.0], [2.0])
    with pytest.raises(ValueError, match=r"\(n, 2\) array"):
        moc_contains([1, 2, 3], [1.0], [2.0])
    with pytest.raises(ValueError, match="sorted, disjoint"):
        moc_contains([[0, 10], [5, 20]], [1.0], [2.0])
