"""The Virtual Observatory face with a real client (pyvo): Simple Cone Search and TAP answer
exactly what the gRPC face answers, in VOTables that validate strictly, through the
embedded server and through the router; bad requests get the standard error documents."""

from __future__ import annotations

import io
import urllib.error
import urllib.parse
import urllib.request

import numpy as np
import pyarrow as pa
import pytest
from astropy.coordinates import SkyCoord
from astropy.io import votable
from astropy.table import Table

from xmatch import Client, open_catalog

pyvo = pytest.importorskip("pyvo")

#: Cone centres: ordinary, at the north and south poles, across RA 0/360, on a HEALPix
#: order-0 boundary (RA 45, Dec 0), and where the G<10 sky is empty of nothing in particular.
CENTRES = [(56.75, 24.12), (10.0, 89.95), (200.0, -89.9), (359.99, 5.0), (0.01, -5.0),
           (45.0, 0.0), (270.0, -30.0)]


def fetch(url: str, data: bytes | None = None, headers=None) -> tuple[int, bytes, str]:
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, answer.read(), answer.headers["Content-Type"]
    except urllib.error.HTTPError as error:
        with error:  # its socket closed now, not by the garbage collector
            return error.code, error.read(), error.headers["Content-Type"]


def strict(document: bytes):
    """The VOTable parsed by astropy in strict mode (any deviation raises)."""
    return votable.parse(io.BytesIO(document), verify="exception")


def error_message(document: bytes) -> str:
    infos = [i for i in strict(document).resources[0].infos if i.name == "QUERY_STATUS"]
    assert infos and infos[0].value == "ERROR"
    return infos[0].content


def by_id(table, column: str) -> Table:
    table = table if isinstance(table, Table) else Table(table)
    return table[np.argsort(np.asarray(table[column]), kind="stable")]


# ---------------------------------------------------------------------- Simple Cone Search


@pytest.mark.parametrize("ra, dec", CENTRES)
def test_scs_equals_the_grpc_cone(faces, ra, dec):
    address, base = faces
    radius_deg = 1.5
    answer = pyvo.dal.SCSService(f"{base}/scs/gaia_dr3").search(pos=(ra, dec),
                                                                  radius=radius_deg)
    got = by_id(answer.to_table(), "source_id")
    with Client(address) as client:
        expected = by_id(client.cone_search("gaia_dr3", ra, dec, radius_deg * 3600.0),
                         "source_id")
    assert len(got) == len(expected) > 0 or (len(got) == len(expected) == 0)
    for name in ("source_id", "ra", "dec", "phot_g_mean_mag", "separation_arcsec"):
        np.testing.assert_array_equal(np.asarray(got[name]), np.asarray(expected[name]))


def test_scs_against_astropy(embedded_servicer, service_data):
    """The rows of a cone across RA 0/360 are those astropy finds within the radius."""
    _, servicer = embedded_servicer
    rows = open_catalog("gcvs", service_data).read(columns=["xmatch_row", "ra", "dec"])
    centre, radius_deg = SkyCoord(359.5, 10.0, unit="deg"), 3.0
    inside = centre.separation(SkyCoord(rows["ra"], rows["dec"], unit="deg")).deg <= radius_deg
    document = fetch(f"http://{servicer.http_address}/scs/gcvs?RA=359.5&DEC=10&SR=3")[1]
    table = strict(document).get_first_table().to_table()
    assert inside.sum() >= 5
    assert sorted(table["xmatch_row"]) == sorted(np.asarray(rows["xmatch_row"])[inside])


def test_scs_votable_is_valid_and_described(embedded_servicer):
    _, servicer = embedded_servicer
    status, document, content_type = fetch(
        f"http://{servicer.http_address}/scs/hipparcos2?RA=101.28&DEC=-16.71&SR=0.5")
    assert status == 200 and content_type.startswith("application/x-votable+xml")
    parsed = strict(document)
    fields = {f.name: f for f in parsed.get_first_table().fields}
    assert fields["hip"].ucd == "meta.id;meta.main"
    assert fields["ra"].ucd == "pos.eq.ra;meta.main" and str(fields["ra"].unit) == "deg"
    assert fields["dec"].ucd == "pos.eq.dec;meta.main"
    assert str(fields["separation_arcsec"].unit) == "arcsec"
    table = parsed.get_first_table().to_table()
    assert 32349 in list(table["hip"])  # Sirius
    minimal = strict(fetch(f"http://{servicer.http_address}/scs/hipparcos2?RA=101.28&"
                           "DEC=-16.71&SR=0.5&VERB=1")[1]).get_first_table()
    assert [f.name for f in minimal.fields] == ["hip", "ra", "dec"]


