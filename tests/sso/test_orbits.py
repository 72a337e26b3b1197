"""Orbit tables from MPC files (against skyfield's own readers), Rubin alerts and the
synthetic population."""

from __future__ import annotations

import gzip
import io
import json
import pickle

import fastavro
import numpy as np
import pyarrow as pa
import pytest
from astropy.time import Time

from conftest import shared_file
from xmatch.alerts.avro import Schemas, container
from xmatch.errors import LoadError
from xmatch.sso.orbits import (
    C_AU_PER_DAY,
    COMET_COLUMNS,
    GM_SUN,
    KM_S_TO_AU_DAY,
    MPCORB_COLUMNS,
    OBSERVATION_SCHEMA,
    ORBIT_SCHEMA,
    SYNTHETIC_POPULATIONS,
    OrbitFormatError,
    alert_sso_observations,
    blank_field,
    field_out_of_range,
    not_a_designation,
    not_a_number,
    not_a_packed_date,
    orbits_from_alerts,
    read_orbits,
    synthetic_orbits,
    unpack_designation,
    unpack_epoch,
)

MPCORB_FILES = ["sso/MPCORB.excerpt.DAT", "sso/NEA.txt.gz", "sso/mpcorb_excerpt_K25BL.dat.gz"]
RUBIN_ALERTS = "alerts/lsst/rubin_lsstcam_20250905_via_fink.tar.gz"
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


def assert_same(table: pa.Table, other: pa.Table, ignore=("source",)) -> None:
    """Equal tables, NaN equal to NaN (arrow's ``equals`` holds NaN unequal to itself)."""
    assert table.schema == other.schema
    for name in table.column_names:
        if name in ignore:
            continue
        mine, theirs = table.column(name), other.column(name)
        if pa.types.is_floating(mine.type):
            np.testing.assert_array_equal(mine.to_numpy(), theirs.to_numpy(), err_msg=name)
        else:
            assert mine.to_pylist() == theirs.to_pylist(), name


def write(tmp_path, name: str, lines: list[str], newline: str = "\n") -> str:
    path = tmp_path / name
    path.write_text(newline.join(lines) + newline)
    return str(path)


# -- packed designations and dates ------------------------------------------------------

@pytest.mark.parametrize(("packed", "readable"), [
    ("00001", "(1)"), ("00433", "(433)"), ("A0001", "(100001)"), ("a0001", "(360001)"),
    ("z9999", "(619999)"), ("~0000", "(620000)"), ("~000a", "(620036)"),
    ("~zzzz", "(15396335)"),
    ("K13L24L", "2013 LL24"), ("J95X00A", "1995 XA"), ("J98SA8Q", "1998 SQ108"),
    ("K07Tf8A", "2007 TA418"), ("K08Aa0A", "2008 AA360"),
    ("_QC0000", "2026 CA620"), ("_QC0aEM", "2026 CZ6190"),
    ("PLS2040", "2040 P-L"), ("T1S3138", "3138 T-1"), ("T2S1010", "1010 T-2"),
    ("T3S4101", "4101 T-3"),
    ("CJ95O010", "C/1995 O1"), ("PJ96R020", "P/1996 R2"), ("PK13R03a", "P/2013 R3-A"),
    ("CK14UR1N", "C/2014 UN271"), ("AK18W030", "A/2018 W3"), ("CJ42E00A", "C/1942 EA"),
    ("J94P01b", "1994 P1-B"), ("K88AA30", "2088 A103"),
    ("0001P", "1P"), ("0003Da", "3D-A"), ("0073Pbt", "73P-BT"), ("0073P     bt", "73P-BT"),
    ("0001I", "1I"), ("0260PK12K010", "260P"),
])
def test_unpack_designation(packed, readable):
    assert unpack_designation(packed) == readable


@pytest.mark.parametrize("packed", ["", "1", "K13L24", "Q13L24L", "K13I24L", "0001Z",
                                    "~00000", "PLS204", "CJ95O01"])
def test_unpack_designation_rejects(packed):
    with pytest.raises(ValueError, match="not a packed MPC designation"):
        unpack_designation(packed)


@pytest.mark.parametrize(("packed", "iso"), [
    ("K25BL", "2025-11-21"), ("K205V", "2020-05-31"), ("K1972", "2019-07-02"),
    ("J9611", "1996-01-01"), ("I99CC", "1899-12-12"), ("K2421", "2024-02-01"),
    ("K242T", "2024-02-29"),
])
def test_unpack_epoch_against_astropy(packed, iso):
    assert unpack_epoch(packed) == Time(iso, scale="tt").mjd


