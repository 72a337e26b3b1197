"""Bulk loading into the HATS store: layout, exact round trip, interoperability with
hats and LSDB in both directions, manifests and atomic publishing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import astropy.units as u
import cdshealpix.nested
import healpy
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from astropy.coordinates import Latitude, Longitude
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import random_sky_table
from xmatch import DamagedCatalogError, LoadOptions, load_catalog, open_catalog
from xmatch.store import paths
from xmatch.store.writer import _argsort_keeping_ties

INLINE = LoadOptions(workers=1, chunk_rows=700, progress=False)


def load_random(tmp_path, data_dir, spec, n=5000, seed=0, options=INLINE, name="random.parquet"):
    table = random_sky_table(n, seed)
    path = tmp_path / name
    pq.write_table(table, path, row_group_size=900)
    return table, load_catalog(spec=spec, sources=[str(path)], data=data_dir, options=options)


def sorted_by_id(table):
    return table.take(np.argsort(table["id"].to_numpy(), kind="stable"))


def test_layout_is_hats_v1(tmp_path, data_dir, table_spec):
    _, catalog = load_random(tmp_path, data_dir, table_spec)
    root = catalog.root
    for name in (paths.PROPERTIES_FILE, paths.PARTITION_INFO_FILE, paths.MANIFEST_FILE,
                 paths.SIDECAR_FILE, "dataset/_metadata", "dataset/_common_metadata"):
        assert (root / name).is_file(), name
    props = dict(line.split("=", 1) for line in (root / paths.PROPERTIES_FILE).read_text()
                 .splitlines() if "=" in line)
    assert props["hats_version"] == "v1.0" and props["hats_col_healpix"] == "_healpix_29"
    assert int(props["hats_nrows"]) == 5000
    files = sorted(p.relative_to(root).as_posix() for p in root.glob("dataset/Norder=*/Dir=*/*"))
    expected = sorted(paths.partition_file(p.order, p.pixel) for p in catalog.partitions)
    assert files == expected
    assert pq.read_schema(root / "dataset/_common_metadata").field("_healpix_29").type == pa.int64()
    assert pq.read_metadata(root / "dataset/_metadata").num_rows == 5000


def test_round_trip_is_exact_and_partitions_are_sorted_and_bounded(tmp_path, data_dir, table_spec):
    table, catalog = load_random(tmp_path, data_dir, table_spec)
    counts = []
    for partition in catalog.partitions:
        part = catalog.read_partition(partition)
        hp29 = part["_healpix_29"].to_numpy()
        assert np.all(np.diff(hp29) >= 0), "rows must be sorted by _healpix_29"
        lo, hi = partition.range29()
        assert np.all((hp29 >= lo) & (hp29 < hi)), "rows must lie in their partition's pixel"
        counts.append(len(part))
    assert max(counts) <= table_spec.threshold_rows
    assert len({p.order for p in catalog.partitions}) > 1, "partitioning should be adaptive"
    back = sorted_by_id(catalog.read())
    for column in ("id", "ra", "dec", "mag", "name"):
        assert back[column].equals(table[column]), column


def test_healpix29_column_agrees_with_healpy_and_cdshealpix_for_every_row(
        tmp_path, data_dir, table_spec):
    table, catalog = load_random(tmp_path, data_dir, table_spec, n=20_000, seed=4)
    back = sorted_by_id(catalog.read())
    ra, dec = back["ra"].to_numpy(), back["dec"].to_numpy()
    ours = back["_healpix_29"].to_numpy()
    np.testing.assert_array_equal(ours, healpy.ang2pix(2**29, ra, dec, nest=True, lonlat=True))
    np.testing.assert_array_equal(ours, cdshealpix.nested.lonlat_to_healpix(
        Longitude(ra, u.deg), Latitude(dec, u.deg), 29).astype(np.int64))
    # The edge rows (poles, RA = 0 / 360) are the first ids of random_sky_table.
    assert ours[0] == ours[1]  # ra 0 and ra 360 at dec 0


def test_parallel_load_equals_inline_load(tmp_path, data_dir, table_spec):
    _, inline = load_random(tmp_path, data_dir, table_spec, n=8000)
    parallel_spec = table_spec.with_overrides(name="random_parallel")
    _, parallel = load_random(tmp_path, data_dir, parallel_spec, n=8000,
                              options=LoadOptions(workers=2, chunk_rows=1500, progress=False))
    assert inline.partitions == parallel.partitions
    for p in inline.partitions:
        assert inline.read_partition(p).equals(parallel.read_partition(p))


def test_written_catalog_opens_with_hats_and_lsdb_and_gives_back_the_rows(
        tmp_path, data_dir, table_spec):
    hats = pytest.importorskip("hats")
    lsdb = pytest.importorskip("lsdb")
    table, catalog = load_random(tmp_path, data_dir, table_spec)
    hats_catalog = hats.read_hats(catalog.root)
    assert hats_catalog.catalog_info.total_rows == 5000
    assert sorted(hats_catalog.get_healpix_pixels()) == sorted(
        hats.pixel_math.HealpixPixel(p.order, p.pixel) for p in catalog.partitions)
    # The MOC hats reads from point_map.fits is the order-6 cover of the points (mocpy).
    from mocpy import MOC

    expected_moc = MOC.from_lonlat(lon=table["ra"].to_numpy() * u.deg,
                                   lat=table["dec"].to_numpy() * u.deg, max_norder=6)
    assert hats_catalog.moc == expected_moc
    assert hats.io.skymap.read_skymap(hats_catalog, None).sum() == 5000
    frame = lsdb.open_catalog(catalog.root).compute()
    frame = frame.sort_values("id")
    assert len(frame) == 5000
    np.testing.assert_array_equal(frame["id"].to_numpy(), table["id"].to_numpy())
    np.testing.assert_array_equal(frame["ra"].to_numpy(), table["ra"].to_numpy())
    np.testing.assert_array_equal(frame["dec"].to_numpy(), table["dec"].to_numpy())
    np.testing.assert_array_equal(frame["mag"].to_numpy(), table["mag"].to_numpy())
    assert frame["name"].tolist() == table["name"].to_pylist()


def test_lsdb_written_catalog_is_registered_and_read_unchanged(tmp_path, data_dir):
    lsdb = pytest.importorskip("lsdb")
    table = random_sky_table(3000, seed=7)
    frame = table.to_pandas()
    # write_catalog is the current name of LSDB's to_hats (deprecated alias).
    lsdb.from_dataframe(frame, catalog_name="foreign", ra_column="ra", dec_column="dec",
                        partition_rows=500).write_catalog(tmp_path / "foreign")
    root = tmp_path / "foreign"
    hats_root = root / "foreign" if (root / "foreign" / paths.PROPERTIES_FILE).exists() else root
    before = {p: p.stat().st_mtime_ns for p in hats_root.rglob("*") if p.is_file()}
    catalog = load_catalog("foreign", [str(hats_root)], data=data_dir)
    assert catalog.registered
    assert {p: p.stat().st_mtime_ns for p in hats_root.rglob("*") if p.is_file()} == before
    back = sorted_by_id(catalog.read())
    assert back["id"].equals(table["id"])
    assert back["ra"].equals(table["ra"]) and back["dec"].equals(table["dec"])
    assert "foreign" in data_dir.names()
    hit = catalog.cone_search(float(table["ra"][50].as_py()), float(table["dec"][50].as_py()), 1.0)
    assert hit["id"][0].as_py() == 50
    # Damage to the foreign files is detected through the manifest taken at registration.
    victim = catalog.partition_path(catalog.partitions[0])
    with open(victim, "ab") as handle:
        handle.write(b"x")
    with pytest.raises(DamagedCatalogError, match="bytes"):
        open_catalog("foreign", data_dir)


def test_manifest_detects_damage(tmp_path, data_dir, table_spec):
    _, catalog = load_random(tmp_path, data_dir, table_spec)
    assert catalog.verify() == []
    victim = catalog.partition_path(catalog.partitions[1])
    content = bytearray(victim.read_bytes())
    content[len(content) // 2] ^= 0xFF  # same size, different content
    victim.write_bytes(bytes(content))
    open_catalog("random", data_dir)  # the cheap size check cannot see a flipped byte
    with pytest.raises(DamagedCatalogError, match="differs from its checksum"):
        open_catalog("random", data_dir, verify="checksum")
    victim.unlink()
    with pytest.raises(DamagedCatalogError, match="missing"):
        open_catalog("random", data_dir)


def test_reload_publishes_new_version_and_keeps_name(tmp_path, data_dir, table_spec):
    _, first = load_random(tmp_path, data_dir, table_spec, n=2000)
    _, second = load_random(tmp_path, data_dir, table_spec, n=3000, seed=1)
    assert second.num_rows == 3000
    assert open_catalog("random", data_dir).num_rows == 3000
    versions = list((data_dir.root / paths.VERSIONS_DIR / "random").iterdir())
    assert len(versions) == 1, "older versions are removed after publishing"
    assert not any((data_dir.root / paths.STAGING_DIR).iterdir())


def test_failed_load_leaves_previous_version_intact(tmp_path, data_dir, table_spec):
    _, catalog = load_random(tmp_path, data_dir, table_spec, n=2000)
    before = catalog.root.resolve()
    bad = random_sky_table(3000, seed=3).to_pandas()
    bad.loc[2500, "dec"] = 95.0
    bad.to_csv(tmp_path / "bad.csv", index=False)
    from xmatch import LoadError

    with pytest.raises(LoadError, match=r"bad.csv, row 2501, column 'dec'"):
        load_catalog(spec=table_spec, sources=[str(tmp_path / "bad.csv")], data=data_dir,
                     options=INLINE)
    after = open_catalog("random", data_dir, verify="checksum")
    assert after.root.resolve() == before and after.num_rows == 2000
    assert not any((data_dir.root / paths.STAGING_DIR).iterdir())


KILLED_LOAD = """
import sys
from xmatch import LoadOptions, load_catalog
load_catalog("gaia_dr3", data=sys.argv[1],
             options=LoadOptions(workers=1, chunk_rows=10_000, progress=False))
