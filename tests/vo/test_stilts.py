"""STILTS (the Starlink Tables Infrastructure Library Tool Set) as a real client of the
Virtual Observatory face: per-row Simple Cone Search (``coneskymatch``), synchronous TAP
queries and uploads (``tapquery``, ``tapskymatch``) answer what the gRPC face answers, row for
row, through the embedded server and through the router; and the ``taplint`` stages that pass
now stay free of errors.

Each STILTS command is one JVM start (about 1-2 s), so the commands are few and each does a
whole table at once."""

from __future__ import annotations

import csv
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from xmatch import Client
from xmatch.vo.tap_schema import adql_name

STILTS = shutil.which("stilts")
pytestmark = [
    pytest.mark.skipif(STILTS is None, reason="STILTS is not installed (`apt-get install "
                       "stilts`, needs Java): the VO face's STILTS client tests need it"),
    pytest.mark.slow,
]

#: Seconds one STILTS command may take (a JVM start and a few HTTP requests: seconds).
TIMEOUT_SECONDS = 120
CATALOG = "gaia_dr3"
#: The match radius, degrees: 0.2 deg holds 0 to 5 Gaia G < 10 stars at each position below.
SR_DEG = 0.2

#: (RA, Dec) in degrees of the positions matched. The number of stars within SR_DEG is
#: noted; the gRPC answer is the reference, the counts only say why each is here.
POSITIONS = [
    (0.0, 89.9),                                # near the north pole: 1 (RA 319, Dec 89.77)
    (359.999, 60.0),                            # the same 4 stars across RA 360 / 0 ...
    (0.001, 60.0),                              # ... from the other side
    (10.14288768795707, 10.124499467826677),    # exactly on a star (separation 0): 2
    (266.4168, -29.0078),                       # the Galactic centre: 5
    (180.0, -89.95),                            # near the south pole: 3
    (150.0, 70.0),                              # 1
    (0.0, 0.0),                                 # 1
    (225.034368, -29.357726),                   # no star near
    (322.996968, -6.306518),                    # 2
    (279.246848, 0.521199),                     # no star near
    (81.074588, 6.142102),                      # 2
    (108.059863, 82.30743),                     # 1
    (314.47924, 35.825871),                     # 2
    (1.89551, 14.143924),                       # 1
    (295.642231, 77.93752),                     # 1
    (286.944994, -34.707184),                   # no star near
    (168.456583, -42.810514),                   # 5
    (109.091674, 13.007536),                    # 1
    (100.23322, -65.799422),                    # 3
]

#: taplint's stages (``stilts taplint help=stages``) asserted free of E- (error) lines, and
#: those not run yet with the reason; move a stage from TAPLINT_EXCLUDED to TAPLINT_CHECKED
#: when the face passes it.
TAPLINT_CHECKED = ("TME", "TMS", "TMC", "QGE", "QPO", "MDQ", "TMV", "CPV", "AVV")
TAPLINT_EXCLUDED = {
    "CAP": "uploads are declared without the upload method "
           "ivo://ivoa.net/std/TAPRegExt#upload-http: by design, only inline uploads are "
           "answered (a service that fetches the URLs its clients name can be turned against "
           "the network behind it); the rest of CAP passes",
    "QAS": "asynchronous TAP (UWS) is not offered (404)",
    "UWS": "asynchronous TAP (UWS) is not offered (404)",
    "UPL": "taplint sends its upload queries asynchronously",
    "OBS": "no ObsCore table: nothing to test",
    "LOC": "no ObsLocTAP table: nothing to test (reports F-LOC-NOTP)",
    "EXA": "no /tap/examples document (reports F-EXA-EXNO)",
}


# ---------------------------------------------------------------------------- helpers


def stilts(*arguments: str) -> subprocess.CompletedProcess:
    """Run one STILTS command (``-verbose`` first when logged queries are wanted)."""
    return subprocess.run([STILTS, *arguments], capture_output=True, text=True,
                          timeout=TIMEOUT_SECONDS, check=False)


