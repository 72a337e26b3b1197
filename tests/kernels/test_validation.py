"""Invalid arguments raise ValueError with a message saying what is allowed."""

import astropy.units as u
import numpy as np
import pyarrow as pa
import pytest

from xmatch.index import SkyIndex, moc_contains, propagate


@pytest.fixture(scope="module")
def index():
    rng = np.random.default_rng(0)
    return SkyIndex.from_table(pa.table({"ra": rng.uniform(0, 360, 100),
                                         "dec": rng.uniform(-90, 90, 100)}))


@pytest.mark.parametrize("ra, dec, message", [
    ([np.nan], [0.0], r"ra = nan is not allowed; ra must be finite and within 0\.\.360 deg"),
    ([1.0, 400.0], [0.0, 0.0], r"ra = 400\.0 \(at position 1\) is not allowed"),
    ([-1.0], [0.0], r"ra = -1\.0 is not allowed"),
    ([1.0], [90.5], r"dec = 90\.5 is not allowed; dec must be finite and within -90\.\.90 deg"),
    ([1.0], [np.inf], r"dec = inf is not allowed"),
    ([1.0, 2.0], [0.0], r"array lengths differ \(ra has 2, dec has 1\)"),
])
def test_bad_positions(index, ra, dec, message):
    with pytest.raises(ValueError, match=message):
        index.crossmatch(ra, dec, radius=1.0)


@pytest.mark.parametrize("radius, message", [
    (-1.0, r"radius = -1\.0 is not allowed; radius must be finite and within 0\.\.180 deg"),
    (180 * 3600 + 1, r"radius = 648001\.0 is not allowed"),
    (np.nan, r"radius = nan is not allowed"),
    (181 * u.deg, r"radius = 651600\.0 is not allowed"),
    ([1.0, 2.0, 3.0], r"array lengths differ \(positions has 2, radius has 3\)"),
])
def test_bad_radius(index, radius, message):
    with pytest.raises(ValueError, match=message):
        index.crossmatch([1.0, 2.0], [0.0, 0.0], radius=radius)


def test_bad_mode_k_limit_epoch_and_columns(index):
    with pytest.raises(ValueError, match="mode = 'best' is not allowed; mode must be one of "
                                         "nearest, k, all"):
        index.crossmatch([1.0], [0.0], radius=1.0, mode="best")
    for k in (0, -3, 1.5, True):
        with pytest.raises(ValueError, match=r"k = .* is not allowed; k must be an integer >= 1"):
            index.crossmatch([1.0], [0.0], radius=1.0, mode="k", k=k)
    with pytest.raises(ValueError, match=r"limit = 0 is not allowed; limit must be an integer"):
        index.cone(1.0, 0.0, 1.0, limit=0)
    with pytest.raises(ValueError, match=r"epoch = nan is not allowed"):
        index.crossmatch([1.0], [0.0], radius=1.0, epoch=np.nan)
    with pytest.raises(ValueError, match=r"unknown column\(s\) \['nope'\]; catalog has: ra, dec"):
        index.crossmatch([1.0], [0.0], radius=1.0, columns=["nope"])
    with pytest.raises(ValueError, match="cone takes one position"):
        index.cone([1.0, 2.0], [0.0, 0.0], 1.0)
    with pytest.raises(TypeError, match="give positions as a SkyCoord"):
        index.crossmatch([1.0], radius=1.0)


def test_bad_propagation_and_moc_inputs():
    with pytest.raises(ValueError, match=r"array lengths differ \(positions has 2, pmra has 3\)"):
        propagate([1.0, 2.0], [0.0, 0.0], [1.0, 2.0, 3.0], [1.0, 2.0], 2000, 2010)
    with pytest.raises(ValueError, match=r"dec = 91\.0 is not allowed"):
        moc_contains([[0, 10]], [1.0], [91.0])


def test_the_index_keeps_serving_after_bad_requests(index):
    for _ in range(3):
        with pytest.raises(ValueError):
            index.crossmatch([np.nan], [0.0], radius=1.0)
    assert index.crossmatch([1.0], [0.0], radius=3600.0 * 180).num_rows == 1
