"""_healpix_29 against independent HEALPix libraries (cdshealpix, astropy-healpix)."""

import astropy.units as u
import cdshealpix.nested
import numpy as np
import pytest
from astropy.coordinates import Latitude, Longitude
from astropy_healpix import HEALPix
from hypothesis import given, settings
from hypothesis import strategies as st

from xmatch.sky import healpix

EDGE_RA = np.array([0.0, 360.0, 359.9999999999, 1e-12, 0.0, 180.0, 45.0, 90.0, 135.0, 270.0])
EDGE_DEC = np.array([0.0, 0.0, 0.0, 0.0, 90.0, -90.0, 41.8103149, -41.8103149, 89.99999999,
                     -89.99999999])


def cds_pixels(ra, dec, order=29):
    return cdshealpix.nested.lonlat_to_healpix(
        Longitude(ra, u.deg), Latitude(dec, u.deg), order).astype(np.int64)


def test_healpix29_matches_cdshealpix_on_edges_and_random_sky():
    rng = np.random.default_rng(1)
    ra = np.concatenate([EDGE_RA, rng.uniform(0, 360, 200_000)])
    dec = np.concatenate([EDGE_DEC, np.degrees(np.arcsin(rng.uniform(-1, 1, 200_000)))])
    np.testing.assert_array_equal(healpix.radec_to_healpix29(ra, dec), cds_pixels(ra, dec))


def test_ra_360_is_ra_0_and_poles_are_in_polar_pixels():
    pixels = healpix.radec_to_healpix29(np.array([0.0, 360.0, 0.0, 0.0]),
                                        np.array([12.0, 12.0, 90.0, -90.0]))
    assert pixels[0] == pixels[1]
    assert healpix.degrade(pixels[2:3], 0)[0] in (0, 1, 2, 3)  # north polar base pixels
    assert healpix.degrade(pixels[3:4], 0)[0] in (8, 9, 10, 11)


@settings(max_examples=300, derandomize=True, deadline=None)
@given(st.floats(0, 360), st.floats(-90, 90), st.integers(0, 29))
def test_degrade_matches_astropy_healpix_at_every_order(ra, dec, order):
    ours = healpix.degrade(healpix.radec_to_healpix29(np.array([ra]), np.array([dec])), order)[0]
    oracle = HEALPix(nside=2**order, order="nested")
    if oracle.lonlat_to_healpix(Longitude([ra], u.deg), Latitude([dec], u.deg))[0] != ours:
        # Only a point on a pixel edge may differ (a floating-point tie): a nudge of 1e-9 deg
        # must then land astropy-healpix in our pixel.
        nudges = np.array([-1e-9, 0, 1e-9])
        near_ra = ((ra + nudges[:, None]) % 360 + 0 * nudges[None, :]).ravel()
        near_dec = np.clip(dec + np.zeros(3)[:, None] + nudges[None, :], -90, 90).ravel()
        assert ours in oracle.lonlat_to_healpix(Longitude(near_ra, u.deg),
                                                Latitude(near_dec, u.deg))


def test_pixel_range29_contains_its_points():
    rng = np.random.default_rng(2)
    ra, dec = rng.uniform(0, 360, 1000), rng.uniform(-90, 90, 1000)
    p29 = healpix.radec_to_healpix29(ra, dec)
    for order in (0, 3, 10, 20):
        parent = healpix.degrade(p29, order)
        lo, hi = healpix.pixel_range29(order, parent)
        assert np.all((lo <= p29) & (p29 < hi))


