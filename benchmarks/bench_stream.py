"""Kafka in, annotated Kafka out: ``xmatch stream`` against a bare pass-through (the same
consumer / transactional-producer loop copying each packet to OUT unannotated), on a tansu
broker on the same machine.

(a) real-size packets: the real ZTF alerts (cutouts and history) amplified with fresh ids
    and jittered positions; (b) compact packets: the same with the cutouts taken out;
    (c) latency: Rubin-like visits (10,000 alerts every 39 s) from the replay's produce time
    to the annotated packet readable on OUT (read_committed), p50 and p99 per visit;
    (d) memory: the resident memory of an ``xmatch stream`` process over a 1 M-alert replay.

    python benchmarks/bench_stream.py [--packets 20000] [--compact 100000] [--visits 10]
                                      [--memory-alerts 1000000]
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SHARED_ALERTS = HERE.parent.parent / "shared" / "data" / "alerts"
SAMPLES = HERE.parent / "src" / "xmatch" / "alerts" / "samples"
CATALOGS = ["gaia_dr3", "gcvs", "hipparcos2"]


def ztf_packets(cutouts: bool) -> list[bytes]:
    """The real ZTF packets (shared and bundled, each once); without cutouts, re-encoded
    with the three cutout fields null."""
    import fastavro

    from xmatch.alerts import read_packets

    inputs = [SAMPLES] + ([SHARED_ALERTS] if SHARED_ALERTS.exists() else [])
    packets = [p for p in dict.fromkeys(p.data for p in read_packets(inputs))
               if b'"name": "ztf.alert"' in p[:50_000] or b'"ztf.alert"' in p[:50_000]]
    if cutouts:
        return packets
    out = []
    for packet in packets:
        reader = fastavro.reader(io.BytesIO(packet))
        record = next(reader)
        for name in ("cutoutScience", "cutoutTemplate", "cutoutDifference"):
            record[name] = None
        sink = io.BytesIO()
        fastavro.writer(sink, reader.writer_schema, [record])
        out.append(sink.getvalue())
    return out


def fill(bootstrap: str, topic: str, packets: list[bytes], n: int, first_id: int) -> float:
    """Publish ``n`` amplified packets; their mean size in bytes."""
    from confluent_kafka import Producer

    from xmatch.stream.replay import amplified, replay

    source = amplified(packets, first_id)
    sizes = []

    def sized():
        for identifier, packet in source:
            sizes.append(len(packet))
            yield identifier, packet

    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20,
                         "enable.idempotence": True})
    replay(sized(), producer, topic, n)
    return float(np.mean(sizes))


def topic(bootstrap: str, name: str, partitions: int = 2) -> str:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(name, partitions, 1)]).values():
        future.result(30)
    return name


def timed_run(processor, n: int) -> dict:
    """Run a processor until it committed ``n`` messages: alerts/s from its first
    assignment (the group join apart) to the last commit."""
    from xmatch.stream.processor import StreamProcessor

    assigned = []
    on_assign = processor._on_assign

    def note_assignment(consumer, partitions):
        on_assign(consumer, partitions)
        assigned.append(time.perf_counter())

    processor._on_assign = note_assignment
    stop = threading.Event()
    thread = threading.Thread(target=StreamProcessor.run, args=(processor, stop), daemon=True)
    thread.start()
    while sum(processor.metrics.committed.values()) < n or not assigned:
        time.sleep(0.05)
    seconds = time.perf_counter() - assigned[0]
    stop.set()
    thread.join()
    return {"alerts": n, "seconds": round(seconds, 2), "alerts_per_s": round(n / seconds)}


def pass_through_class():
    """The stream's own loop and transactions, copying every message unchanged."""
    from collections import defaultdict

    from xmatch.stream.processor import StreamProcessor

    class PassThrough(StreamProcessor):
        def _process(self, messages, stop):
            self.metrics.add("consumed", len(messages))
            by_partition = defaultdict(list)
            for message in messages:
                by_partition[message.partition()].append(
                    (message, [(self.config.output_topic, message.key(), message.value(), [])]))
            self._publish_all(by_partition)

    return PassThrough


