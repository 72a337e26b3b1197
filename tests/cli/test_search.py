"""``xmatch cone`` and ``xmatch crossmatch`` run through ``xmatch.cli.main`` in process, on
the session's data directory: every input read right or refused in one line naming file,
row and column; every output in the format its suffix names, with units and UCDs."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.io.votable import parse_single_table
from astropy.table import Table

from xmatch import SkyIndex, open_catalog
from xmatch.cli import main
from xmatch.service.embedded import running_server, served_catalogs

ALCYONE = (56.871152, 24.105136)  # Eta Tau, in the Gaia DR3 G < 10 subset
ALCYONE_SOURCE_ID = 66714384142368256


def xmatch(capsys, *args) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of ``xmatch ARGS``, run in this process."""
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def refused(capsys, *args) -> str:
    """The one-line error of a command that must fail with exit code 2."""
    code, out, err = xmatch(capsys, *args)
    assert code == 2, (out, err)
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


@pytest.fixture(scope="module")
def data(session_data):
    return session_data


@pytest.fixture(scope="module")
def gaia(data) -> SkyIndex:
    return SkyIndex.from_catalog(open_catalog("gaia_dr3", data))


@pytest.fixture(scope="module")
def server(data):
    with running_server(served_catalogs(data, load_defaults=False,
                                        names=["gaia_dr3", "hipparcos2"])) as address:
        yield address


# ------------------------------------------------------------------ crossmatch inputs


def test_a_row_without_its_declination_is_refused_not_read_as_zero(capsys, tmp_path, data):
    """`B,11.0` (a value short) and `C,12.0,` (empty) were read as dec = 0.0 and matched 386"
    away: each is now an error naming file, row and column; --skip-invalid skips and counts
    them, and the good rows match as before."""
    short = tmp_path / "short.csv"
    short.write_text(f"name,ra,dec\nA,{ALCYONE[0]},{ALCYONE[1]}\nB,11.0\n")
    assert "short.csv, row 2: has 2 values where the header has 3 columns" in refused(
        capsys, "crossmatch", short, "--catalog", "gaia_dr3", "--data", data.root)
    empty = tmp_path / "empty.csv"
    empty.write_text(f"name,ra,dec\nA,{ALCYONE[0]},{ALCYONE[1]}\nC,12.0,\nD,13.0,nan\n")
    assert ("empty.csv, row 2, column 'dec': dec is missing (empty, null or NaN); every row "
            "needs one") in refused(capsys, "crossmatch", empty, "--catalog", "gaia_dr3",
                                    "--data", data.root)
    out = tmp_path / "kept.csv"
    code, stdout, _ = xmatch(capsys, "crossmatch", empty, "--catalog", "gaia_dr3",
                             "--skip-invalid", "--out", out, "--data", data.root)
    assert code == 0
    assert ("1 positions, 1 matches; 2 rows skipped (no usable position), e.g. row 2: dec is "
            "missing") in stdout
    kept = Table.read(out, format="ascii.csv")
    assert list(kept["name"]) == ["A"] and list(kept["row"]) == [1]
    assert kept["source_id"][0] == ALCYONE_SOURCE_ID and kept["separation_arcsec"][0] < 1


@pytest.mark.parametrize("value, problem", [
    ("abc", "dec = 'abc' is neither degrees nor sexagesimal"),
    ("95", "dec = 95.0 is not a finite coordinate in range (-90 <= dec <= 90 deg)"),
    ("inf", "dec = inf is not a finite coordinate in range"),
])
def test_bad_values_name_file_row_and_column(capsys, tmp_path, data, value, problem):
    path = tmp_path / "bad.csv"
    path.write_text(f"id,RAJ2000,DEJ2000\n1,10.0,20.0\n2,11.0,21.0\n3,12.0,{value}\n")
    assert f"bad.csv, row 3, column 'DEJ2000': {problem}" in refused(
        capsys, "crossmatch", path, "--catalog", "gaia_dr3", "--data", data.root)


