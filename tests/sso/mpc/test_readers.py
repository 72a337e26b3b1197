"""Orbit tables from MPC files, against skyfield's own readers; headers, compression and
malformed lines."""

from __future__ import annotations

import gzip
import io
import pickle

import numpy as np
import pytest
from astropy.time import Time

from conftest import shared_file
from sso.conftest import assert_same
from xmatch.errors import LoadError
from xmatch.sso.mpc.designations import unpack_designation
from xmatch.sso.mpc.readers import (
    COMET_COLUMNS,
    GM_SUN,
    MPCORB_COLUMNS,
    ORBIT_SCHEMA,
    OrbitFormatError,
    blank_field,
    field_out_of_range,
    not_a_designation,
    not_a_number,
    not_a_packed_date,
    read_orbits,
)

MPCORB_FILES = ["sso/MPCORB.excerpt.DAT", "sso/NEA.txt.gz", "sso/mpcorb_excerpt_K25BL.dat.gz"]
CERES = ("00001    3.4   0.15 K205V 162.68631   73.73161   80.28698   10.58862  0.0775571  "
         "0.21406009   2.7676569  0 MPO492748  6751 115 1801-2019 0.60 M-v 30h Williams   0000"
         "      (1) Ceres              20190915")
HALE_BOPP = ("    CJ95O010  1997 03 29.0299  0.922046  0.994905  130.6979  281.7618   89.7572  "
             "20260531  -2.0  4.0  C/1995 O1 (Hale-Bopp)                                    "
             "MPC194091")


def raw_text(relative: str) -> bytes:
    data = shared_file(relative).read_bytes()
    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data


def with_field(line: str, name: str, text: str, layout=MPCORB_COLUMNS) -> str:
    """``line`` with field ``name`` replaced by ``text`` (right-aligned in its columns)."""
    first, last = layout[name]
    return line[:first - 1] + text.rjust(last - first + 1) + line[last:]


def write(tmp_path, name: str, lines: list[str], newline: str = "\n") -> str:
    path = tmp_path / name
    path.write_text(newline.join(lines) + newline)
    return str(path)


# -- MPC files against skyfield ----------------------------------------------------------

@pytest.fixture(scope="module")
def skyfield_mpc():
    pytest.importorskip("pandas")
    return pytest.importorskip("skyfield.data.mpc")


@pytest.fixture(scope="module")
def timescale():
    api = pytest.importorskip("skyfield.api")
    return api.load.timescale(builtin=True)


def skyfield_mpcorb(mpc, relative):
    text = raw_text(relative)
    if text.startswith(b"Des'n"):  # the excerpt's custom title line, which skyfield reads
        text = text.split(b"\n", 1)[1]
    return mpc.load_mpcorb_dataframe(io.BytesIO(text))


