"""The VOTable writer against two readers we did not write: astropy's VOTable parser in
strict mode (types, values, masks, metadata) and the standard library's XML parser (the exact
text of every cell, and where each element sits); and pyvo on the error and overflow
documents, both parsed directly and fetched over HTTP."""

from __future__ import annotations

import http.server
import io
import threading
import xml.etree.ElementTree as ET

import numpy as np
import pyarrow as pa
import pytest
from astropy import units as u
from astropy.io import votable
from astropy.io.votable.exceptions import W03
from hypothesis import given, settings
from hypothesis import strategies as st

from xmatch.vo.votable import NAMESPACE, error_votable, votable_bytes

pyvo = pytest.importorskip("pyvo")
from pyvo.dal import DALOverflowWarning, DALQueryError  # noqa: E402
from pyvo.dal.scs import SCSResults  # noqa: E402
from pyvo.dal.tap import TAPResults  # noqa: E402

NS = {"v": NAMESPACE}
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

#: Arrow type -> VOTable datatype the writer must declare.
DATATYPES = {
    pa.bool_(): "boolean", pa.int8(): "short", pa.uint8(): "unsignedByte",
    pa.int16(): "short", pa.uint16(): "int", pa.int32(): "int", pa.uint32(): "long",
    pa.int64(): "long", pa.uint64(): "long", pa.float16(): "float", pa.float32(): "float",
    pa.float64(): "double",
}

#: Strings that XML or astropy treat specially: markup characters, quotes, blanks at the
#: ends (astropy strips them on reading; the document keeps them), CR (XML would turn a raw
#: one into LF), non-ASCII inside and outside the Basic Multilingual Plane.
AWKWARD_STRINGS = ["a & b", "<td>", "x > y", 'say "hi"', "it's", "  lead", "trail  ",
                   " both ", "tab\tin", "line\nbreak", "cr\rin", "crlf\r\nin", "]]>", "&amp;",
                   "&#13;", "Ω Cen", "東京", "😀 emoji", "", None]


def parse_strict(document: bytes) -> votable.tree.VOTableFile:
    return votable.parse(io.BytesIO(document), verify="exception")


def read_back(document: bytes) -> dict[str, np.ma.MaskedArray]:
    array = parse_strict(document).get_first_table().array
    return {name: array[name] for name in array.dtype.names}


def cell_texts(document: bytes) -> list[list[str | None]]:
    """Every TD's exact text (None for an empty cell), from the standard library's parser."""
    root = ET.fromstring(document)
    return [[td.text for td in tr.findall("v:TD", NS)] for tr in root.iterfind(".//v:TR", NS)]


def fields_of(document: bytes) -> dict[str, ET.Element]:
    root = ET.fromstring(document)
    return {field.get("name"): field for field in root.iterfind(".//v:FIELD", NS)}


def assert_reads_back(column: pa.Array | pa.ChunkedArray, got: np.ma.MaskedArray) -> None:
    """astropy's reading of one column is exactly the column's values, nulls masked."""
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    values = column.to_pylist()
    null = np.array([value is None for value in values], dtype=bool)
    got_mask = np.ma.getmaskarray(got)
    kind = column.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        # No null for strings in astropy: a null and "" are both the empty cell and read back
        # as an unmasked ""; astropy strips XML blanks at the ends.
        assert not got_mask.any()
        assert list(got.data) == ["" if v is None else v.strip(" \t\n\r") for v in values]
    elif pa.types.is_floating(kind):
        width = np.float64 if kind == pa.float64() else np.float32
        expected = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
        expected = expected.astype(width)  # exact: each value is a float16/32/64 already
        assert got.dtype == width
        # VOTable readers take NaN for null in float columns: both are masked.
        assert np.array_equal(got_mask, null | np.isnan(expected))
        keep = ~got_mask
        bits = np.uint64 if width == np.float64 else np.uint32
        assert np.array_equal(got.data[keep].view(bits), expected[keep].view(bits))
    else:
        assert np.array_equal(got_mask, null)
        assert [int(x) for x in got.data[~null]] == [v for v in values if v is not None]


def assert_table_reads_back(table: pa.Table, document: bytes, *, texts: bool = True) -> None:
    """astropy reads every column back exactly; and (``texts``) each cell's text is right."""
    got = read_back(document)
    assert list(got) == table.column_names
    for name in table.column_names:
        assert_reads_back(table[name], got[name])
    if texts:
        assert_cell_texts(table, document)