def succeeded(run: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    command = " ".join(run.args[1:])
    assert run.returncode == 0, (f"stilts {command}\nexited with {run.returncode}; its "
                                 f"stderr:\n{run.stderr}")
    return run


def write_positions(path: Path) -> Path:
    """POSITIONS as a VOTable with double-precision columns (a CSV would be read by STILTS
    as float32 where the digits allow, moving 89.9 by 0.005 arcsec)."""
    rows = "\n".join(f"<TR><TD>{i}</TD><TD>{ra!r}</TD><TD>{dec!r}</TD></TR>"
                     for i, (ra, dec) in enumerate(POSITIONS))
    path.write_text(f"""<?xml version="1.0" encoding="UTF-8"?>
<VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3">
<RESOURCE><TABLE name="positions">
<FIELD name="pos_id" datatype="int"/>
<FIELD name="pos_ra" datatype="double" unit="deg" ucd="pos.eq.ra;meta.main"/>
<FIELD name="pos_dec" datatype="double" unit="deg" ucd="pos.eq.dec;meta.main"/>
<DATA><TABLEDATA>
{rows}
</TABLEDATA></DATA></TABLE></RESOURCE></VOTABLE>
""")
    return path


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as stream:
        return list(csv.DictReader(stream))


def number(text: str) -> float | None:
    return None if text == "" else float(text)


def grpc_matches(address: str) -> list[tuple]:
    """(position index, source_id, ra, dec, separation in arcsec) of every star within
    SR_DEG of each position, as gRPC's cross-match answers them (closest first), with
    (index, None, None, None, None) for a position with none."""
    ra, dec = np.array(POSITIONS).T
    with Client(address) as client:
        table = client.crossmatch(CATALOG, ra, dec, radius_arcsec=SR_DEG * 3600.0,
                                  mode="all", columns=["source_id", "ra", "dec"], arrow=True)
    rows = []
    for row in table.to_pylist():
        if row["match_rank"] is None:
            rows.append((row["query_index"], None, None, None, None))
        else:
            rows.append((row["query_index"], row["source_id"], row["ra"], row["dec"],
                         row["separation_arcsec"]))
    return rows


def assert_same_rows(got: list[tuple], expected: list[tuple], what: str) -> None:
    """Row for row: the same positions, sources and coordinates; separations to 1e-9
    arcsec (STILTS computes its own, in degrees)."""
    assert [r[:4] for r in got] == [r[:4] for r in expected], what
    for g, e in zip(got, expected, strict=True):
        if e[4] is None:
            assert g[4] is None, (what, g, e)
        else:
            assert g[4] == pytest.approx(e[4], rel=1e-12, abs=1e-9), (what, g, e)


def logged_adql(stderr: str) -> str:
    """The ADQL a ``stilts -verbose`` command logged (its ``INFO: ADQL query:`` block)."""
    lines = stderr.splitlines()
    for start, line in enumerate(lines):
        if line.startswith("INFO: ADQL query:"):
            block = []
            for following in lines[start + 1:]:
                if re.match(r"(INFO|WARNING|SEVERE|Error):?", following):
                    break
                block.append(following)
            return "\n".join(block)
    return "(no ADQL logged)"


# ---------------------------------------------------------------------------- SCS


def test_coneskymatch_equals_grpc_crossmatch(faces, tmp_path):
    """One Simple Cone Search per input row (4 in flight): the same stars, coordinates and
    separations as the gRPC cross-match of the same positions, in the same order (input
    row, then closest first); positions without a star give no row."""
    address, base = faces
    source = write_positions(tmp_path / "positions.vot")
    out = tmp_path / "matched.csv"
    run = succeeded(stilts(
        "coneskymatch", f"in={source}", "ra=pos_ra", "dec=pos_dec", f"sr={SR_DEG}",
        "find=all", f"serviceurl={base}/scs/{CATALOG}?", "servicetype=cone",
        "usefoot=false",  # footprints come from the CDS MOC service: not ours, not offline
        "parallel=4", "erract=abort", "suffix0=_in", "suffix1=_scs", "ofmt=csv", f"out={out}"))
    rows = read_csv(out)
    expected = [r for r in grpc_matches(address) if r[1] is not None]
    assert len(expected) > 30 and len({r[0] for r in expected}) == len(POSITIONS) - 3
    # STILTS's own separation (degrees, from the position columns it found in the answer)
    got = [(int(r["pos_id"]), int(r["source_id"]), float(r["ra"]), float(r["dec"]),
            float(r["Separation"]) * 3600.0) for r in rows]
    assert_same_rows(got, expected, f"coneskymatch rows; stilts stderr:\n{run.stderr}")
    # the face's separation column, passed through
    served = [(*g[:4], float(r["separation_arcsec"])) for g, r in zip(got, rows, strict=True)]
    assert_same_rows(served, expected, "separation_arcsec of the Simple Cone Search answers")


# ---------------------------------------------------------------------------- TAP queries


def test_tapquery_cone_top_ordered_by_distance(faces, tmp_path):
    """CONTAINS(POINT, CIRCLE) with TOP and ORDER BY the distance: the closest stars of the
    gRPC cone search, closest first, with the distance in degrees."""
    address, base = faces
    ra, dec, radius, top = 266.4168, -29.0078, 1.0, 25
    adql = (f"SELECT TOP {top} source_id, ra, dec, "
            f"DISTANCE(POINT('ICRS', ra, dec), POINT('ICRS', {ra}, {dec})) AS dist "
            f"FROM xmatch.{CATALOG} "
            f"WHERE CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', {ra}, {dec}, {radius})) = 1 "
            "ORDER BY dist")
    out = tmp_path / "cone.csv"
    succeeded(stilts("tapquery", f"tapurl={base}/tap", "sync=true", f"adql={adql}",
                     "ofmt=csv", f"out={out}"))
    rows = read_csv(out)
    with Client(address) as client:
        everything = client.cone_search(CATALOG, ra, dec, radius * 3600.0,
                                        columns=["source_id", "ra", "dec"], arrow=True)
    assert everything.num_rows > top  # TOP cuts
    expected = everything.slice(0, top).to_pylist()
    got = [(int(r["source_id"]), float(r["ra"]), float(r["dec"])) for r in rows]
    assert got == [(e["source_id"], e["ra"], e["dec"]) for e in expected]
    for r, e in zip(rows, expected, strict=True):
        assert float(r["dist"]) * 3600.0 == pytest.approx(e["separation_arcsec"], rel=1e-12,
                                                          abs=1e-9)


#: The VOTable datatype of each Arrow type a catalog column has (TAP_SCHEMA.columns).
VOTABLE_TYPES = {"int64": "long", "int32": "int", "int16": "short", "double": "double",
                 "float": "float", "bool": "boolean", "string": "char", "large_string": "char"}


def test_tapquery_tap_schema_columns(faces, tmp_path):
    """TAP_SCHEMA.columns of the catalog: its columns in order, as gRPC describes them, with
    their VOTable datatypes, units, and the identifier and position UCDs."""
    address, base = faces
    adql = ("SELECT column_name, datatype, unit, ucd, indexed FROM TAP_SCHEMA.columns "
            f"WHERE table_name = 'xmatch.{CATALOG}' ORDER BY column_index")
    out = tmp_path / "columns.csv"
    succeeded(stilts("tapquery", f"tapurl={base}/tap", "sync=true", f"adql={adql}",
                     "ofmt=csv", f"out={out}"))
    rows = read_csv(out)
    with Client(address) as client:
        described = client.describe(CATALOG)
    schema = described["schema"]
    # Names that are not regular ADQL identifiers are published delimited ("_healpix_29").
    assert [r["column_name"] for r in rows] == [adql_name(n) for n in schema.names]
    for row, field in zip(rows, schema, strict=True):
        assert row["datatype"] == VOTABLE_TYPES[str(field.type)], (row, field)
        unit = (field.metadata or {}).get(b"unit", b"").decode()
        assert row["unit"] == unit, (row, field)
    ucds = {r["column_name"]: r["ucd"] for r in rows}
    assert ucds[described["id_column"]] == "meta.id;meta.main"
    assert ucds[described["ra_column"]] == "pos.eq.ra;meta.main"
    assert ucds[described["dec_column"]] == "pos.eq.dec;meta.main"
    indexed = {r["column_name"] for r in rows if r["indexed"] == "1"}
    assert indexed == {described["ra_column"], described["dec_column"]}


def test_tapquery_upload_left_join_equals_grpc_crossmatch(faces, tmp_path):
    """An uploaded table LEFT OUTER JOINed to the catalog ON CONTAINS(POINT, CIRCLE), sent
    by STILTS as an inline (multipart) VOTable upload: every position, matched or not, with
    the stars and separations of the gRPC cross-match (the ADQL tapskymatch would send,
    minus what the planner refuses: see the tapskymatch test)."""
    address, base = faces
    source = write_positions(tmp_path / "positions.vot")
    adql = ("SELECT u.pos_id, g.source_id, g.ra, g.dec, "
            "DISTANCE(POINT('ICRS', u.pos_ra, u.pos_dec), POINT('ICRS', g.ra, g.dec)) AS dist "
            "FROM TAP_UPLOAD.positions AS u "
            f"LEFT OUTER JOIN xmatch.{CATALOG} AS g "
            "ON 1 = CONTAINS(POINT('ICRS', g.ra, g.dec), "
            f"CIRCLE('ICRS', u.pos_ra, u.pos_dec, {SR_DEG})) "
            "ORDER BY u.pos_id, dist")
    out = tmp_path / "joined.csv"
    run = succeeded(stilts("tapquery", f"tapurl={base}/tap", "sync=true", "nupload=1",
                           f"upload1={source}", "upname1=positions", f"adql={adql}",
                           "ofmt=csv", f"out={out}"))
    got = []
    for r in read_csv(out):
        source_id = None if r["source_id"] == "" else int(r["source_id"])
        dist = number(r["dist"])
        got.append((int(r["pos_id"]), source_id, number(r["ra"]), number(r["dec"]),
                    None if dist is None else dist * 3600.0))
    expected = grpc_matches(address)
    assert sum(r[1] is None for r in expected) == 3  # the positions with no star near
    assert_same_rows(got, expected, f"upload join rows; stilts stderr:\n{run.stderr}")


def test_tapskymatch_equals_grpc_crossmatch(faces, tmp_path):
    """tapskymatch: STILTS uploads the positions in blocks (8 rows: three requests) and
    writes its own ADQL join. find=all: every pair within SR_DEG; find=each: one row per
    position, its closest star or blanks; both as the gRPC cross-match finds them."""
    address, base = faces
    source = write_positions(tmp_path / "positions.vot")
    expected = grpc_matches(address)
    for find in ("all", "each"):
        out = tmp_path / f"skymatched-{find}.csv"
        run = stilts("-verbose", "tapskymatch", f"in={source}", "inlon=pos_ra",
                     "inlat=pos_dec", f"tapurl={base}/tap", f"taptable=xmatch.{CATALOG}",
                     "taplon=ra", "taplat=dec", "tapcols=source_id,ra,dec", f"sr={SR_DEG}",
                     f"find={find}", "sync=true", "blocksize=8", "ofmt=csv", f"out={out}")
        adql = logged_adql(run.stderr)
        assert run.returncode == 0, f"{run.stderr[-3000:]}\nADQL:\n{adql}"
        got = [(int(r["pos_id"]), None if r["source_id"] == "" else int(r["source_id"]),
                number(r["ra"]), number(r["dec"]), number(r["SEP_ARCSEC"]))
               for r in read_csv(out)]
        if find == "all":  # pairs in no order ADQL promises: sorted on both sides
            wanted = sorted(r for r in expected if r[1] is not None)
            got = sorted(got)
        else:  # one row per position, in input order: the closest (rank 1) or blanks
            wanted = [next(r for r in expected if r[0] == i) for i in range(len(POSITIONS))]
        assert_same_rows(got, wanted, f"tapskymatch find={find} rows; its ADQL:\n{adql}")


# ---------------------------------------------------------------------------- taplint

#: A taplint report line: type, stage, code, message (``E-QGE-QERR-1 TAP query failed ..``).
REPORT_LINE = re.compile(r"^([EWISF])-([A-Z]{3})-([A-Z0-9]{4})-\S+ (.*)$")


def test_taplint_checked_stages_have_no_errors(faces):
    """taplint's stages of TAPLINT_CHECKED: no E- (error) lines. (The excluded stages and why
    are in TAPLINT_EXCLUDED.)"""
    _, base = faces
    assert not set(TAPLINT_CHECKED) & set(TAPLINT_EXCLUDED)
    run = succeeded(stilts("taplint", f"tapurl={base}/tap", f"stages={' '.join(TAPLINT_CHECKED)}",
                           "report=EWF", "maxrepeat=20", "truncate=2000"))
    report = run.stdout.splitlines()
    assert any(line.startswith("Totals:") for line in report), run.stdout
    for stage in TAPLINT_CHECKED:
        assert any(line.startswith(f"Section {stage}:") for line in report), (stage, run.stdout)
    matched = [(line, REPORT_LINE.match(line)) for line in report]
    errors = [line for line, m in matched
              if m and m.group(1) == "E" and m.group(2) in TAPLINT_CHECKED]
    assert not errors, "taplint errors:\n" + "\n".join(errors)