@pytest.mark.parametrize("query, status, words", [
    ("DEC=10&SR=0.1", 400, "RA is missing"),
    ("RA=10&DEC=10&SR=-0.1", 400, "SR=-0.1 is not allowed"),
    ("RA=10&DEC=10&SR=0", 400, "SR=0 is not allowed"),
    ("RA=10&DEC=10&SR=20", 400, "over this server's limit"),
    ("RA=10&DEC=91&SR=0.1", 400, "DEC=91 is not allowed"),
    ("RA=ten&DEC=10&SR=0.1", 400, "RA='ten' is not a number"),
    ("RA=10&DEC=10&SR=0.1&VERB=4", 400, "VERB='4' is not allowed"),
    ("RA=10&DEC=10&SR=0.1&ra=11", 400, "RA is given twice"),
])
def test_scs_refusals(embedded_servicer, query, status, words):
    _, servicer = embedded_servicer
    got, document, _ = fetch(f"http://{servicer.http_address}/scs/gaia_dr3?{query}")
    assert got in (status, 429 if "limit" in words else status)
    assert words in error_message(document)
    infos = {i.name: i.value for i in strict(document).infos}
    assert words in infos["Error"]  # SCS 1.03's error INFO, for the older clients


def test_unknown_parameters_are_ignored_and_said(embedded_servicer):
    """DALI: a service ignores parameters it does not know; this one says so in the answer."""
    _, servicer = embedded_servicer
    status, document, _ = fetch(f"http://{servicer.http_address}/scs/gaia_dr3?RA=10&DEC=10&"
                                "SR=0.1&COLOR=red")
    notes = [i for i in strict(document).resources[0].infos if i.name == "warning"]
    assert status == 200 and "COLOR not known to this service: ignored" in notes[0].content
    body = urllib.parse.urlencode({"LANG": "ADQL", "DUMMY": "x", "QUERY": "SELECT TOP 1 * "
                                   "FROM TAP_SCHEMA.schemas"}).encode()
    status, document, _ = fetch(f"http://{servicer.http_address}/tap/sync", body)
    notes = [i for i in strict(document).resources[0].infos if i.name == "warning"]
    assert status == 200 and "DUMMY not known" in notes[0].content


def test_scs_unknown_catalog_and_pyvo_error(embedded_servicer):
    _, servicer = embedded_servicer
    status, document, _ = fetch(f"http://{servicer.http_address}/scs/nope?RA=1&DEC=1&SR=1")
    assert status == 404 and "unknown catalog 'nope'" in error_message(document)
    with pytest.raises(pyvo.dal.DALQueryError, match="DEC is missing"):
        pyvo.dal.SCSService(f"http://{servicer.http_address}/scs/gaia_dr3").search(
            pos=None, radius=None, RA=1)


# ---------------------------------------------------------------------- TAP


def test_tap_cone_nearest_first_equals_grpc(faces):
    address, base = faces
    service = pyvo.dal.TAPService(f"{base}/tap")
    result = service.run_sync(
        "SELECT TOP 7 source_id, ra, dec, DISTANCE(POINT('ICRS', ra, dec), "
        "POINT('ICRS', 359.9, -0.2)) AS dist FROM xmatch.gaia_dr3 "
        "WHERE 1 = CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', 359.9, -0.2, 2.0)) "
        "ORDER BY dist").to_table()
    with Client(address) as client:
        expected = client.cone_search("gaia_dr3", 359.9, -0.2, 7200.0, limit=7)
    assert list(result["source_id"]) == list(expected["source_id"])
    np.testing.assert_allclose(result["dist"], expected["separation_arcsec"] / 3600.0,
                               rtol=1e-12)
    assert str(result["dist"].unit) == "deg"