"""


@pytest.mark.slow
def test_load_killed_midway_leaves_previous_catalog_intact_and_servable(tmp_path, data_dir,
                                                                        table_spec):
    spec = table_spec.with_overrides(name="gaia_dr3")  # a small previous version
    _, previous = load_random(tmp_path, data_dir, spec, n=2000)
    process = subprocess.Popen([sys.executable, "-c", KILLED_LOAD, str(data_dir.root)])
    staging = data_dir.root / paths.STAGING_DIR
    deadline = time.time() + 120
    while time.time() < deadline and process.poll() is None:
        if len(list(staging.glob("*/_spill/*.arrow"))) >= 5:
            break
        time.sleep(0.02)
    assert process.poll() is None, "the load finished before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert list(staging.iterdir()), "the killed load left its staging directory"
    survivor = open_catalog("gaia_dr3", data_dir, verify="checksum")
    assert survivor.num_rows == 2000 and survivor.root.resolve() == previous.root.resolve()
    assert len(survivor.cone_search(0.0, 0.0, 3600 * 30)) > 0
    # The next load cleans up what the killed one left.
    load_random(tmp_path, data_dir, spec, n=100)
    assert not any(staging.iterdir())


def test_provenance_and_properties_carry_our_metadata(tmp_path, data_dir, table_spec):
    spec = table_spec.with_overrides(epoch_jyear=2016.0, synthetic=True, reference="test")
    _, catalog = load_random(tmp_path, data_dir, spec)
    sidecar = json.loads((catalog.root / paths.SIDECAR_FILE).read_text())
    assert sidecar["spec"]["epoch_jyear"] == 2016.0
    assert sidecar["provenance"]["synthetic"] is True
    assert sidecar["provenance"]["rows"] == 5000
    assert catalog.properties["xmatch_synthetic"] == "true"
    assert float(catalog.properties["xmatch_epoch_jyear"]) == 2016.0
    info = catalog.info()
    assert info["rows"] == 5000 and 0 < info["coverage_fraction_partitions"] <= 1


def test_cone_search_matches_brute_force_at_poles_and_ra_wrap(tmp_path, data_dir, table_spec):
    table, catalog = load_random(tmp_path, data_dir, table_spec, n=20_000, seed=9)
    from astropy.coordinates import SkyCoord

    everything = SkyCoord(table["ra"].to_numpy(), table["dec"].to_numpy(), unit="deg")
    for ra, dec, radius in [(0.0, 0.0, 7200.0), (359.9, 10, 3600.0), (10, 90, 18000.0),
                            (200, -89.5, 7200.0), (123.4, 5.6, 1.0)]:
        found = catalog.cone_search(ra, dec, radius)
        separation = SkyCoord(ra, dec, unit="deg").separation(everything).arcsec
        expected = set(np.flatnonzero(separation <= radius).tolist())
        assert set(found["id"].to_pylist()) == expected
        assert np.all(np.diff(found["separation_arcsec"].to_numpy()) >= 0)


@settings(max_examples=50, derandomize=True, deadline=None)
@given(st.lists(st.integers(0, 20), max_size=300))
def test_argsort_keeping_ties_is_a_stable_sort(values):
    keys = np.array(values, dtype=np.int64)
    np.testing.assert_array_equal(_argsort_keeping_ties(keys), np.argsort(keys, kind="stable"))