@pytest.mark.parametrize("packed", ["K25BW", "K25DZ", "K252U", "K232T", "K25B", "L25BL",
                                    "K25B0"])
def test_unpack_epoch_rejects(packed):
    with pytest.raises(ValueError):
        unpack_epoch(packed)


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


# -- Rubin alerts ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def two_body():
    return pytest.importorskip("xmatch.kernels.orbits",
                               reason="xmatch.kernels.orbits (state_to_elements) not there yet")


def alert_records(path):
    from xmatch.alerts import read_packets

    schemas = Schemas()
    for packet in read_packets([path]):
        for schema, body in schemas.split(packet.data):
            record = fastavro.schemaless_reader(io.BytesIO(body), schema.parsed, None)
            if record.get("ssSource"):
                yield packet.origin, record


def heliocentric_state(orbit: dict, epoch_mjd: float):
    """Skyfield's two-body state (ICRS, AU, AU/day) of ``orbit`` at ``epoch_mjd`` (TT)."""
    keplerlib = pytest.importorskip("skyfield.keplerlib")
    spice = pytest.importorskip("skyfield.data.spice")
    api = pytest.importorskip("skyfield.api")
    ts = api.load.timescale(builtin=True)
    e, q = orbit["e"], orbit["q_au"]
    kepler = keplerlib._KeplerOrbit._from_periapsis(
        q * (1 + e), e, orbit["inc_deg"], orbit["node_deg"], orbit["argperi_deg"],
        ts.tt_jd(orbit["tp_mjd_tt"] + 2400000.5), GM_SUN * 149597870.7**3 / 86400.0**2, 10)
    kepler._rotation = spice.inertial_frames["ECLIPJ2000"].T
    position, velocity, _, _ = kepler._at(ts.tt_jd(epoch_mjd + 2400000.5))
    return np.concatenate([position, velocity])


def test_real_rubin_alerts_give_orbits(two_body):
    path = shared_file(RUBIN_ALERTS)
    table = orbits_from_alerts([path])
    assert table.schema == ORBIT_SCHEMA
    orbits = table.to_pylist()
    assert [o["designation"] for o in orbits] == ["K13L24L", "K12J69D", "K14K03A"]
    assert [o["name"] for o in orbits] == ["2013 LL24", "2012 JD69", "2014 KA3"]
    records = list(alert_records(path))
    assert len(records) == 4
    first = {}
    for origin, record in records:
        first.setdefault(record["MPCORB"]["mpcDesignation"], (origin, record))
    for orbit in orbits:
        origin, record = first[orbit["designation"]]
        source = record["ssSource"]
        assert orbit["source"] == origin
        # The MPCORB record's elements are all null: the orbit is ssSource's state at the
        # emission time (TAI -> TT, less the light time over the topocentric distance).
        assert record["MPCORB"]["e"] is None
        emitted = (record["diaSource"]["midpointMjdTai"] + 32.184 / 86400
                   - source["topocentricDist"] / C_AU_PER_DAY)
        assert orbit["epoch_mjd_tt"] == pytest.approx(emitted, abs=1e-9)
        state = [source[f"heliocentric{axis}"] for axis in ("X", "Y", "Z", "VX", "VY", "VZ")]
        back = heliocentric_state(orbit, orbit["epoch_mjd_tt"])
        np.testing.assert_allclose(back[:3], state[:3], rtol=0, atol=1e-9)
        np.testing.assert_allclose(back[3:], state[3:], rtol=0, atol=1e-12)
        assert 0 <= orbit["e"] < 0.5 and 1.5 < orbit["q_au"] / (1 - orbit["e"]) < 3.5
        assert (orbit["kind"], orbit["g_slope"], orbit["synthetic"]) == ("asteroid", 0.15, False)
        assert np.isnan(orbit["h_mag"])


