"""IGWN gravitational-wave notices: envelopes built here around the real LVK sky maps of the
shared data set, read back from JSON text, bytes, dicts and Avro (container and
schemaless, written by fastavro with the shipped ``.avsc``); the decoded maps equal the
files as xmatch and ligo.skymap read them; every malformed notice is refused in one line
naming the field."""

from __future__ import annotations

import base64
import copy
import gzip
import io
import json
from importlib import resources

import fastavro
import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from astropy.time import Time

from conftest import read_skymap, skymap_file
from xmatch.errors import InputError
from xmatch.notices.igwn import (
    ALERT_TYPES,
    AVRO_SCHEMA_FILE,
    JSON_SCHEMA_FILE,
    SCHEMA_PACKAGE,
    avro_schema,
    build_notice,
    notice_json,
    read_notice,
)

G361581 = "G361581_bayestar.multiorder.fits.gz"  # OBJECT G361581, DATE-OBS 2020-01-29T06:54:58
GW190814 = "GW190814_PublicationSamples.multiorder.fits.gz"
SUPEREVENT = "MS200129a"  # M: a mock superevent, as LVK names them; the envelope is built
WHERE = "kafka igwn.gwalert[0]@42"
LABEL = f"notice {SUPEREVENT} ({WHERE}): "
EVENT_TIME = "2020-01-29T06:54:58.432Z"
FORMS = ["json-bytes", "json-text", "dict", "avro-container", "avro-schemaless"]