@pytest.mark.parametrize("relative", MPCORB_FILES)
def test_mpcorb_files_equal_skyfield(relative, skyfield_mpc, timescale):
    frame = skyfield_mpcorb(skyfield_mpc, relative)
    table = read_orbits(shared_file(relative))
    assert table.schema == ORBIT_SCHEMA
    assert table.num_rows == len(frame) == {"sso/MPCORB.excerpt.DAT": 4, "sso/NEA.txt.gz": 20060,
                                            "sso/mpcorb_excerpt_K25BL.dat.gz": 22304}[relative]
    ours = {name: table.column(name).to_numpy() for name in
            ("e", "inc_deg", "node_deg", "argperi_deg", "q_au", "h_mag", "g_slope",
             "epoch_mjd_tt", "tp_mjd_tt", "comet_k")}
    e = frame.eccentricity.to_numpy()
    a = frame.semimajor_axis_au.to_numpy()
    np.testing.assert_array_equal(ours["e"], e)
    np.testing.assert_array_equal(ours["inc_deg"], frame.inclination_degrees.to_numpy())
    np.testing.assert_array_equal(ours["node_deg"],
                                  frame.longitude_of_ascending_node_degrees.to_numpy())
    np.testing.assert_array_equal(ours["argperi_deg"],
                                  frame.argument_of_perihelion_degrees.to_numpy())
    np.testing.assert_array_equal(ours["q_au"], a * (1 - e))
    np.testing.assert_array_equal(ours["h_mag"], frame.magnitude_H.to_numpy())  # NaN = blank
    g = frame.magnitude_G.to_numpy()
    np.testing.assert_array_equal(ours["g_slope"], np.where(np.isnan(g), 0.15, g))
    assert np.isnan(ours["comet_k"]).all()
    # Epochs as skyfield's mpcorb_orbit unpacks them (one row per distinct epoch).
    gm_km3_s2 = GM_SUN * 149597870.7**3 / 86400.0**2
    for _, row in frame.drop_duplicates("epoch_packed").iterrows():
        epoch = skyfield_mpc.mpcorb_orbit(row, timescale, gm_km3_s2).epoch.tt - 2400000.5
        mine = ours["epoch_mjd_tt"][frame.epoch_packed.to_numpy() == row.epoch_packed]
        assert (mine == epoch).all()
    # tp: the perihelion passage nearest the epoch, mean motion from a and GM_SUN.
    mean_anomaly = frame.mean_anomaly_degrees.to_numpy()
    wrapped = np.where(mean_anomaly > 180, mean_anomaly - 360, mean_anomaly)
    n_deg = np.degrees(np.sqrt(GM_SUN / a**3))
    np.testing.assert_allclose(ours["tp_mjd_tt"], ours["epoch_mjd_tt"] - wrapped / n_deg,
                               rtol=0, atol=1e-8)
    assert (np.abs(ours["tp_mjd_tt"] - ours["epoch_mjd_tt"]) <= 180 / n_deg + 1e-9).all()
    assert table.column("designation").to_pylist() == frame.designation_packed.tolist()
    names = table.column("name").to_pylist()
    if relative.endswith("K25BL.dat.gz"):  # the excerpt keeps only the name in 167-194
        expected = [f"({int(unpack_designation(d)[1:-1])}) {n}" for d, n in
                    zip(frame.designation_packed, frame.designation, strict=True)]
    else:
        expected = frame.designation.tolist()
    assert names == expected
    assert set(table.column("kind").to_pylist()) == {"asteroid"}
    assert not any(table.column("synthetic").to_pylist())
    assert set(table.column("source").to_pylist()) == {shared_file(relative).name}


@pytest.mark.parametrize("relative", MPCORB_FILES)
def test_mpcorb_orbits_place_objects_as_skyfield_does(relative, skyfield_mpc, timescale):
    """Cometary elements with our tp give the positions of skyfield's mean-anomaly orbits
    (same GM) to far better than 0.1 arcsec, ten years either side of the epoch."""
    keplerlib = pytest.importorskip("skyfield.keplerlib")
    spice = pytest.importorskip("skyfield.data.spice")
    frame = skyfield_mpcorb(skyfield_mpc, relative)
    table = read_orbits(shared_file(relative)).to_pylist()
    gm_km3_s2 = GM_SUN * 149597870.7**3 / 86400.0**2
    rotation = spice.inertial_frames["ECLIPJ2000"].T
    rows = np.random.default_rng(5).choice(len(frame), min(60, len(frame)), replace=False)
    for k in rows:
        row, orbit = frame.iloc[k], table[k]
        times = timescale.tt_jd(orbit["epoch_mjd_tt"] + 2400000.5 + np.array([-3650, 0, 3650]))
        theirs = skyfield_mpc.mpcorb_orbit(row, timescale, gm_km3_s2)._at(times)[0]
        e, q = orbit["e"], orbit["q_au"]
        mine = keplerlib._KeplerOrbit._from_periapsis(
            q * (1 + e), e, orbit["inc_deg"], orbit["node_deg"], orbit["argperi_deg"],
            timescale.tt_jd(orbit["tp_mjd_tt"] + 2400000.5), gm_km3_s2, 10)
        mine._rotation = rotation
        ours = mine._at(times)[0]
        # Angle subtended at the Sun: an upper bound for any observer beyond 1 AU of it.
        offset = np.linalg.norm(ours - theirs, axis=0) / np.linalg.norm(theirs, axis=0)
        assert (offset * 206264.8 < 1e-3).all()


