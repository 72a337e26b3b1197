"""_healpix_29 against independent HEALPix libraries (cdshealpix, astropy-healpix)."""

import astropy.units as u
import cdshealpix.nested
import numpy as np
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


def test_cone_pixels_never_miss_a_point_inside_the_cone():
    rng = np.random.default_rng(3)
    for center_dec in (-90.0, -45.0, 0.0, 89.9):
        ra0 = 359.99
        pts_ra = (ra0 + rng.uniform(-2, 2, 5000)) % 360
        pts_dec = np.clip(center_dec + rng.uniform(-2, 2, 5000), -90, 90)
        sep = np.degrees(np.arccos(np.clip(
            np.sin(np.radians(center_dec)) * np.sin(np.radians(pts_dec))
            + np.cos(np.radians(center_dec)) * np.cos(np.radians(pts_dec))
            * np.cos(np.radians(pts_ra - ra0)), -1, 1)))
        inside = sep <= 1.0
        for order in (2, 6, 9):
            pixels = set(healpix.cone_pixels(order, ra0, center_dec, 1.0).tolist())
            p = healpix.degrade(healpix.radec_to_healpix29(pts_ra[inside], pts_dec[inside]), order)
            assert set(p.tolist()) <= pixels