def test_sexagesimal_positions_match_as_degrees(capsys, tmp_path, data):
    """RA in hours and Dec in degrees, as catalogs write them, with or without units."""
    coord = SkyCoord(*ALCYONE, unit="deg")
    hms = coord.ra.to_string(unit="hourangle", sep=":", precision=3)
    dms = coord.dec.to_string(sep=":", precision=2, alwayssign=True)
    path = tmp_path / "sexagesimal.csv"
    path.write_text("name,ra,dec\n"
                    f"colons,{hms},{dms}\n"
                    f"units,{coord.ra.to_string(unit='hourangle', precision=3)},"
                    f"{coord.dec.to_string(precision=2)}\n"
                    f"degrees,{ALCYONE[0]},{ALCYONE[1]}\n")
    out = tmp_path / "out.parquet"
    assert xmatch(capsys, "crossmatch", path, "--catalog", "gaia_dr3", "--out", out,
                  "--data", data.root)[0] == 0
    got = pq.read_table(out)
    assert got["source_id"].to_pylist() == [ALCYONE_SOURCE_ID] * 3
    separations = got["separation_arcsec"].to_numpy()
    assert np.all(np.abs(separations - separations[2]) < 0.02)  # rounding of the strings


@pytest.mark.parametrize("server_side", [False, True])
def test_fits_written_by_astropy_is_read_whatever_its_byte_order(capsys, tmp_path, data,
                                                                 gaia, server, server_side):
    """FITS is big-endian: every astropy-written FITS table crashed the reader."""
    rng = np.random.default_rng(1)
    rows = rng.choice(len(gaia), 50, replace=False)
    positions = gaia.table.take(gaia.rows[rows])
    table = Table({"name": [f"s{i}" for i in range(50)],
                   "ra": positions["ra"].to_numpy(), "dec": positions["dec"].to_numpy()})
    path = tmp_path / "stars.fits"
    table.write(path)
    assert fits.getdata(path)["ra"].dtype.byteorder == ">"
    out = tmp_path / "matched.fits"
    where = ["--server", server] if server_side else ["--data", data.root]
    assert xmatch(capsys, "crossmatch", path, "--catalog", "gaia_dr3", "--radius",
                  "0.5arcsec", "--out", out, *where)[0] == 0
    got = Table.read(out)
    expected = gaia.crossmatch(table["ra"], table["dec"], radius_arcsec=0.5)
    assert list(got["source_id"]) == expected["source_id"].to_pylist()
    assert list(got["row"]) == list(range(1, 51))
    header = fits.getheader(out, 1)
    number = got.colnames.index("separation_arcsec") + 1
    assert header[f"TUNIT{number}"] == "arcsec" and header[f"TUCD{number}"] == "pos.angDistance"
    assert header[f"TUCD{got.colnames.index('ra') + 1}"] == "pos.eq.ra;meta.main"


@pytest.mark.parametrize("kind", ["tsv", "txt", "ecsv", "vot", "parquet", "csv.gz", "fits.gz",
                                  "hdf5"])
def test_every_input_format_with_named_position_columns(capsys, tmp_path, data, kind):
    """raMean/decMean found by name; the same match from every format, gzipped or not."""
    table = Table({"objID": [1, 2], "raMean": [ALCYONE[0], 10.0],
                   "decMean": [ALCYONE[1], -5.0]})
    path = tmp_path / f"in.{kind}"
    if kind == "hdf5":
        pytest.importorskip("h5py")
        table.write(path, path="data", serialize_meta=True)
    elif kind == "txt":
        path.write_text("objID raMean decMean\n"
                        f"1 {ALCYONE[0]} {ALCYONE[1]}\n2 10.0 -5.0\n")
    elif kind.endswith(".gz"):
        plain = tmp_path / f"in.{kind[:-3]}"
        table.write(plain, format={"csv": "ascii.csv", "fits": "fits"}[kind[:-3]])
        path.write_bytes(gzip.compress(plain.read_bytes()))
    else:
        table.write(path, format={"tsv": "ascii.tab", "ecsv": "ascii.ecsv", "vot": "votable",
                                  "parquet": "parquet"}[kind])
    out = tmp_path / "out.json"
    assert xmatch(capsys, "crossmatch", path, "--catalog", "gaia_dr3", "--out", out,
                  "--data", data.root)[0] == 0
    rows = json.loads(out.read_text())
    assert [r["source_id"] for r in rows] == [ALCYONE_SOURCE_ID, None]


