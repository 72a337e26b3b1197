"""Rows that are regions: the one ellipse kernel against astropy's ``regions``
(``EllipseSkyRegion`` through an azimuthal-equidistant WCS at the ellipse's centre) and a
brute-force astropy computation, at the poles, across RA 0/360, for ellipses wider than a
degree and thinner than an arcsecond; the cell lookup of ``RegionIndex.containing`` against
brute force over every pair; ``Ellipse`` in the search model."""

from __future__ import annotations

import astropy.units as u
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from astropy.coordinates import SkyCoord
from astropy.wcs import WCS

from conftest import random_sky_table
from xmatch import Cone, InputError, SkyIndex
from xmatch.index.region_index import RegionIndex, region_distances
from xmatch.sky.regions import Ellipse

#: (ra, dec, semi-major ", semi-minor ", PA deg): poles, RA 0/360, > 1 deg, < 1".
ELLIPSES = [
    (0.0, 90.0, 7200.0, 1800.0, 10.0),        # on the north pole
    (123.0, -89.95, 3600.0, 600.0, 75.0),     # reaching over the south pole
    (359.99, 0.0, 5400.0, 5400.0, 0.0),       # a 1.5 deg circle across RA 0/360
    (0.01, 45.0, 4000.0, 100.0, -35.0),       # long and thin, across RA 0/360
    (210.0, 30.0, 0.8, 0.05, 120.0),          # thinner than an arcsecond
    (45.0, -30.0, 0.3, 0.3, 0.0),             # a sub-arcsecond circle
]


def arc_wcs(centre: SkyCoord) -> WCS:
    """Azimuthal equidistant (ARC) projection at ``centre``, 1 pixel = 1 mas."""
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---ARC", "DEC--ARC"]
    wcs.wcs.crval = [centre.ra.deg, centre.dec.deg]
    wcs.wcs.crpix = [0.0, 0.0]
    wcs.wcs.cdelt = [-1e-3 / 3600, 1e-3 / 3600]
    return wcs


def brute_rho(ra0, dec0, a, b, pa, ra, dec) -> np.ndarray:
    """Normalised distance from astropy's separation and position angle: the separation
    over the ellipse's radius in that direction."""
    centre = SkyCoord(ra0 * u.deg, dec0 * u.deg)
    points = SkyCoord(np.asarray(ra) * u.deg, np.asarray(dec) * u.deg)
    sep = centre.separation(points).arcsec
    phi = centre.position_angle(points).rad - np.radians(pa)
    return sep * np.hypot(np.cos(phi) / a, np.sin(phi) / b)


def points_near(ra0, dec0, a, n, seed):
    """Points from the centre out to 1.5 semi-major axes, in every direction, and a few
    just inside and outside the boundary along each axis."""
    rng = np.random.default_rng(seed)
    centre = SkyCoord(ra0 * u.deg, dec0 * u.deg)
    spots = centre.directional_offset_by(rng.uniform(0, 360, n) * u.deg,
                                         rng.uniform(0, 1.5 * a, n) * u.arcsec)
    return spots.ra.deg, spots.dec.deg


@pytest.mark.parametrize("ellipse", ELLIPSES, ids=lambda e: f"{e[0]},{e[1]}:{e[2]}x{e[3]}")
def test_ellipse_kernel_equals_regions_and_astropy(ellipse):
    from regions import EllipseSkyRegion

    ra0, dec0, a, b, pa = ellipse
    ra, dec = points_near(ra0, dec0, a, 3000, seed=int(a * 10) % 1000)
    rho, sep = region_distances(ra0, dec0, a, b, pa, ra, dec)
    reference = brute_rho(ra0, dec0, a, b, pa, ra, dec)
    np.testing.assert_allclose(rho, reference, rtol=1e-8, atol=1e-9)
    centre = SkyCoord(ra0 * u.deg, dec0 * u.deg)
    np.testing.assert_allclose(sep, centre.separation(SkyCoord(ra * u.deg, dec * u.deg))
                               .arcsec, rtol=1e-9, atol=1e-6)
    # regions: the same ellipse in the ARC plane at its centre (width = major axis, angle
    # counted from east: PA + 90 deg). Points within 1e-6 of the boundary are left out:
    # regions derives its plane's scale and north numerically.
    region = EllipseSkyRegion(centre, width=2 * a * u.arcsec, height=2 * b * u.arcsec,
                              angle=(pa + 90) * u.deg)
    inside = region.contains(SkyCoord(ra * u.deg, dec * u.deg), arc_wcs(centre))
    clear = np.abs(reference - 1) > 1e-6
    assert clear.sum() > 2900
    np.testing.assert_array_equal(rho[clear] <= 1, inside[clear])
    assert 0 < (rho <= 1).sum() < len(rho)  # both sides tested