def test_tap_polygon_and_predicates_equal_grpc(faces):
    address, base = faces
    service = pyvo.dal.TAPService(f"{base}/tap")
    corners = [(350.0, -5.0), (10.0, -5.0), (10.0, 5.0), (350.0, 5.0)]  # across RA 0
    polygon = ", ".join(f"{a}, {b}" for a, b in corners)
    result = service.run_sync(
        f"SELECT g.source_id, g.phot_g_mean_mag FROM gaia_dr3 AS g WHERE "
        f"CONTAINS(POINT(g.ra, g.dec), POLYGON('ICRS', {polygon})) = 1 AND "
        "g.phot_g_mean_mag BETWEEN 7 AND 8.5 AND NOT g.hip IS NOT NULL "
        "ORDER BY g.phot_g_mean_mag DESC").to_table()
    with Client(address) as client:
        rows = client.polygon_search("gaia_dr3", [c[0] for c in corners],
                                     [c[1] for c in corners], arrow=True)
    g = rows["phot_g_mean_mag"].to_numpy(zero_copy_only=False)
    keep = (g >= 7) & (g <= 8.5) & rows["hip"].is_null().to_numpy(zero_copy_only=False)
    expected = rows.filter(pa.array(keep))
    assert 0 < len(result) == expected.num_rows
    assert sorted(result["source_id"]) == sorted(expected["source_id"].to_pylist())
    assert list(result["phot_g_mean_mag"]) == sorted(result["phot_g_mean_mag"], reverse=True)


def test_tap_upload_join_equals_grpc_crossmatch(faces):
    """A left join keeps every uploaded row (a position near no star too); an inner join
    only the matched ones; the pairs and distances are the gRPC cross-match's."""
    address, base = faces
    rng = np.random.default_rng(7)
    with Client(address) as client:
        stars = client.cone_search("gaia_dr3", 0.0, 0.0, 4 * 3600.0, arrow=True)
    picked = rng.choice(stars.num_rows, 40, replace=False)
    ra = np.append(stars["ra"].to_numpy()[picked] + 1e-4, [123.0, 0.0])
    dec = np.append(stars["dec"].to_numpy()[picked], [-89.99, 89.99])
    upload = Table({"name": [f"src{i}" for i in range(len(ra))], "ra": ra, "dec": dec})
    service = pyvo.dal.TAPService(f"{base}/tap")
    radius = 0.01
    left = service.run_sync(
        "SELECT u.name, g.source_id, DISTANCE(POINT('ICRS', u.ra, u.dec), "
        "POINT('ICRS', g.ra, g.dec)) AS d FROM TAP_UPLOAD.mine AS u LEFT OUTER JOIN "
        f"xmatch.gaia_dr3 AS g ON 1 = CONTAINS(POINT('ICRS', g.ra, g.dec), CIRCLE('ICRS', "
        f"u.ra, u.dec, {radius}))", uploads={"mine": upload}).to_table()
    inner = service.run_sync(
        "SELECT * FROM xmatch.gaia_dr3 AS g JOIN TAP_UPLOAD.mine AS u ON "
        f"DISTANCE(POINT(g.ra, g.dec), POINT(u.ra, u.dec)) < {radius}",
        uploads={"mine": upload}).to_table()
    with Client(address) as client:
        expected = client.crossmatch("gaia_dr3", ra, dec, radius_arcsec=radius * 3600.0,
                                     mode="all", arrow=True)
    matched = expected.filter(expected["match_rank"].is_valid())
    pairs = sorted(zip([f"src{i}" for i in matched["query_index"].to_pylist()],
                       matched["source_id"].to_pylist(), strict=True))
    got = sorted((str(n), int(s)) for n, s in zip(left["name"], left["source_id"], strict=True)
                 if s is not np.ma.masked)
    assert got == pairs and len(pairs) >= 40
    assert set(left["name"]) == set(upload["name"])  # the unmatched rows are kept
    assert sorted(zip(map(str, inner["name"]), map(int, inner["source_id"]),
                      strict=True)) == pairs
    assert {"u_ra", "g_ra", "u_dec", "g_dec"} <= set(inner.colnames)  # shared names told apart
    separations = dict(zip(zip(matched["query_index"].to_pylist(),
                               matched["source_id"].to_pylist(), strict=True),
                           matched["separation_arcsec"].to_pylist(), strict=True))
    for name, source, d in zip(left["name"], left["source_id"], left["d"], strict=True):
        if source is not np.ma.masked:
            assert d * 3600.0 == pytest.approx(separations[(int(name[3:]), int(source))],
                                               rel=1e-12)