def test_position_columns_by_ucd_or_option_and_ambiguity(capsys, tmp_path, data):
    path = tmp_path / "two.csv"
    path.write_text(f"RA,ra,dec\n1.0,{ALCYONE[0]},{ALCYONE[1]}\n")
    assert "columns RA, ra could all be the right ascension; say which with --ra-column" in \
        refused(capsys, "crossmatch", path, "--catalog", "gaia_dr3", "--data", data.root)
    out = tmp_path / "out.csv"
    assert xmatch(capsys, "crossmatch", path, "--catalog", "gaia_dr3", "--ra-column", "ra",
                  "--out", out, "--data", data.root)[0] == 0
    assert Table.read(out)["source_id"][0] == ALCYONE_SOURCE_ID
    none = tmp_path / "none.csv"
    none.write_text("x,y\n1,2\n")
    assert "no right ascension column found" in refused(
        capsys, "crossmatch", none, "--catalog", "gaia_dr3", "--data", data.root)
    assert "required column 'lon' is missing; columns present: x, y (given with --ra-column)" \
        in refused(capsys, "crossmatch", none, "--catalog", "gaia_dr3", "--ra-column", "lon",
                   "--data", data.root)
    ucd = Table({"alpha": [ALCYONE[0]], "delta": [ALCYONE[1]], "ra_err": [0.1]})
    ucd["alpha"].meta["ucd"] = "pos.eq.ra;meta.main"
    ucd["delta"].meta["ucd"] = "pos.eq.dec;meta.main"
    ucd.write(tmp_path / "ucd.vot", format="votable")
    assert xmatch(capsys, "crossmatch", tmp_path / "ucd.vot", "--catalog", "gaia_dr3",
                  "--out", out, "--data", data.root)[0] == 0
    assert Table.read(out)["source_id"][0] == ALCYONE_SOURCE_ID


@pytest.mark.parametrize("content, message", [
    (None, "missing.csv: no such file"),
    (b"", "the file is empty"),
    (b"name,ra,dec\n", "the table has no data rows"),
    (b"\x1f\x8b\x08\x00broken", "not a readable gzip file"),
])
def test_unreadable_inputs(capsys, tmp_path, data, content, message):
    path = tmp_path / ("missing.csv" if content is None else "bad.csv")
    if content is not None:
        path.write_bytes(content)
    assert message in refused(capsys, "crossmatch", path, "--catalog", "gaia_dr3",
                              "--data", data.root)
    other = tmp_path / "positions.xlsx"
    other.write_text("x")
    assert "cannot tell the format from the file name" in refused(
        capsys, "crossmatch", other, "--catalog", "gaia_dr3", "--data", data.root)


# ------------------------------------------------------------------ options


@pytest.mark.parametrize("args, message", [
    (["cone", "gaia_dr3", "10", "5", "--radius", "2"],
     "argument --radius: radius '2' has no unit; write 2arcsec, 2arcmin or 2deg"),
    (["cone", "gaia_dr3", "10", "5", "--radius", "0arcsec"],
     "argument --radius: radius_arcsec = 0.0 is not allowed"),
    (["cone", "gaia_dr3", "10", "5", "--radius", "five"],
     "argument --radius: radius 'five' is not an angle"),
    (["cone", "gaia_dr3", "10", "95", "--radius", "5arcsec"],
     "argument dec: dec = 95.0 is not allowed; dec must be finite and within -90..90 deg"),
    (["cone", "gaia_dr3", "25:61:00", "5", "--radius", "5arcsec"],
     "argument ra: ra = '25:61:00' is not an angle"),
    (["cone", "gaia_dr3", "10", "5", "--epoch", "soon"], "'soon' is not an epoch"),
    (["cone", "nope", "10", "5"], "no catalog 'nope'"),
    (["cone", "gaia_dr3", "10", "5", "--columns", "ra,nope"], "unknown column(s) ['nope']"),
    (["cone", "gaia_dr3", "10", "5", "--out", "x.xlsx"],
     "cannot tell the output format of x.xlsx from its suffix"),
    (["cone", "gaia_dr3", "10", "5", "--limit", "0"], "argument --limit: 0 is not allowed"),
    (["crossmatch", "{csv}", "--catalog", "gaia_dr3", "--k", "3"],
     "--k 3 applies to --mode k; this is --mode nearest"),
    (["crossmatch", "{csv}", "--catalog", "gaia_dr3", "--mode", "k"],
     "--mode k needs --k N"),
])
def test_bad_options_are_one_line(capsys, tmp_path, data, args, message):
    csv = tmp_path / "q.csv"
    csv.write_text("ra,dec\n1,2\n")
    args = [a.replace("{csv}", str(csv)) for a in args]
    assert message in refused(capsys, *args, "--data", data.root)