def test_orbit_from_one_alert_predicts_the_next(two_body):
    """2013 LL24 is in two alerts 3.3 minutes apart: the orbit from the first, carried to
    the second, puts the object where the second was observed (to a fraction of an arcsec,
    Rubin's own residuals being 0.1-0.2 arcsec)."""
    path = shared_file(RUBIN_ALERTS)
    orbit = orbits_from_alerts([path]).to_pylist()[0]
    (_, later), = [(o, r) for o, r in alert_records(path)
                   if r["MPCORB"]["mpcDesignation"] == "K13L24L"][1:]
    source = later["ssSource"]
    emitted = (later["diaSource"]["midpointMjdTai"] + 32.184 / 86400
               - source["topocentricDist"] / C_AU_PER_DAY)
    assert emitted - orbit["epoch_mjd_tt"] == pytest.approx(3.3 / 1440, abs=2e-4)
    helio = np.array([source[f"heliocentric{axis}"] for axis in "XYZ"])
    observer = helio - np.array([source[f"topocentric{axis}"] for axis in "XYZ"])
    seen = heliocentric_state(orbit, emitted)[:3] - observer
    ra, dec = np.radians(later["diaSource"]["ra"]), np.radians(later["diaSource"]["dec"])
    observed = np.array([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)])
    angle = np.degrees(np.arccos(seen @ observed / np.linalg.norm(seen))) * 3600
    assert angle < 0.5


def test_real_rubin_alert_observations():
    path = shared_file(RUBIN_ALERTS)
    table = alert_sso_observations([path])
    assert table.schema == OBSERVATION_SCHEMA
    rows = table.to_pylist()
    records = [record for _, record in alert_records(path)]
    assert len(rows) == len(records) == 4
    for row, record in zip(rows, records, strict=True):
        assert row["alert_id"] == record["diaSourceId"]
        assert row["designation"] == record["MPCORB"]["mpcDesignation"]
        assert row["ss_object_id"] == record["ssSource"]["ssObjectId"]
        assert (row["ra_deg"], row["dec_deg"], row["mjd_tai"]) == (
            record["diaSource"]["ra"], record["diaSource"]["dec"],
            record["diaSource"]["midpointMjdTai"])
        assert row["residual_ra_arcsec"] == record["ssSource"]["residualRa"] * 3600
        assert row["residual_dec_arcsec"] == record["ssSource"]["residualDec"] * 3600
    assert [r["designation"] for r in rows].count("K13L24L") == 2


def v11_packet(ss_source: dict | None, mpc_orbits: dict | None, dia: dict) -> bytes:
    """A v11.1 alert (the simulated packet's schema and content) carrying an SSO."""
    data = shared_file("alerts/lsst/fakeAlert.avro").read_bytes()
    ((schema, body),) = Schemas().split(data)
    record = fastavro.schemaless_reader(io.BytesIO(body), schema.parsed, None)
    layout = {field["name"]: field["type"] for field in json.loads(schema.text)["fields"]}

    def filled(kind: str, values: dict | None):
        if values is None:
            return None
        (definition,) = [t for t in layout[kind] if isinstance(t, dict)]
        out = {}
        for field in definition["fields"]:
            kind_ = field["type"]
            if isinstance(kind_, list):
                out[field["name"]] = None
            else:
                out[field["name"]] = {"long": 0, "int": 0, "double": 0.0, "float": 0.0,
                                      "string": "", "boolean": False}[kind_]
        out.update(values)
        return out

    record["ssSource"] = filled("ssSource", ss_source)
    record["mpc_orbits"] = filled("mpc_orbits", mpc_orbits)
    record["diaSource"].update(dia)
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, schema.parsed, record)
    return container(schema.text, [buffer.getvalue()])


@pytest.fixture(scope="module")
def ceres():
    return read_orbits(shared_file("sso/MPCORB.excerpt.DAT")).to_pylist()[0]


def test_v11_alert_with_mpc_orbit_elements(ceres):
    a = ceres["q_au"] / (1 - ceres["e"])
    epoch = ceres["epoch_mjd_tt"]
    mean_anomaly = 162.68631
    packet = v11_packet(
        {"diaSourceId": 7, "ssObjectId": 99, "designation": "A801 AA",
         "ephOffsetRa": 0.25, "ephOffsetDec": -0.5},
        {"designation": "A801 AA", "packed_primary_provisional_designation": "00001",
         "a": a, "q": ceres["q_au"], "e": ceres["e"], "i": ceres["inc_deg"],
         "node": ceres["node_deg"], "argperi": ceres["argperi_deg"], "epoch_mjd": epoch,
         "mean_anomaly": mean_anomaly, "h": 3.4, "g": 0.12},
        {"ra": 10.0, "dec": -5.0, "midpointMjdTai": 60900.5})
    (orbit,) = orbits_from_alerts([packet]).to_pylist()
    assert orbit["designation"] == "00001" and orbit["name"] == "(1)"
    assert orbit["source"] == "<bytes #0>"
    for name in ("q_au", "e", "inc_deg", "node_deg", "argperi_deg", "epoch_mjd_tt"):
        assert orbit[name] == ceres[name]
    assert orbit["tp_mjd_tt"] == pytest.approx(ceres["tp_mjd_tt"], abs=1e-9)
    assert (orbit["h_mag"], orbit["g_slope"]) == (3.4, 0.12)
    (row,) = alert_sso_observations([packet]).to_pylist()
    assert (row["designation"], row["ss_object_id"], row["residual_ra_arcsec"],
            row["residual_dec_arcsec"]) == ("00001", 99, 0.25, -0.5)


