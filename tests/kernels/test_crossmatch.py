"""Cone search and batch cross-match against astropy (search_around_sky,
match_coordinates_sky, separation, position_angle) over the whole sphere."""

import astropy.units as u
import healpy
import numpy as np
import pyarrow as pa
import pytest
from astropy.coordinates import SkyCoord, match_coordinates_sky, search_around_sky
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import random_sky_table
from xmatch import load_catalog, open_catalog
from xmatch.index import SkyIndex, rows_found

TOLERANCE_DEG = 1e-9  # boundary and tie tolerance promised by the kernels


def sky(n, rng, layout, scale_deg=1.0):
    """Positions in one of the awkward layouts the kernels must get right. ``dense`` packs
    rows within a few ``scale_deg`` of three centres (one at a pole), so that index cells
    overflow and cones are covered by fine pixels rather than whole cells."""
    ra = rng.uniform(0, 360, n)
    dec = np.degrees(np.arcsin(rng.uniform(-1, 1, n)))
    if layout == "north_pole":
        dec = 90 - rng.exponential(0.5, n)
    elif layout == "south_pole":
        dec = -90 + rng.exponential(0.5, n)
    elif layout == "ra_wrap":
        ra = rng.normal(0, 0.5, n) % 360
        dec = rng.normal(0, 5, n)
    elif layout == "corners":  # base-pixel corners, where three or four faces meet
        corners = np.array([(45.0 * i, d) for i in range(8) for d in (41.8103149, 0, -41.8103149)])
        pick = corners[rng.integers(0, len(corners), n)]
        ra = (pick[:, 0] + rng.normal(0, 0.3, n)) % 360
        dec = pick[:, 1] + rng.normal(0, 0.3, n)
    elif layout == "dense":
        centres = SkyCoord([12.0, 45.0, 0.0], [-7.0, 41.8103149, 90.0], unit="deg")
        pick = centres[rng.integers(0, 3, n)]
        moved = pick.directional_offset_by(rng.uniform(0, 360, n) * u.deg,
                                           np.abs(rng.normal(0, 2 * scale_deg, n)) * u.deg)
        ra, dec = moved.ra.deg, moved.dec.deg
    elif layout == "duplicates":
        ra[n // 2:] = ra[: n - n // 2]
        dec[n // 2:] = dec[: n - n // 2]
    return ra, np.clip(dec, -90, 90)


def astropy_pairs(qra, qdec, ra, dec, radius_arcsec):
    queries, catalog = SkyCoord(qra, qdec, unit="deg"), SkyCoord(ra, dec, unit="deg")
    limit = radius_arcsec * u.arcsec if np.ndim(radius_arcsec) else radius_arcsec * u.arcsec
    i, j, separation, _ = search_around_sky(queries, catalog, limit)
    return i, j, separation.deg


def ours_pairs(result):
    matched = result["match_rank"].is_valid().to_numpy(zero_copy_only=False)
    return (result["query_index"].to_numpy()[matched], result["row"].to_numpy()[matched],
            result["separation_arcsec"].to_numpy()[matched] / 3600)


def assert_same_pairs(ours, theirs, qra, qdec, ra, dec, radius_arcsec):
    """Identical pair sets, except pairs within TOLERANCE_DEG of the radius."""
    ours_set = set(zip(ours[0].tolist(), ours[1].tolist(), strict=True))
    theirs_set = set(zip(theirs[0].tolist(), theirs[1].tolist(), strict=True))
    radius = np.broadcast_to(np.asarray(radius_arcsec, float) / 3600, len(qra))
    for i, j in ours_set ^ theirs_set:
        separation = SkyCoord(qra[i], qdec[i], unit="deg").separation(
            SkyCoord(ra[j], dec[j], unit="deg")).deg
        assert abs(separation - radius[i]) <= TOLERANCE_DEG, (i, j, separation, radius[i])


def index_of(ra, dec):
    return SkyIndex.from_table(pa.table({"ra": ra, "dec": dec, "row": np.arange(len(ra))}))


@settings(max_examples=200, derandomize=True, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_rows=st.integers(1, 3000), n_queries=st.integers(1, 400),
       layout=st.sampled_from(["uniform", "north_pole", "south_pole", "ra_wrap", "corners",
                               "duplicates", "dense", "dense"]),
       radius_arcsec=st.floats(0.01, 36000) | st.sampled_from([0.01, 1.0, 60.0, 36000.0]))
def test_all_within_and_nearest_equal_astropy(seed, n_rows, n_queries, layout, radius_arcsec):
    rng = np.random.default_rng(seed)
    ra, dec = sky(n_rows, rng, layout, radius_arcsec / 3600)
    qra, qdec = sky(n_queries, rng, layout, radius_arcsec / 3600)
    # Some queries sit right next to catalog rows, at a fraction of the radius.
    near = rng.integers(0, n_rows, n_queries // 2)
    offset = rng.uniform(0, 1.2 * radius_arcsec / 3600, len(near))
    qra[: len(near)] = (ra[near] + offset / np.maximum(np.cos(np.radians(dec[near])), 1e-3)) % 360
    qdec[: len(near)] = dec[near]
    index = index_of(ra, dec)

    everything = index.crossmatch(qra, qdec, radius_arcsec=radius_arcsec, mode="all")
    assert_same_pairs(ours_pairs(everything), astropy_pairs(qra, qdec, ra, dec, radius_arcsec),
                      qra, qdec, ra, dec, radius_arcsec)

    nearest = index.crossmatch(qra, qdec, radius_arcsec=radius_arcsec)
    assert nearest.num_rows == n_queries and nearest["query_index"].to_pylist() == list(
        range(n_queries))
    j, separation, _ = match_coordinates_sky(SkyCoord(qra, qdec, unit="deg"),
                                             SkyCoord(ra, dec, unit="deg"))
    ours_row = nearest["row"].to_numpy(zero_copy_only=False)
    ours_sep = nearest["separation_arcsec"].to_numpy(zero_copy_only=False) / 3600
    inside = separation.deg < radius_arcsec / 3600 - TOLERANCE_DEG
    outside = separation.deg > radius_arcsec / 3600 + TOLERANCE_DEG
    assert not np.isnan(ours_sep[inside]).any()
    assert np.isnan(ours_sep[outside]).all()
    # The same row, or one at the same distance (a tie).
    same = ours_row[inside] == j[inside]
    assert np.all(same | (np.abs(ours_sep[inside] - separation.deg[inside]) <= TOLERANCE_DEG))
    np.testing.assert_allclose(ours_sep[inside], separation.deg[inside], rtol=0,
                               atol=TOLERANCE_DEG)


@settings(max_examples=60, derandomize=True, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), k=st.integers(1, 12),
       layout=st.sampled_from(["uniform", "north_pole", "corners", "duplicates"]))
def test_k_nearest_equal_sorted_astropy_separations(seed, k, layout):
    rng = np.random.default_rng(seed)
    ra, dec = sky(800, rng, layout)
    qra, qdec = sky(40, rng, layout)
    radius_arcsec = 5 * 3600.0
    result = index_of(ra, dec).crossmatch(qra, qdec, radius_arcsec=radius_arcsec, mode="k", k=k)
    separations = SkyCoord(qra[:, None], qdec[:, None], unit="deg").separation(
        SkyCoord(ra[None, :], dec[None, :], unit="deg")).deg
    for i in range(len(qra)):
        expected = np.sort(separations[i][separations[i] <= radius_arcsec / 3600])[:k]
        mine = result.filter(pa.compute.equal(result["query_index"], i))
        got = mine["separation_arcsec"].to_numpy(zero_copy_only=False) / 3600
        if len(expected) == 0:
            assert mine.num_rows == 1 and np.isnan(got).all()  # left join: reported once
            continue
        np.testing.assert_allclose(got, expected, rtol=0, atol=TOLERANCE_DEG)
        assert mine["match_rank"].to_pylist() == list(range(1, len(expected) + 1))


def test_per_query_radii_equal_astropy():
    rng = np.random.default_rng(3)
    ra, dec = sky(5000, rng, "uniform")
    qra, qdec = sky(2000, rng, "uniform")
    radii = rng.uniform(0.01, 4 * 3600, len(qra))
    result = index_of(ra, dec).crossmatch(qra, qdec, radius_arcsec=radii, mode="all")
    assert_same_pairs(ours_pairs(result), astropy_pairs(qra, qdec, ra, dec, radii), qra, qdec,
                      ra, dec, radii)


@pytest.mark.parametrize("order", [0, 1, 4, 9, 14, 19, 24, 29])
def test_queries_on_pixel_corners_and_edges_at_every_order(order):
    """Queries on the corners and edge midpoints of pixels (where cells meet), catalog rows
    scattered around them just inside and outside the radius."""
    rng = np.random.default_rng(order)
    nside = 1 << order
    pixels = rng.integers(0, 12 * nside**2, 40)
    corners = np.concatenate([healpy.boundaries(nside, int(p), step=2, nest=True).T
                              for p in pixels])
    qra, qdec = healpy.vec2ang(corners, lonlat=True)
    radius_arcsec = float(np.clip(healpy.nside2resol(nside, arcmin=True) * 60 / 3, 0.01, 36000))
    angle = rng.uniform(0, 2 * np.pi, (len(qra), 12))
    distance = radius_arcsec / 3600 * rng.choice([0.5, 0.999999, 1.000001, 1.5], (len(qra), 12))
    centre = SkyCoord(np.repeat(qra, 12), np.repeat(qdec, 12), unit="deg")
    around = centre.directional_offset_by(angle.ravel() * u.rad, distance.ravel() * u.deg)
    ra, dec = around.ra.deg, around.dec.deg
    result = index_of(ra, dec).crossmatch(qra, qdec, radius_arcsec=radius_arcsec, mode="all")
    assert_same_pairs(ours_pairs(result), astropy_pairs(qra, qdec, ra, dec, radius_arcsec), qra,
                      qdec, ra, dec, radius_arcsec)


def test_catalog_of_many_partitions_equals_astropy(data_dir, table_spec):
    """Through the store: rows come from many adaptive partitions (and their stored
    healpy pixels), queries fall on every side of partition boundaries."""
    table = random_sky_table(20_000, seed=4)
    source = data_dir.root / "random.parquet"
    source.parent.mkdir(parents=True, exist_ok=True)
    pa.parquet.write_table(table, source)
    catalog = load_catalog(spec=table_spec, sources=[str(source)], data=data_dir)
    assert len(catalog.partitions) > 50
    index = SkyIndex.from_catalog(open_catalog("random", data_dir), columns=["id", "ra", "dec"])
    rng = np.random.default_rng(5)
    ra, dec = table["ra"].to_numpy(), table["dec"].to_numpy()
    qra, qdec = sky(3000, rng, "uniform")
    qra[:1000] = ra[:1000] + rng.normal(0, 1e-3, 1000) % 360
    qra %= 360
    qdec[:1000] = dec[:1000]
    for radius_arcsec in (2.0, 600.0):
        result = index.crossmatch(qra, qdec, radius_arcsec=radius_arcsec, mode="all")
        matched = result["match_rank"].is_valid().to_numpy(zero_copy_only=False)
        ours = (result["query_index"].to_numpy()[matched], result["id"].to_numpy()[matched])
        assert_same_pairs(ours, astropy_pairs(qra, qdec, ra, dec, radius_arcsec), qra, qdec,
                          ra, dec, radius_arcsec)


def test_cone_limit_epochless_columns_and_position_angle():
    rng = np.random.default_rng(6)
    ra, dec = sky(20_000, rng, "uniform")
    index = index_of(ra, dec)
    centre = SkyCoord(10.0, -20.0, unit="deg")
    cone = index.cone_search(centre, radius_arcsec=3 * u.deg)
    separation = centre.separation(SkyCoord(ra, dec, unit="deg")).deg
    expected = np.sort(separation[separation <= 3])
    np.testing.assert_allclose(cone["separation_arcsec"].to_numpy() / 3600, expected, rtol=0,
                               atol=TOLERANCE_DEG)
    rows = cone["row"].to_numpy()
    angle = centre.position_angle(SkyCoord(ra[rows], dec[rows], unit="deg")).deg
    difference = (cone["position_angle_deg"].to_numpy() - angle + 180) % 360 - 180
    assert np.abs(difference).max() < 1e-7
    limited = index.cone_search(10.0, -20.0, 3 * 3600, limit=5, columns=["row"])
    assert limited.column_names == ["row", "separation_arcsec", "position_angle_deg"]
    assert limited["row"].to_pylist() == rows[:5].tolist()
    assert limited.schema.field("separation_arcsec").metadata == {b"unit": b"arcsec"}
    assert rows_found(limited) == len(expected) and rows_found(cone) == len(expected)


def test_empty_inputs_single_rows_and_left_join():
    empty = index_of(np.empty(0), np.empty(0))
    result = empty.crossmatch([1.0, 2.0], [3.0, 4.0], radius_arcsec=10)
    assert result.num_rows == 2 and result["row"].null_count == 2
    assert empty.cone_search(1.0, 2.0, 10).num_rows == 0
    single = index_of(np.array([359.9999]), np.array([89.9999]))
    hit = single.crossmatch([0.0001, 180.0], [89.9999, 0.0], radius_arcsec=1.0, mode="all")
    assert hit["row"].to_pylist() == [0, None] and hit["query_index"].to_pylist() == [0, 1]
    assert single.crossmatch(np.empty(0), np.empty(0), radius_arcsec=1.0).num_rows == 0
    one = single.crossmatch(SkyCoord(0.0001, 89.9999, unit="deg"), radius_arcsec=1 * u.arcsec)
    assert one["row"].to_pylist() == [0]


@pytest.mark.slow
def test_two_million_queries_equal_astropy():
    rng = np.random.default_rng(7)
    ra, dec = sky(200_000, rng, "uniform")
    qra, qdec = sky(2_000_000, rng, "uniform")
    qra[:1_000_000] = (ra[rng.integers(0, len(ra), 1_000_000)] + 1e-4) % 360
    result = index_of(ra, dec).crossmatch(qra, qdec, radius_arcsec=600.0)
    j, separation, _ = match_coordinates_sky(SkyCoord(qra, qdec, unit="deg"),
                                             SkyCoord(ra, dec, unit="deg"))
    inside = separation.deg < 600 / 3600 - TOLERANCE_DEG
    ours_sep = result["separation_arcsec"].to_numpy(zero_copy_only=False) / 3600
    assert np.isnan(ours_sep[separation.deg > 600 / 3600 + TOLERANCE_DEG]).all()
    np.testing.assert_allclose(ours_sep[inside], separation.deg[inside], rtol=0,
                               atol=TOLERANCE_DEG)
    ours_row = result["row"].to_numpy(zero_copy_only=False)
    assert np.mean(ours_row[inside] == j[inside]) > 0.9999  # the rest are exact ties


def test_small_cones_on_index_cell_borders():
    """Cones centred on the borders of the index's own cells, with rows just across the
    border: the fast path that searches only the query's cell must not take these."""
    from xmatch.index import choose_cell_order

    rng = np.random.default_rng(8)
    background_ra, background_dec = sky(5_000, rng, "uniform")
    n_queries, per_query, radius_arcsec = 300, 4, 2.0
    cell_order = choose_cell_order(len(background_ra) + 8 * n_queries * per_query)
    nside = 1 << cell_order
    pixels = rng.integers(0, 12 * nside**2, n_queries)
    border = np.concatenate([healpy.boundaries(nside, int(p), step=2, nest=True).T
                             for p in pixels])
    qra, qdec = healpy.vec2ang(border, lonlat=True)
    angle = rng.uniform(0, 2 * np.pi, (len(qra), per_query))
    distance = radius_arcsec / 3600 * rng.uniform(0.5, 0.99, (len(qra), per_query))
    around = SkyCoord(np.repeat(qra, per_query), np.repeat(qdec, per_query),
                      unit="deg").directional_offset_by(angle.ravel() * u.rad,
                                                        distance.ravel() * u.deg)
    ra = np.concatenate([background_ra, around.ra.deg])
    dec = np.concatenate([background_dec, around.dec.deg])
    index = index_of(ra, dec)
    assert index.cell_order == cell_order
    result = index.crossmatch(qra, qdec, radius_arcsec=radius_arcsec, mode="all")
    assert_same_pairs(ours_pairs(result), astropy_pairs(qra, qdec, ra, dec, radius_arcsec), qra,
                      qdec, ra, dec, radius_arcsec)