def test_mode_k_and_all_equal_the_index(capsys, tmp_path, data, gaia):
    path = tmp_path / "q.csv"
    path.write_text(f"ra,dec\n{ALCYONE[0]},{ALCYONE[1]}\n10,-5\n")
    for extra, mode, k in ((["--mode", "k", "--k", "3"], "k", 3), (["--mode", "all"], "all", 1)):
        out = tmp_path / f"{mode}.parquet"
        assert xmatch(capsys, "crossmatch", path, "--catalog", "gaia_dr3", "--radius",
                      "30arcmin", *extra, "--out", out, "--data", data.root)[0] == 0
        expected = gaia.crossmatch([ALCYONE[0], 10.0], [ALCYONE[1], -5.0], radius_arcsec=1800,
                                   mode=mode, k=k)
        got = pq.read_table(out)
        assert got["source_id"].to_pylist() == expected["source_id"].to_pylist()
        assert got["match_rank"].to_pylist() == expected["match_rank"].to_pylist()


# ------------------------------------------------------------------ cone outputs


def test_limit_says_it_cut_and_how_many_there_were(capsys, data, gaia):
    found = gaia.cone_search(*ALCYONE, 1800).num_rows
    code, out, err = xmatch(capsys, "cone", "gaia_dr3", *ALCYONE, "--radius", "30arcmin",
                            "--limit", 3, "--data", data.root)
    assert code == 0 and found > 3
    assert err == f"3 of {found:,} rows (cut by --limit 3)\n"
    assert len(out.splitlines()) == 3 + 3  # header, units, rule, rows


@pytest.mark.parametrize("suffix", ["csv", "tsv", "ecsv", "fits", "parquet", "vot", "json",
                                    "jsonl", "txt"])
def test_cone_out_writes_the_format_its_suffix_names(capsys, tmp_path, data, gaia, suffix):
    out = tmp_path / f"cone.{suffix}"
    code, stdout, _ = xmatch(capsys, "cone", "gaia_dr3", *ALCYONE, "--radius", "10arcmin",
                             "--out", out, "--data", data.root)
    expected = gaia.cone_search(*ALCYONE, 600)
    assert code == 0 and stdout == f"{expected.num_rows} rows -> {out}\n"
    if suffix == "parquet":
        got = pq.read_table(out)
        assert got.schema.field("ra").metadata[b"ucd"] == b"pos.eq.ra;meta.main"
        assert got.schema.field("separation_arcsec").metadata[b"unit"] == b"arcsec"
        ids = got["source_id"].to_pylist()
    elif suffix in ("json", "jsonl"):
        text = out.read_text()
        rows = json.loads(text) if suffix == "json" else [json.loads(line) for line in
                                                           text.splitlines()]
        ids = [r["source_id"] for r in rows]
    elif suffix == "txt":
        assert "separation_arcsec" in out.read_text()
        return
    else:
        fmt = {"csv": "ascii.csv", "tsv": "ascii.tab", "ecsv": "ascii.ecsv", "fits": "fits",
               "vot": "votable"}[suffix]
        got = Table.read(out, format=fmt)
        ids = list(got["source_id"])
        if suffix in ("ecsv", "fits", "vot"):
            assert str(got["separation_arcsec"].unit) == "arcsec"
            assert str(got["ra"].unit) == "deg"
        if suffix == "vot":
            fields = {f.name: f for f in parse_single_table(out).fields}
            assert fields["ra"].ucd == "pos.eq.ra;meta.main"
            assert fields["dec"].ucd == "pos.eq.dec;meta.main"
            assert fields["source_id"].ucd == "meta.id;meta.main"
            assert fields["separation_arcsec"].ucd == "pos.angDistance"
        if suffix == "ecsv":
            assert got["dec"].meta["ucd"] == "pos.eq.dec;meta.main"
    assert ids == expected["source_id"].to_pylist()
    assert "_healpix_29" not in (got.colnames if suffix not in ("json", "jsonl", "parquet")
                                 else rows[0] if suffix != "parquet" else got.column_names)


def test_format_overrides_the_suffix_and_healpix_only_when_asked(capsys, tmp_path, data):
    out = tmp_path / "cone.dat"
    assert xmatch(capsys, "cone", "gaia_dr3", *ALCYONE, "--radius", "1arcmin", "--format",
                  "csv", "--columns", "source_id,_healpix_29", "--out", out,
                  "--data", data.root)[0] == 0
    assert Table.read(out, format="ascii.csv").colnames == [
        "source_id", "_healpix_29", "separation_arcsec", "position_angle_deg"]


def test_epoch_on_a_catalog_without_proper_motions_says_so(capsys, data):
    code, out, err = xmatch(capsys, "cone", "gaia_dr3", *ALCYONE, "--radius", "1arcmin",
                            "--epoch", "2000", "--data", data.root)
    assert code == 0 and str(ALCYONE_SOURCE_ID) in out
    assert err == ("note: gaia_dr3 has no proper motions: its positions are not moved to the "
                   "epoch asked for\n")