def test_tap_schema_vosi_and_formats(embedded_servicer):
    _, servicer = embedded_servicer
    base = f"http://{servicer.http_address}/tap"
    service = pyvo.dal.TAPService(base)
    status, document, _ = fetch(f"{base}/availability")
    assert status == 200 and b"<vosi:available>true</vosi:available>" in document
    tables = service.tables
    assert "xmatch.gaia_dr3" in tables.keys()
    assert "source_id" in [c.name for c in tables["xmatch.gaia_dr3"].columns]
    languages = [lang.name for lang in service.capabilities[0].languages]
    assert languages == ["ADQL"]
    columns = service.run_sync("SELECT column_name, ucd FROM TAP_SCHEMA.columns WHERE "
                               "table_name = 'xmatch.hipparcos2' ORDER BY column_index")
    assert columns.to_table()["column_name"][0] == "hip"
    query = ("SELECT TOP 5 hip, ra, dec FROM hipparcos2 WHERE 1=CONTAINS(POINT(ra, dec), "
             "CIRCLE(101.28, -16.71, 1.0))")
    as_votable = service.run_sync(query).to_table()
    for fmt, astropy_format in (("csv", "ascii.csv"), ("fits", "fits")):
        body = urllib.parse.urlencode({"REQUEST": "doQuery", "LANG": "ADQL",
                                       "RESPONSEFORMAT": fmt, "QUERY": query}).encode()
        status, document, _ = fetch(f"{base}/sync", body)
        assert status == 200
        table = Table.read(io.BytesIO(document), format=astropy_format)
        assert list(table["hip"]) == list(as_votable["hip"])


def test_tap_maxrec_overflow(embedded_servicer):
    _, servicer = embedded_servicer
    service = pyvo.dal.TAPService(f"http://{servicer.http_address}/tap")
    result = service.run_sync("SELECT source_id FROM gaia_dr3 WHERE 1=CONTAINS(POINT(ra, "
                              "dec), CIRCLE(0, 0, 3))", maxrec=10)
    assert len(result) == 10 and result.query_status == "OVERFLOW"
    complete = service.run_sync("SELECT TOP 10 source_id FROM gaia_dr3 WHERE "
                                "1=CONTAINS(POINT(ra, dec), CIRCLE(0, 0, 3))", maxrec=10)
    assert len(complete) == 10 and complete.query_status == "OK"


@pytest.mark.parametrize("query, words", [
    ("SELEC * FROM gaia_dr3", "not valid ADQL"),
    ("SELECT * FROM", "not valid ADQL"),
    ("SELECT * FROM nope WHERE 1=CONTAINS(POINT(ra, dec), CIRCLE(1, 1, 1))",
     "unknown table 'nope'"),
    ("SELECT nope FROM gaia_dr3 WHERE 1=CONTAINS(POINT(ra, dec), CIRCLE(1, 1, 1))",
     "unknown column 'nope'"),
    ("SELECT COUNT(*) FROM gaia_dr3", "aggregate function COUNT"),
    ("SELECT * FROM gaia_dr3 WHERE phot_g_mean_mag < 5", "needs a positional constraint"),
    ("SELECT * FROM gaia_dr3 WHERE 1=CONTAINS(POINT(ra, dec), CIRCLE(1, 1, 1/3600))",
     "integer division"),
    ("SELECT * FROM gaia_dr3 WHERE 1=CONTAINS(POINT(ra, dec), BOX(1, 1, 1, 1))", "BOX"),
    ("SELECT * FROM gaia_dr3 WHERE 1=CONTAINS(POINT(ra, dec), CIRCLE(1, 1, 9))",
     "over this server's limit"),
    ("SELECT * FROM TAP_UPLOAD.x AS u JOIN gaia_dr3 AS g ON 1=CONTAINS(POINT(g.ra, g.dec), "
     "CIRCLE(u.ra, u.dec, 0.1))", "TAP_UPLOAD.x was not uploaded"),
])
def test_tap_refusals(embedded_servicer, query, words):
    _, servicer = embedded_servicer
    body = urllib.parse.urlencode({"REQUEST": "doQuery", "LANG": "ADQL",
                                   "QUERY": query}).encode()
    status, document, _ = fetch(f"http://{servicer.http_address}/tap/sync", body)
    assert status in (400, 429)
    assert words in error_message(document)
    with pytest.raises(pyvo.dal.DALQueryError, match=words.split("(")[0]):
        pyvo.dal.TAPService(f"http://{servicer.http_address}/tap").run_sync(query)