def throughput(address: str, packets: list[bytes], n: int, label: str) -> dict:
    """Pass-through, then xmatch stream, each on a broker of its own (tansu keeps every
    topic in memory)."""
    from xmatch.alerts.avro import Schemas
    from xmatch.stream.annotator import ServerAnnotator
    from xmatch.stream.broker import start_broker
    from xmatch.stream.messages import Framing
    from xmatch.stream.processor import StreamConfig, StreamProcessor

    results = {}
    for kind in ("pass_through", "xmatch_stream"):
        broker, bootstrap = start_broker()
        source = topic(bootstrap, f"{label}-{kind}-in")
        size = fill(bootstrap, source, packets, n, first_id=10**12)
        config = StreamConfig(bootstrap=bootstrap, input_topic=source,
                              output_topic=f"{label}-{kind}-out", group=f"{label}-{kind}",
                              batch_size=1000)
        annotator = ServerAnnotator(address, catalogs=CATALOGS)
        cls = pass_through_class() if kind == "pass_through" else StreamProcessor
        processor = cls(config, annotator, Schemas(), Framing("container"))
        results[kind] = {**timed_run(processor, n), "mean_packet_bytes": round(size)}
        broker.kill()
        broker.wait()
        print(f"  {label} {kind}: {results[kind]}")
    results["ratio"] = round(results["xmatch_stream"]["alerts_per_s"]
                             / results["pass_through"]["alerts_per_s"], 3)
    return results