def assert_cell_texts(table: pa.Table, document: bytes) -> None:
    texts = cell_texts(document)
    assert len(texts) == table.num_rows
    for index, column in enumerate(table.itercolumns()):
        values = column.to_pylist()
        empty = [row[index] is None for row in texts]
        if pa.types.is_boolean(column.type):
            assert [row[index] for row in texts] == [
                None if v is None else "T" if v else "F" for v in values]
        elif pa.types.is_floating(column.type):
            assert empty == [v is None for v in values]
        elif pa.types.is_integer(column.type):
            assert [row[index] for row in texts] == [None if v is None else str(v)
                                                     for v in values]
        else:
            # The exact string, escapes undone by the XML parser; "" and null alike empty.
            assert [row[index] for row in texts] == [v or None for v in values]


def every_type_table() -> pa.Table:
    return pa.table({
        "b": pa.array([True, False, None, True, False, True, False, None, True, False,
                       True, False, True, False, True, False, True, False, True, None]),
        "i8": pa.array([-128, 127, None, 0, -1] * 4, pa.int8()),
        "u8": pa.array([0, 255, None, 1, 128] * 4, pa.uint8()),
        "i16": pa.array([-(2**15), 2**15 - 1, None, 0, -1] * 4, pa.int16()),
        "u16": pa.array([0, 2**16 - 1, None, 1, 2**15] * 4, pa.uint16()),
        "i32": pa.array([-(2**31), 2**31 - 1, None, 0, -1] * 4, pa.int32()),
        "u32": pa.array([0, 2**32 - 1, None, 1, 2**31] * 4, pa.uint32()),
        "i64": pa.array([INT64_MIN, INT64_MAX, None, 0, -1] * 4, pa.int64()),
        "u64": pa.array([0, INT64_MAX, None, 1, 2**62] * 4, pa.uint64()),
        "f16": pa.array(np.array([1.57, 65504, np.nan, -np.inf, np.inf, 6e-8, -0.0, 0.1,
                                  1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], np.float16),
                        mask=np.arange(20) == 19),
        "f32": pa.array(np.array([1.57, 0.1, np.nan, np.inf, -np.inf, 1e-45, 1.17549435e-38,
                                  3.4028235e38, -3.4028235e38, -0.0, 16777217, 1e16,
                                  123456789, 1e-7, 0.3, 2.5, 1e-40, 7e-39, 42, 0],
                                 np.float32), mask=np.arange(20) == 19),
        "f64": pa.array([0.1, 1 / 3, np.nan, np.inf, -np.inf, 5e-324, 2.2250738585072014e-308,
                         1.7976931348623157e308, -1.7976931348623157e308, -0.0, 1e16, 1e15,
                         2**53 + 2.0, 1e-7, 123456.789, 2.5e-310, 0.30000000000000004, 42.0,
                         -1e300, None]),
        "ascii": pa.array(["plain", "a & b", "<td>", "x > y", 'say "hi"', "it's", "  lead",
                           "trail  ", " both ", "tab\tin", "line\nbreak", "cr\rin",
                           "crlf\r\nin", "]]>", "&amp;", "&#13;", "", None, "z", "~"]),
        "unicode": pa.array(AWKWARD_STRINGS, pa.large_string()),
        "dictionary": pa.array(["north", "south", None, "north"] * 5).dictionary_encode(),
    })


def test_every_type_reads_back_exactly():
    table = every_type_table()
    document = votable_bytes(table)
    assert_table_reads_back(table, document)
    fields = fields_of(document)
    for field in table.schema:
        declared = fields[field.name]
        if field.type in DATATYPES:
            assert declared.get("datatype") == DATATYPES[field.type], field.name
            assert declared.get("arraysize") is None
        else:
            assert declared.get("arraysize") == "*"
        assert declared.get("ID") is None
    assert fields["ascii"].get("datatype") == "char"
    assert fields["dictionary"].get("datatype") == "char"
    assert fields["unicode"].get("datatype") == "unicodeChar"


def test_document_is_votable_1_4_in_the_1_3_namespace():
    root = ET.fromstring(votable_bytes(every_type_table()))
    assert root.tag == f"{{{NAMESPACE}}}VOTABLE"
    assert root.get("version") == "1.4"
    assert parse_strict(votable_bytes(every_type_table())).version == "1.4"


