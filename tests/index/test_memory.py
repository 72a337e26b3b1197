"""What an index holds: ``memory_bytes`` counts every array and payload buffer once; a
positions-only catalog served as a shard serves it holds at most 40 bytes a row beyond its
payload; positions read in place (no unit vectors held) answer exactly as unit vectors
do."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import random_sky_table
from xmatch import CatalogSpec, LoadOptions, SkyIndex, load_catalog
from xmatch.index.sky_index import held_bytes
from xmatch.service.catalogs import ServedCatalog

MAX_OVERHEAD_BYTES_PER_ROW = 40


def table_bytes(table: pa.Table) -> int:
    return sum(buffer.size for column in table.columns for chunk in column.chunks
               for buffer in chunk.buffers() if buffer is not None)


def positions_catalog(tmp_path, n: int, seed: int = 0):
    """A positions-only catalog (id, ra, dec) of ``n`` uniform rows in the store."""
    rng = np.random.default_rng(seed)
    table = pa.table({"id": np.arange(n, dtype=np.int64), "ra": rng.uniform(0, 360, n),
                      "dec": np.degrees(np.arcsin(rng.uniform(-1, 1, n)))})
    pq.write_table(table, tmp_path / "positions.parquet")
    spec = CatalogSpec(name="positions", id="id", ra="ra", dec="dec",
                       threshold_rows=max(n // 5, 100), highest_order=8)
    return load_catalog(spec=spec, sources=[str(tmp_path / "positions.parquet")],
                        data=tmp_path / "data", options=LoadOptions(workers=1, progress=False))


def with_unit_vectors(index: SkyIndex) -> SkyIndex:
    """The same index holding unit vectors instead of its positions (the layout before)."""
    return replace(index, xyz=index.vectors(np.arange(len(index))), ra_deg=None, dec_deg=None,
                   _empty_results={})


def test_memory_bytes_is_the_sum_of_what_an_unsorted_table_index_holds():
    """Rows out of pixel order: pixels, positions and the permutation are the index's own
    arrays, each counted with the payload."""
    index = SkyIndex.from_table(random_sky_table(5000, seed=3))
    assert index.permutation is not None
    own = [index.h29, index.ra_deg, index.dec_deg, index.cell_start, index.permutation]
    assert all(a.flags.owndata for a in own)
    assert index.memory_bytes() == table_bytes(index.table) + sum(a.nbytes for a in own)
    assert index.payload_bytes() == table_bytes(index.table)


def test_a_store_catalog_is_indexed_in_place(tmp_path):
    """Rows read from the store are in pixel order: the pixels and positions are the
    payload's buffers, counted once; the index adds its cell table only."""
    catalog = positions_catalog(tmp_path, 20_000)
    index = SkyIndex.from_catalog(catalog)
    assert index.permutation is None and index.xyz is None
    for array, column in ((index.h29, "_healpix_29"), (index.ra_deg, "ra"),
                          (index.dec_deg, "dec")):
        assert np.shares_memory(array, index.table[column].chunks[0].to_numpy())
    assert index.memory_bytes() == table_bytes(index.table) + index.cell_start.nbytes
    np.testing.assert_array_equal(index.rows, np.arange(len(index)))


def test_memory_bytes_counts_the_copies_moved_to_other_epochs():
    table = random_sky_table(3000, seed=5)
    rng = np.random.default_rng(5)
    table = table.append_column("pmra", pa.array(rng.normal(0, 50, 3000))).append_column(
        "pmdec", pa.array(rng.normal(0, 50, 3000)))
    index = SkyIndex.from_table(table, pmra="pmra", pmdec="pmdec", epoch=2016.0)
    before = index.memory_bytes()
    assert before == held_bytes([*index._held()])
    moved = index.at_epoch(2030.0)
    added = [moved.h29, moved.xyz, moved.cell_start, moved.permutation, moved.motion.vectors,
             moved.motion.epoch0]
    assert index.memory_bytes() == before + sum(a.nbytes for a in added)


def test_served_catalog_memory_is_the_sum_of_its_slices(tmp_path):
    catalog = positions_catalog(tmp_path, 20_000)
    half = len(catalog.partitions) // 2
    served = ServedCatalog.from_catalog(catalog, {"a": catalog.partitions[:half],
                                                  "b": catalog.partitions[half:]})
    assert served.memory_bytes() == sum(i.memory_bytes() for i in served.slices.values())
    assert sum(len(i) for i in served.slices.values()) == 20_000