def test_comets_equal_skyfield(skyfield_mpc, timescale):
    text = raw_text("sso/CometEls.txt.gz")
    fast = skyfield_mpc.load_comets_dataframe(io.BytesIO(text))
    slow = skyfield_mpc.load_comets_dataframe_slow(io.BytesIO(text))
    table = read_orbits(shared_file("sso/CometEls.txt.gz"))
    assert table.num_rows == len(fast) == 955
    mine = table.to_pydict()
    for ours, theirs in [("q_au", "perihelion_distance_au"), ("e", "eccentricity"),
                         ("inc_deg", "inclination_degrees"),
                         ("node_deg", "longitude_of_ascending_node_degrees"),
                         ("argperi_deg", "argument_of_perihelion_degrees"),
                         ("h_mag", "magnitude_g"), ("comet_k", "magnitude_k")]:
        np.testing.assert_array_equal(np.array(mine[ours]), fast[theirs].to_numpy(float))
    tp = timescale.tt(fast.perihelion_year.to_numpy(), fast.perihelion_month.to_numpy(),
                      fast.perihelion_day.to_numpy()).tt - 2400000.5
    np.testing.assert_allclose(mine["tp_mjd_tt"], tp, rtol=0, atol=1e-8)
    year = slow.perturbed_epoch_year.to_numpy()
    given = ~np.isnan(year)
    epoch = timescale.tt(year[given].astype(int),
                         slow.perturbed_epoch_month.to_numpy()[given].astype(int),
                         slow.perturbed_epoch_day.to_numpy()[given]).tt - 2400000.5
    np.testing.assert_allclose(np.array(mine["epoch_mjd_tt"])[given], epoch, rtol=0, atol=1e-8)
    # Without an epoch (unperturbed elements) the perihelion time stands in for it.
    assert (~given).sum() == 4
    np.testing.assert_array_equal(np.array(mine["epoch_mjd_tt"])[~given],
                                  np.array(mine["tp_mjd_tt"])[~given])
    assert mine["name"] == fast.designation.tolist()
    numbers = slow.number.to_numpy()
    for k, designation in enumerate(mine["designation"]):
        if np.isnan(numbers[k]):
            assert designation == slow.orbit_type[k] + slow.designation_packed[k]
        else:
            assert designation.startswith(f"{int(numbers[k]):04d}{slow.orbit_type[k]}")
        assert mine["name"][k].startswith(unpack_designation(designation))
    assert set(mine["kind"]) == {"comet"}
    assert np.isnan(mine["g_slope"]).all()


def test_comet_rows_by_hand():
    table = read_orbits(shared_file("sso/CometEls.txt.gz")).to_pylist()
    by_designation = {row["designation"]: row for row in table}
    halley = by_designation["0001P"]
    assert halley["name"] == "1P/Halley"
    assert halley["tp_mjd_tt"] == pytest.approx(Time("2061-08-06", scale="tt").mjd + 0.0475)
    assert halley["epoch_mjd_tt"] == Time("2026-05-31", scale="tt").mjd
    assert (halley["h_mag"], halley["comet_k"]) == (5.5, 3.2)
    assert by_designation["CJ95O010"]["name"] == "C/1995 O1 (Hale-Bopp)"
    assert by_designation["0073Pbt"]["name"].startswith("73P-BT/")
    atlas = by_designation["0003I"]                 # 3I/ATLAS: hyperbolic, kept as it is
    assert (atlas["name"], atlas["e"], atlas["q_au"]) == ("3I/ATLAS", 6.139884, 1.356507)
    assert sum(row["e"] >= 1 for row in table) > 10


# -- layout recognition, headers, compression ----------------------------------------------

MPCORB_HEADER = [
    "MINOR PLANET CENTER ORBIT DATABASE (MPCORB)", "",
    "This file contains published orbital elements for all numbered and unnumbered",
    "multi-opposition minor planets for which it is possible to make reasonable predictions.",
    "", "Des'n     H     G   Epoch     M        Peri.      Node       Incl.       e"
    "            n           a        Reference #Obs #Opp    Arc    rms  Perts   Computer",
    "-" * 160,
]


