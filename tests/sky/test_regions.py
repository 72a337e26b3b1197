"""The region model: a cone's and a polygon's cover and exact test against independent
geometry (astropy separations; the gnomonic projection, which maps great circles to straight
lines, and matplotlib's planar point-in-polygon), at the poles, across RA 0/360 and on
partition boundaries; and one search path answering the same rows for every face."""

from __future__ import annotations

import astropy.units as u
import numpy as np
import pyarrow as pa
import pytest
from astropy.coordinates import SkyCoord
from matplotlib.path import Path as PlanarPath

from conftest import random_sky_table
from xmatch import Catalog, Cone, InputError, Moc, Polygon, SkyIndex, load_catalog
from xmatch.sky.healpix import radec_to_healpix29

POLYGONS = {
    "square across RA 0": ([359.0, 1.0, 1.0, 359.0], [-1.0, -1.0, 1.0, 1.0]),
    "triangle round the north pole": ([0.0, 120.0, 240.0], [80.0, 80.0, 80.0]),
    "concave star near the south pole": (
        [10 + 8 * np.cos(a) * (1 if i % 2 else 0.4) for i, a in enumerate(
            np.linspace(0, 2 * np.pi, 10, endpoint=False))],
        [-80 + 8 * np.sin(a) * (1 if i % 2 else 0.4) for i, a in enumerate(
            np.linspace(0, 2 * np.pi, 10, endpoint=False))]),
    "large quadrilateral, clockwise": ([100.0, 100.0, 160.0, 170.0], [-30.0, 40.0, 40.0, -35.0]),
    "thin sliver": ([200.0, 201.0, 215.0], [10.0, 10.0, 10.6]),
}