def file_fits(path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data


def avro_record(notice: dict) -> dict:
    """The Avro form of a notice: its sky maps as bytes (the .avsc), not base64 text."""
    record = copy.deepcopy(notice)
    for block, key in (("event", "skymap"), ("external_coinc", "combined_skymap")):
        if record.get(block) and record[block].get(key) is not None:
            record[block][key] = base64.b64decode(record[block][key])
    return record


def in_form(notice: dict, form: str):
    if form == "json-bytes":
        return notice_json(notice)
    if form == "json-text":
        return notice_json(notice).decode()
    if form == "dict":
        return notice
    buffer = io.BytesIO()
    if form == "avro-container":
        fastavro.writer(buffer, avro_schema(), [avro_record(notice)])
    else:
        fastavro.schemaless_writer(buffer, avro_schema(), avro_record(notice))
    return buffer.getvalue()


def read(data, form: str = "dict"):
    return read_notice(data, WHERE, schemaless=form == "avro-schemaless")


@pytest.fixture(scope="module")
def g361581_path():
    return skymap_file(G361581)


@pytest.fixture(scope="module")
def preliminary(g361581_path) -> dict:
    return build_notice(SUPEREVENT, "PRELIMINARY", skymap=g361581_path,
                        classification={"BBH": 0.97, "Terrestrial": 0.03},
                        properties={"HasNS": 0.0, "HasRemnant": 0.0})


@pytest.fixture(scope="module")
def mapless() -> dict:
    """A valid notice whose event has no map (the schema allows a null skymap): the
    envelope cases need no real data."""
    return build_notice(SUPEREVENT, "PRELIMINARY", event_time_iso=EVENT_TIME)


# --- the schemas -------------------------------------------------------------------------


def test_avro_carries_the_maps_as_bytes_and_json_as_base64():
    package = resources.files(SCHEMA_PACKAGE)
    avsc = json.loads(package.joinpath(AVRO_SCHEMA_FILE).read_text())
    event = next(f for f in avsc["fields"] if f["name"] == "event")["type"][1]
    skymap = next(f for f in event["fields"] if f["name"] == "skymap")
    assert skymap["type"] == ["null", "bytes"]
    schema = json.loads(package.joinpath(JSON_SCHEMA_FILE).read_text())
    options = schema["properties"]["event"]["oneOf"][1]["properties"]["skymap"]["oneOf"]
    assert {"type": "null"} in options
    assert any(o.get("contentEncoding") == "base64" for o in options)
    assert schema["properties"]["alert_type"]["enum"] == list(ALERT_TYPES)


# --- round trips -------------------------------------------------------------------------


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("alert_type", ["PRELIMINARY", "INITIAL", "UPDATE"])
def test_round_trip_with_a_real_map(g361581_path, preliminary, alert_type, form):
    built = dict(preliminary, alert_type=alert_type)
    notice = read(in_form(built, form), form)
    expected = read_skymap(g361581_path)
    assert (notice.superevent_id, notice.alert_type) == (SUPEREVENT, alert_type)
    assert not notice.is_retraction and notice.is_mock
    assert notice.skymap_bytes == file_fits(g361581_path)
    np.testing.assert_array_equal(notice.skymap.uniq, expected.uniq)
    np.testing.assert_array_equal(notice.skymap.probdensity, expected.probdensity)
    np.testing.assert_array_equal(notice.skymap.prob, expected.prob)
    np.testing.assert_array_equal(notice.skymap.distmu, expected.distmu)
    assert notice.skymap.name == f"{SUPEREVENT} sky map ({alert_type})"
    assert notice.far_hz == 1e-9 and notice.significant is True
    assert (notice.group, notice.pipeline, notice.search) == ("CBC", "gstlal", "AllSky")
    assert notice.instruments == ("H1", "L1", "V1")
    assert notice.classification == {"BBH": 0.97, "Terrestrial": 0.03}
    assert notice.properties == {"HasNS": 0.0, "HasRemnant": 0.0}
    # The event time is the map's DATE-OBS, converted to TAI by astropy.
    date_obs = fits.getheader(g361581_path, 1)["DATE-OBS"]
    assert date_obs.startswith("2020-01-29T06:54:58")
    assert notice.event_time_iso == date_obs + "Z" == notice.time_created
    tai = Time(date_obs, scale="utc").tai.mjd
    assert notice.event_mjd_tai == pytest.approx(tai, abs=1e-9)  # 86 us
    assert notice.created_mjd_tai == notice.event_mjd_tai
    assert "skymap" not in notice.raw["event"]
    assert notice.raw["superevent_id"] == SUPEREVENT
    assert notice.combined_skymap is None and notice.combined_skymap_bytes is None


@pytest.mark.parametrize("form", FORMS)
def test_round_trip_of_a_retraction(form):
    built = build_notice(SUPEREVENT, "RETRACTION", time_created_iso="2020-01-29T07:30:00Z")
    assert built["event"] is None and built["external_coinc"] is None
    notice = read(in_form(built, form), form)
    assert notice.is_retraction and notice.alert_type == "RETRACTION"
    assert notice.skymap is None and notice.skymap_bytes is None
    assert notice.event_time_iso is None and notice.event_mjd_tai is None
    assert notice.far_hz is None and notice.instruments == () and notice.classification == {}
    assert notice.created_mjd_tai == pytest.approx(
        Time("2020-01-29T07:30:00", scale="utc").tai.mjd, abs=1e-9)
    assert notice.raw == built


@pytest.mark.parametrize("form", FORMS)
def test_an_early_warning_and_a_null_skymap_are_read(mapless, form):
    built = dict(mapless, alert_type="EARLYWARNING")
    notice = read(in_form(built, form), form)
    assert notice.alert_type == "EARLYWARNING"
    assert notice.skymap is None and notice.skymap_bytes is None
    assert notice.event_time_iso == EVENT_TIME


def test_the_decoded_map_is_what_ligo_skymap_reads(tmp_path, preliminary):
    io_module = pytest.importorskip("ligo.skymap.io")
    notice = read(notice_json(preliminary), "json-bytes")
    path = tmp_path / "skymap.multiorder.fits"
    path.write_bytes(notice.skymap_bytes)
    theirs = io_module.read_sky_map(str(path), moc=True)
    assert theirs.meta["objid"] == "G361581"
    by_uniq = np.argsort(notice.skymap.uniq)
    theirs_by_uniq = np.argsort(np.asarray(theirs["UNIQ"]))
    np.testing.assert_array_equal(notice.skymap.uniq[by_uniq],
                                  np.asarray(theirs["UNIQ"])[theirs_by_uniq])
    np.testing.assert_allclose(notice.skymap.probdensity[by_uniq],
                               np.asarray(theirs["PROBDENSITY"])[theirs_by_uniq], rtol=1e-15)
    np.testing.assert_allclose(notice.skymap.distmu[by_uniq],
                               np.asarray(theirs["DISTMU"])[theirs_by_uniq], rtol=1e-15)


def test_a_combined_map_of_an_external_coincidence_is_read():
    gw = skymap_file(G361581)
    combined = skymap_file(GW190814)  # another real map stands in for RAVEN's combination
    external = {"gcn_notice_id": 12345, "ivorn": "ivo://nasa.gsfc.gcn/Fermi#GBM_Fin_Pos",
                "observatory": "Fermi", "search": "GRB", "time_difference": -1.2,
                "time_coincidence_far": 1e-7, "time_sky_position_coincidence_far": None,
                "combined_skymap": combined}
    built = build_notice(SUPEREVENT, "INITIAL", skymap=gw, external_coinc=external)
    for form in ("json-bytes", "avro-container"):
        notice = read(in_form(built, form), form)
        assert notice.combined_skymap_bytes == file_fits(combined)
        np.testing.assert_array_equal(notice.combined_skymap.probdensity,
                                      read_skymap(combined).probdensity)
        assert "combined_skymap" not in notice.raw["external_coinc"]
        assert notice.raw["external_coinc"]["observatory"] == "Fermi"


@pytest.mark.parametrize("text", [
    "2020-01-29T06:54:58.432Z", "2020-01-29T06:54:58.432+00:00", "2020-01-29 06:54:58.432",
    "2020-01-29T06:54:58.432", "2020-01-29T07:54:58.432+01:00", "2020-01-29t06:54:58.432z"])
def test_notice_times_are_utc_however_written(mapless, text):
    notice = read(dict(mapless, time_created=text))
    expected = Time("2020-01-29T06:54:58.432", scale="utc").tai.mjd
    assert notice.created_mjd_tai == pytest.approx(expected, abs=1e-9)
    assert notice.time_created == text


def test_a_leap_second_converts(mapless):
    notice = read(dict(mapless, time_created="2016-12-31T23:59:60.5Z"))
    before = Time("2016-12-31T23:59:59", scale="utc").tai.mjd
    assert notice.created_mjd_tai == pytest.approx(before + 1.5 / 86400, abs=1e-9)


def test_the_label_names_where_the_notice_came_from(mapless):
    bad = dict(mapless, alert_type="FOO")
    with pytest.raises(InputError, match=f"^notice {SUPEREVENT}: /alert_type"):
        read_notice(bad)
    no_id = {k: v for k, v in mapless.items() if k != "superevent_id"}
    with pytest.raises(InputError, match=r"^the notice: /superevent_id: missing"):
        read_notice(no_id)
    with pytest.raises(InputError, match=r"^notice \(x.json\): /superevent_id: missing"):
        read_notice(no_id, "x.json")


# --- malformed notices -------------------------------------------------------------------


def table_fits(**columns) -> bytes:
    buffer = io.BytesIO()
    Table(columns).write(buffer, format="fits")
    return buffer.getvalue()


def set_at(notice: dict, path: str, value) -> dict:
    notice = copy.deepcopy(notice)
    *parents, last = path.strip("/").split("/")
    target = notice
    for key in parents:
        target = target[key]
    if value is DELETE:
        del target[last]
    else:
        target[last] = value
    return notice


DELETE = object()
B64 = base64.b64encode
# A flat HEALPix map (nside 1): SkyMap.read accepts such a file; a notice may not hold one.
FLAT = table_fits(PROB=np.full(12, 1 / 12))
# (case, path, value, what the message must say)
ENVELOPE_CASES = [
    ("bad base64", "/event/skymap", "U0lNUExF!!", "/event/skymap: not valid base64"),
    ("base64 without padding", "/event/skymap", "U0lNUExFIA", "/event/skymap: not valid base64"),
    ("FITS, not a sky map", "/event/skymap",
     B64(table_fits(RA=np.zeros(3), DEC=np.zeros(3))).decode(),
     "/event/skymap is not an LVK sky map: it has no UNIQ and PROBDENSITY columns"),
    ("not FITS", "/event/skymap", B64(b"<html>not a map</html>").decode(),
     "/event/skymap: the 22 decoded bytes are not a FITS file"),
    ("gzipped FITS", "/event/skymap", B64(gzip.compress(FLAT)).decode(),
     "/event/skymap: a gzip file; a notice carries the FITS file itself"),
    ("flat map", "/event/skymap", B64(FLAT).decode(),
     "/event/skymap is a flat HEALPix map (column PROB); a notice carries a multi-order map"),
    ("far as a string", "/event/far", "abc", "/event/far: 'abc' is not of type 'number'"),
    ("negative far", "/event/far", -1.0, "/event/far: -1.0 is not allowed"),
    ("bad event time", "/event/time", "2020-13-01T00:00:00Z",
     "/event/time: '2020-13-01T00:00:00Z' is not an ISO 8601 UTC date and time"),
    ("event time as words", "/event/time", "yesterday", "/event/time: 'yesterday' is not an"),
    ("bad creation time", "/time_created", "2020-01-29T06:54", "/time_created: '2020-01-29T06:54'"),
    ("unknown alert_type", "/alert_type", "OBSERVATION",
     "/alert_type: 'OBSERVATION' is not one of EARLYWARNING, PRELIMINARY, INITIAL, UPDATE, "
     "RETRACTION"),
    ("lower-case alert_type", "/alert_type", "preliminary", "/alert_type: 'preliminary' is not"),
    ("missing group", "/event/group", DELETE, "/event/group: missing; /event needs time, far"),
    ("classification not numbers", "/event/classification/BBH", "0.9",
     "/event/classification/BBH: '0.9' is not of type 'number'"),
    ("event of the wrong type", "/event", [1], "/event: [1] is not allowed; it must be null or "
     "object"),
    ("instruments a string", "/event/instruments", "H1,L1",
     "/event/instruments: 'H1,L1' is not of type 'array'"),
    ("a url that is not one", "/urls/gracedb", "gracedb page", "/urls/gracedb: 'gracedb page' is "
     "not a URI"),
    ("event missing from a preliminary", "/event", None,
     "/event: null, but a PRELIMINARY notice carries an event; only a RETRACTION has none"),
    ("infinite far", "/event/far", float("inf"), "/event/far: inf is not allowed; numbers in a "
     "notice are finite"),
]


@pytest.mark.parametrize(("case", "path", "value", "says"), ENVELOPE_CASES,
                         ids=[c[0] for c in ENVELOPE_CASES])
def test_malformed_notices_are_refused_in_one_line(mapless, case, path, value, says):
    with pytest.raises(InputError) as caught:
        read(set_at(mapless, path, value))
    message = str(caught.value)
    assert "\n" not in message and len(message) < 400
    assert message.startswith(LABEL), message
    assert says in message, message


def test_missing_superevent_id_is_named(mapless):
    with pytest.raises(InputError) as caught:
        read(set_at(mapless, "/superevent_id", DELETE))
    assert str(caught.value) == (
        f"notice ({WHERE}): /superevent_id: missing; a notice needs superevent_id, "
        "alert_type, time_created, event, external_coinc, urls")


@pytest.mark.parametrize("block", ["event", "external_coinc"])
def test_a_retraction_with_an_event_or_a_coincidence_is_refused(mapless, block):
    retraction = build_notice(SUPEREVENT, "RETRACTION", time_created_iso=EVENT_TIME)
    external = {"gcn_notice_id": 1, "ivorn": "ivo://x", "observatory": "Fermi",
                "search": "GRB", "time_difference": 1.0, "time_coincidence_far": None,
                "time_sky_position_coincidence_far": None, "combined_skymap": None}
    event = dict(mapless["event"], skymap=B64(FLAT).decode())
    retraction[block] = event if block == "event" else external
    with pytest.raises(InputError) as caught:
        read(retraction)
    assert str(caught.value) == (f"{LABEL}/{block}: a RETRACTION carries no {block} (null); "
                                 "this one has an object")


@pytest.mark.parametrize(("data", "says"), [
    (b"\x89PNG\r\n\x1a\n", "neither JSON (an object, starting with '{') nor an Avro container"),
    (b"not json at all", "neither JSON"),
    (b"[1, 2]", "the JSON is an array; a notice is a JSON object"),
    ("[{\"superevent_id\": \"S1\"}]", "the JSON is an array; a notice is a JSON object"),
    (b"  {\"superevent_id\": ", "not JSON: Expecting value at line 1 column 21"),
    (b'{"far": 1, "far": 2}', "key 'far' appears twice in one JSON object"),
    (b'{"far": NaN}', "NaN is not a JSON number"),
    (b"{\"a\": \"\xff\"}", "the JSON is not UTF-8"),
    (b"", "empty"),
    (42, "not int"),
])
def test_what_is_not_a_notice_is_refused_in_one_line(data, says):
    with pytest.raises(InputError) as caught:
        read_notice(data, WHERE)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"notice ({WHERE}): "), message
    assert says in message, message


