"""Subscriptions: with a subscription prefix, every alert that hits a watch is also published
to that watch's topic (created on first use), in the transaction of the main output; the
same record as on the output topic, once."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa

from stream.conftest import new_topic, publish, read_topic, real_packets, stream_thread, wait_for
from xmatch.alerts.avro import Schemas
from xmatch.alerts.fields import decode
from xmatch.history.memory import AlertMemory
from xmatch.service.embedded import running_server
from xmatch.stream.annotator import ServerAnnotator
from xmatch.stream.messages import Framing
from xmatch.stream.processor import StreamConfig, StreamProcessor
from xmatch.watch import Watchlist, Watchmap


def test_alerts_hitting_a_watch_go_to_its_topic_too(kafka, tmp_path):
    packets = real_packets()[:60]
    alerts = decode(packets, Schemas())
    ra = alerts.column("ra_deg").to_numpy()
    dec = alerts.column("dec_deg").to_numpy()
    compact = [json.dumps({"alert_id": 7_000_000 + n, "ra_deg": (359.9995 + n * 1e-4) % 360,
                           "dec_deg": -10.0, "mjd_tai": 60000.0}).encode() for n in range(10)]
    source, out = new_topic(kafka, 2, "in"), new_topic(kafka, 2, "out")
    prefix = f"{out}.watch."
    publish(kafka, source, packets + compact)
    with AlertMemory(tmp_path, history=False) as memory, \
            running_server({}, memory=memory) as address:
        # Every third packet, and the compact alerts on the far side of RA 0.
        chosen = np.arange(0, len(packets), 3)
        memory.add_watch(Watchlist("targets", np.r_[ra[chosen], 0.0],
                                   np.r_[dec[chosen], -10.0], np.r_[np.full(len(chosen), 1.0),
                                                                     3.0]))
        memory.add_watch(Watchmap.from_moc("north", "0/0-3"))
        config = StreamConfig(bootstrap=kafka, input_topic=source, output_topic=out,
                              group=f"g-{source}", batch_size=25, subscription_prefix=prefix)
        processor = StreamProcessor(config, ServerAnnotator(address, catalogs=[],
                                                            watches=True),
                                    Schemas(), Framing("container"))
        with stream_thread(processor):
            records = wait_for(kafka, out, len(packets) + len(compact))
            targets = wait_for(kafka, prefix + "targets", 1)
            north = wait_for(kafka, prefix + "north", 1)
    by_alert = {r.key: r for r in records}
    hits = memory.watches.hits(np.r_[ra, [(359.9995 + n * 1e-4) % 360 for n in range(10)]],
                               np.r_[dec, np.full(10, -10.0)])
    ids = np.r_[alerts.column("alert_id").to_numpy(), 7_000_000 + np.arange(10)]
    for watch, published in (("targets", targets), ("north", north)):
        rows = hits.filter(pa.compute.equal(hits.column("watch"), watch))
        expected = {str(ids[q]).encode() for q in rows.column("query_index").to_pylist()}
        assert 5 < len(expected) < len(ids)
        assert {r.key for r in published} == expected  # each once, no other
        assert len(published) == len(expected)
        for record in published:  # the same record as the main output's
            assert record.value == by_alert[record.key].value
            assert record.partition == by_alert[record.key].partition
    assert sorted(t for t in _topics(kafka) if t.startswith(prefix)) == [
        prefix + "north", prefix + "targets"]
    assert len(read_topic(kafka, prefix + "targets")) == len(targets)  # all there at once


def _topics(kafka):
    from confluent_kafka.admin import AdminClient

    return AdminClient({"bootstrap.servers": kafka}).list_topics(timeout=30).topics
