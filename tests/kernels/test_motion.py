"""Epoch propagation against astropy's apply_space_motion (erfa pmsafe), and cross-matches
of catalogs with proper motions at other epochs."""

import warnings

import astropy.units as u
import numpy as np
import pyarrow as pa
import pytest
from astropy.coordinates import SkyCoord
from astropy.time import Time

from xmatch.index import SkyIndex, propagate
from xmatch.index.sky_index import REINDEX_MIN_QUERIES
from xmatch.loaders.hipparcos2 import package_file, parse_hip2


def astropy_moved(ra, dec, pmra, pmdec, parallax, rv, start, end):
    coords = SkyCoord(ra * u.deg, dec * u.deg, distance=(1000 / parallax) * u.pc,
                      pm_ra_cosdec=pmra * u.mas / u.yr, pm_dec=pmdec * u.mas / u.yr,
                      radial_velocity=rv * u.km / u.s,
                      obstime=Time(start, format="jyear", scale="tcb"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # erfa warns about dubious years, not our concern
        return coords.apply_space_motion(new_obstime=Time(end, format="jyear", scale="tcb"))


@pytest.fixture(scope="module")
def hip2():
    with open(package_file(), "rb") as handle:
        table = parse_hip2(handle.read(), package_file())
    return {name: table[name].to_numpy(zero_copy_only=False).astype(float)
            for name in ("hip", "ra", "dec", "pmra", "pmdec", "parallax")}


def test_hipparcos_to_gaia_epoch_equals_astropy(hip2):
    """Every Hipparcos 2 star with a positive parallax, J1991.25 -> J2016.0."""
    ok = hip2["parallax"] > 0
    ra, dec, pmra, pmdec, parallax = (hip2[c][ok] for c in ("ra", "dec", "pmra", "pmdec",
                                                           "parallax"))
    expected = astropy_moved(ra, dec, pmra, pmdec, parallax, 0.0, 1991.25, 2016.0)
    moved_ra, moved_dec = propagate(ra, dec, pmra, pmdec, 1991.25, 2016.0, parallax=parallax)
    error = expected.separation(SkyCoord(moved_ra, moved_dec, unit="deg")).to_value(u.mas)
    assert error.max() < 0.01  # measured 0.004 mas (erfa also models light time)
    # The motion is real: positions moved by up to arcminutes.
    moved = SkyCoord(ra, dec, unit="deg").separation(SkyCoord(moved_ra, moved_dec, unit="deg"))
    assert moved.arcsec.max() > 60


def test_perspective_acceleration_equals_astropy():
    """Nearby fast stars with radial velocities (where mu_r matters) over 25 and 100 yr."""
    rng = np.random.default_rng(0)
    n = 2000
    ra, dec = rng.uniform(0, 360, n), np.degrees(np.arcsin(rng.uniform(-1, 1, n)))
    parallax, rv = rng.uniform(10, 800, n), rng.uniform(-150, 150, n)
    pmra, pmdec = rng.normal(0, 3000, n), rng.normal(0, 3000, n)
    for years, allowed_mas in ((25, 0.5), (100, 5)):
        expected = astropy_moved(ra, dec, pmra, pmdec, parallax, rv, 2016.0, 2016.0 + years)
        moved = propagate(ra, dec, pmra * u.mas / u.yr, pmdec * u.mas / u.yr, 2016.0,
                          Time(2016.0 + years, format="jyear", scale="tcb"),
                          parallax=parallax * u.mas, radial_velocity=rv * u.km / u.s)
        error = expected.separation(SkyCoord(*moved, unit="deg")).to_value(u.mas)
        assert error.max() < allowed_mas  # light time, which the catalogues' model omits
        linear = expected.separation(SkyCoord(*propagate(ra, dec, pmra, pmdec, 2016.0,
                                                         2016.0 + years), unit="deg"))
        assert linear.to_value(u.mas).max() > 100 * allowed_mas  # mu_r is not negligible here


def test_null_proper_motion_stays_put():
    ra, dec = propagate([10.0, 20.0], [5.0, -5.0], [np.nan, 100.0], [np.nan, 0.0], 2000, 2010)
    assert ra[0] == pytest.approx(10.0, abs=1e-12) and dec[0] == pytest.approx(5.0, abs=1e-12)
    assert ra[1] > 20.0


@pytest.mark.parametrize("n_queries", [REINDEX_MIN_QUERIES // 2, 20_000])
def test_catalog_with_proper_motion_matched_at_query_epochs(hip2, n_queries):
    """Queries at Hipparcos stars' astropy-propagated positions at various epochs find
    their star; with many queries the index is re-sorted at the batch epoch, with few it is
    searched wider: both give the same answers."""
    ok = hip2["parallax"] > 0
    table = pa.table({name: values[ok] for name, values in hip2.items()})
    index = SkyIndex.from_table(table, pmra="pmra", pmdec="pmdec", parallax="parallax",
                                epoch=1991.25)
    rng = np.random.default_rng(n_queries)
    rows = rng.choice(table.num_rows, n_queries, replace=False)
    epochs = rng.uniform(2015.0, 2030.0, n_queries)
    expected = astropy_moved(*(table[c].to_numpy()[rows] for c in ("ra", "dec", "pmra",
                                                                   "pmdec", "parallax")),
                             0.0, 1991.25, 2016.0)
    # Each query at its own epoch: move the astropy position on to that epoch too.
    coords = SkyCoord(expected.ra, expected.dec, pm_ra_cosdec=expected.pm_ra_cosdec,
                      pm_dec=expected.pm_dec, distance=expected.distance,
                      radial_velocity=0 * u.km / u.s,
                      obstime=Time(2016.0, format="jyear", scale="tcb"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        at_epochs = coords.apply_space_motion(
            dt=(epochs - 2016.0) * u.year)
    result = index.crossmatch(at_epochs.ra.deg, at_epochs.dec.deg, radius_arcsec=0.05,
                              epoch=epochs)
    np.testing.assert_array_equal(result["hip"].to_numpy(), table["hip"].to_numpy()[rows])
    assert bool(index._epoch_copies) == (n_queries >= REINDEX_MIN_QUERIES)
    assert np.nanmax(result["separation_arcsec"].to_numpy()) < 1e-4  # 0.1 mas
    # Without the epochs, fast stars are missed.
    unmoved = index.crossmatch(at_epochs.ra.deg, at_epochs.dec.deg, radius_arcsec=0.05)
    assert unmoved["hip"].null_count > 0.3 * n_queries


def test_a_batch_at_one_epoch_searches_a_copy_moved_there(hip2):
    """All queries at one epoch (a catalog's, in a join): the index searched is a copy
    with every row moved there and no motion left. Same stars as astropy's propagation,
    ``ra_at_epoch``/``dec_at_epoch`` where astropy puts them, both poles and RA 0 among
    the queries."""
    ok = hip2["parallax"] > 0
    table = pa.table({name: values[ok] for name, values in hip2.items()})
    index = SkyIndex.from_table(table, pmra="pmra", pmdec="pmdec", parallax="parallax",
                                epoch=1991.25)
    rng = np.random.default_rng(4)
    rows = np.r_[np.argsort(table["dec"].to_numpy())[[0, 1, -2, -1]],
                 np.argsort(table["ra"].to_numpy())[[0, 1, -2, -1]],
                 rng.choice(table.num_rows, 8000, replace=False)]
    expected = astropy_moved(*(table[c].to_numpy()[rows] for c in ("ra", "dec", "pmra",
                                                                   "pmdec", "parallax")),
                             0.0, 1991.25, 2026.0)
    result = index.crossmatch(expected.ra.deg, expected.dec.deg, radius_arcsec=0.05,
                              epoch=2026.0)
    assert (2026.0, "fixed") in index._epoch_copies
    np.testing.assert_array_equal(result["hip"].to_numpy(), table["hip"].to_numpy()[rows])
    assert np.nanmax(result["separation_arcsec"].to_numpy()) < 1e-4  # 0.1 mas
    moved = SkyCoord(result["ra_at_epoch"].to_numpy(), result["dec_at_epoch"].to_numpy(),
                     unit="deg")
    assert moved.separation(expected).arcsec.max() < 1e-4
    # The same answers as the rows moved candidate by candidate (epochs a hair apart).
    epochs = np.full(len(rows), 2026.0)
    epochs[0] = 2026.0 + 1e-9
    one_by_one = index.crossmatch(expected.ra.deg, expected.dec.deg, radius_arcsec=0.05,
                                  epoch=epochs)
    assert one_by_one["hip"].to_pylist() == result["hip"].to_pylist()
    np.testing.assert_allclose(one_by_one["separation_arcsec"].to_numpy(),
                               result["separation_arcsec"].to_numpy(), atol=1e-7)  # 0.1 uas


def test_rows_without_epoch_are_not_moved():
    index = SkyIndex.from_table(pa.table({"ra": [10.0], "dec": [0.0], "pmra": [1e6],
                                          "pmdec": [0.0]}), pmra="pmra", pmdec="pmdec",
                                epoch=2000.0)
    assert index.crossmatch([10.0], [0.0], radius_arcsec=1.0)["ra"].to_pylist() == [10.0]
    moved = index.crossmatch([10.0], [0.0], radius_arcsec=1.0, epoch=2001.0)
    assert moved["ra"].null_count == 1  # a million mas/yr: it has left the cone
    with pytest.raises(ValueError, match="need the epoch"):
        SkyIndex.from_table(pa.table({"ra": [1.0], "dec": [0.0], "a": [1.0], "b": [1.0]}),
                            pmra="a", pmdec="b")