def test_broken_avro_is_refused_in_one_line(mapless):
    container = in_form(mapless, "avro-container")
    schemaless = in_form(mapless, "avro-schemaless")
    other = io.BytesIO()
    fastavro.writer(other, {"type": "record", "name": "ztf.alert", "fields": [
        {"name": "objectId", "type": "string"}]}, [{"objectId": "ZTF1"}])
    twice = io.BytesIO()
    fastavro.writer(twice, avro_schema(), [avro_record(mapless)] * 2)
    cases = [
        (container[:-40], {}, "not a readable Avro container"),
        (other.getvalue(), {}, "holds a 'ztf.alert' record, not an igwn.alerts.Alert notice"),
        (twice.getvalue(), {}, "the Avro container holds 2 records; a notice is one"),
        (schemaless + b"\x00", {"schemaless": True}, "1 bytes follow the Avro record"),
        (schemaless[:30], {"schemaless": True}, "does not decode as igwn.alerts.Alert"),
        ("{}", {"schemaless": True}, "schemaless Avro is bytes, not str"),
    ]
    for data, options, says in cases:
        with pytest.raises(InputError) as caught:
            read_notice(data, WHERE, **options)
        message = str(caught.value)
        assert "\n" not in message and says in message, message


def test_a_non_finite_number_in_avro_is_refused(mapless):
    record = dict(mapless, event=dict(mapless["event"], far=float("nan")))
    with pytest.raises(InputError, match=r"/event/far: nan is not allowed; numbers in a notice"):
        read(in_form(record, "avro-container"))


def test_notice_json_refuses_what_json_cannot_hold(mapless):
    with pytest.raises(InputError, match="cannot be written as JSON"):
        notice_json(set_at(mapless, "/event/far", float("nan")))


def test_build_notice_refuses_a_retraction_with_a_map():
    with pytest.raises(InputError, match="a RETRACTION notice carries no sky map"):
        build_notice(SUPEREVENT, "RETRACTION", skymap=FLAT)