def test_special_floats_are_spelled_as_votable_wants():
    table = pa.table({"f32": pa.array([np.nan, np.inf, -np.inf, 1.57, None], pa.float32()),
                      "f64": pa.array([np.nan, np.inf, -np.inf, 0.1, None])})
    assert cell_texts(votable_bytes(table)) == [
        ["NaN", "NaN"], ["+Inf", "+Inf"], ["-Inf", "-Inf"], ["1.57", "0.1"], [None, None]]


def test_floats_are_shortest_text_that_reads_back_bit_for_bit():
    rng = np.random.default_rng(7)
    # Random bit patterns cover normals, denormals and both zeros of each width.
    f32 = rng.integers(0, 2**32, 20_000, dtype=np.uint64).astype(np.uint32).view(np.float32)
    f64 = rng.integers(0, 2**64, 20_000, dtype=np.uint64).view(np.float64)
    f32, f64 = f32[np.isfinite(f32)], f64[np.isfinite(f64)]
    size = min(len(f32), len(f64))
    table = pa.table({"f32": f32[:size], "f64": f64[:size]})
    document = votable_bytes(table)
    assert_table_reads_back(table, document)
    texts = cell_texts(document)
    # Shortest: no more significant digits than Python's repr (shortest round trip).
    for row, (x32, x64) in enumerate(zip(f32[:200], f64[:200], strict=True)):
        assert np.float32(texts[row][0]) == x32 and np.float64(texts[row][1]) == x64
        assert digits(texts[row][0]) <= digits(str(x32))
        assert digits(texts[row][1]) <= digits(repr(float(x64)))
    assert cell_texts(votable_bytes(pa.table({"x": pa.array([1.57], pa.float32())}))) == [
        ["1.57"]]


def digits(text: str) -> int:
    mantissa = text.lower().split("e")[0].lstrip("+-").replace(".", "")
    return len(mantissa.strip("0")) or 1


def test_empty_string_and_null_string_are_both_the_empty_cell():
    table = pa.table({"s": pa.array(["", None, "x"]), "i": pa.array([1, 2, 3])})
    document = votable_bytes(table)
    assert cell_texts(document) == [[None, "1"], [None, "2"], ["x", "3"]]
    assert b"<TD></TD>" in document
    got = read_back(document)["s"]
    assert list(got.data) == ["", "", "x"] and not np.ma.getmaskarray(got).any()


def test_strings_are_escaped_and_written_verbatim():
    table = pa.table({"s": AWKWARD_STRINGS})
    document = votable_bytes(table)
    assert [row[0] for row in cell_texts(document)] == [s or None for s in AWKWARD_STRINGS]
    assert b"cr&#13;in" in document and b"a &amp; b" in document and b"&lt;td&gt;" in document


@pytest.mark.parametrize("num_rows", [0, 1, 2, 20])
def test_small_tables(num_rows):
    table = every_type_table().slice(0, num_rows)
    document = votable_bytes(table)
    assert_table_reads_back(table, document)
    assert len(fields_of(document)) == table.num_columns


def test_zero_rows_keep_fields_and_an_empty_tabledata():
    table = every_type_table().schema.empty_table()
    document = votable_bytes(table)
    root = ET.fromstring(document)
    assert len(root.findall(".//v:FIELD", NS)) == table.num_columns
    tabledata = root.find(".//v:TABLEDATA", NS)
    assert tabledata is not None and len(tabledata) == 0
    parsed = parse_strict(document).get_first_table()
    assert len(parsed.array) == 0 and len(parsed.fields) == table.num_columns
    # A zero-row table whose columns have no chunks at all.
    assert votable_bytes(pa.Table.from_batches([], table.schema)) == document


@pytest.mark.slow
def test_100k_rows():
    rng = np.random.default_rng(3)
    n = 100_000
    null = rng.random(n) < 0.1
    table = pa.table({
        "source_id": pa.array(rng.integers(INT64_MIN, INT64_MAX, n, endpoint=True),
                              mask=null),
        "ra": pa.array(rng.uniform(0, 360, n)),
        "pmra": pa.array(rng.normal(0, 5, n), mask=null),
        "g_mag": pa.array(rng.uniform(3, 21, n).astype(np.float32), mask=null),
        "flag": pa.array(rng.random(n) < 0.5, mask=null),
        "n_obs": pa.array(rng.integers(0, 2**15, n).astype(np.int16)),
        "name": pa.array([f"src {i} & <{i % 7}>" for i in range(n)], mask=null),
    })
    document = votable_bytes(table)
    # astropy's reading only: the standard library's, cell by cell, adds half a minute.
    assert_table_reads_back(table, document, texts=False)
    assert document.count(b"<TR>") == n