def test_a_circle_is_exactly_a_cone():
    sky = random_sky_table(20_000, seed=3)
    ra, dec = sky.column("ra").to_numpy(), sky.column("dec").to_numpy()
    for ra0, dec0, radius in [(0.0, 90.0, 3600.0), (359.9, -10.0, 1800.0), (80.0, 20.0, 7.0)]:
        rho, _ = region_distances(ra0, dec0, radius, radius, 0.0, ra, dec)
        cone = Cone(ra0, dec0, radius).contains(ra, dec)
        near_edge = np.abs(rho - 1) < 1e-12
        np.testing.assert_array_equal((rho <= 1)[~near_edge], cone[~near_edge])


def random_ellipses(n: int, seed: int):
    """Ellipses over the whole sky (and bunched at the poles and RA 0/360) with semi-major
    axes from 1 arcsec to 2 deg, log-uniform, axis ratios 0.02 to 1."""
    rng = np.random.default_rng(seed)
    ra = rng.uniform(0, 360, n)
    dec = np.degrees(np.arcsin(rng.uniform(-1, 1, n)))
    k = n // 10
    dec[:k] = rng.uniform(87, 90, k) * rng.choice([-1, 1], k)
    ra[k:2 * k] = rng.uniform(-2, 2, k) % 360
    a = 10 ** rng.uniform(0, np.log10(7200), n)
    b = a * rng.uniform(0.02, 1, n)
    return ra, dec, a, b, rng.uniform(-180, 180, n)


def test_containing_equals_brute_force_over_every_pair():
    ra, dec, a, b, pa = random_ellipses(3000, seed=5)
    index = RegionIndex.from_arrays(ra, dec, a, b, pa, reach=1.5)
    rng = np.random.default_rng(6)
    # Queries: uniform, at the poles, across RA 0/360, and at ellipse centres.
    q_ra = np.r_[rng.uniform(0, 360, 1500), rng.uniform(0, 360, 300), rng.uniform(-1, 1, 300)
                 % 360, ra[:200], 0.0, 180.0]
    q_dec = np.r_[np.degrees(np.arcsin(rng.uniform(-1, 1, 1500))), rng.uniform(88, 90, 300)
                  * rng.choice([-1, 1], 300), rng.uniform(-5, 5, 300), dec[:200], 90.0, -90.0]
    found = index.containing(q_ra, q_dec)
    got = {(q, r): rho for q, r, rho in zip(found["query_index"].to_numpy(),
                                             found["row"].to_numpy(),
                                             found["region_distance"].to_numpy(), strict=True)}
    expected = {}
    centres = SkyCoord(ra * u.deg, dec * u.deg)
    for i in range(len(q_ra)):
        sep = centres.separation(SkyCoord(q_ra[i] * u.deg, q_dec[i] * u.deg)).arcsec
        near = np.flatnonzero(sep <= 1.5 * a * (1 + 1e-9))
        if len(near):
            centre = centres[near]
            phi = centre.position_angle(SkyCoord(q_ra[i] * u.deg, q_dec[i] * u.deg)).rad
            rho = sep[near] * np.hypot(np.cos(phi - np.radians(pa[near])) / a[near],
                                       np.sin(phi - np.radians(pa[near])) / b[near])
            for r, value in zip(near, rho, strict=True):
                if value <= 1.5:
                    expected[(i, r)] = value
    assert len(expected) > 100
    borderline = {k for k, v in expected.items() if abs(v - 1.5) < 1e-9}
    assert set(got) - borderline == set(expected) - borderline
    for key, value in expected.items():
        if key in got:
            assert got[key] == pytest.approx(value, rel=1e-8, abs=1e-9)
    # Grouped by position, closest first.
    query = found["query_index"].to_numpy()
    rho = found["region_distance"].to_numpy()
    assert np.all(np.diff(query) >= 0)
    same = query[1:] == query[:-1]
    assert np.all(rho[1:][same] >= rho[:-1][same])


def test_empty_inputs_and_bad_shapes():
    index = RegionIndex.from_arrays([], [], [])
    assert len(index) == 0 and index.containing([10.0], [20.0]).num_rows == 0
    full = RegionIndex.from_arrays([10.0], [20.0], [5.0])
    assert full.containing(np.empty(0), np.empty(0)).num_rows == 0
    with pytest.raises(InputError, match="region row 1: semi-major axis nan arcsec is not a "):
        RegionIndex.from_arrays([1.0, 2.0], [3.0, 4.0], [1.0, np.nan])
    with pytest.raises(InputError, match="semi-minor axis 2 arcsec is larger than the "
                                         "semi-major axis 1 arcsec"):
        RegionIndex.from_arrays([1.0], [3.0], [1.0], [2.0], [0.0])
    with pytest.raises(InputError, match="needs the position angle"):
        RegionIndex.from_arrays([1.0], [3.0], [2.0], [1.0])
    with pytest.raises(InputError, match="ra must be finite"):
        RegionIndex.from_arrays([400.0], [3.0], [2.0])


def test_huge_regions_are_found_everywhere_they_reach():
    """A region wider than a hemisphere is filed under every base pixel."""
    index = RegionIndex.from_arrays([0.0], [90.0], [100 * 3600.0])
    found = index.containing([0.0, 90.0, 180.0, 270.0], [-5.0, -9.0, -10.5, 0.0])
    assert found["query_index"].to_pylist() == [0, 1, 3]


