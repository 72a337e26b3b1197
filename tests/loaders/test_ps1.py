"""Tests for xmatch.loaders.ps1: MAST export normalisation and the synthetic PS1 catalog."""

from __future__ import annotations

import math
import multiprocessing
import re
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xmatch.loaders import ps1

HYPOTHESIS = settings(derandomize=True, max_examples=25, deadline=None)

EXPECTED_TYPES = {
    "objName": pa.string(),
    "objID": pa.int64(),
    "raMean": pa.float64(),
    "decMean": pa.float64(),
    "raMeanErr": pa.float32(),
    "decMeanErr": pa.float32(),
    "epochMean": pa.float64(),
    "nDetections": pa.int16(),
    "ng": pa.int16(),
    "nr": pa.int16(),
    "ni": pa.int16(),
    "nz": pa.int16(),
    "ny": pa.int16(),
    **{f"{b}MeanPSFMag{e}": pa.float32() for b in "grizy" for e in ("", "Err")},
    "qualityFlag": pa.int16(),
    "objInfoFlag": pa.int32(),
}

# One shared catalog sample: generation is cached per block, so reuse is cheap.
N_SAMPLE = 100_000


@pytest.fixture(scope="module")
def sample() -> pa.Table:
    return ps1.synthetic_chunk(N_SAMPLE, 0, N_SAMPLE, seed=11)


def _objid_oracle(ra: float, dec: float) -> int:
    """Scalar transcription of PS1's CreatePSPSObjectID (PS1 archive documentation)."""
    zh = 0.0083333
    zid = (dec + 90.0) / zh
    izone = math.floor(zid)
    zresid = zid - float(izone)
    return izone * 10_000_000_000_000 + int(ra * 1_000_000.0) * 10_000 + int(zresid * 10_000.0)


def _galactic_b(ra, dec):
    from astropy import units as u
    from astropy.coordinates import SkyCoord

    return SkyCoord(ra=ra * u.deg, dec=dec * u.deg, frame="icrs").galactic


# ---------------------------------------------------------------------------
# Schema
# ---------------------------------------------------------------------------


def test_schema_has_real_mast_names_and_types():
    assert ps1.MEAN_OBJECT_SCHEMA.names == list(EXPECTED_TYPES)
    for name, type_ in EXPECTED_TYPES.items():
        assert ps1.MEAN_OBJECT_SCHEMA.field(name).type == type_, name


def test_chunk_has_exactly_the_schema(sample):
    assert sample.schema.equals(ps1.MEAN_OBJECT_SCHEMA, check_metadata=True)
    assert sample.num_rows == N_SAMPLE


# ---------------------------------------------------------------------------
# Determinism and chunking
# ---------------------------------------------------------------------------


def test_same_chunk_twice_is_identical():
    a = ps1.synthetic_chunk(200_000, 1, 70_000, seed=5)
    ps1._block.cache_clear()  # force a real regeneration, not a cache hit
    b = ps1.synthetic_chunk(200_000, 1, 70_000, seed=5)
    assert a.equals(b)


def test_chunk_is_identical_in_another_process():
    args = (150_000, 2, 40_000, 9)
    ctx = multiprocessing.get_context("spawn")  # a fresh interpreter, no shared cache
    with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
        remote = pool.submit(ps1.synthetic_chunk, *args).result(timeout=120)
    assert remote.equals(ps1.synthetic_chunk(*args))


def test_seed_changes_catalog():
    a = ps1.synthetic_chunk(1000, 0, 1000, seed=1)
    b = ps1.synthetic_chunk(1000, 0, 1000, seed=2)
    assert not np.array_equal(a["objID"].to_numpy(), b["objID"].to_numpy())