def test_a_positions_only_shard_holds_at_most_40_bytes_a_row_beyond_its_payload(tmp_path):
    """1 M rows (id, ra, dec) served as ``xmatch cluster shard`` serves them: everything
    beyond the three payload columns (the order-29 pixels, the cell table) per row."""
    n = 1_000_000
    catalog = positions_catalog(tmp_path, n)
    served = ServedCatalog.from_catalog(catalog)
    payload = table_bytes(served.index.table.select(["id", "ra", "dec"]))
    assert payload == 24 * n
    overhead = (served.memory_bytes() - payload) / n
    assert overhead <= MAX_OVERHEAD_BYTES_PER_ROW, f"{overhead:.1f} bytes a row"


@pytest.fixture(scope="module")
def band_edges():
    """Rows exactly one radius north or south of each query (the declination band's edge)
    and others just inside and outside, at the poles and across RA 0/360."""
    rng = np.random.default_rng(11)
    q_ra = np.concatenate([rng.uniform(0, 360, 300), [0.0, 359.9999, 10.0, 200.0]])
    q_dec = np.concatenate([np.degrees(np.arcsin(rng.uniform(-1, 1, 300))),
                            [0.0, 45.0, 89.9999, -89.9999]])
    radius_arcsec = 2.0
    step = radius_arcsec / 3600 * np.array([-1.0, 1.0, -1.0 + 1e-12, 1.0 - 1e-12, 1.0 + 1e-12])
    ra = np.repeat(q_ra, len(step))
    dec = np.clip(np.repeat(q_dec, len(step)) + np.tile(step, len(q_dec)), -90, 90)
    return q_ra, q_dec, radius_arcsec, pa.table({"ra": ra, "dec": dec})


@pytest.mark.parametrize("mode,k", [("nearest", 1), ("k", 3), ("all", 1)])
def test_positions_in_place_match_exactly_as_unit_vectors_at_the_band_edge(band_edges, mode,
                                                                          k):
    q_ra, q_dec, radius_arcsec, table = band_edges
    index = SkyIndex.from_table(table)
    got = index.crossmatch(q_ra, q_dec, radius_arcsec=radius_arcsec, mode=mode, k=k)
    assert got.equals(with_unit_vectors(index).crossmatch(
        q_ra, q_dec, radius_arcsec=radius_arcsec, mode=mode, k=k))
    assert got["separation_arcsec"].null_count < len(q_ra)


@settings(max_examples=40, derandomize=True, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), radius_arcsec=st.sampled_from([0.5, 5.0, 300.0, 7200.0]),
       layout=st.sampled_from(["uniform", "north_pole", "south_pole", "ra_wrap"]))
def test_positions_in_place_answer_as_unit_vectors(seed, radius_arcsec, layout):
    """Cones, cross-matches and polygons from positions read in place (declination band,
    unit vectors computed per row) equal those from held unit vectors, bit for bit."""
    rng = np.random.default_rng(seed)
    n = 4000
    ra, dec = rng.uniform(0, 360, n), np.degrees(np.arcsin(rng.uniform(-1, 1, n)))
    if layout == "north_pole":
        dec = 90 - rng.exponential(0.3, n)
    elif layout == "south_pole":
        dec = -90 + rng.exponential(0.3, n)
    elif layout == "ra_wrap":
        ra, dec = rng.normal(0, 0.3, n) % 360, rng.normal(0, 0.3, n)
    index = SkyIndex.from_table(pa.table({"ra": ra, "dec": np.clip(dec, -90, 90)}))
    vectors = with_unit_vectors(index)
    pick = rng.integers(0, n, 100)
    q_ra = (ra[pick] + rng.normal(0, radius_arcsec / 3600, 100)) % 360
    q_dec = np.clip(dec[pick] + rng.normal(0, radius_arcsec / 3600, 100), -90, 90)
    for mode, k in (("nearest", 1), ("k", 4), ("all", 1)):
        assert index.crossmatch(q_ra, q_dec, radius_arcsec=radius_arcsec, mode=mode,
                                k=k).equals(vectors.crossmatch(
                                    q_ra, q_dec, radius_arcsec=radius_arcsec, mode=mode, k=k))
    assert index.cone_search(q_ra[0], q_dec[0], radius_arcsec).equals(
        vectors.cone_search(q_ra[0], q_dec[0], radius_arcsec))
    corners_ra = q_ra[0] + np.array([-1.0, 1.0, 1.0, -1.0])
    corners_dec = np.clip(q_dec[0], -88.0, 88.0) + np.array([-1.0, -1.0, 1.0, 1.0])
    assert index.polygon_search(corners_ra % 360, corners_dec).equals(
        vectors.polygon_search(corners_ra % 360, corners_dec))