def test_chunk_layouts_and_slices_do_not_change_the_document():
    table = every_type_table()
    expected = votable_bytes(table)
    # Columns chunked differently from one another, and a table sliced from a bigger one.
    rechunked = pa.table({name: pa.chunked_array([column.slice(0, 3), column.slice(3, 10),
                                                  column.slice(13)])
                          for name, column in zip(table.column_names,
                                                  (c.combine_chunks() for c in
                                                   table.itercolumns()), strict=True)})
    assert votable_bytes(rechunked) == expected
    doubled = pa.concat_tables([table, table, table])
    assert votable_bytes(doubled.slice(20, 20)) == expected
    # Columns of one type are converted together: order and duplicates are kept apart.
    same_type = pa.table([pa.array([1, 2]), pa.array([3, None]), pa.array([5, 6])],
                         names=["a", "b", "a"])
    assert cell_texts(votable_bytes(same_type)) == [["1", "3", "5"], ["2", None, "6"]]


def test_units_ucds_utypes_and_descriptions_read_back():
    schema = pa.schema([
        pa.field("ra", pa.float64(), metadata={"unit": "deg", "ucd": "pos.eq.ra;meta.main",
                                               "description": "Right ascension (ICRS) & co",
                                               "utype": "stc:AstroCoords.Position2D.Value2.C1"}),
        pa.field("pmra", pa.float32(), metadata={"unit": "mas/yr",
                                                 "ucd": "pos.pm;pos.eq.ra"}),
        pa.field("g", pa.float32(), metadata={"unit": "mag", "description": "G <band>"}),
        pa.field("plain", pa.int32()),
        pa.field("empty", pa.int32(), metadata={"unit": "", "ucd": "", "description": ""}),
    ])
    table = pa.table([[10.0], [1.5], [12.0], [1], [2]], schema=schema)
    document = votable_bytes(table)
    fields = {field.name: field for field in parse_strict(document).get_first_table().fields}
    for field in schema:
        metadata = {k.decode(): v.decode() for k, v in (field.metadata or {}).items()}
        parsed = fields[field.name]
        assert fields_of(document)[field.name].get("unit") == (metadata.get("unit") or None)
        if metadata.get("unit"):
            assert parsed.unit == u.Unit(metadata["unit"], format="vounit")
        else:
            assert parsed.unit is None
        assert parsed.ucd == (metadata.get("ucd") or None)
        assert parsed.utype == (metadata.get("utype") or None)
        assert parsed.description == (metadata.get("description") or None)
    assert b'unit=""' not in document and b'ucd=""' not in document


def test_odd_column_names_are_escaped_and_read_back():
    table = pa.table({'a & "b" <c>': [1], "1st column": [2.5], "tab\tname": ["x"]})
    document = votable_bytes(table)
    assert list(fields_of(document)) == table.column_names
    # astropy derives an ID from a name that is not an XML ID, and says so (W03).
    with pytest.warns(W03):
        parsed = parse_strict(document).get_first_table()
    assert [field.name for field in parsed.fields] == table.column_names


def structure(document: bytes) -> list[tuple]:
    """(tag, name, value) of VOTABLE's children, with RESOURCE's children nested."""
    def describe(element: ET.Element) -> tuple:
        return (element.tag.split("}")[1], element.get("name"), element.get("value"))
    root = ET.fromstring(document)
    out = []
    for child in root:
        out.append(describe(child))
        if child.tag.endswith("RESOURCE"):
            assert child.get("type") == "results"
            out.append([describe(grandchild) for grandchild in child])
    return out