def test_epoch_moves_rows_and_shows_where_to(capsys, tmp_path, data):
    """Barnard's star: its Hipparcos (J1991.25) row is found at its Gaia J2016.0 place, and
    the moved position is written beside the catalog's own."""
    out = tmp_path / "barnard.ecsv"
    code, _, err = xmatch(capsys, "cone", "hipparcos2", "269.448503", "4.739420", "--radius",
                          "5arcsec", "--epoch", "2016.0", "--out", out, "--data", data.root)
    assert code == 0 and "note" not in err
    got = Table.read(out, format="ascii.ecsv")
    assert list(got["hip"]) == [87937]
    assert abs(got["ra_at_epoch"][0] - 269.448503) * 3600 < 0.5
    assert abs(got["ra"][0] - 269.448503) * 3600 > 10  # the catalog's J1991.25 place
    assert got["ra_at_epoch"].meta["ucd"] == "pos.eq.ra"


def test_info_tells_the_truth_about_proper_motions(capsys, data):
    code, out, _ = xmatch(capsys, "info", "gaia_dr3", "--json", "--data", data.root)
    info = json.loads(out)
    assert code == 0
    assert info["proper_motions"] == "none: positions are not moved to other epochs"
    assert "pmra" not in info["columns"] and "pmra" not in info["spec"]
    info = json.loads(xmatch(capsys, "info", "hipparcos2", "--json", "--data", data.root)[1])
    assert info["proper_motions"].startswith("pmra=pmra, pmdec=pmdec, parallax=parallax")


def test_output_cut_short_by_the_reader_is_not_an_error(data):
    """`xmatch ... | head`: a real pipe to a process that stops reading."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, XMATCH_DATA=str(data.root))
    done = subprocess.run(f"{sys.executable} -m xmatch cone gcvs 10 20 --radius 60deg "
                          "--format csv | head -1", shell=True, capture_output=True, text=True,
                          env=env, timeout=120)
    assert done.stdout.startswith("xmatch_row,") and done.stderr == ""


def test_table_output_with_pyarrow_types(tmp_path):
    """Dictionary and float32 columns reach text outputs as written (1.57, not
    1.5700000524520874)."""
    from xmatch.io.tables import write_table

    table = pa.table({"kind": pa.array(["a", "b"]).dictionary_encode(),
                      "mag": pa.array([1.57, 2.5], pa.float32())})
    write_table(table, "csv", tmp_path / "t.csv")
    assert (tmp_path / "t.csv").read_text() == "kind,mag\na,1.57\nb,2.5\n"


def test_a_negative_sexagesimal_declination_is_a_value_not_an_option(capsys, data):
    """Sirius (HIP 32349, in the subset as source_id -32349) at 06:45:08.9 -16:42:58."""
    for ra, dec in (("06:45:08.9", "-16:42:58"), ("06h45m08.9s", "-16d42m58s")):
        code, out, err = xmatch(capsys, "cone", "gaia_dr3", ra, dec, "--radius", "30arcsec",
                                "--columns", "source_id", "--format", "csv",
                                "--data", data.root)
        assert code == 0, err
        assert "-32349," in out


def test_crossmatch_outputs_keep_column_types_and_positions_in_degrees(capsys, tmp_path,
                                                                       data):
    """CSV columns keep their types (mag a number, name text); the position columns are
    written as the degrees they were read as, whatever form they had."""
    path = tmp_path / "mixed.csv"
    path.write_text("name,ra,dec,mag\n"
                    "alcyone,03:47:29.08,+24:06:18.5,2.87\nfar,10.0,-5.0,9.5\n")
    out = tmp_path / "out.parquet"
    assert xmatch(capsys, "crossmatch", path, "--catalog", "gaia_dr3", "--out", out,
                  "--data", data.root)[0] == 0
    got = pq.read_table(out)
    assert got.schema.field("ra").type == pa.float64() and got.schema.field("mag").type == \
        pa.float64()
    assert got.schema.field("name").type == pa.string()
    assert abs(got["ra"][0].as_py() - 56.871167) < 1e-5 and got["ra"][1].as_py() == 10.0
    assert got.schema.field("ra").metadata[b"unit"] == b"deg"
    assert got["source_id"].to_pylist() == [ALCYONE_SOURCE_ID, None]
