"""Gaia archive exports of gaia_source, with the archive's column names, in every format
the archive offers, loaded through the bundled gaia_dr3 spec."""

import numpy as np
import pyarrow as pa
import pytest
from astropy.table import Table

from xmatch import LoadOptions, load_catalog

ARCHIVE_COLUMNS = ["solution_id", "designation", "source_id", "ref_epoch", "ra", "ra_error",
                   "dec", "dec_error", "parallax", "parallax_error", "pmra", "pmra_error",
                   "pmdec", "pmdec_error", "ruwe", "phot_g_mean_mag", "phot_bp_mean_mag",
                   "phot_rp_mean_mag", "bp_rp", "radial_velocity", "phot_variable_flag"]


def archive_table(n=400, seed=3):
    rng = np.random.default_rng(seed)
    source_id = rng.integers(1, 2**62, n)
    five_parameter = rng.random(n) < 0.8  # 2-parameter solutions have no pm / parallax
    def maybe(values):
        return np.ma.masked_array(values, mask=~five_parameter)
    table = Table({
        "solution_id": np.full(n, 375316653866487564),
        "designation": [f"Gaia DR3 {s}" for s in source_id],
        "source_id": source_id, "ref_epoch": np.full(n, 2016.0),
        "ra": rng.uniform(0, 360, n), "ra_error": rng.uniform(0.01, 1, n),
        "dec": np.degrees(np.arcsin(rng.uniform(-1, 1, n))), "dec_error": rng.uniform(0.01, 1, n),
        "parallax": maybe(rng.normal(1, 1, n)), "parallax_error": maybe(rng.uniform(0.01, 1, n)),
        "pmra": maybe(rng.normal(0, 10, n)), "pmra_error": maybe(rng.uniform(0.01, 1, n)),
        "pmdec": maybe(rng.normal(0, 10, n)), "pmdec_error": maybe(rng.uniform(0.01, 1, n)),
        "ruwe": rng.uniform(0.8, 3, n).astype(np.float32),
        "phot_g_mean_mag": rng.uniform(3, 21, n).astype(np.float32),
        "phot_bp_mean_mag": rng.uniform(3, 21, n).astype(np.float32),
        "phot_rp_mean_mag": rng.uniform(3, 21, n).astype(np.float32),
        "bp_rp": rng.uniform(-0.5, 3, n).astype(np.float32),
        "radial_velocity": np.ma.masked_array(rng.normal(0, 30, n), mask=rng.random(n) < 0.9),
        "phot_variable_flag": np.where(rng.random(n) < 0.1, "VARIABLE", "NOT_AVAILABLE"),
    })
    for name in ("ra", "dec"):
        table[name].unit = "deg"
    for name in ("pmra", "pmdec"):
        table[name].unit = "mas / yr"
    return table, five_parameter


@pytest.mark.parametrize("suffix,fmt", [(".csv", "ascii.csv"), (".ecsv", "ascii.ecsv"),
                                        (".fits", "fits"), (".vot", "votable"),
                                        (".parquet", "parquet")])
def test_gaia_archive_export_loads_with_proper_motions(tmp_path, suffix, fmt):
    table, five_parameter = archive_table()
    path = tmp_path / f"gaia_source{suffix}"
    if fmt == "parquet":
        import pyarrow.parquet as pq

        pq.write_table(pa.table({name: pa.array(np.ma.getdata(table[name]),
                                                mask=np.ma.getmaskarray(table[name]))
                                 if np.ma.isMaskedArray(table[name]) else
                                 np.asarray(table[name]) for name in table.colnames}), path)
    else:
        table.write(path, format=fmt)
    catalog = load_catalog("gaia_dr3", [str(path)], data=tmp_path / "data",
                           options=LoadOptions(workers=1, progress=False))
    assert catalog.num_rows == len(table)
    back = catalog.read()
    back = back.take(np.argsort(back["source_id"].to_numpy()))
    order = np.argsort(np.asarray(table["source_id"]))
    assert "designation" not in back.column_names  # the spec keeps the columns it names
    for name in ("ra", "dec", "pmra", "pmdec", "parallax", "phot_g_mean_mag", "ruwe"):
        assert name in back.column_names
    np.testing.assert_array_equal(back["source_id"].to_numpy(),
                                  np.asarray(table["source_id"])[order])
    np.testing.assert_allclose(back["ra"].to_numpy(), np.asarray(table["ra"])[order],
                               rtol=1e-15)
    pmra = back["pmra"].to_numpy(zero_copy_only=False)
    expected = np.ma.getdata(table["pmra"])[order]
    has_pm = five_parameter[order]
    np.testing.assert_allclose(pmra[has_pm], expected[has_pm], rtol=1e-12)
    assert back["pmra"].null_count == (~five_parameter).sum()
    assert catalog.spec.epoch_jyear == 2016.0