def test_v11_alert_with_a_state_in_km_per_s(ceres, two_body):
    """Without elements, ssSource's state is used; v10+ velocities are km/s (Rubin's data
    model): read as AU/day they would give a nonsensical orbit."""
    observed_tai = 60950.25
    distance = 2.1
    emitted = observed_tai + 32.184 / 86400 - distance / C_AU_PER_DAY
    state = heliocentric_state(ceres, emitted)
    velocity_km_s = state[3:] / KM_S_TO_AU_DAY
    source = {"diaSourceId": 8, "ssObjectId": 5, "designation": "2013 LL24",
              "topoRange": distance,
              **dict(zip(("helio_x", "helio_y", "helio_z"), state[:3], strict=True)),
              **dict(zip(("helio_vx", "helio_vy", "helio_vz"), velocity_km_s, strict=True))}
    packet = v11_packet(source, None, {"midpointMjdTai": observed_tai})
    (orbit,) = orbits_from_alerts([packet]).to_pylist()
    assert orbit["designation"] == "K13L24L"           # packed from ssSource's designation
    assert orbit["epoch_mjd_tt"] == pytest.approx(emitted, abs=1e-9)
    # float32 state components limit the agreement.
    for name, tolerance in (("q_au", 1e-6), ("e", 1e-6), ("inc_deg", 1e-5),
                            ("node_deg", 1e-4), ("argperi_deg", 1e-2)):
        assert orbit[name] == pytest.approx(ceres[name], abs=tolerance)
    period = 2 * np.pi / np.sqrt(GM_SUN / (ceres["q_au"] / (1 - ceres["e"])) ** 3)
    assert (orbit["tp_mjd_tt"] - ceres["tp_mjd_tt"]) / period == pytest.approx(
        round((orbit["tp_mjd_tt"] - ceres["tp_mjd_tt"]) / period), abs=1e-4)


def test_alerts_without_sso_give_empty_tables():
    packet = shared_file("alerts/lsst/fakeAlert.avro").read_bytes()
    assert orbits_from_alerts([packet]).equals(ORBIT_SCHEMA.empty_table())
    assert alert_sso_observations([packet]).num_rows == 0


def test_gm_matches_the_kernels(two_body):
    assert GM_SUN == two_body.GM_SUN
    assert C_AU_PER_DAY == pytest.approx(two_body.C_AU_PER_DAY, rel=1e-15)


# -- synthetic population ----------------------------------------------------------------

def populations(table: pa.Table) -> dict[str, np.ndarray]:
    q = table.column("q_au").to_numpy()
    a = q / (1 - table.column("e").to_numpy())
    neo = q < 1.3
    return {
        "near-earth": neo,
        "hungaria": ~neo & (a < 2.05),
        "main belt": ~neo & (a >= 2.05) & (a < 3.3),
        "outer main belt": ~neo & (a >= 3.3) & (a < 3.85),
        "hilda": ~neo & (a >= 3.85) & (a < 4.1),
        "jupiter trojan": ~neo & (a >= 5.0) & (a < 5.4),
    }


@pytest.fixture(scope="module")
def synthetic():
    return synthetic_orbits(200_000, seed=3)


def test_synthetic_is_deterministic(synthetic):
    assert_same(synthetic_orbits(200_000, seed=3), synthetic, ignore=())
    other = synthetic_orbits(200_000, seed=4)
    assert not np.array_equal(other.column("q_au").to_numpy(), synthetic.column("q_au").to_numpy())