def latency(bootstrap: str, address: str, packets: list[bytes], visits: int,
            visit_alerts: int, visit_seconds: float) -> dict:
    """Visits replayed into IN while the stream runs; OUT read as it fills."""
    from confluent_kafka import Consumer, Producer, TopicPartition

    from xmatch.alerts.avro import Schemas
    from xmatch.stream.annotator import ServerAnnotator
    from xmatch.stream.messages import Framing
    from xmatch.stream.processor import StreamConfig, StreamProcessor
    from xmatch.stream.replay import amplified, replay

    source = topic(bootstrap, "latency-in", 4)
    out = topic(bootstrap, "latency-out", 4)
    config = StreamConfig(bootstrap=bootstrap, input_topic=source, output_topic=out,
                          group="latency", batch_size=1000)
    processor = StreamProcessor(config, ServerAnnotator(address, catalogs=CATALOGS), Schemas(),
                                Framing("container"))
    stop = threading.Event()
    thread = threading.Thread(target=processor.run, args=(stop,), daemon=True)
    thread.start()
    while not processor._producers:   # joined the group
        time.sleep(0.1)
    reader = Consumer({"bootstrap.servers": bootstrap, "group.id": "latency-reader",
                       "isolation.level": "read_committed", "enable.auto.commit": False})
    reader.assign([TopicPartition(out, p, 0) for p in range(4)])
    total = visits * visit_alerts
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5,
                         "enable.idempotence": True})
    started = time.time()
    publisher = threading.Thread(target=replay, args=(amplified(packets, 2 * 10**12), producer,
                                                      source, total),
                                 kwargs={"visit_alerts": visit_alerts,
                                         "visit_seconds": visit_seconds}, daemon=True)
    publisher.start()
    seen = []   # (visit, latency s)
    while len(seen) < total:
        for message in reader.consume(1000, 0.2):
            if message.error() is None:
                now = time.time()
                stamp = message.timestamp()[1] / 1000.0
                seen.append((int((stamp - started) // visit_seconds), now - stamp))
    stop.set()
    thread.join()
    publisher.join()
    per_visit = []
    values = np.array(seen)
    for visit in range(visits):
        lat = values[values[:, 0] == visit, 1]
        per_visit.append({"visit": visit, "alerts": len(lat),
                          "p50_s": round(float(np.percentile(lat, 50)), 3),
                          "p99_s": round(float(np.percentile(lat, 99)), 3),
                          "max_s": round(float(lat.max()), 3)})
        print(f"  visit {visit}: {per_visit[-1]}")
    return {"visits": per_visit, "p99_worst_s": max(v["p99_s"] for v in per_visit)}


def memory(bootstrap: str, address: str, n: int) -> dict:
    """RSS of an `xmatch stream` process, sampled every second, over ``n`` compact alerts."""
    import psutil
    from confluent_kafka import Consumer, Producer, TopicPartition

    source = topic(bootstrap, "memory-in", 2)
    rng = np.random.default_rng(1)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20,
                         "enable.idempotence": True})
    for start in range(0, n, 100_000):
        ra = rng.uniform(0, 360, 100_000)
        dec = np.degrees(np.arcsin(rng.uniform(-1, 1, 100_000)))
        for i in range(min(100_000, n - start)):
            value = json.dumps({"alert_id": start + i, "ra_deg": ra[i], "dec_deg": dec[i],
                                "mjd_tai": 60000.5}).encode()
            while True:
                try:
                    producer.produce(source, value)
                    break
                except BufferError:
                    producer.poll(0.05)
    producer.flush()
    command = [sys.executable, "-m", "xmatch", "stream", "--bootstrap", bootstrap,
               "--input-topic", source, "--output-topic", "memory-out", "--group", "memory",
               "--server", address, "--catalogs", ",".join(CATALOGS), "--batch-size", "2000",
               "--no-progress"]
    process = subprocess.Popen(command, stderr=subprocess.DEVNULL)
    watcher = psutil.Process(process.pid)
    probe = Consumer({"bootstrap.servers": bootstrap, "group.id": "memory"})
    samples = []
    started = time.perf_counter()
    while True:
        done = sum(max(tp.offset, 0) for tp in probe.committed(
            [TopicPartition(source, p) for p in range(2)], 30))
        samples.append((time.perf_counter() - started, done, watcher.memory_info().rss))
        if done >= n:
            break
        time.sleep(1.0)
    process.terminate()
    process.wait()
    rss = np.array([s[2] for s in samples]) / 2**20
    tenth = max(1, len(rss) // 10)
    result = {"alerts": n, "seconds": round(samples[-1][0], 1),
              "rss_mib_after_first_tenth": round(float(rss[tenth]), 1),
              "rss_mib_at_end": round(float(rss[-1]), 1),
              "rss_mib_max": round(float(rss.max()), 1),
              "rss_mib_by_tenth": [round(float(r), 1) for r in rss[::tenth]]}
    print(f"  memory: {result}")
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packets", type=int, default=20_000,
                        help="real-size packets per run (default 20000)")
    parser.add_argument("--compact", type=int, default=100_000,
                        help="compact packets per run (default 100000)")
    parser.add_argument("--visits", type=int, default=10, help="visits (default 10)")
    parser.add_argument("--visit-alerts", type=int, default=10_000)
    parser.add_argument("--visit-seconds", type=float, default=39.0)
    parser.add_argument("--memory-alerts", type=int, default=1_000_000)
    parser.add_argument("--json", help="append the figures to this JSON-lines file")
    args = parser.parse_args(argv)

    from xmatch import DataDirectory, LoadOptions, load_catalog
    from xmatch.service.embedded import running_server, served_catalogs
    from xmatch.stream.broker import running_broker

    data = DataDirectory(HERE / "_work" / "stream_data")
    for name in CATALOGS:
        if name not in data.names():
            load_catalog(name, data=data, options=LoadOptions(progress=False))
    figures = {"benchmark": "stream", "catalogs": CATALOGS}
    with running_server(served_catalogs(data, names=CATALOGS)) as address:
        figures["real_size"] = throughput(address, ztf_packets(True), args.packets, "real")
        figures["compact"] = throughput(address, ztf_packets(False), args.compact, "compact")
        with running_broker() as bootstrap:
            figures["latency"] = latency(bootstrap, address, ztf_packets(False), args.visits,
                                         args.visit_alerts, args.visit_seconds)
    # Memory: the stream in its own process, the server in another (`xmatch serve`).
    with running_broker() as bootstrap:
        port = __import__("xmatch.stream.broker", fromlist=["free_port"]).free_port()
        server = subprocess.Popen([sys.executable, "-m", "xmatch", "serve", "--plaintext",
                                   "--port", str(port), "--data", str(data.root)],
                                  stderr=subprocess.DEVNULL)
        try:
            from xmatch.service.cluster import wait_serving

            wait_serving(f"127.0.0.1:{port}", 120, server)
            figures["memory"] = memory(bootstrap, f"127.0.0.1:{port}", args.memory_alerts)
        finally:
            server.terminate()
            server.wait()
    print(json.dumps(figures))
    if args.json:
        with open(args.json, "a") as sink:
            sink.write(json.dumps(figures) + "\n")


if __name__ == "__main__":
    main()