def gnomonic_inside(polygon: Polygon, ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    """The oracle: project on the plane tangent at the vertices' mean direction, where great
    circles are straight lines, and test the planar polygon."""
    centre = polygon._centre
    east = np.cross([0.0, 0.0, 1.0], centre)
    if np.linalg.norm(east) < 1e-9:
        east = np.array([1.0, 0.0, 0.0])
    east /= np.linalg.norm(east)
    north = np.cross(centre, east)

    def project(r, d):
        r, d = np.radians(r), np.radians(d)
        v = np.stack([np.cos(d) * np.cos(r), np.cos(d) * np.sin(r), np.sin(d)], axis=1)
        depth = v @ centre
        return np.stack([(v @ east) / depth, (v @ north) / depth], axis=1), depth

    vertices, _ = project(np.asarray(polygon.ra_deg), np.asarray(polygon.dec_deg))
    points, depth = project(ra, dec)
    return (depth > 0) & PlanarPath(vertices).contains_points(points)


def points_around(polygon: Polygon, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random points over the polygon's neighbourhood and the whole sky."""
    rng = np.random.default_rng(seed)
    centre = SkyCoord(*_radec(polygon._centre), unit="deg")
    size = np.degrees(np.arccos(np.clip(polygon._vectors @ polygon._centre, -1, 1))).max()
    near = centre.directional_offset_by(rng.uniform(0, 360, n) * u.deg,
                                        rng.uniform(0, 1.3 * size, n) * u.deg)
    sky = random_sky_table(n, seed=seed)
    return (np.r_[near.ra.deg, sky["ra"].to_numpy()], np.r_[near.dec.deg, sky["dec"].to_numpy()])


def _radec(vector):
    return (np.degrees(np.arctan2(vector[1], vector[0])) % 360,
            np.degrees(np.arcsin(vector[2])))


@pytest.mark.parametrize("name", POLYGONS)
def test_polygon_membership_equals_the_gnomonic_oracle_and_the_cover_holds_it(name):
    polygon = Polygon.of(*POLYGONS[name])
    ra, dec = points_around(polygon, 20_000, seed=len(name))
    ours = polygon.contains(ra, dec)
    oracle = gnomonic_inside(polygon, ra, dec)
    assert ours.sum() > 100, name
    np.testing.assert_array_equal(ours, oracle)
    cover = polygon.cover29()
    pixels = radec_to_healpix29(ra[ours], dec[ours])
    slot = np.searchsorted(cover[:, 0], pixels, side="right") - 1
    assert np.all((slot >= 0) & (pixels < cover[np.maximum(slot, 0), 1]))
    # The cover is a cover, not the sky: far fewer points in it than outside.
    everything = radec_to_healpix29(ra, dec)
    slot = np.searchsorted(cover[:, 0], everything, side="right") - 1
    in_cover = (slot >= 0) & (everything < cover[np.maximum(slot, 0), 1])
    assert in_cover.sum() < 3 * ours.sum() + 200


@pytest.mark.parametrize("ra, dec, message", [
    ([1.0, 2.0], [0.0, 1.0], "a polygon needs at least 3 vertices, got 2"),
    ([0.0, 120.0, 240.0], [0.0, 0.0, 0.0], "must lie within one hemisphere"),
    ([0.0, 100.0, 200.0, 300.0], [-5.0, -5.0, -5.0, -5.0], "must lie within one hemisphere"),
    ([1.0, 1.0, 2.0], [0.0, 0.0, 1.0], "consecutive vertices must differ"),
    ([1.0, 2.0, np.nan], [0.0, 1.0, 2.0], "ra is missing"),
    ([1.0, 2.0, 3.0], [0.0, 1.0, 92.0], "dec = 92.0"),
])
def test_bad_polygons_are_refused(ra, dec, message):
    with pytest.raises(InputError, match=message):
        Polygon.of(ra, dec)


@pytest.fixture(scope="module")
def catalog(tmp_path_factory) -> Catalog:
    """A catalog of many small partitions with the awkward places (poles, RA 0/360, base-pixel
    corners) and dense spots inside the test polygons."""
    import pyarrow.parquet as pq

    from xmatch import CatalogSpec, DataDirectory, LoadOptions

    root = tmp_path_factory.mktemp("regions")
    rng = np.random.default_rng(3)
    table = random_sky_table(30_000, seed=12)
    extra = [points_around(Polygon.of(*POLYGONS[n]), 2_000, seed=i)
             for i, n in enumerate(POLYGONS)]
    ra = np.r_[table["ra"].to_numpy(), *[e[0][:2000] for e in extra]]
    dec = np.r_[table["dec"].to_numpy(), *[e[1][:2000] for e in extra]]
    rows = pa.table({"id": np.arange(len(ra)), "ra": ra, "dec": dec,
                     "mag": rng.normal(15, 2, len(ra))})
    pq.write_table(rows, root / "rows.parquet")
    spec = CatalogSpec(name="regions", id="id", ra="ra", dec="dec", threshold_rows=500,
                       highest_order=7)
    return load_catalog(spec=spec, sources=[str(root / "rows.parquet")],
                        data=DataDirectory(root / "data"),
                        options=LoadOptions(workers=1, progress=False))


@pytest.mark.parametrize("name", POLYGONS)
def test_polygon_search_equals_brute_force_on_every_face(catalog, name):
    index = SkyIndex.from_catalog(catalog)
    polygon = Polygon.of(*POLYGONS[name])
    everything = index.table
    inside = gnomonic_inside(polygon, everything["ra"].to_numpy(), everything["dec"].to_numpy())
    expected = np.sort(everything["id"].to_numpy()[inside])
    got = index.polygon_search(*POLYGONS[name])
    np.testing.assert_array_equal(np.sort(got["id"].to_numpy()), expected)
    assert catalog.polygon_search(*POLYGONS[name]).equals(got)
    assert catalog.search(polygon, limit=3).num_rows == min(3, len(expected))


@pytest.mark.parametrize("ra, dec, radius_arcsec", [
    (0.0, 90.0, 7200.0), (180.0, -89.99, 600.0), (359.9999, 0.0, 3600.0), (0.0001, 0.0, 36.0),
    (45.0, 41.8103149, 1800.0), (150.0, 30.0, 20.0), (10.0, -60.0, 40 * 3600.0)])
def test_a_cone_reads_only_partitions_it_touches_and_finds_every_row(catalog, ra, dec,
                                                                     radius_arcsec):
    """The partitions a cone picks hold every row inside it (checked with astropy over the
    whole catalog), and a store search equals the index over every partition."""
    cone = Cone(ra, dec, radius_arcsec)
    chosen = set(catalog.partitions_of(cone))
    everything = SkyIndex.from_catalog(catalog)
    table = everything.table
    separation = SkyCoord(ra, dec, unit="deg").separation(
        SkyCoord(table["ra"].to_numpy(), table["dec"].to_numpy(), unit="deg")).arcsec
    inside = separation <= radius_arcsec
    for partition in catalog.partitions:
        if partition in chosen:
            continue
        rows = catalog.read_partition(partition, ["id"])["id"].to_numpy()
        assert not np.isin(rows, table["id"].to_numpy()[inside]).any(), partition
    got = catalog.cone_search(ra, dec, radius_arcsec)
    assert got.equals(everything.cone_search(ra, dec, radius_arcsec))
    np.testing.assert_array_equal(np.sort(got["id"].to_numpy()),
                                  np.sort(table["id"].to_numpy()[inside]))
    assert len(chosen) < len(catalog.partitions) or radius_arcsec > 36_000


def test_moc_regions_from_every_form_search_alike(catalog):
    index = SkyIndex.from_catalog(catalog)
    text = "3/10-40 4/300-340 6/9000-9100"
    ranges = Moc.of(text).ranges
    got = index.moc_search(text)
    for form in (ranges, Moc.of(text)):
        assert index.moc_search(form).equals(got)
    assert catalog.moc_search(text).equals(got)
    assert Moc.of(text).contains(got["ra"].to_numpy(), got["dec"].to_numpy()).all()
