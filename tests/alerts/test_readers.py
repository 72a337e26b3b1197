"""Alert readers against fastavro's full decode of the real ZTF and Rubin packets."""

from __future__ import annotations

import io
import tarfile

import fastavro
import numpy as np
import pytest
from astropy.time import Time

from conftest import shared_file
from xmatch.alerts import PacketError, Schemas, decode, read_packets
from xmatch.alerts.avro import container
from xmatch.errors import LoadError


@pytest.fixture(scope="module")
def real_packets():
    return list(read_packets([shared_file("alerts")]))


def full_decode(data: bytes) -> dict:
    """The oracle: fastavro's reader over the whole container, every field decoded."""
    (record,) = list(fastavro.reader(io.BytesIO(data)))
    return record


def test_every_real_alert_is_read(real_packets):
    table = decode([p.data for p in real_packets], Schemas())
    surveys = table.column("survey").to_pylist()
    assert table.num_rows == 333
    assert surveys.count("ZTF") == 232     # 16 + 12 + 24 + 50 + 30 + 100 (PROVENANCE.md)
    assert surveys.count("LSST") == 101    # 100 real LSSTCam + the simulated v11.1 packet
    assert table.column("error").null_count == 333


def test_fields_equal_the_full_decode(real_packets):
    table = decode([p.data for p in real_packets], Schemas()).to_pylist()
    for packet, row in zip(real_packets, table, strict=True):
        record = full_decode(packet.data)
        if row["survey"] == "ZTF":
            candidate = record["candidate"]
            assert row["alert_id"] == record["candid"]
            assert row["object_id"] == record["objectId"]
            assert (row["ra_deg"], row["dec_deg"]) == (candidate["ra"], candidate["dec"])
            assert row["band"] == {1: "g", 2: "r", 3: "i"}[candidate["fid"]]
            assert row["mag"] == pytest.approx(candidate["magpsf"])
            # ZTF jd is UTC: TAI is ahead by the leap seconds of the day (37 s since 2017).
            expected = Time(candidate["jd"], format="jd", scale="utc").tai.mjd
            assert row["mjd_tai"] == pytest.approx(expected, abs=1e-9)
            assert (row["mjd_tai"] - (candidate["jd"] - 2400000.5)) * 86400 == \
                pytest.approx(37.0, abs=1e-3)
        else:
            source = record["diaSource"]
            assert row["alert_id"] == record.get("alertId", record.get("diaSourceId"))
            assert (row["ra_deg"], row["dec_deg"]) == (source["ra"], source["dec"])
            assert row["mjd_tai"] == source["midpointMjdTai"]  # already TAI
            assert row["band"] == source["band"]
            expected_err = None if source["raErr"] is None else source["raErr"] * 3600
            assert row["ra_err_arcsec"] == pytest.approx(expected_err)
            if source["psfFlux"] and source["psfFlux"] > 0:
                assert row["mag"] == pytest.approx(31.4 - 2.5 * np.log10(source["psfFlux"]))


def test_old_and_rebranded_schemas_are_recognised(real_packets):
    """The 2018 packets without schemavsn, schema 2.0 to 4.01, and Fink's Spark
    re-serialization of Rubin v9 (record name topLevelRecord) all read."""
    names, versions = set(), set()
    for packet in real_packets:
        ((schema, _),) = Schemas().split(packet.data)
        names.add(schema.name)
        record = full_decode(packet.data)
        versions.add(record.get("schemavsn") or record.get("lsst_schema_version"))
    assert "topLevelRecord" in names
    assert {None, "2.0", "3.3", "4.01", "lsst.v9_0"} <= versions


def test_confluent_wire_format_with_a_registered_schema():
    data = shared_file("alerts/lsst/fakeAlert.avro").read_bytes()
    ((schema, body),) = Schemas().split(data)
    message = b"\x00" + (1101).to_bytes(4, "big") + body
    table = decode([message], Schemas({1101: schema.text}))
    assert table.column("error").to_pylist() == [None]
    assert table.column("alert_id").to_pylist() == [full_decode(data)["diaSourceId"]]
    unknown = decode([b"\x00" + (4242).to_bytes(4, "big") + body], Schemas())
    assert "unknown Avro schema id 4242" in unknown.column("error")[0].as_py()


