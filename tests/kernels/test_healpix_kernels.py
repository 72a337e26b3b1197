"""numba HEALPix against healpy and cdshealpix: pixels at every order, pixel centres,
neighbours (exhaustively at low orders), and the pixel seeds of a cone."""

import math

import astropy.units as u
import cdshealpix.nested
import healpy
import numba
import numpy as np
import pytest
from astropy.coordinates import Latitude, Longitude, SkyCoord
from hypothesis import given, settings
from hypothesis import strategies as st

from xmatch.kernels import healpix as kh
from xmatch.kernels.search import radec_to_pixel_kernel, vector_to_pixel_kernel

# Awkward places: RA 0/360, the poles, base-pixel corners (dec = +-41.81 deg), the equator.
EDGE_RA = np.array([0.0, 360.0, 359.9999999999, 1e-12, 0.0, 180.0, 45.0, 90.0, 135.0, 270.0,
                    0.0, 45.0])
EDGE_DEC = np.array([0.0, 0.0, 0.0, 0.0, 90.0, -90.0, 41.8103149, -41.8103149, 89.99999999,
                     -89.99999999, 41.8103149, 0.0])


def sky_points(n, seed):
    rng = np.random.default_rng(seed)
    ra = np.concatenate([EDGE_RA, rng.uniform(0, 360, n)])
    dec = np.concatenate([EDGE_DEC, np.degrees(np.arcsin(rng.uniform(-1, 1, n)))])
    dec[len(EDGE_DEC):len(EDGE_DEC) + 500] = 90 - rng.uniform(0, 1, 500) ** 3  # polar caps
    dec[len(EDGE_DEC) + 500:len(EDGE_DEC) + 1000] = -90 + rng.uniform(0, 1, 500) ** 3
    return ra, dec


@numba.njit
def _centres(order, pixels):
    out = np.empty((len(pixels), 3))
    for i in range(len(pixels)):
        out[i, 0], out[i, 1], out[i, 2] = kh.pixel_center(order, pixels[i])
    return out


@numba.njit
def _neighbours(order, pixels):
    out = np.empty((8, len(pixels)), dtype=np.int64)
    for i in range(len(pixels)):
        around = kh.neighbour_pixels(order, pixels[i])
        for m in range(8):
            out[m, i] = around[m]
    return out


@numba.njit
def _seeds(x, y, z, radius):
    order = kh.cone_seed_order(radius)
    if order < 0:
        return order, np.full(9, -1, dtype=np.int64)
    seeds = kh.cone_seeds(kh.vector_to_pixel(29, x, y, z), order)
    out = np.empty(9, dtype=np.int64)
    for m in range(9):
        out[m] = seeds[m]
    return order, out


@pytest.mark.parametrize("order", [0, 1, 2, 5, 10, 17, 24, 29])
def test_pixels_equal_healpy_and_cdshealpix(order):
    ra, dec = sky_points(100_000, order)
    ours = np.empty(len(ra), dtype=np.int64)
    radec_to_pixel_kernel(order, np.radians(ra), np.radians(dec), ours)
    np.testing.assert_array_equal(ours, healpy.ang2pix(1 << order, ra, dec, nest=True,
                                                       lonlat=True))
    cds = cdshealpix.nested.lonlat_to_healpix(Longitude(ra % 360, u.deg), Latitude(dec, u.deg),
                                              order)
    # cdshealpix computes in its own way: only points on a pixel edge may differ.
    assert np.mean(ours != cds) < 1e-4


@pytest.mark.parametrize("order", [0, 3, 12, 29])
def test_pixels_of_unit_vectors_equal_healpy(order):
    ra, dec = sky_points(50_000, 100 + order)
    xyz = np.ascontiguousarray(np.array(healpy.ang2vec(ra, dec, lonlat=True)))
    ours = np.empty(len(ra), dtype=np.int64)
    vector_to_pixel_kernel(order, xyz, ours)
    reference = healpy.vec2pix(1 << order, xyz[:, 0], xyz[:, 1], xyz[:, 2], nest=True)
    assert np.mean(ours != reference) < 1e-4  # healpy's vec2pix normalises differently


@pytest.mark.parametrize("order", [0, 1, 2, 3, 4])
def test_centres_and_neighbours_of_every_pixel(order):
    pixels = np.arange(12 * 4**order)
    np.testing.assert_allclose(_centres(order, pixels),
                               np.array(healpy.pix2vec(1 << order, pixels, nest=True)).T,
                               atol=2e-15)
    ours = _neighbours(order, pixels)
    np.testing.assert_array_equal(ours, healpy.get_all_neighbours(1 << order, pixels, nest=True))
    for column in ours.T:  # distinct, as cone_seeds relies on
        present = column[column >= 0]
        assert len(np.unique(present)) == len(present)


