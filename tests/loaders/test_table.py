"""The generic table loader: every format, and bad input located by file, row and column."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from astropy.table import Table

from conftest import random_sky_table
from xmatch import CatalogSpec, LoadError, LoadOptions, load_catalog

INLINE = LoadOptions(workers=1, chunk_rows=400, progress=False)


def write_as(table: pa.Table, path, fmt):
    if fmt == "parquet":
        pq.write_table(table, path, row_group_size=300)
    elif fmt in ("csv", "csv.gz"):
        table.to_pandas().to_csv(path, index=False)
    else:
        astropy_table = Table({name: np.asarray(table[name].to_pylist())
                               if pa.types.is_string(table[name].type)
                               else table[name].to_numpy() for name in table.column_names})
        astropy_table["ra"].unit = "deg"
        astropy_table["dec"].unit = "deg"
        astropy_table.write(path, format={"ecsv": "ascii.ecsv", "fits": "fits",
                                          "fits.gz": "fits", "votable": "votable"}[fmt])


@pytest.mark.parametrize("fmt,suffix", [("parquet", ".parquet"), ("csv", ".csv"),
                                        ("csv.gz", ".csv.gz"), ("ecsv", ".ecsv"),
                                        ("fits", ".fits"), ("fits.gz", ".fits.gz"),
                                        ("votable", ".xml")])
def test_every_format_loads_the_same_rows(tmp_path, data_dir, table_spec, fmt, suffix):
    table = random_sky_table(1500, seed=11)
    path = tmp_path / f"input{suffix}"
    write_as(table, path, fmt)
    catalog = load_catalog(spec=table_spec, sources=[str(path)], data=data_dir, options=INLINE)
    back = catalog.read()
    back = back.take(np.argsort(back["id"].to_numpy()))
    np.testing.assert_array_equal(back["id"].to_numpy(), table["id"].to_numpy())
    np.testing.assert_array_equal(back["ra"].to_numpy(), table["ra"].to_numpy())
    np.testing.assert_array_equal(back["dec"].to_numpy(), table["dec"].to_numpy())
    np.testing.assert_allclose(back["mag"].to_numpy(), table["mag"].to_numpy(), rtol=1e-6)
    assert back["name"].to_pylist() == table["name"].to_pylist()


def test_several_files_make_one_catalog(tmp_path, data_dir, table_spec):
    first, second = random_sky_table(800, seed=1), random_sky_table(600, seed=2)
    second = second.set_column(0, "id", pa.array(np.arange(800, 1400)))
    pq.write_table(first, tmp_path / "a.parquet")
    second.to_pandas().to_csv(tmp_path / "b.csv", index=False)
    catalog = load_catalog(spec=table_spec, sources=[str(tmp_path / "a.parquet"),
                                                     str(tmp_path / "b.csv")],
                           data=data_dir, options=INLINE)
    assert catalog.num_rows == 1400
    sources = catalog.provenance["sources"]
    assert [s["rows_read"] for s in sources] == [800, 600]


def test_spec_without_id_gets_row_numbers(tmp_path, data_dir):
    table = random_sky_table(1000, seed=5).drop_columns(["id"])
    pq.write_table(table, tmp_path / "noid.parquet")
    spec = CatalogSpec(name="noid", ra="ra", dec="dec")
    catalog = load_catalog(spec=spec, sources=[str(tmp_path / "noid.parquet")], data=data_dir,
                           options=INLINE)
    rows = np.sort(catalog.read(["xmatch_row"])["xmatch_row"].to_numpy())
    np.testing.assert_array_equal(rows, np.arange(1, 1001))


# ------------------------------------------------------------------ bad input


def csv_with(tmp_path, edit, name="bad.csv", n=1200):
    frame = random_sky_table(n, seed=3).to_pandas()
    frame = edit(frame)
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("edit,expected", [
    (lambda f: f.drop(columns=["dec"]), r"bad.csv, column 'dec': required column 'dec' is "
                                        r"missing; columns present: id, ra, mag, name"),
    (lambda f: f.astype({"ra": object}).assign(ra=lambda g: g.ra.where(g.index != 1000, "12x")),
     r"bad.csv, row 1001, column 'ra': ra = '12x' is neither degrees nor sexagesimal"),
    (lambda f: f.assign(dec=lambda g: g.dec.where(g.index != 777, np.nan)),
     r"bad.csv, row 778, column 'dec': dec is missing \(empty, null or NaN\)"),
    (lambda f: f.assign(ra=lambda g: g.ra.where(g.index != 5, 360.5)),
     r"bad.csv, row 6, column 'ra': ra = 360.5 is not a finite coordinate in range "
     r"\(0 <= ra <= 360 deg\)"),
    (lambda f: f.assign(dec=lambda g: g.dec.where(g.index != 1199, -90.0001)),
     r"bad.csv, row 1200, column 'dec'"),
])
def test_bad_values_are_located_by_file_row_and_column(tmp_path, data_dir, table_spec, edit,
                                                       expected):
    path = csv_with(tmp_path, edit)
    with pytest.raises(LoadError, match=expected):
        load_catalog(spec=table_spec, sources=[str(path)], data=data_dir, options=INLINE)
    assert "random" not in data_dir.names()


def test_skip_invalid_drops_and_counts_rows_in_provenance(tmp_path, data_dir, table_spec):
    def edit(frame):
        frame.loc[[3, 500], "dec"] = 91.0
        frame.loc[900, "ra"] = np.nan
        return frame

    path = csv_with(tmp_path, edit)
    options = LoadOptions(workers=1, chunk_rows=400, progress=False, skip_invalid=True)
    catalog = load_catalog(spec=table_spec, sources=[str(path)], data=data_dir, options=options)
    assert catalog.num_rows == 1197
    prov = catalog.provenance
    assert prov["rows_skipped"] == 3 and prov["sources"][0]["rows_skipped"] == 3
    assert sorted(e["row"] for e in prov["skipped_examples"]) == [4, 501, 901]
    assert set(catalog.read(["id"])["id"].to_pylist()).isdisjoint({3, 500, 900})


def test_empty_file_and_header_only_file(tmp_path, data_dir, table_spec):
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(LoadError, match="empty.csv: the file is empty"):
        load_catalog(spec=table_spec, sources=[str(tmp_path / "empty.csv")], data=data_dir,
                     options=INLINE)
    (tmp_path / "header.csv").write_text("id,ra,dec,mag,name\n")
    with pytest.raises(LoadError, match="header.csv.*contains no data rows"):
        load_catalog(spec=table_spec, sources=[str(tmp_path / "header.csv")], data=data_dir,
                     options=INLINE)
    pq.write_table(random_sky_table(10).slice(0, 0), tmp_path / "empty.parquet")
    with pytest.raises(LoadError, match="empty.parquet.*contains no data rows"):
        load_catalog(spec=table_spec, sources=[str(tmp_path / "empty.parquet")], data=data_dir,
                     options=INLINE)


def test_truncated_parquet_is_reported(tmp_path, data_dir, table_spec):
    path = tmp_path / "cut.parquet"
    pq.write_table(random_sky_table(2000), path)
    content = path.read_bytes()
    path.write_bytes(content[: len(content) // 2])
    with pytest.raises(LoadError, match=r"cut.parquet: not a readable Parquet file \(truncated"):
        load_catalog(spec=table_spec, sources=[str(path)], data=data_dir, options=INLINE)


def test_missing_file_and_unknown_format(tmp_path, data_dir, table_spec):
    with pytest.raises(LoadError, match="nowhere.csv: no such file"):
        load_catalog(spec=table_spec, sources=[str(tmp_path / "nowhere.csv")], data=data_dir)
    (tmp_path / "data.xyz").write_text("1,2,3\n")
    with pytest.raises(LoadError, match="cannot tell the format"):
        load_catalog(spec=table_spec, sources=[str(tmp_path / "data.xyz")], data=data_dir)


def test_all_rows_invalid_with_skip_is_an_error(tmp_path, data_dir, table_spec):
    path = csv_with(tmp_path, lambda f: f.assign(dec=200.0), n=50)
    options = LoadOptions(workers=1, progress=False, skip_invalid=True)
    with pytest.raises(LoadError, match="no valid rows"):
        load_catalog(spec=table_spec, sources=[str(path)], data=data_dir, options=options)
