"""The parts of the stream without a broker: compact alerts read or refused, the registry
client, the replay's amplification, the metrics (read back by Prometheus' own parser), and
the command line's refusals."""

from __future__ import annotations

import io
import json
import urllib.request

import fastavro
import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from prometheus_client.parser import text_string_to_metric_families

from stream.conftest import RegistryServer, real_packets
from xmatch.alerts.avro import PacketError, Schemas
from xmatch.alerts.fields import alert_table
from xmatch.cli import main
from xmatch.errors import InputError, XmatchError
from xmatch.stream.messages import Framing, compact_row, decode_values
from xmatch.stream.metrics import Metrics, serve_metrics
from xmatch.stream.registry import RegistryUnavailable, SchemaRegistry
from xmatch.stream.replay import amplified


@pytest.mark.parametrize("value, message", [
    (b'{"ra_deg": 1.0}', "has no dec_deg"),
    (b'{"ra_deg": 1.0, "dec_deg": null}', "has no dec_deg"),
    (b'{"ra_deg": true, "dec_deg": 2.0}', "ra_deg must be a number"),
    (b'{"ra_deg": 1.0, "dec_deg": 2.0, "alert_id": 1.5}', "alert_id must be an integer"),
    (b'{"ra_deg": 1.0, "dec_deg": 2.0, "survey": 3}', "survey must be a string"),
    (b'{"ra_deg": 1.0, "dec_deg": 2.0, "flux": 3}', "has no field flux"),
    (b'{"ra_deg": 1.0, "dec_deg": 2.0, "mag": "bright"}', "mag must be a number"),
    (b'[1, 2]', "a compact alert is a JSON object"),
    (b'{"ra_deg": 1.0,', "is not JSON"),
])
def test_bad_compact_alerts_are_refused_with_the_reason(value, message):
    with pytest.raises(PacketError, match=message):
        compact_row(value)


def test_a_compact_alert_carries_its_photometry_into_the_alert_row():
    row = compact_row(b'{"ra_deg": 1.0, "dec_deg": 2.0, "band": "r", "mag": 18.5, '
                      b'"mag_err": 0.05}')
    table = alert_table([row, compact_row(b'{"ra_deg": 1.0, "dec_deg": 2.0}')], [None, None])
    assert table.column("band").to_pylist() == ["r", None]
    assert table.column("mag").to_pylist() == [18.5, None]
    assert table.column("mag_err").to_pylist() == [0.05, None]


def test_a_batch_mixing_packets_compact_alerts_and_garbage():
    packet = real_packets()[0]
    values = [packet, b'{"alert_id": 7, "ra_deg": 359.9999, "dec_deg": -89.9, '
              b'"survey": "LSST", "mjd_tai": 60923.5}', b"garbage", None,
              b'{"ra_deg": 400.0, "dec_deg": 0.0}']
    decoded = decode_values(values, Schemas())
    rows = decoded.alerts.to_pylist()
    assert [r["error"] is None for r in rows] == [True, True, False, False, False]
    assert list(decoded.compact) == [False, True, False, False, True]
    assert decoded.splits[0] is not None and decoded.splits[1] is None
    assert rows[1]["alert_id"] == 7 and rows[1]["survey"] == "LSST"
    assert rows[1]["ra_deg"] == 359.9999 and rows[1]["mjd_tai"] == 60923.5
    assert "no usable position" in rows[4]["error"]
    assert "no value" in rows[3]["error"]


