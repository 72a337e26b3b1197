"""The cells a catalog's rows are read from for a batch of searches (``reach_ranges29``):
every point within the reach of a query lies inside them, checked with points astropy
places at the reach, at the poles, across RA 0/360 and on base-pixel edges."""

from __future__ import annotations

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from hypothesis import given, settings
from hypothesis import strategies as st

from xmatch.kernels.search import in_ranges_kernel
from xmatch.sky import healpix
from xmatch.store.catalog import MIN_ROUTING_CELLS, reach_ranges29

ARCSEC = np.pi / (180 * 3600)


def _inside(ranges, ra, dec) -> np.ndarray:
    pixels = healpix.radec_to_healpix29(np.asarray(ra, float), np.asarray(dec, float))
    out = np.empty(len(pixels), np.bool_)
    in_ranges_kernel(pixels, np.ascontiguousarray(ranges[:, 0]),
                     np.ascontiguousarray(ranges[:, 1]), out)
    return out


def _around(ra, dec, reach_arcsec, n, seed):
    """Points at 99.9 % of the reach from each query, in every direction (astropy)."""
    rng = np.random.default_rng(seed)
    centre = SkyCoord(np.repeat(ra, n), np.repeat(dec, n), unit="deg")
    moved = centre.directional_offset_by(rng.uniform(0, 360, len(centre)) * u.deg,
                                         0.999 * reach_arcsec * u.arcsec)
    return moved.ra.deg, moved.dec.deg


@settings(max_examples=60, derandomize=True, deadline=None)
@given(st.floats(0, 360, exclude_max=True), st.floats(-90, 90),
       st.sampled_from([0.5, 2.0, 30.0, 600.0, 7200.0]), st.integers(1, 3000))
def test_every_point_within_reach_is_inside(ra, dec, reach_arcsec, n_queries):
    rng = np.random.default_rng(n_queries)
    # A batch around one place (a left partition's rows), the given query among them.
    q_ra = np.r_[ra, (ra + rng.normal(0, 0.5, n_queries - 1)) % 360]
    q_dec = np.r_[dec, np.clip(dec + rng.normal(0, 0.5, n_queries - 1), -90, 90)]
    ranges = reach_ranges29(q_ra, q_dec, reach_arcsec * ARCSEC)
    assert ranges is not None
    pick = rng.choice(len(q_ra), min(len(q_ra), 40), replace=False)
    p_ra, p_dec = _around(q_ra[pick], q_dec[pick], reach_arcsec, 16, n_queries)
    assert _inside(ranges, p_ra, p_dec).all()
    assert _inside(ranges, q_ra, q_dec).all()


@pytest.mark.parametrize(("ra", "dec"), [(0.0, 90.0), (123.0, -90.0), (0.0, 0.0),
                                         (359.99999, 12.0), (45.0, 41.8103149),
                                         (45.0, -41.8103149), (90.0, 0.0)])
@pytest.mark.parametrize("reach_arcsec", [1.0, 45.0, 3600.0])
def test_poles_wrap_and_base_pixel_corners(ra, dec, reach_arcsec):
    ranges = reach_ranges29(np.array([ra]), np.array([dec]), reach_arcsec * ARCSEC)
    p_ra, p_dec = _around(np.array([ra]), np.array([dec]), reach_arcsec, 720, 0)
    assert _inside(ranges, p_ra, p_dec).all()
    # Not the whole sky: a cone's nine seed cells.
    covered = (ranges[:, 1] - ranges[:, 0]).sum() / (12 * 4**29)
    assert covered < 0.01 if reach_arcsec < 3600 else covered < 0.2


def test_many_queries_get_coarser_cells_and_still_hold_the_reach():
    rng = np.random.default_rng(3)
    ra, dec = rng.uniform(10, 20, 200_000), rng.uniform(10, 20, 200_000)
    ranges = reach_ranges29(ra, dec, 1.0 * ARCSEC)
    assert len(ranges) <= max(MIN_ROUTING_CELLS, 200_000 // 16) * 9
    p_ra, p_dec = _around(ra[::50], dec[::50], 1.0, 4, 1)
    assert _inside(ranges, p_ra, p_dec).all()


def test_no_query_and_too_wide_a_reach():
    assert len(reach_ranges29(np.empty(0), np.empty(0), ARCSEC)) == 0
    assert reach_ranges29(np.array([10.0]), np.array([10.0]), np.radians(60)) is None
