"""Exactly once, whatever is killed when: ``xmatch stream`` processes killed with SIGKILL at
random moments and restarted, a group member killed while another takes its partitions
over, the annotation server stopped mid-stream. A ``read_committed`` reader of OUT sees
every input message once, no more."""

from __future__ import annotations

import collections
import json
import random
import time

from stream.conftest import (
    committed,
    end_offsets,
    new_topic,
    publish,
    read_topic,
    real_packets,
    start_stream,
    stream_command,
    stream_thread,
    wait_until,
)
from xmatch import open_catalog
from xmatch.alerts.avro import Schemas
from xmatch.service.catalogs import ServedCatalog
from xmatch.service.embedded import running_server
from xmatch.stream.annotator import ServerAnnotator
from xmatch.stream.broker import free_port
from xmatch.stream.messages import Framing
from xmatch.stream.processor import StreamConfig, StreamProcessor
from xmatch.stream.replay import amplified


def compact_alerts(n: int, seed: int = 3) -> list[bytes]:
    rng = random.Random(seed)
    return [json.dumps({"alert_id": number, "ra_deg": rng.uniform(0, 360),
                        "dec_deg": rng.uniform(-90, 90), "mjd_tai": 60000.5}).encode()
            for number in range(n)]


def check_exactly_once(kafka: str, source: str, out: str, expected: int) -> list:
    records = read_topic(kafka, out)
    sources = collections.Counter(r.source for r in records)
    repeated = [s for s, n in sources.items() if n > 1]
    assert not repeated, f"{len(repeated)} inputs published more than once, e.g. {repeated[:3]}"
    inputs = {(source, r.partition, r.offset) for r in read_topic(kafka, source)}
    assert len(inputs) == expected
    missing = inputs - set(sources)
    assert not missing, f"{len(missing)} inputs never published, e.g. {sorted(missing)[:3]}"
    keys = collections.Counter(r.key for r in records)
    assert max(keys.values()) == 1
    return records


def test_killed_at_random_moments_and_restarted(kafka, embedded, tmp_path):
    """100,000 alerts; the annotator killed -9 three times at random moments, restarted
    each time."""
    n = 100_000
    source, out = new_topic(kafka, 4, "in"), new_topic(kafka, 4, "out")
    publish(kafka, source, compact_alerts(n))
    group = f"g-{source}"
    command = stream_command(kafka, embedded, source, out, group,
                             "--catalogs", "gaia_dr3,random", "--batch-size", "2000")
    rng = random.Random(5)
    log = tmp_path / "stream.log"
    for _ in range(3):
        process = start_stream(command, log)
        written = end_offsets(kafka, out)
        # Let it publish some, then kill it at a random moment.
        wait_until(lambda before=written: end_offsets(kafka, out) > before, 120, "output",
                   [process])
        time.sleep(rng.uniform(0.0, 1.0))
        process.kill()
        process.wait()
    assert committed(kafka, group, source) < n, "the kills came too late to test anything"
    process = start_stream(command, log)
    try:
        wait_until(lambda: committed(kafka, group, source) == n, 300, "end", [process])
    finally:
        process.kill()
        process.wait()
    records = check_exactly_once(kafka, source, out, n)
    assert sorted(int(r.key) for r in records) == list(range(n))


def test_a_group_member_killed_while_another_takes_over(kafka, embedded, tmp_path):
    """Two members of one group share four partitions of real (amplified) packets; one is
    killed -9 mid-stream and the survivor takes its partitions over."""
    n = 3_000
    source, out = new_topic(kafka, 4, "in"), new_topic(kafka, 4, "out")
    stream = amplified(real_packets(), 10**12)
    publish(kafka, source, [next(stream)[1] for _ in range(n)])
    group = f"g-{source}"
    command = stream_command(kafka, embedded, source, out, group,
                             "--catalogs", "gaia_dr3,gcvs", "--batch-size", "100")
    log = tmp_path / "stream.log"
    first, second = start_stream(command, log), start_stream(command, log)
    try:
        wait_until(lambda: committed(kafka, group, source) > n // 4, 120, "output",
                   [first, second])
        first.kill()
        first.wait()
        assert committed(kafka, group, source) < n, "the kill came too late to test anything"
        wait_until(lambda: committed(kafka, group, source) == n, 180, "end", [second])
    finally:
        for process in (first, second):
            process.kill()
            process.wait()
    records = check_exactly_once(kafka, source, out, n)
    assert {r.partition for r in records} == {0, 1, 2, 3}


def test_the_server_stopped_mid_stream(kafka, service_data):
    """The server behind --server goes away: the stream stalls without committing, and
    goes on when the server is back on the same address; nothing lost or duplicated."""
    n = 3_000
    source, out = new_topic(kafka, 2, "in"), new_topic(kafka, 2, "out")
    alerts = compact_alerts(2 * n, seed=4)
    publish(kafka, source, alerts[:n])
    catalogs = {"gaia_dr3": ServedCatalog.from_catalog(open_catalog("gaia_dr3", service_data))}
    address = f"127.0.0.1:{free_port()}"
    group = f"g-{source}"
    config = StreamConfig(bootstrap=kafka, input_topic=source, output_topic=out, group=group,
                          batch_size=500, backoff_seconds=(0.1, 0.5))
    annotator = ServerAnnotator(address, catalogs=["gaia_dr3"], deadline=5.0)
    processor = StreamProcessor(config, annotator, Schemas(), Framing("container"))
    with stream_thread(processor):
        with running_server(catalogs, address=address):
            wait_until(lambda: committed(kafka, group, source) == n, 120, "the first half")
        publish(kafka, source, alerts[n:])  # while the server is away
        wait_until(lambda: processor.metrics.counters["retries"] >= 3, 30, "retries")
        written = end_offsets(kafka, out)
        time.sleep(1.0)
        assert end_offsets(kafka, out) == written  # nothing published while it is away
        assert committed(kafka, group, source) == n  # nor committed
        with running_server(catalogs, address=address):
            wait_until(lambda: committed(kafka, group, source) == 2 * n, 120, "the rest")
    check_exactly_once(kafka, source, out, 2 * n)