def test_synthetic_schema_and_flags(synthetic):
    assert synthetic.schema == ORBIT_SCHEMA
    designations = synthetic.column("designation").to_pylist()
    assert designations[:2] == ["S0000001", "S0000002"]
    assert len(set(designations)) == synthetic.num_rows
    assert all(synthetic.column("synthetic").to_pylist())
    assert set(synthetic.column("source").to_pylist()) == {"synthetic"}
    assert set(synthetic.column("kind").to_pylist()) == {"asteroid"}
    assert synthetic.column("name").null_count == synthetic.num_rows
    assert set(synthetic.column("g_slope").to_pylist()) == {0.15}
    assert np.isnan(synthetic.column("comet_k").to_numpy()).all()
    assert set(synthetic.column("epoch_mjd_tt").to_pylist()) == {61000.0}


def test_synthetic_populations_and_ranges(synthetic):
    groups = populations(synthetic)
    counts = sum(mask.astype(int) for mask in groups.values())
    assert (counts == 1).all()                           # every object in exactly one group
    n = synthetic.num_rows
    for name, fraction in SYNTHETIC_POPULATIONS.items():
        assert groups[name].sum() / n == pytest.approx(fraction, abs=4 * np.sqrt(fraction / n))
    e = synthetic.column("e").to_numpy()
    inc = synthetic.column("inc_deg").to_numpy()
    q = synthetic.column("q_au").to_numpy()
    a = q / (1 - e)
    belt = groups["main belt"]
    assert a[belt].min() >= 2.1 and a[belt].max() < 3.3
    assert e[belt].max() < 0.35 and np.median(e[belt]) == pytest.approx(0.08 * 1.1774, rel=0.05)
    assert np.median(inc[belt]) == pytest.approx(8 * 1.1774, rel=0.05)
    neo = groups["near-earth"]
    assert (a[neo] >= 0.8).all() and (a[neo] < 3.0).all() and (q[neo] < 1.3).all()
    assert (e[neo] >= 0.1).all() and (e[neo] <= 0.8).all()
    trojans = groups["jupiter trojan"]
    assert (e[trojans] < 0.15).all() and (inc[trojans] < 35).all()
    assert ((inc >= 0) & (inc <= 180)).all() and (e >= 0).all() and (e < 1).all()
    for name in ("node_deg", "argperi_deg"):
        values = synthetic.column(name).to_numpy()
        assert ((values >= 0) & (values < 360)).all()
    # The Kirkwood gaps are depleted: 3:1, 5:2 and 7:3 resonances against their neighbours.
    for centre, half_width in ((2.50, 0.02), (2.825, 0.02), (2.955, 0.015)):
        inside = (np.abs(a[belt] - centre) < half_width * 0.8).sum()
        around = ((np.abs(a[belt] - centre) > half_width * 1.5)
                  & (np.abs(a[belt] - centre) < half_width * 2.3)).sum()
        assert inside < 0.2 * around
    # The tp of an orbit is its perihelion passage nearest the epoch.
    n_deg = np.degrees(np.sqrt(GM_SUN / a**3))
    assert (np.abs(synthetic.column("tp_mjd_tt").to_numpy() - 61000.0) <= 180 / n_deg).all()


def test_synthetic_trojans_lead_and_trail_jupiter(synthetic):
    trojans = populations(synthetic)["jupiter trojan"]
    columns = {name: synthetic.column(name).to_numpy()[trojans] for name in
               ("q_au", "e", "node_deg", "argperi_deg", "tp_mjd_tt")}
    a = columns["q_au"] / (1 - columns["e"])
    mean_anomaly = np.degrees(np.sqrt(GM_SUN / a**3)) * (61000.0 - columns["tp_mjd_tt"])
    longitude = columns["node_deg"] + columns["argperi_deg"] + mean_anomaly
    # Jupiter's mean longitude at 2025-11-21 (JPL's approximate elements): 100.0 deg.
    relative = (longitude - 100.0 + 180) % 360 - 180
    assert (np.abs(np.abs(relative) - 60) < 45).all()
    assert 0.4 < (relative > 0).mean() < 0.6            # L4 and L5 alike


def test_synthetic_magnitudes(synthetic):
    h = synthetic.column("h_mag").to_numpy()
    assert h.min() >= 8 and h.max() <= 22
    # N(<H) ~ 10^(0.3 H): one magnitude brighter holds 10^-0.3 as many objects.
    assert (h < 20).sum() / (h < 21).sum() == pytest.approx(10**-0.3, rel=0.03)


def test_synthetic_full_size():
    table = synthetic_orbits(1_300_000)
    assert table.num_rows == 1_300_000
    assert table.column("designation")[-1].as_py() == "S1300000"
    assert synthetic_orbits(0).num_rows == 0
