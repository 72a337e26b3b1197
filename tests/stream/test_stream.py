"""``xmatch stream`` on a real broker with real packets: every ZTF and Rubin packet through
IN -> stream -> OUT exactly once, unchanged, annotated as ``xmatch annotate`` annotates it;
dead letters; compact alerts; the annotation-only topic; a registry that goes away."""

from __future__ import annotations

import io
import json
import time

import fastavro
import pytest

from stream.conftest import (
    new_topic,
    publish,
    read_topic,
    real_packets,
    stream_thread,
    wait_for,
)
from xmatch.alerts.annotation import annotation_records
from xmatch.alerts.avro import Schemas
from xmatch.service.client import Client
from xmatch.stream.annotator import ServerAnnotator
from xmatch.stream.messages import Framing
from xmatch.stream.processor import ERROR_HEADER, StreamConfig, StreamProcessor
from xmatch.stream.registry import SchemaRegistry

CATALOGS = ["gaia_dr3", "hipparcos2", "gcvs"]


def processor(kafka, server, input_topic, output_topic, *, registry=None, framing="container",
              **options) -> StreamProcessor:
    config = StreamConfig(bootstrap=kafka, input_topic=input_topic, output_topic=output_topic,
                          group=f"g-{input_topic}", batch_size=100, **options)
    client = SchemaRegistry(registry.url) if registry else None
    return StreamProcessor(config, ServerAnnotator(server, catalogs=CATALOGS),
                           Schemas(lookup=client.schema_text if client else None),
                           Framing(framing, client))


def confluent(registry, packet: bytes) -> bytes:
    """A container packet re-framed in Confluent wire format, its schema registered."""
    reader = fastavro.reader(io.BytesIO(packet))
    record = next(reader)
    schema_id = registry.add(json.dumps(reader.writer_schema))
    sink = io.BytesIO()
    fastavro.schemaless_writer(sink, reader.writer_schema, record)
    return b"\x00" + schema_id.to_bytes(4, "big") + sink.getvalue()


def decoded(value: bytes, registry=None) -> dict:
    """A packet as fastavro reads it whole (container file or Confluent wire format)."""
    if value[:4] == b"Obj\x01":
        (record,) = list(fastavro.reader(io.BytesIO(value)))
        return record
    schema = fastavro.parse_schema(json.loads(registry.texts[int.from_bytes(value[1:5], "big")]))
    return fastavro.schemaless_reader(io.BytesIO(value[5:]), schema, None)


@pytest.mark.parametrize("framing", ["container", "confluent"])
def test_every_real_packet_exactly_once_unchanged_and_annotated(kafka, embedded, registry,
                                                                 framing):
    """ZTF packets as container files, Rubin ones in Confluent wire format with their
    schemas in a registry; out as containers or in Confluent wire format, with a compact
    annotation topic beside."""
    packets = real_packets()
    schemas = Schemas()
    sent = [p if schemas.split(p)[0][0].name == "ztf.alert" else confluent(registry, p)
            for p in packets]
    assert sum(s[:1] == b"\x00" for s in sent) >= 3
    source, out, compact = (new_topic(kafka, 2, prefix) for prefix in ("in", "out", "compact"))
    publish(kafka, source, sent)
    with stream_thread(processor(kafka, embedded, source, out, registry=registry,
                                 framing=framing, annotation_topic=compact,
                                 annotation_format="avro")):
        records = wait_for(kafka, out, len(packets))
        annotations = wait_for(kafka, compact, len(packets))
    assert len(records) == len(annotations) == len(packets)
    assert read_topic(kafka, f"{out}.dead-letter") == []
    inputs = {(r.partition, r.offset): r for r in read_topic(kafka, source)}
    assert sorted(r.source for r in records) == sorted((source, p, o) for p, o in inputs)
    # What `xmatch annotate` gives for the same packets, by alert id.
    with Client(embedded) as client:
        tables = [b.table for b in client.annotate(packets, catalogs=CATALOGS)]
    expected = [r for table in tables for r in annotation_records(table)]
    assert len(expected) == len(packets)
    number_of = {value: number for number, value in enumerate(sent)}
    states = set()
    for record in records:
        value = inputs[record.source[1:]].value
        annotated = decoded(record.value, registry)
        annotation = annotated.pop("xmatch")
        assert annotated == decoded(value, registry)
        assert annotation == expected[number_of[value]]
        assert int(record.key) == annotated.get("candid", annotated.get("diaSourceId"))
        assert record.partition == record.source[1]
        assert [c["catalog"] for c in annotation["catalogs"]] == CATALOGS
        states |= {c["state"] for c in annotation["catalogs"]}
    assert states >= {"matched", "no_match"}
    for record in annotations:
        value = decoded(record.value, registry)
        assert value["xmatch"] == expected[number_of[inputs[record.source[1:]].value]]
        assert value["alert_id"] == int(record.key)


def test_rubin_schemas_from_lsst_alert_packet_without_a_registry(kafka, embedded):
    """Confluent wire format with Rubin's schema id (100 * major + minor): the schema comes
    from lsst-alert-packet."""
    pytest.importorskip("lsst.alert.packet")
    (packet,) = [p for p in real_packets() if b"lsst.v11_1.alert" in p[:4000]] or [None]
    if packet is None:
        pytest.skip("the simulated Rubin v11.1 packet is in the shared data set")
    reader = fastavro.reader(io.BytesIO(packet))
    record = next(reader)
    sink = io.BytesIO()
    fastavro.schemaless_writer(sink, reader.writer_schema, record)
    source, out = new_topic(kafka, 1, "in"), new_topic(kafka, 1, "out")
    publish(kafka, source, [b"\x00" + (1101).to_bytes(4, "big") + sink.getvalue()])
    with stream_thread(processor(kafka, embedded, source, out)):
        (annotated,) = wait_for(kafka, out, 1)
    value = decoded(annotated.value)
    assert value.pop("xmatch")["error"] is None
    assert value == record