def test_pixel_geometry_equals_healpy():
    """The maximal pixel radius, pixel centres and NESTED -> RING numbers of every order (the
    flat sky maps' reading) against healpy, the test oracle."""
    import healpy

    from xmatch.kernels.healpix import nest_to_ring_kernel

    for order in range(30):
        assert healpix.max_pixel_radius_rad(order) == pytest.approx(
            healpy.max_pixrad(1 << order), rel=1e-12)
    rng = np.random.default_rng(4)
    for order in (0, 1, 5, 10, 13):
        pixels = np.unique(np.r_[np.arange(min(12 * 4 ** order, 50_000)),
                                 rng.integers(0, 12 * 4 ** order, 20_000),
                                 12 * 4 ** order - 1]).astype(np.int64)
        ring = np.empty(len(pixels), np.int64)
        nest_to_ring_kernel(order, pixels, ring)
        np.testing.assert_array_equal(ring, healpy.nest2ring(1 << order, pixels))
        ra, dec = healpix.pixel_centres_deg(order, pixels)
        hra, hdec = healpy.pix2ang(1 << order, pixels, nest=True, lonlat=True)
        np.testing.assert_allclose(dec, hdec, atol=1e-10)
        np.testing.assert_allclose((ra - hra + 180) % 360 - 180, 0, atol=1e-9)


def test_cells_to_ranges29_merges_and_sorts():
    # Order 1 cell 13 lies inside order 0 cell 3, order 29 cell 5 inside order 1 cell 0;
    # order 1 cell 2 touches order 1 cell 1, which is absent: a gap stays.
    ranges = healpix.cells_to_ranges29([0, 1, 1, 29, 1], [3, 0, 13, 5, 2])
    expected = np.array([[0, 1 << 56], [2 << 56, 3 << 56], [12 << 56, 16 << 56]])
    np.testing.assert_array_equal(ranges, expected)
    assert healpix.cells_to_ranges29([], []).shape == (0, 2)


@settings(max_examples=60, derandomize=True, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(0, 13), st.integers(0, 3000))
def test_occupied_ranges29_are_the_cells_of_the_points(seed, order, n):
    """The cells holding points, from sorted order-29 pixels: the cells cdshealpix gives the
    points at that order, as the ranges mocpy makes of them (sorted, disjoint, runs merged);
    with the awkward places (poles, RA 0/360, base-pixel corners) among the points."""
    from mocpy import MOC

    rng = np.random.default_rng(seed)
    ra = np.concatenate([EDGE_RA, rng.uniform(0, 360, n), 150 + rng.normal(0, 0.5, n)])
    dec = np.concatenate([EDGE_DEC, np.degrees(np.arcsin(rng.uniform(-1, 1, n))),
                          np.clip(30 + rng.normal(0, 0.5, n), -90, 90)])
    ranges = healpix.occupied_ranges29(np.sort(healpix.radec_to_healpix29(ra, dec)), order)
    shift = 2 * (29 - order)
    cells = np.concatenate([np.arange(a >> shift, b >> shift) for a, b in ranges])
    np.testing.assert_array_equal(cells, np.unique(cds_pixels(ra, dec, order)))
    expected = MOC.from_lonlat(Longitude(ra, u.deg), Latitude(dec, u.deg), max_norder=order)
    np.testing.assert_array_equal(ranges, expected.to_depth29_ranges.astype(np.int64))


def test_occupied_ranges29_of_no_point_and_of_every_cell():
    assert healpix.occupied_ranges29(np.empty(0, np.int64), 5).shape == (0, 2)
    every = np.arange(12, dtype=np.int64) << 58  # one point in each base cell
    np.testing.assert_array_equal(healpix.occupied_ranges29(every, 0), [[0, 12 << 58]])


@settings(max_examples=100, derandomize=True, deadline=None)
@given(st.lists(st.lists(st.tuples(st.integers(0, 13), st.integers(0, 2**20)), max_size=30),
                max_size=5))
def test_union_ranges29_is_the_union_of_the_cells(parts):
    """The union of sets of ranges (cells of mixed orders, overlapping, touching, nested):
    the ranges mocpy's union gives, exactly."""
    from mocpy import MOC

    sets = [healpix.cells_to_ranges29(np.array([o for o, _ in cells], np.int64),
                                      np.array([p % (12 * 4**o) for o, p in cells], np.int64))
            for cells in parts]
    union = healpix.union_ranges29(sets)
    expected = MOC.new_empty(29)
    for ranges in sets:
        expected = expected.union(MOC.from_depth29_ranges(29, ranges.astype(np.uint64)))
    np.testing.assert_array_equal(union, expected.to_depth29_ranges.astype(np.int64)
                                  .reshape(-1, 2))
    assert healpix.union_ranges29([]).shape == (0, 2)