@HYPOTHESIS
@given(
    chunk_rows=st.integers(min_value=3_000, max_value=90_000),
    n_total=st.integers(min_value=1, max_value=90_000),
)
def test_any_chunking_gives_the_same_catalog(chunk_rows, n_total):
    full = ps1.synthetic_chunk(90_000, 0, 90_000, seed=4)
    n_chunks = -(-n_total // chunk_rows)
    parts = [ps1.synthetic_chunk(n_total, i, chunk_rows, seed=4) for i in range(n_chunks)]
    assert sum(p.num_rows for p in parts) == n_total
    assert pa.concat_tables(parts).equals(full.slice(0, n_total))


def test_invalid_arguments():
    with pytest.raises(IndexError):
        ps1.synthetic_chunk(100, 1, 100)
    with pytest.raises(IndexError):
        ps1.synthetic_chunk(100, -1, 10)
    with pytest.raises(ValueError):
        ps1.synthetic_chunk(100, 0, 0)
    with pytest.raises(ValueError):
        ps1.synthetic_chunk(100, 0, 10, seed=-1)
    with pytest.raises(ValueError):
        ps1.synthetic_chunk(10**16, 0, 10)


# ---------------------------------------------------------------------------
# Parquet writer
# ---------------------------------------------------------------------------


def test_write_synthetic_parquet_equals_concatenated_chunks(tmp_path):
    path = tmp_path / "ps1_synthetic.parquet"
    n, chunk_rows = 23_000, 7_000
    ps1.write_synthetic_parquet(
        path, n, seed=3, chunk_rows=chunk_rows, row_group_rows=5_000, progress=True
    )

    expected = pa.concat_tables(
        [ps1.synthetic_chunk(n, i, chunk_rows, seed=3) for i in range(-(-n // chunk_rows))]
    )
    got = pq.read_table(path)
    assert got.equals(expected)
    assert got.schema.equals(ps1.MEAN_OBJECT_SCHEMA)  # metadata aside

    meta = pq.read_schema(path).metadata
    assert meta[b"xmatch_synthetic"] == b"true"
    assert meta[b"generator"] == b"xmatch.loaders.ps1.synthetic_chunk"
    assert meta[b"seed"] == b"3"
    assert meta[b"note"].decode() == ps1.SYNTHETIC_NOTE

    md = pq.ParquetFile(path).metadata
    assert [md.row_group(i).num_rows for i in range(md.num_row_groups)] == [5_000] * 4 + [3_000]
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp file left


def test_write_empty_catalog(tmp_path):
    path = tmp_path / "empty.parquet"
    ps1.write_synthetic_parquet(path, 0)
    t = pq.read_table(path)
    assert t.num_rows == 0
    assert t.schema.equals(ps1.MEAN_OBJECT_SCHEMA)


# ---------------------------------------------------------------------------
# Sky distribution
# ---------------------------------------------------------------------------


def test_footprint(sample):
    ra = sample["raMean"].to_numpy()
    dec = sample["decMean"].to_numpy()
    assert np.all(dec > -30.0) and np.all(dec <= 90.0)
    assert np.all(ra >= 0.0) and np.all(ra < 360.0)
    # The whole footprint is populated, not one patch.
    assert np.histogram(ra, bins=12, range=(0, 360))[0].min() > 0
    assert dec.min() < -25.0 and dec.max() > 80.0


def test_density_rises_toward_galactic_plane_and_centre(sample):
    from astropy import units as u
    from astropy.coordinates import SkyCoord

    gal = _galactic_b(sample["raMean"].to_numpy()[:30_000], sample["decMean"].to_numpy()[:30_000])
    # Area fractions of the same footprint, from uniform points on the sphere.
    rng = np.random.default_rng(0)
    z = rng.uniform(-0.5, 1.0, 60_000)  # sin(dec), dec > -30
    ref = _galactic_b(rng.uniform(0.0, 360.0, z.size), np.degrees(np.arcsin(z)))
    in_plane, area_plane = np.mean(np.abs(gal.b.deg) < 10.0), np.mean(np.abs(ref.b.deg) < 10.0)
    assert in_plane > 2.5 * area_plane

    # Bulge: within 20 deg of the Galactic centre the over-density beats the one
    # around the anticentre, where only the disc contributes.
    def overdensity(l_deg):
        centre = SkyCoord(l=l_deg * u.deg, b=0 * u.deg, frame="galactic")
        near = np.mean(gal.separation(centre).deg < 20.0)
        return near / np.mean(ref.separation(centre).deg < 20.0)

    assert overdensity(0.0) > 1.15 * overdensity(180.0) > 2.0
    # Density keeps falling with |b| toward the poles.
    absb, ref_absb = np.abs(gal.b.deg), np.abs(ref.b.deg)
    per_area = [
        np.mean((absb >= lo) & (absb < hi)) / np.mean((ref_absb >= lo) & (ref_absb < hi))
        for lo, hi in [(0, 10), (10, 30), (30, 90)]
    ]
    assert per_area[0] > per_area[1] > per_area[2]


def test_rotation_matrix_matches_astropy():
    m = ps1.ICRS_TO_GALACTIC
    np.testing.assert_allclose(m @ m.T, np.eye(3), atol=1e-15)
    rng = np.random.default_rng(1)
    ra = rng.uniform(0.0, 360.0, 2000)
    dec = np.degrees(np.arcsin(rng.uniform(-1.0, 1.0, 2000)))
    a, d = np.radians(ra), np.radians(dec)
    v = m @ np.stack([np.cos(d) * np.cos(a), np.cos(d) * np.sin(a), np.sin(d)])
    gal = _galactic_b(ra, dec).cartesian
    ref = np.stack([gal.x.value, gal.y.value, gal.z.value])
    # Angle between our and astropy's Galactic unit vectors.
    sep_deg = np.degrees(2.0 * np.arcsin(np.linalg.norm(v - ref, axis=0) / 2.0))
    assert sep_deg.max() < 1e-9


# ---------------------------------------------------------------------------
# objID and objName
# ---------------------------------------------------------------------------


def test_objid_unique_and_follows_ps1_formula(sample):
    objid = sample["objID"].to_numpy()
    ra = sample["raMean"].to_numpy()
    dec = sample["decMean"].to_numpy()
    assert np.unique(objid).size == objid.size
    # Vectorised formula reproduces every objID from the final position ...
    np.testing.assert_array_equal(ps1.ps1_objid(ra, dec), objid)
    # ... and so does the scalar transcription of PS1's C code.
    for k in np.random.default_rng(2).choice(objid.size, 300, replace=False):
        assert objid[k] == _objid_oracle(ra[k], dec[k])
    # Decoding: zone and RA parts come back from the id.
    zone = objid // 10**13
    np.testing.assert_array_equal(zone, np.floor((dec + 90.0) / 0.0083333).astype(np.int64))
    np.testing.assert_array_equal((objid % 10**13) // 10**4, np.floor(ra * 1e6).astype(np.int64))
    assert np.all(objid % 10**4 < 10**4)


def test_objid_unique_across_distant_chunks():
    # Chunks of a large catalog, generated separately, never reuse an objID.
    chunks = (0, 1, 4_000, 49_999)
    ids = np.concatenate(
        [ps1.synthetic_chunk(10**9, i, 20_000, seed=0)["objID"].to_numpy() for i in chunks]
    )
    assert np.unique(ids).size == ids.size


@HYPOTHESIS
@given(
    ra=st.floats(min_value=0.0, max_value=359.999999, allow_nan=False),
    dec=st.floats(min_value=-90.0, max_value=90.0, allow_nan=False),
)
def test_ps1_objid_matches_scalar_oracle(ra, dec):
    assert int(ps1.ps1_objid(ra, dec)) == _objid_oracle(ra, dec)


def test_ps1_objid_zone_boundary():
    zh = 0.0083333
    dec = -90.0 + 9000 * zh  # start of zone 9000 (up to rounding of the product)
    below, above = ps1.ps1_objid([10.0, 10.0], [dec - 1e-9, dec + 1e-9]) // 10**13
    assert (below, above) == (8999, 9000)


def test_objname_format_and_position(sample):
    names = sample["objName"].to_pylist()[:2000]
    ra = sample["raMean"].to_numpy()[:2000]
    dec = sample["decMean"].to_numpy()[:2000]
    pat = re.compile(r"^PSO J(\d\d)(\d\d)(\d\d\.\d{3})([+-])(\d\d)(\d\d)(\d\d\.\d{3})$")
    for name, r, d in zip(names, ra, dec, strict=True):
        m = pat.match(name)
        assert m, name
        hh, mm, ss, sign, dd, dm, ds = m.groups()
        ra_n = 15.0 * (int(hh) + int(mm) / 60.0 + float(ss) / 3600.0)
        dec_n = (1 if sign == "+" else -1) * (int(dd) + int(dm) / 60.0 + float(ds) / 3600.0)
        assert 0.0 <= (r - ra_n) * 3600.0 < 0.015 + 1e-6  # truncated to 1 ms of time
        assert 0.0 <= abs(d) * 3600.0 - abs(dec_n) * 3600.0 < 0.001 + 1e-6
        assert int(hh) < 24 and int(mm) < 60 and int(dm) < 60
        assert float(ss) < 60.0 and float(ds) < 60.0


# ---------------------------------------------------------------------------
# Photometry and flags
# ---------------------------------------------------------------------------


def test_photometry_is_plausible(sample):
    col = {c: sample[c].to_numpy(zero_copy_only=False) for c in sample.column_names}
    r = col["rMeanPSFMag"]
    assert 11.0 < np.nanmin(r) < 13.5 and 22.8 < np.nanmax(r) < 25.5
    # Number counts rise steeply toward faint magnitudes.
    assert np.sum((r > 21) & (r < 22)) > 5 * np.sum((r > 16) & (r < 17))
    gr = col["gMeanPSFMag"] - r
    bright = r < 19.0
    assert abs(np.nanmedian(gr[bright]) - 0.6) < 0.1
    assert 0.2 < np.nanstd(gr[bright]) < 0.4

    # Faint bands are sometimes missing; a missing magnitude has a missing error
    # and corresponds to zero detections in that band.
    for b in "grizy":
        mag, err, nb = col[f"{b}MeanPSFMag"], col[f"{b}MeanPSFMagErr"], col["n" + b]
        np.testing.assert_array_equal(np.isnan(mag), np.isnan(err))
        np.testing.assert_array_equal(np.isnan(mag), nb == 0)
    assert 0.3 < np.mean(np.isnan(col["yMeanPSFMag"])) < 0.95
    assert np.mean(np.isnan(col["rMeanPSFMag"])) < 0.4
    mags = np.stack([col[f"{b}MeanPSFMag"] for b in "grizy"])
    assert np.all(np.any(~np.isnan(mags), axis=0))  # every object has a magnitude

    # Errors grow with magnitude.
    err = col["rMeanPSFMagErr"]
    assert np.nanmedian(err[r < 17]) < 0.01 < np.nanmedian(err[(r > 22) & (r < 23)])

    ndet = col["nDetections"].astype(int)
    per_band = sum(col["n" + b].astype(int) for b in "grizy")
    assert ndet.min() >= 1 and ndet.max() <= 150
    assert np.all(per_band <= ndet)
    # Brighter objects are detected more often.
    assert np.median(ndet[r < 19]) > 5 * np.median(ndet[r > 22.5])

    epoch = col["epochMean"]
    assert epoch.min() >= 55000.0 and epoch.max() <= 57000.0
    for c in ("raMeanErr", "decMeanErr"):
        assert 0.005 < np.median(col[c]) < 0.2
        assert col[c].min() > 0.003 and col[c].max() <= 0.5


def test_flags_use_real_ps1_bits(sample):
    qf = sample["qualityFlag"].to_numpy().astype(np.int64)
    info = sample["objInfoFlag"].to_numpy().astype(np.int64)
    assert qf.min() >= 0 and qf.max() <= 255
    values, counts = np.unique(qf, return_counts=True)
    assert values[np.argmax(counts)] == 52  # QF_OBJ_GOOD | GOOD_STACK | BEST_STACK
    # objInfoFlag repeats the quality bits from EXT (0x00800000) upward.
    np.testing.assert_array_equal(info >> 23, qf)
    # Exactly one of the good / suspect / bad stack states is set.
    stack_states = ((qf & 16) > 0).astype(int) + ((qf & 64) > 0) + ((qf & 128) > 0)
    assert np.all(stack_states == 1)
    # Every object records which astrometric model was used.
    assert np.all(info & (65536 | 131072 | 262144))


# ---------------------------------------------------------------------------
# MAST export normalisation
# ---------------------------------------------------------------------------


def test_normalize_nulls_sentinels_and_casts():
    table = pa.table(
        {
            "objID": pa.array(["134410836330807937", "122861877059309835"]),
            "raMean": pa.array([83.63308, -999.0]),
            "gMeanPSFMag": pa.array([-999, -999], pa.int64()),
            "rMeanPSFMag": pa.array(["17.25", "-999.0"]),
            "rMeanPSFMagErr": pa.array([0.004, -999.0]),
            "epochMean": pa.array([56001.5, -999.0]),
            "nDetections": pa.array([52, 3], pa.int64()),
            "ny": pa.array(["4", "0"]),
            "qualityFlag": pa.array([52.0, 60.0]),
            "objInfoFlag": pa.array([436527104, 444915712], pa.int64()),
            "nStackDetections": pa.array([5, -999], pa.int64()),  # unknown: untouched
        }
    )
    out = ps1.normalize_mast_table(table)
    assert out.column_names == table.column_names
    for name in out.column_names:
        if name in EXPECTED_TYPES:
            assert out.schema.field(name).type == EXPECTED_TYPES[name], name
    assert out["objID"].to_pylist() == [134410836330807937, 122861877059309835]
    assert out["raMean"].to_pylist() == [83.63308, None]
    assert out["gMeanPSFMag"].null_count == 2
    assert out["rMeanPSFMag"].to_pylist() == [pytest.approx(17.25), None]
    assert out["rMeanPSFMagErr"].to_pylist() == [pytest.approx(0.004), None]
    assert out["epochMean"].to_pylist() == [56001.5, None]
    assert out["nDetections"].to_pylist() == [52, 3]
    assert out["ny"].to_pylist() == [4, 0]
    assert out["qualityFlag"].to_pylist() == [52, 60]
    assert out["nStackDetections"].equals(table["nStackDetections"])
    assert out.schema.field("nStackDetections") == table.schema.field("nStackDetections")


def test_normalize_rejects_lossy_casts():
    with pytest.raises(pa.ArrowInvalid):
        ps1.normalize_mast_table(pa.table({"nDetections": [2.5]}))
    with pytest.raises(pa.ArrowInvalid):
        ps1.normalize_mast_table(pa.table({"ng": [70_000]}))  # does not fit int16


@HYPOTHESIS
@given(
    values=st.lists(
        st.one_of(st.just(-999.0), st.floats(min_value=-50.0, max_value=50.0, allow_nan=False)),
        min_size=1,
        max_size=40,
    ),
    as_text=st.booleans(),
)
def test_normalize_sentinel_property(values, as_text):
    arr = pa.array([repr(v) for v in values]) if as_text else pa.array(values)
    out = ps1.normalize_mast_table(pa.table({"zMeanPSFMagErr": arr, "extra": arr}))
    got = out["zMeanPSFMagErr"].to_pylist()
    for v, g in zip(values, got, strict=True):
        if v == -999.0:
            assert g is None
        else:
            assert g == pytest.approx(v, rel=1e-6, abs=1e-30)
    assert out["extra"].equals(pa.chunked_array([arr]))


# A MAST-style export (real column names and sentinels; the values are made up, with
# objIDs consistent with the positions). Columns not in the schema ride along.
MAST_HEADER = (
    "objName,objAltName1,objID,raMean,decMean,raMeanErr,decMeanErr,epochMean,"
    "nStackDetections,nDetections,ng,nr,ni,nz,ny,"
    "gMeanPSFMag,gMeanPSFMagErr,rMeanPSFMag,rMeanPSFMagErr,iMeanPSFMag,iMeanPSFMagErr,"
    "zMeanPSFMag,zMeanPSFMagErr,yMeanPSFMag,yMeanPSFMagErr,qualityFlag,objInfoFlag"
)
MAST_ROWS = (
    "PSO J053431.939+220052.20,-999,134410836330807937,83.63308,22.0145,0.0123,0.0101,"
    "56012.41723,5,61,11,13,15,12,10,16.8421,0.0041,16.3302,0.0035,16.1455,0.0029,"
    "16.0871,0.0044,16.0302,-999.0,52,436527104",
    "PSO J123049.423+122328.03,-999,122861877059309835,187.70593,12.39112,0.0456,0.0512,"
    "55877.12,3,7,0,3,4,0,0,-999,-999,21.9021,0.1412,21.5513,0.0987,"
    "-999,-999,-999,-999,48,402972672",
    "PSO J004244.330+411607.50,-999,157520106847103130,10.68471,41.26875,0.2031,0.1877,"
    "56403.99,0,1,0,0,1,0,0,-999,-999,-999,-999,22.8714,0.2101,"
    "-999,-999,-999,-999,128,1073811457",
    "PSO J184000.000-293000.00,-999,72602800000000290,280.0,-29.5,0.0101,0.0099,"
    "55643.0,5,84,14,18,22,16,14,15.1,0.002,14.62,0.0019,14.41,0.0021,"
    "14.33,0.0023,14.28,-999,60,503635968",
)
MAST_CSV = "\n".join((MAST_HEADER, *MAST_ROWS)) + "\n"


def test_normalize_realistic_mast_csv(tmp_path):
    path = tmp_path / "mast_ps1_dr2_mean.csv"
    path.write_text(MAST_CSV)
    raw = pacsv.read_csv(path)
    assert raw.schema.field("yMeanPSFMagErr").type == pa.float64()  # all -999 / -999.0
    assert raw.schema.field("nDetections").type == pa.int64()

    out = ps1.normalize_mast_table(raw)
    assert out.num_rows == 4
    assert out.column_names == raw.column_names
    # Known columns now have the schema's types; unknown ones are as read.
    for name in out.column_names:
        if name in EXPECTED_TYPES:
            assert out.schema.field(name).type == EXPECTED_TYPES[name], name
    assert out["objAltName1"].equals(raw["objAltName1"])
    assert out["nStackDetections"].equals(raw["nStackDetections"])

    assert out["objID"].to_pylist()[0] == 134410836330807937
    # objIDs in this sample are consistent with their positions per the PS1 formula.
    np.testing.assert_array_equal(
        ps1.ps1_objid(out["raMean"].to_numpy(), out["decMean"].to_numpy()), out["objID"].to_numpy()
    )
    assert out["yMeanPSFMagErr"].null_count == 4
    assert out["gMeanPSFMag"].to_pylist()[1:3] == [None, None]
    assert out["rMeanPSFMag"].to_pylist()[2] is None
    assert out["iMeanPSFMag"].to_pylist()[2] == pytest.approx(22.8714, abs=1e-5)
    assert out["yMeanPSFMag"].to_pylist()[0] == pytest.approx(16.0302, abs=1e-5)
    assert out["qualityFlag"].to_pylist() == [52, 48, 128, 60]
    assert out["raMeanErr"].null_count == 0
    # Counts are never sentinel-nulled: zero detections stay zero.
    assert out["ng"].to_pylist() == [11, 0, 0, 14]


# ---------------------------------------------------------------------------
# Through the loaders and the store
# ---------------------------------------------------------------------------


def test_synthetic_ps1_catalog_loads_flagged_synthetic(tmp_path):
    from xmatch import LoadOptions, bundled_spec, load_catalog

    spec = bundled_spec("ps1_dr2").with_overrides(loader_options={"rows": 200_000, "seed": 7})
    catalog = load_catalog(spec=spec, data=tmp_path,
                           options=LoadOptions(workers=2, chunk_rows=65_536, progress=False))
    assert catalog.num_rows == 200_000
    assert catalog.provenance["synthetic"] is True
    assert catalog.properties["xmatch_synthetic"] == "true"
    back = catalog.read(["objID", "decMean"])
    assert len(np.unique(back["objID"].to_numpy())) == 200_000
    assert back["decMean"].to_numpy().min() > -30
    expected = ps1.synthetic_chunk(200_000, 0, 200_000, 7)
    assert sorted(back["objID"].to_pylist()) == sorted(expected["objID"].to_pylist())


def test_mast_export_loads_with_sentinels_as_nulls(tmp_path):
    from xmatch import load_catalog

    path = tmp_path / "mast.csv"
    path.write_text(
        "objName,objID,raMean,decMean,nDetections,gMeanPSFMag,rMeanPSFMag,qualityFlag\n"
        "PSO J000000.000+000000.000,108010000000000000,0.0001,0.0001,12,18.5,-999,52\n"
        "PSO J120000.000+450000.000,162001800000000000,180.0,45.0,3,-999,20.1,16\n")
    catalog = load_catalog("ps1_dr2", [str(path)], data=tmp_path / "d")
    table = catalog.read()
    table = table.take(np.argsort(table["objID"].to_numpy()))
    assert catalog.provenance["synthetic"] is False
    assert table["rMeanPSFMag"].to_pylist()[0] is None
    assert table["gMeanPSFMag"].to_pylist()[1] is None
    assert table["nDetections"].type == pa.int16()