def test_ellipse_region_search_equals_brute_force():
    sky = random_sky_table(50_000, seed=8)
    index = SkyIndex.from_table(sky)
    ra, dec = sky.column("ra").to_numpy(), sky.column("dec").to_numpy()
    total = 0
    for ra0, dec0, a, b, angle in ELLIPSES[:4]:
        region = Ellipse.of(ra0, dec0, a, b, angle)
        rows = index.search(region, columns=["id"])
        expected = brute_rho(ra0, dec0, a, b, angle, ra, dec) <= 1
        assert sorted(rows["id"].to_pylist()) == sorted(
            sky.column("id").filter(pa.array(expected)).to_pylist())
        total += rows.num_rows
    assert total > 10


@pytest.mark.parametrize("arguments,message", [
    ((10.0, 20.0, 5.0, 6.0, 0.0), "larger than the semi-major axis"),
    ((10.0, 20.0, -5.0, 1.0, 0.0), "radius_arcsec"),
    ((10.0, 20.0, 5.0, 1.0, "north"), "position angle 'north' is not an angle"),
    ((10.0, 20.0, 5.0, 1.0, None), "needs semi_major_arcsec, semi_minor_arcsec and pa_deg"),
])
def test_bad_ellipses_are_refused(arguments, message):
    with pytest.raises(InputError, match=message):
        Ellipse.of(*arguments)


def test_sigma_crossmatch_equals_a_covariance_chi2_and_keeps_its_completeness():
    """Positions with 1-sigma error ellipses against a catalog with circular errors: chi
    from the full covariance (astropy tangent-plane offsets, C = R diag(a^2, b^2) R^T +
    s^2 I) equals xmatch's; and true counterparts displaced by those Gaussian errors are
    kept at the completeness asked for."""
    from xmatch.index.region_index import completeness_sigma, sigma_crossmatch

    rng = np.random.default_rng(12)
    n, s = 20_000, 0.3
    ra0 = np.r_[rng.uniform(0, 360, n - 2000), rng.uniform(-0.01, 0.01, 1000) % 360,
                rng.uniform(0, 360, 1000)]
    dec0 = np.r_[np.degrees(np.arcsin(rng.uniform(-0.99, 0.99, n - 2000))),
                 rng.uniform(-60, 60, 1000), rng.uniform(88.0, 89.9, 1000)]
    a = rng.uniform(0.2, 3.0, n)
    b = a * rng.uniform(0.1, 1.0, n)
    theta = rng.uniform(0, 180, n)
    # Sources where the catalog has them; queries displaced by both errors.
    t = np.radians(theta)
    along, across = rng.normal(0, 1, n) * a, rng.normal(0, 1, n) * b
    east = along * np.sin(t) + across * np.cos(t) + rng.normal(0, s, n)
    north = along * np.cos(t) - across * np.sin(t) + rng.normal(0, s, n)
    source = SkyCoord(ra0 * u.deg, dec0 * u.deg)
    moved = source.spherical_offsets_by(east * u.arcsec, north * u.arcsec)
    catalog = SkyIndex.from_table(pa.table({"id": np.arange(n), "ra": ra0, "dec": dec0}))
    for completeness in (0.9, 0.9973):
        table = sigma_crossmatch(catalog, moved.ra.deg, moved.dec.deg, a, b, theta,
                                 catalog_error_arcsec=s, completeness=completeness,
                                 columns=["id"])
        own = table.filter(pc.equal(table["id"], table["query_index"]))
        kept = own.num_rows / n
        assert abs(kept - completeness) < 4 * np.sqrt(completeness * (1 - completeness) / n)
    # chi against the covariance form, in astropy's tangent-plane offsets.
    q = own["query_index"].to_numpy()[:2000]
    d_east, d_north = SkyCoord(moved.ra.deg[q] * u.deg, moved.dec.deg[q] * u.deg) \
        .spherical_offsets_to(source[q])
    d = np.stack([d_east.arcsec, d_north.arcsec], axis=1)
    major = np.stack([np.sin(t[q]), np.cos(t[q])], axis=1)
    minor = np.stack([np.cos(t[q]), -np.sin(t[q])], axis=1)
    cov = (a[q, None, None] ** 2 * major[:, :, None] * major[:, None, :]
           + b[q, None, None] ** 2 * minor[:, :, None] * minor[:, None, :]
           + s ** 2 * np.eye(2))
    chi2 = np.einsum("ni,nij,nj->n", d, np.linalg.inv(cov), d)
    np.testing.assert_allclose(own["sigma_distance"].to_numpy()[:2000], np.sqrt(chi2),
                               rtol=1e-6)
    assert completeness_sigma(0.9973) == pytest.approx(3.4393, abs=1e-4)
    with pytest.raises(InputError, match="completeness 1.5 must be a fraction"):
        sigma_crossmatch(catalog, [1.0], [1.0], [1.0], catalog_error_arcsec=0.0,
                         completeness=1.5)