def test_header_blank_lines_and_crlf(tmp_path):
    lines = raw_text("sso/MPCORB.excerpt.DAT").decode().splitlines()
    reference = read_orbits(shared_file("sso/MPCORB.excerpt.DAT"))
    layouts = [
        MPCORB_HEADER + lines[:2] + ["", "   "] + lines[2:],     # MPC header, blank lines
        ["Des'n  AbsMag  G    Epoch M   Perihelion"] + lines,    # a one-line title
        lines + ["", ""],
    ]
    for k, content in enumerate(layouts):
        for newline in ("\n", "\r\n"):
            table = read_orbits(write(tmp_path, f"MPCORB{k}.DAT", content, newline))
            assert_same(table, reference)


def test_compression_is_recognised_by_content(tmp_path):
    plain = raw_text("sso/NEA.txt.gz")
    disguised = tmp_path / "NEA.txt"                     # gzip without the .gz suffix
    disguised.write_bytes(gzip.compress(plain, compresslevel=1))
    misnamed = tmp_path / "plain.gz"                     # plain text with a .gz suffix
    misnamed.write_bytes(plain)
    reference = read_orbits(shared_file("sso/NEA.txt.gz"))
    compressed = gzip.compress(plain, compresslevel=1)
    for path in (disguised, misnamed, io.BytesIO(plain), io.BytesIO(compressed)):
        assert_same(read_orbits(path), reference)
    assert read_orbits(io.BytesIO(plain)).column("source")[0].as_py() == "<stream>"
    assert read_orbits(disguised).column("source")[0].as_py() == "NEA.txt"


@pytest.mark.parametrize("content", [b"", b"\n\n  \n", "\n".join(MPCORB_HEADER).encode(),
                                     b"Des'n  AbsMag  G    Epoch\n"])
def test_no_data_lines_give_an_empty_table(tmp_path, content):
    path = tmp_path / "empty.dat"
    path.write_bytes(content)
    table = read_orbits(path)
    assert table.num_rows == 0 and table.schema == ORBIT_SCHEMA


def test_kind_forces_the_layout(tmp_path):
    path = write(tmp_path, "ceres.dat", [CERES])
    assert read_orbits(path, kind="asteroid").num_rows == 1
    with pytest.raises(OrbitFormatError) as error:
        read_orbits(path, kind="comet")
    assert error.value.line == 1
    with pytest.raises(ValueError, match="kind must be None"):
        read_orbits(path, kind="mpcorb")


def test_an_unknown_layout_is_rejected(tmp_path):
    path = write(tmp_path, "notes.txt", ["", "designation,a,e,i", "1,2.7,0.08,10.6"])
    with pytest.raises(OrbitFormatError, match="neither an MPCORB line") as error:
        read_orbits(path)
    assert (error.value.source, error.value.line) == ("notes.txt", 2)


# -- malformed lines -------------------------------------------------------------------------

def bad_mpcorb_lines():
    columns = MPCORB_COLUMNS
    return [
        (with_field(CERES, "e", "abc      "), "e",
         not_a_number("e", columns["e"], "abc")),
        (with_field(CERES, "a", "2.76 76569"), "a",
         not_a_number("a", columns["a"], "2.76 76569")),
        (with_field(CERES, "M", "1.2.3"), "M", not_a_number("M", columns["M"], "1.2.3")),
        (with_field(CERES, "H", "nan"), "H", not_a_number("H", columns["H"], "nan")),
        (CERES[:80], "a", blank_field("a", columns["a"], 80)),
        (with_field(CERES, "e", "-0.077557"), "e",
         field_out_of_range("e", columns["e"], "-0.077557", ">= 0")),
        (with_field(CERES, "e", "1.0775571"), "e",
         field_out_of_range("e", columns["e"], "1.0775571",
                            "< 1 in the MPCORB format, which holds elliptic orbits only "
                            "(parabolic and hyperbolic orbits belong in a comet file)")),
        (with_field(CERES, "incl", "190.58862"), "incl",
         field_out_of_range("incl", columns["incl"], "190.58862", "in [0, 180] deg")),
        (with_field(CERES, "node", "380.28698"), "node",
         field_out_of_range("node", columns["node"], "380.28698", "in [0, 360] deg")),
        (with_field(CERES, "a", "-2.7676569"), "a",
         field_out_of_range("a", columns["a"], "-2.7676569", "> 0 AU")),
        (with_field(CERES, "epoch", "K25ZL"), "epoch",
         not_a_packed_date("epoch", columns["epoch"], "K25ZL")),
        (with_field(CERES, "designation", "00001x "), "designation",
         not_a_designation("designation", columns["designation"], "00001x")),
    ]