def test_the_registry_client():
    server = RegistryServer()
    try:
        registry = SchemaRegistry(server.url)
        text = json.dumps({"type": "record", "name": "x", "fields": []})
        schema_id = registry.register("topic-value", text)
        assert server.texts[schema_id] == text and server.subjects == {"topic-value": [schema_id]}
        assert registry.schema_text(schema_id) == text
        assert registry.schema_text(999) is None  # 404: an unknown id, not an outage
        calls = server.calls
        assert registry.register("topic-value", text) == schema_id  # cached
        assert server.calls == calls
        server.down = True
        with pytest.raises(RegistryUnavailable, match="HTTP 503"):
            registry.schema_text(998)
        schemas = Schemas(lookup=registry.schema_text)
        with pytest.raises(RegistryUnavailable):
            schemas.by_id(998)
        server.down = False
        with pytest.raises(PacketError, match="unknown Avro schema id 998 .*schema registry"):
            schemas.by_id(998)
    finally:
        server.close()
    with pytest.raises(RegistryUnavailable, match="did not answer"):
        SchemaRegistry(server.url, timeout=1).schema_text(1)
    with pytest.raises(InputError, match="is not http"):
        SchemaRegistry("registry:8081")
    with pytest.raises(InputError, match="needs a schema registry"):
        Framing("confluent")


def test_replayed_packets_are_the_real_ones_with_fresh_ids_and_moved_positions():
    packets = real_packets()
    originals = [next(fastavro.reader(io.BytesIO(p))) for p in packets]
    stream = amplified(packets, 5_000, jitter_deg=0.5, seed=2)
    moved = [next(stream) for _ in range(2 * len(packets))]
    assert [i for i, _ in moved] == list(range(5_000, 5_000 + 2 * len(packets)))
    before, after = [], []
    for number, (identifier, packet) in enumerate(moved):
        record = next(fastavro.reader(io.BytesIO(packet)))
        original = originals[number % len(packets)]
        detection = "candidate" if "candidate" in record else "diaSource"
        dec = "decl" if "decl" in record[detection] else "dec"
        assert record[detection].get("candid", record[detection].get("diaSourceId")) == \
            identifier
        before.append((original[detection]["ra"], original[detection][dec]))
        after.append((record[detection]["ra"], record[detection][dec]))
        for name in record:  # everything else is the real packet's
            if name not in (detection, "candid", "alertId", "diaSourceId"):
                assert record[name] == original[name], name
        unchanged = {k: v for k, v in record[detection].items()
                     if k not in ("ra", dec, "candid", "diaSourceId")}
        assert unchanged == {k: original[detection][k] for k in unchanged}
    before, after = np.array(before), np.array(after)
    # astropy: each moved by at most 0.5 deg in each coordinate (diagonal: 0.71 deg)
    separation = SkyCoord(*before.T, unit="deg").separation(SkyCoord(*after.T, unit="deg")).deg
    assert separation.max() <= 0.5 * np.sqrt(2) + 1e-9 and np.median(separation) > 0.05


def test_metrics_in_prometheus_text_format():
    metrics = Metrics()
    metrics.add("consumed", 5)
    metrics.add("annotated", 4)
    metrics.add("dead_lettered", 1)
    metrics.add_states("gaia_dr3", np.array(["matched", "no_match", "no_match", "failed"]))
    metrics.set_position("ztf", 0, 120)
    metrics.set_lag("ztf", 0, 30)
    metrics.observe_latency(np.array([0.02, 0.3, 1.5, 200.0]))
    server = serve_metrics(metrics, 0, "127.0.0.1")
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/metrics"
        with urllib.request.urlopen(url) as response:
            assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            text = response.read().decode()
    finally:
        server.shutdown()
        server.server_close()
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(text) for s in family.samples}
    assert samples[("xmatch_stream_consumed_total", ())] == 5
    assert samples[("xmatch_stream_catalog_alerts_total",
                    (("catalog", "gaia_dr3"), ("state", "no_match")))] == 2
    assert samples[("xmatch_stream_lag_messages", (("partition", "0"), ("topic", "ztf")))] == 30
    assert samples[("xmatch_stream_latency_seconds_bucket", (("le", "0.5"),))] == 2
    assert samples[("xmatch_stream_latency_seconds_bucket", (("le", "+Inf"),))] == 4
    assert samples[("xmatch_stream_latency_seconds_count", ())] == 4
    assert "4 annotated, 1 dead-lettered" in metrics.status_line()