def test_dead_letters_and_compact_alerts(kafka, embedded):
    """Damaged packets and bad compact alerts land on the dead-letter topic with the reason
    and their source offsets; the rest are annotated exactly as in a clean run."""
    good = real_packets()[:40]
    compact = [json.dumps({"alert_id": 9_000_000 + n, "ra_deg": 56.75 + n * 1e-3,
                           "dec_deg": 24.12, "mjd_tai": 60000.0}).encode() for n in range(10)]
    damaged = {
        good[0][:3000]: "truncated",
        b"": "the message has no value",
        b"not an alert": "neither an Avro container file",
        b"\x00\x00\x00\x10\x00garbage": "unknown Avro schema id 4096",
        b'{"ra_deg": 10.0}': "the compact alert has no dec_deg",
        b'{"ra_deg": 10.0, "dec_deg": "x"}': "dec_deg must be a number",
        b'{"ra_deg": 10.0, "dec_deg": 95.0}': "no usable position",
        b'{"ra_deg": 1, "dec_deg": 2, "colour": "red"}': "has no field colour",
        b"{not json": "is not JSON",
    }
    clean_in, clean_out = new_topic(kafka, 1, "clean"), new_topic(kafka, 1, "clean-out")
    publish(kafka, clean_in, good + compact)
    with stream_thread(processor(kafka, embedded, clean_in, clean_out)):
        clean = wait_for(kafka, clean_out, len(good) + len(compact))
    mixed = []
    bad = iter(damaged)
    for number, value in enumerate(good + compact):
        mixed.append(value)
        if number % 5 == 2:
            mixed.append(next(bad, b"not an alert"))
    mixed += list(bad)
    source, out = new_topic(kafka, 1, "in"), new_topic(kafka, 1, "out")
    publish(kafka, source, [m if m != b"" else None for m in mixed])
    with stream_thread(processor(kafka, embedded, source, out)):
        records = wait_for(kafka, out, len(good) + len(compact))
        letters = wait_for(kafka, f"{out}.dead-letter", len(mixed) - len(records))
    assert [(r.key, r.value) for r in records] == [(r.key, r.value) for r in clean]
    inputs = {r.offset: r.value for r in read_topic(kafka, source)}
    assert len(letters) == len(mixed) - len(good) - len(compact)
    reasons = {}
    for letter in letters:
        _, _, offset = letter.source
        assert letter.value == inputs[offset]  # unchanged
        reasons[letter.value or b""] = letter.headers[ERROR_HEADER].decode()
    for value, reason in damaged.items():
        assert reason in reasons[value], (value, reasons[value])
    compact_out = [json.loads(r.value) for r in records if r.value[:1] == b"{"]
    assert [c["alert_id"] for c in compact_out] == list(range(9_000_000, 9_000_010))
    assert all(c["xmatch"]["catalogs"][0]["catalog"] == "gaia_dr3" for c in compact_out)


def test_a_registry_that_goes_away_stalls_the_stream(kafka, embedded, registry):
    """The registry unreachable is not a reason to dead-letter a packet: the stream waits."""
    packets = [confluent(registry, p) for p in real_packets()[:20]]
    source, out = new_topic(kafka, 1, "in"), new_topic(kafka, 1, "out")
    publish(kafka, source, packets)
    registry.down = True
    with stream_thread(processor(kafka, embedded, source, out, registry=registry,
                                 backoff_seconds=(0.1, 0.2))) as running:
        deadline = time.monotonic() + 30
        while running.metrics.counters["retries"] < 3:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert read_topic(kafka, out) == []
        registry.down = False
        records = wait_for(kafka, out, len(packets))
    assert len(records) == len(packets)
    assert read_topic(kafka, f"{out}.dead-letter") == []


def test_context_on_the_stream(kafka, embedded):
    """With context, each annotated packet carries the context record `xmatch annotate
    --context` gives it."""
    packets = real_packets()[:30]
    source, out = new_topic(kafka, 1, "in"), new_topic(kafka, 1, "out")
    publish(kafka, source, packets)
    config = StreamConfig(bootstrap=kafka, input_topic=source, output_topic=out,
                          group=f"g-{source}", batch_size=100)
    stream = StreamProcessor(config, ServerAnnotator(embedded, catalogs=CATALOGS, context=True),
                             Schemas(), Framing("container", None))
    with stream_thread(stream):
        records = wait_for(kafka, out, len(packets))
    with Client(embedded) as client:
        tables = [b.table for b in client.annotate(packets, catalogs=CATALOGS, context=True)]
    expected = {r["candid"] if "candid" in r else None: a for table in tables
                for r, a in zip(table.select(["alert_id"]).rename_columns(["candid"])
                                .to_pylist(), annotation_records(table), strict=True)}
    for record in records:
        annotation = decoded(record.value)["xmatch"]
        assert annotation["context"] is not None
        assert annotation == expected[int(record.key)]
    assert {decoded(r.value)["xmatch"]["context"]["class"] for r in records} <= {
        "orphan", "bright_star", "variable_star", "supernova", "nuclear", "agn", "unclear"}