@pytest.mark.parametrize(("line", "field", "message"), bad_mpcorb_lines())
def test_malformed_mpcorb_line(tmp_path, line, field, message):
    lines = raw_text("sso/MPCORB.excerpt.DAT").decode().splitlines()
    path = write(tmp_path, "NEA.txt", MPCORB_HEADER + lines[:2] + [""] + [line] + lines[2:])
    line_number = len(MPCORB_HEADER) + 4
    with pytest.raises(OrbitFormatError) as error:
        read_orbits(path)
    assert str(error.value) == f"NEA.txt line {line_number}: {message}"
    assert (error.value.source, error.value.line, error.value.field) == \
        ("NEA.txt", line_number, field)
    assert isinstance(error.value, LoadError)


def test_the_first_bad_line_is_reported(tmp_path):
    """Whatever order the fields are checked in, the error is the first one in the file."""
    lines = [CERES, with_field(CERES, "a", "x"), with_field(CERES, "designation", "?")]
    with pytest.raises(OrbitFormatError) as error:
        read_orbits(write(tmp_path, "two.dat", lines))
    assert (error.value.line, error.value.field) == (2, "a")


def test_message_example_from_the_docs(tmp_path):
    lines = [CERES] * 16 + [with_field(CERES, "e", "abc")]
    with pytest.raises(OrbitFormatError) as error:
        read_orbits(write(tmp_path, "NEA.txt", lines))
    assert str(error.value) == "NEA.txt line 17: field 'e' (columns 71-79) is 'abc', not a number"


@pytest.mark.parametrize(("line", "field", "message"), [
    (with_field(HALE_BOPP, "q", "0.000000", COMET_COLUMNS), "q",
     field_out_of_range("q", COMET_COLUMNS["q"], "0.000000", "> 0 AU")),
    (with_field(HALE_BOPP, "e", "-0.99490", COMET_COLUMNS), "e",
     field_out_of_range("e", COMET_COLUMNS["e"], "-0.99490", ">= 0")),
    (with_field(HALE_BOPP, "perihelion month", "13", COMET_COLUMNS), "perihelion month",
     field_out_of_range("perihelion month", COMET_COLUMNS["perihelion month"], "13",
                        "in 1-12")),
    (with_field(HALE_BOPP, "epoch month", "  ", COMET_COLUMNS), "epoch month",
     blank_field("epoch month", COMET_COLUMNS["epoch month"], 168)),
    (HALE_BOPP[:40], "e", blank_field("e", COMET_COLUMNS["e"], 40)),
    (HALE_BOPP[:45], "peri", blank_field("peri", COMET_COLUMNS["peri"], 45)),  # e is '0.99'
    (with_field(HALE_BOPP, "designation", "    CJ95O01?", COMET_COLUMNS), "designation",
     not_a_designation("designation", COMET_COLUMNS["designation"], "CJ95O01?")),
])
def test_malformed_comet_line(tmp_path, line, field, message):
    with pytest.raises(OrbitFormatError) as error:
        read_orbits(write(tmp_path, "CometEls.txt", [HALE_BOPP, "", line]))
    assert str(error.value) == f"CometEls.txt line 3: {message}"
    assert error.value.field == field


def test_parabolic_and_hyperbolic_comets_are_kept(tmp_path):
    lines = [with_field(HALE_BOPP, "e", e, COMET_COLUMNS) for e in ("1.000000", "1.250000")]
    table = read_orbits(write(tmp_path, "CometEls.txt", lines))
    assert table.column("e").to_pylist() == [1.0, 1.25]


def test_orbit_format_error_pickles():
    error = OrbitFormatError("field 'e' is bad", source="NEA.txt", line=17, field="e")
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is OrbitFormatError
    assert (str(copy), copy.line, copy.field, copy.source) == \
        (str(error), 17, "e", "NEA.txt")