@pytest.mark.parametrize("order", [8, 15, 22, 29])
def test_centres_and_neighbours_at_high_orders(order):
    rng = np.random.default_rng(order)
    pixels = rng.integers(0, 12 * 4**order, 100_000)
    # Pixels at the corners and edges of base pixels, where faces are crossed.
    nside = 1 << order
    edge = np.array([0, nside - 1, nside // 2])
    ix, iy = np.meshgrid(edge, edge)
    for face in range(12):
        xyf = healpy.xyf2pix(nside, ix.ravel(), iy.ravel(), np.full(ix.size, face), nest=True)
        pixels = np.concatenate([pixels, xyf])
    np.testing.assert_allclose(_centres(order, pixels),
                               np.array(healpy.pix2vec(nside, pixels, nest=True)).T, atol=2e-15)
    np.testing.assert_array_equal(_neighbours(order, pixels),
                                  healpy.get_all_neighbours(nside, pixels, nest=True))


@settings(max_examples=300, derandomize=True, deadline=None)
@given(ra=st.floats(0, 360), dec=st.floats(-90, 90),
       radius_arcsec=st.floats(0.01, 36000) | st.sampled_from([0.01, 1.0, 3600.0, 36000.0]),
       corner=st.sampled_from([None, 0, 1, 2]))
def test_cone_seeds_contain_the_exact_cone_cover(ra, dec, radius_arcsec, corner):
    """Every pixel the cone touches (cdshealpix's exact cover at the seed order) is a seed:
    this is what NEIGHBOURHOOD_FRACTION promises."""
    if corner is not None:  # centre the cone on a base-pixel corner, the hardest place
        ra, dec = [(45.0, 41.8103149), (90.0, 0.0), (0.0, 90.0)][corner]
    radius = math.radians(radius_arcsec / 3600)
    x, y, z = healpy.ang2vec(ra, dec, lonlat=True)
    order, pixels = _seeds(x, y, z, radius)
    if order < 0:
        return  # the whole sky is searched
    cover, _, _ = cdshealpix.nested.cone_search(Longitude(ra, u.deg), Latitude(dec, u.deg),
                                                radius * u.rad, order, flat=True)
    assert set(cover.tolist()) <= set(pixels.tolist())


def test_neighbourhood_fraction_has_margin():
    """The measured limit: cones up to 0.6 pixel spacings never leave the neighbourhood
    (sampled at many places, base-pixel corners included); the kernels use 0.3."""
    rng = np.random.default_rng(5)
    for order in (2, 6, 12):
        spacing = kh.PIXEL_SPACING[order]
        corners = np.array([(45.0 * i, d) for i in range(8) for d in (41.8103149, 0.0,
                                                                      -41.8103149)])
        picks = corners[rng.integers(0, len(corners), 300)]
        ra = (picks[:, 0] + rng.normal(0, 2 * np.degrees(spacing), 300)) % 360
        dec = np.clip(picks[:, 1] + rng.normal(0, 2 * np.degrees(spacing), 300), -90, 90)
        centre = healpy.ang2pix(1 << order, ra, dec, nest=True, lonlat=True)
        around = healpy.get_all_neighbours(1 << order, centre, nest=True)
        for i in range(len(ra)):
            cover, _, _ = cdshealpix.nested.cone_search(
                Longitude(ra[i], u.deg), Latitude(dec[i], u.deg), 0.6 * spacing * u.rad, order,
                flat=True)
            assert set(cover.tolist()) <= set(around[:, i].tolist()) | {centre[i]}
    assert kh.NEIGHBOURHOOD_FRACTION <= 0.3


@settings(max_examples=150, derandomize=True, deadline=None)
@given(ra=st.floats(0, 360), dec=st.floats(-90, 90),
       radius_arcsec=st.floats(0.01, 36000) | st.sampled_from([0.01, 1.0, 3600.0, 648000.0]),
       depth=st.none() | st.integers(0, 14))
def test_cone_cover_contains_the_exact_cover_and_little_more(ra, dec, radius_arcsec, depth):
    """The cone as order-29 ranges: every pixel cdshealpix finds overlapping the cone is in
    it, and every pixel in it has its centre within the radius plus a pixel radius."""
    from xmatch.sky.regions import Cone

    ranges = Cone(ra, dec, radius_arcsec).cover29(depth)
    assert ranges.ndim == 2 and np.all(ranges[:, 0] < ranges[:, 1])
    assert np.all(ranges[1:, 0] > ranges[:-1, 1])  # sorted and merged
    if depth is None:
        spacing = np.degrees(kh.PIXEL_SPACING) * 3600
        depth = int(min(29, max(0, np.searchsorted(-spacing, -radius_arcsec / 10))))
    shift = 2 * (29 - depth)
    if np.sum((ranges[:, 1] - ranges[:, 0]) >> shift) > 200_000:
        return  # too many pixels to list one by one
    ours = np.concatenate([np.arange(lo >> shift, hi >> shift) for lo, hi in ranges])
    # cdshealpix's cone search stops at depth 27: compare parents there for deeper covers
    # (a pixel touching the cone has a touching child, which our cover holds).
    oracle_depth = min(depth, 26)
    exact, _, _ = cdshealpix.nested.cone_search(Longitude(ra, u.deg), Latitude(dec, u.deg),
                                                radius_arcsec * u.arcsec, oracle_depth,
                                                flat=True)
    parents = ours >> (2 * (depth - oracle_depth))
    assert set(exact.tolist()) <= set(parents.tolist())
    centres = SkyCoord(*healpy.pix2ang(1 << depth, ours, nest=True, lonlat=True), unit="deg")
    reach = radius_arcsec / 3600 + np.degrees(kh.MAX_PIXEL_RADIUS[depth]) + 1e-9
    assert np.all(centres.separation(SkyCoord(ra, dec, unit="deg")).deg <= reach)