def test_tap_bad_upload_and_parameters(embedded_servicer):
    _, servicer = embedded_servicer
    url = f"http://{servicer.http_address}/tap/sync"
    boundary = "xmatchboundary"
    parts = [("REQUEST", None, b"doQuery"), ("LANG", None, b"ADQL"),
             ("UPLOAD", None, b"t,param:t"),
             ("QUERY", None, b"SELECT * FROM TAP_UPLOAD.t AS u JOIN gaia_dr3 AS g ON "
                             b"1=CONTAINS(POINT(g.ra, g.dec), CIRCLE(u.ra, u.dec, 0.1))"),
             ("t", "t.xml", b"ra,dec\n1,2\n")]
    body = b""
    for name, file, value in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{file}"' if file else "")
        body += (f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode()
                 + value + b"\r\n")
    body += f"--{boundary}--\r\n".encode()
    status, document, _ = fetch(url, body, {
        "Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert status == 400 and "UPLOAD t: not a readable VOTABLE" in error_message(document)
    for form, words in (({"LANG": "ADQL"}, "QUERY is missing"),
                        ({"QUERY": "SELECT 1"}, "LANG is missing"),
                        ({"LANG": "SQL", "QUERY": "x"}, "LANG='SQL' is not answered"),
                        ({"LANG": "ADQL", "QUERY": "x", "MAXREC": "-1"}, "MAXREC='-1'"),
                        ({"LANG": "ADQL", "QUERY": "x", "FORMAT": "hdf5"}, "not offered")):
        status, document, _ = fetch(url, urllib.parse.urlencode(form).encode())
        assert status == 400 and words in error_message(document), form


# ---------------------------------------------------------------------- MOC


def test_moc_endpoint_equals_grpc_coverage(faces, service_data):
    """Each MOC 2.0 form is the coverage the gRPC face gives, and (order 5) the cells that
    cdshealpix finds for the catalog's rows."""
    import cdshealpix
    from astropy import units
    from mocpy import MOC

    address, base = faces
    with Client(address) as client:
        expected = client.coverage("glade_gw170817", 5)
    rows = open_catalog("glade_gw170817", service_data).read(columns=["RAJ2000", "DEJ2000"])
    cells = np.unique(cdshealpix.nested.lonlat_to_healpix(
        np.asarray(rows["RAJ2000"]) * units.deg, np.asarray(rows["DEJ2000"]) * units.deg, 5))
    assert expected == MOC.from_healpix_cells(cells, np.full(len(cells), 5, np.uint8), 5)
    for fmt, read in (("fits", lambda b: MOC.from_fits(io.BytesIO(b))),
                      ("ascii", lambda b: MOC.from_str(b.decode())),
                      ("json", lambda b: MOC.from_json(__import__("json").loads(b)))):
        status, document, content_type = fetch(
            f"{base}/moc/glade_gw170817?order=5&format={fmt}")
        assert status == 200, document
        assert read(document) == expected, fmt
    for query, status, words in (("order=14", 400, "order = 14 is not allowed"),
                                 ("order=five", 400, "order='five' is not allowed"),
                                 ("format=png", 400, "format='png' is not allowed"),
                                 ("depth=3", 400, "unknown coverage MOC parameter")):
        got, document, _ = fetch(f"{base}/moc/gaia_dr3?{query}")
        assert got == status and words in error_message(document), query
    got, document, _ = fetch(f"{base}/moc/nope")
    assert got == 404 and "nope" in error_message(document)