def test_confluent_packet_with_rubins_published_schema():
    pytest.importorskip("lsst.alert.packet")
    data = shared_file("alerts/lsst/fakeAlert.avro").read_bytes()
    ((_, body),) = Schemas().split(data)
    table = decode([b"\x00" + (1101).to_bytes(4, "big") + body], Schemas())
    assert table.column("error").to_pylist() == [None]
    assert table.column("ra_deg")[0].as_py() == full_decode(data)["diaSource"]["ra"]


def test_damaged_packets_give_one_error_each(real_packets):
    good = real_packets[0].data
    ((schema, body),) = Schemas().split(good)
    packets = [
        good,
        good[: len(good) // 2],                        # truncated
        b"",                                           # empty
        b"definitely not avro",                        # garbage
        container(schema.text, [body[:40]]),           # a record cut short
        container('{"type": "record", "name": "x", "fields": [{"name": "a", "type": "int"}]}',
                  [b"\x02"]),                          # a schema that is no alert
        good,
    ]
    table = decode(packets, Schemas())
    errors = table.column("error").to_pylist()
    assert errors[0] is None and errors[-1] is None
    assert "truncated" in errors[1]
    assert "empty" in errors[2]
    assert "neither an Avro container file" in errors[3]
    assert "does not decode" in errors[4]
    assert "neither a ZTF alert" in errors[5]
    assert table.num_rows == len(packets)


def test_nan_and_missing_positions_are_errors():
    data = shared_file("alerts/ztf/kowalski/20231012/2475433850015015000.avro").read_bytes()
    reader = fastavro.reader(io.BytesIO(data))
    record = next(reader)
    packets = []
    for ra in (float("nan"), 400.0, None):
        changed = {**record, "candidate": dict(record["candidate"])}
        changed["candidate"]["ra"] = ra if ra is not None else 0.0
        changed["candidate"]["dec"] = 95.0 if ra is None else 10.0
        sink = io.BytesIO()
        fastavro.writer(sink, reader.writer_schema, [changed])
        packets.append(sink.getvalue())
    errors = decode(packets, Schemas()).column("error").to_pylist()
    assert errors == [
        "the alert has no usable position (ra = nan, dec = 10.0); it needs 0 <= ra <= 360 "
        "and -90 <= dec <= 90 deg",
        "the alert has no usable position (ra = 400.0, dec = 10.0); it needs 0 <= ra <= 360 "
        "and -90 <= dec <= 90 deg",  # never wrapped to 40 deg
        "the alert has no usable position (ra = 0.0, dec = 95.0); it needs 0 <= ra <= 360 "
        "and -90 <= dec <= 90 deg"]


def test_sources_directories_tarballs_bytes_and_multi_record_files(tmp_path):
    ztf = shared_file("alerts/ztf/kowalski/20200202")
    files = sorted(ztf.glob("*.avro"))
    archive = tmp_path / "night.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for file in files[:3]:
            tar.add(file, arcname=f"night/{file.name}")
    # One container with three alerts in one block, as a Kafka dump might hold.
    bodies, schema = [], None
    for file in files[:3]:
        ((schema, body),) = Schemas().split(file.read_bytes())
        bodies.append(body)
    multi = tmp_path / "three.avro"
    multi.write_bytes(container(schema.text, bodies))
    packets = list(read_packets([ztf, archive, files[0].read_bytes(), multi]))
    assert len(packets) == len(files) + 3 + 1 + 3
    assert packets[len(files)].origin.endswith(f"night.tar.gz:night/{files[0].name}")
    assert packets[-1].origin.endswith("three.avro#2")
    ids = decode([p.data for p in packets], Schemas()).column("alert_id").to_pylist()
    assert ids[-3:] == ids[:3] == ids[len(files):len(files) + 3]
    with pytest.raises(LoadError, match="nothing-here: no such file or directory"):
        list(read_packets([tmp_path / "nothing-here"]))
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(LoadError, match="notes.txt: not an alert input"):
        list(read_packets([tmp_path / "notes.txt"]))


def test_a_container_with_several_alerts_is_refused_as_one_packet():
    data = shared_file("alerts/ztf/kowalski/20200202/1105522281015015000.avro").read_bytes()
    ((schema, body),) = Schemas().split(data)
    error = decode([container(schema.text, [body, body])], Schemas()).column("error")[0]
    assert "holds 2 alerts" in error.as_py()
    with pytest.raises(PacketError, match="neither"):
        Schemas().split(b"\x01abc")