def test_each_stream_has_its_own_registry_with_the_process_metrics():
    first, second = Metrics(), Metrics()
    first.add("retries", 3)
    first.set_position("ztf", 1, 10)
    first.set_lag("ztf", 1, 4)
    first.set_lag("ztf", 2, 9)  # no position taken on partition 2: not reported
    assert first.counters["retries"] == 3 and second.counters["retries"] == 0
    assert first.committed_of("ztf") == {1: 10}

    def samples(metrics):
        return {(s.name, tuple(sorted(s.labels.items()))): s.value for family in
                text_string_to_metric_families(metrics.render()) for s in family.samples}

    seen = samples(first)
    assert seen[("xmatch_stream_committed_offset", (("partition", "1"), ("topic", "ztf")))] == 10
    assert ("xmatch_stream_lag_messages", (("partition", "2"), ("topic", "ztf"))) not in seen
    assert seen[("process_resident_memory_bytes", ())] > 0
    assert samples(second)[("xmatch_stream_retries_total", ())] == 0
    first.forget_partition("ztf", 1)  # a partition revoked: its series go
    assert not [name for name, _ in samples(first) if name.startswith("xmatch_stream_lag")
                or name.startswith("xmatch_stream_committed")]


def test_metrics_on_a_taken_or_impossible_port_are_refused_in_one_line():
    server = serve_metrics(Metrics(), 0, "127.0.0.1")
    try:
        with pytest.raises(XmatchError, match=r"cannot serve metrics on 127\.0\.0\.1:\d+: "):
            serve_metrics(Metrics(), server.server_address[1], "127.0.0.1")
        with pytest.raises(InputError, match="metrics port 70000: a port is 0"):
            serve_metrics(Metrics(), 70000, "127.0.0.1")
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("argv, message", [
    (["stream", "--bootstrap", "x:1"], "--input-topic, --output-topic, --group are needed"),
    (["stream", "--bootstrap", "x:1", "--input-topic", "a", "--output-topic", "a", "--group",
      "g", "--server", "x:2"], "must differ"),
    (["stream", "--bootstrap", "x:1", "--input-topic", "a", "--output-topic", "b", "--group",
      "g", "--annotation-format", "avro"], "--annotation-format is the format of"),
    (["stream", "--bootstrap", "x:1", "--input-topic", "a", "--output-topic", "b", "--group",
      "g", "--output-format", "confluent", "--server", "x:2"], "needs a schema registry"),
    (["stream", "--bootstrap", "x:1", "--input-topic", "a", "--output-topic", "b", "--group",
      "g", "--kafka-config", "acks", "--server", "x:2"], "give KEY=VALUE"),
    (["stream", "--bootstrap", "x:1", "--input-topic", "a", "--output-topic", "b", "--group",
      "g", "--sso-orbits", "MPCORB.DAT", "--server", "x:2"], "with --server, that server"),
    (["stream", "--bootstrap", "x:1", "--input-topic", "a", "--output-topic", "b", "--group",
      "g", "--sso-orbits", "MPCORB.DAT", "--catalogs", "gaia_dr3"], "does not name"),
    (["stream", "--bootstrap", "x:1", "--input-topic", "a", "--output-topic", "b", "--group",
      "g", "--sso-sites", "I41"], "which is not given"),
    (["stream", "replay", "nowhere.avro", "--bootstrap", "x:1", "--topic", "t"],
     "no such file or directory"),
    (["stream", "replay", "x.avro", "--bootstrap", "x:1", "--topic", "t", "--framing",
      "confluent"], "needs --schema-registry"),
    (["stream", "replay", "x.avro", "--bootstrap", "x:1", "--topic", "t", "--visit-alerts",
      "5"], "shape --visits"),
    (["stream", "replay", "x.avro", "--bootstrap", "x:1", "--topic", "t", "--rate", "-3"],
     "give alerts per second > 0"),
])
def test_command_line_refusals(argv, message, capsys):
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1, error