def test_query_status_ok_then_overflow_after_the_table():
    table = pa.table({"x": [1, 2]})
    document = votable_bytes(table, infos=[("server", "xmatch"), ("request", "42")],
                             resource_infos=[("QUERY", "SELECT x FROM t", "the query")],
                             overflow=True, name="results")
    assert structure(document) == [
        ("INFO", "server", "xmatch"), ("INFO", "request", "42"),
        ("RESOURCE", None, None),
        [("INFO", "QUERY_STATUS", "OK"), ("INFO", "QUERY", "SELECT x FROM t"),
         ("TABLE", "results", None), ("INFO", "QUERY_STATUS", "OVERFLOW")]]
    root = ET.fromstring(document)
    assert root.find("v:RESOURCE/v:INFO[@name='QUERY']", NS).text == "the query"
    parsed = parse_strict(document)
    assert [(i.name, i.value) for i in parsed.infos] == [("server", "xmatch"),
                                                          ("request", "42")]
    # pyvo takes the last QUERY_STATUS: the result is there, and flagged as truncated.
    results = TAPResults(parsed)
    assert results.query_status == "OVERFLOW"
    with pytest.warns(DALOverflowWarning):
        results.check_overflow_warning()
    assert list(results.to_table()["x"]) == [1, 2]
    assert parsed.get_first_table().name == "results"

    plain = votable_bytes(table)
    assert structure(plain) == [("RESOURCE", None, None),
                                [("INFO", "QUERY_STATUS", "OK"), ("TABLE", None, None)]]
    results = TAPResults(parse_strict(plain))
    assert results.query_status == "OK"
    assert list(results.to_table()["x"]) == [1, 2]
    assert list(SCSResults(parse_strict(plain)).to_table()["x"]) == [1, 2]


MESSAGE = "Field RA: 'as3f' is not a valid literal for RA & <DEC> \"quoted\""


def test_error_document_satisfies_dali_and_scs():
    document = error_votable(MESSAGE, infos=[("server", "xmatch")])
    assert structure(document) == [
        ("INFO", "server", "xmatch"), ("INFO", "Error", MESSAGE), ("RESOURCE", None, None),
        [("INFO", "QUERY_STATUS", "ERROR")]]
    root = ET.fromstring(document)
    assert root.find("v:INFO[@name='Error']", NS).get("ID") == "Error"
    assert root.find("v:RESOURCE/v:INFO", NS).text == MESSAGE
    parsed = parse_strict(document)
    assert parsed.resources[0].infos[0].content == MESSAGE
    # What pyvo does with a response once parsed: TAP (DALI) and SCS read different INFOs.
    for results in (TAPResults, SCSResults):
        with pytest.raises(DALQueryError) as raised:
            results(parse_strict(document))
        assert str(raised.value) == MESSAGE


def test_error_message_keeps_newlines_tabs_and_crs_in_both_places():
    # (astropy strips an INFO's text at the ends, so the blanks here are inside.)
    message = "line one\r\n\tline two"
    document = error_votable(message)
    for results in (TAPResults, SCSResults):
        with pytest.raises(DALQueryError) as raised:
            results(parse_strict(document))
        assert str(raised.value) == message


class _Handler(http.server.BaseHTTPRequestHandler):
    """Answers every GET and POST with the document (and status) the test put in place."""

    answer: tuple[int, bytes] = (500, b"")

    def _reply(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        status, body = type(self).answer
        self.send_response(status)
        self.send_header("Content-Type", "application/x-votable+xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _reply

    def log_message(self, *args) -> None:  # keep the test output quiet
        pass


@pytest.fixture
def serve():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def set_answer(status: int, body: bytes) -> str:
        _Handler.answer = (status, body)
        return f"http://127.0.0.1:{server.server_address[1]}/vo"

    yield set_answer
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.mark.parametrize("status", [200, 400])
def test_pyvo_clients_raise_the_message_over_http(serve, status):
    url = serve(status, error_votable(MESSAGE))
    with pytest.raises(DALQueryError) as raised:
        pyvo.dal.SCSService(url).search(pos=(10.0, 20.0), radius=0.1)
    assert str(raised.value) == MESSAGE
    with pytest.raises(DALQueryError) as raised:
        pyvo.dal.TAPService(url).run_sync("SELECT * FROM t")
    assert str(raised.value) == MESSAGE


def test_pyvo_clients_read_results_over_http(serve):
    table = every_type_table()
    url = serve(200, votable_bytes(table))
    for results in (pyvo.dal.SCSService(url).search(pos=(10.0, 20.0), radius=0.1),
                    pyvo.dal.TAPService(url).run_sync("SELECT * FROM t")):
        got = results.to_table()
        assert got.colnames == table.column_names
        assert [int(x) for x in got["i64"][:2]] == [INT64_MIN, INT64_MAX]
    url = serve(200, votable_bytes(table, overflow=True))
    with pytest.warns(DALOverflowWarning):
        assert len(pyvo.dal.TAPService(url).run_sync("SELECT * FROM t")) == 20


@pytest.mark.parametrize(("column", "match"), [
    (pa.array([1, 2**63], pa.uint64()), r"column 'bad', row 1: uint64 value 9223372036854775808"),
    (pa.array([0, 1], pa.timestamp("ms")), r"column 'bad': Arrow type timestamp\[ms\]"),
    (pa.array([[1], [2]]), r"column 'bad': Arrow type list<item: int64>"),
    (pa.array([None, None]), r"column 'bad': Arrow type null"),
    (pa.array([b"a", b"b"]), r"column 'bad': Arrow type binary"),
    (pa.array([1, 2], pa.decimal128(5, 2)), r"column 'bad': Arrow type decimal128"),
    (pa.array([0, 1], pa.date32()).dictionary_encode(), r"column 'bad': Arrow type date32"),
    (pa.array(["ok", "bell\x07"]), r"column 'bad', row 1: character '\\x07'"),
    (pa.array(["ok", None, "nul\x00"]), r"column 'bad', row 2: character '\\x00'"),
    (pa.array(["\ufffe"]), r"column 'bad', row 0: character '\\ufffe'"),
])
def test_refusals_name_the_column(column, match):
    table = pa.table({"good": pa.array([1] * len(column)), "bad": column})
    with pytest.raises(ValueError, match=match):
        votable_bytes(table)


def test_refusals_of_the_table_and_its_metadata():
    with pytest.raises(ValueError, match="at least one column"):
        votable_bytes(pa.table({}))
    with pytest.raises(ValueError, match="column 1 has a blank name"):
        votable_bytes(pa.table({"a": [1], " ": [2]}))
    with pytest.raises(ValueError, match="table name is empty"):
        votable_bytes(pa.table({"a": [1]}), name="")
    bad_unit = pa.schema([pa.field("a", pa.int64(), metadata={"unit": "m\x01"})])
    with pytest.raises(ValueError, match=r"column 'a' unit: character '\\x01'"):
        votable_bytes(pa.table([[1]], schema=bad_unit))
    with pytest.raises(ValueError, match=r"VOTABLE INFO 'x' value: character"):
        votable_bytes(pa.table({"a": [1]}), infos=[("x", "\x1b[0m")])
    for reserved in ("QUERY_STATUS", "query_status", "Error"):
        with pytest.raises(ValueError, match="reserved for the query status"):
            votable_bytes(pa.table({"a": [1]}), infos=[(reserved, "OK")])
        with pytest.raises(ValueError, match="reserved for the query status"):
            votable_bytes(pa.table({"a": [1]}), resource_infos=[(reserved, "OK", "")])
        with pytest.raises(ValueError, match="reserved for the query status"):
            error_votable("boom", infos=[(reserved, "x")])
    with pytest.raises(ValueError, match="error message is blank"):
        error_votable(" ")
    with pytest.raises(ValueError, match="error message: character"):
        error_votable("boom\x00")


# -- property test: random tables of random types -------------------------------------------

#: Characters XML 1.0 can carry (the writer refuses the others).
XML_CHARACTERS = st.characters(codec="utf-8", exclude_categories=("Cs",)).filter(
    lambda c: c in "\t\n\r" or (c >= " " and c not in "\ufffe\uffff"))
TEXT = st.text(XML_CHARACTERS | st.sampled_from("&<>\"' \r"), max_size=12)

COLUMN_KINDS = {
    "bool": (pa.bool_(), st.booleans()),
    "int8": (pa.int8(), st.integers(-(2**7), 2**7 - 1)),
    "uint8": (pa.uint8(), st.integers(0, 2**8 - 1)),
    "int16": (pa.int16(), st.integers(-(2**15), 2**15 - 1)),
    "uint16": (pa.uint16(), st.integers(0, 2**16 - 1)),
    "int32": (pa.int32(), st.integers(-(2**31), 2**31 - 1)),
    "uint32": (pa.uint32(), st.integers(0, 2**32 - 1)),
    "int64": (pa.int64(), st.integers(INT64_MIN, INT64_MAX)),
    "uint64": (pa.uint64(), st.integers(0, INT64_MAX)),
    "float16": (pa.float16(), st.floats(width=16)),
    "float32": (pa.float32(), st.floats(width=32)),
    "float64": (pa.float64(), st.floats()),
    "string": (pa.string(), TEXT),
    "large_string": (pa.large_string(), TEXT),
    "ascii": (pa.string(), st.text(st.characters(min_codepoint=32, max_codepoint=126),
                                   max_size=8)),
}


@st.composite
def tables(draw) -> pa.Table:
    num_rows = draw(st.integers(0, 12))
    kinds = draw(st.lists(st.sampled_from(sorted(COLUMN_KINDS)), min_size=1, max_size=6))
    columns = {}
    for index, kind in enumerate(kinds):
        arrow_type, values = COLUMN_KINDS[kind]
        cells = draw(st.lists(st.none() | values, min_size=num_rows, max_size=num_rows))
        if arrow_type == pa.float16():
            array = pa.array(np.array([0 if v is None else v for v in cells], np.float16),
                             mask=np.array([v is None for v in cells], dtype=bool))
        else:
            array = pa.array(cells, arrow_type)
        if kind == "string" and draw(st.booleans()):
            array = array.dictionary_encode()
        columns[f"c{index}_{kind}"] = array
    return pa.table(columns)


@settings(max_examples=100, derandomize=True, deadline=None)
@given(tables())
def test_random_tables_read_back(table):
    document = votable_bytes(table)
    assert_table_reads_back(table, document)
    fields = fields_of(document)
    for field in table.schema:
        kind = field.type
        if pa.types.is_dictionary(kind):
            kind = kind.value_type
        if kind in DATATYPES:
            assert fields[field.name].get("datatype") == DATATYPES[kind]
        else:
            text = table[field.name].cast(kind).to_pylist()
            ascii_only = all(v is None or v.isascii() for v in text)
            assert fields[field.name].get("datatype") == ("char" if ascii_only
                                                          else "unicodeChar")


def test_small_tables_written_in_python_read_back_as_the_arrow_path_does():
    """Tables of at most SMALL_TABLE_ROWS rows of plain types are written cell by cell in
    Python; the same columns past that size go through Arrow: both read back exactly."""
    from xmatch.vo.votable import SMALL_TABLE_ROWS

    table = every_type_table().drop_columns(["dictionary", "u64"])
    assert table.num_rows <= SMALL_TABLE_ROWS
    small = votable_bytes(table)
    large_table = pa.concat_tables([table] * (SMALL_TABLE_ROWS // table.num_rows + 1))
    large = votable_bytes(large_table)
    assert_table_reads_back(table, small)
    assert_table_reads_back(large_table, large)
    assert fields_of(small).keys() == fields_of(large).keys()
    for name, element in fields_of(small).items():
        assert element.attrib == fields_of(large)[name].attrib, name
    with pytest.raises(ValueError, match="column 'ascii', row 0"):
        votable_bytes(pa.table({"ascii": ["bell\x07"]}))


def test_read_votable_equals_astropy_and_falls_back_to_it():
    """Uploads: TABLEDATA of scalar columns is read with numpy; the values, nulls, units and
    UCDs are astropy's; other serialisations go to astropy itself."""
    from astropy.table import Table

    from xmatch.io.tables import read_votable_bytes
    from xmatch.vo.votable import read_votable

    table = every_type_table().drop_columns(["dictionary", "u64", "f16", "unicode"])
    table = table.set_column(table.schema.get_field_index("f64"), pa.field(
        "f64", pa.float64(), metadata={b"unit": b"deg", b"ucd": b"pos.eq.ra"}), table["f64"])
    written_by_astropy = io.BytesIO()
    Table.read(io.BytesIO(votable_bytes(table)), format="votable").write(
        written_by_astropy, format="votable")
    for document in (votable_bytes(table), written_by_astropy.getvalue()):
        fast, slow = read_votable(document, "t"), read_votable_bytes(document, "t")
        assert fast.schema.names == slow.schema.names
        for name in fast.schema.names:
            a, b = fast[name].to_pylist(), slow[name].to_pylist()
            same = [x == y or (x != x and y != y) for x, y in zip(a, b, strict=True)]
            assert all(same), name
        assert fast.schema.field("f64").metadata == {b"unit": b"deg", b"ucd": b"pos.eq.ra"}
    binary = io.BytesIO()
    parsed = votable.parse(io.BytesIO(votable_bytes(table.select(["i32", "f64"]))))
    parsed.get_first_table().format = "binary2"
    parsed.to_xml(binary)
    assert read_votable(binary.getvalue(), "t")["i32"].to_pylist() == table["i32"].to_pylist()
