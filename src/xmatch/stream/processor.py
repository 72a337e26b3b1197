"""The stream processor: alert packets from an input topic, annotated, to an output topic,
each exactly once.

One loop, one consumer-group member:

1. read a batch of messages (``read_committed``, offsets never auto-committed);
2. read the packets (:mod:`xmatch.stream.messages`); a message that cannot be read is a
   *dead letter*, published unchanged with the reason to the dead-letter topic;
3. annotate the alerts (a callable: in process, or through a server or router). If that
   fails (server unreachable, deadline), nothing is published or committed: the loop
   pauses its partitions, backs off and tries the same batch again;
4. per input partition, one Kafka transaction: the annotated packets (to the same partition
   number of the output topic, keyed by alert id), the dead letters, the compact
   annotations, the copies of alerts that hit a watch on that watch's subscription topic
   (``{subscription_prefix}{watch}``, created on first use), and the consumed offsets
   (``send_offsets_to_transaction``).

Each input partition has its own transactional producer, ``transactional.id`` =
``xmatch-{group}-{topic}-{partition}``: whoever takes a partition over fences (Apache Kafka:
aborts) what a dead owner left open. Every published record carries its source (topic,
partition, offset) in headers, and when a partition is taken over (or a transaction
aborted), the tail of each output partition is read back (``read_committed``) for records
of sources at or after the committed offset: those are not published again. That second
guard is what makes the stream exactly once on brokers that show a dead producer's open
transaction, or an aborted one, to ``read_committed`` readers (tansu does both, see
docs/streams.md); it costs a read of one batch per partition per takeover.

Transactions are published on worker threads while the next batch is read and annotated
(a partition's next transaction waits for its previous one); the consumer is only ever
called from the loop's thread.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import grpc
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from xmatch.alerts.annotation import WATCH_HITS_COLUMN, annotation_info, annotation_records
from xmatch.alerts.outputs import annotated_body, json_objects
from xmatch.errors import InputError, ServiceError, XmatchError
from xmatch.stream.messages import ANNOTATION_FORMATS, Framing, compact_json, decode_values
from xmatch.stream.metrics import Metrics
from xmatch.stream.registry import RegistryUnavailable

log = logging.getLogger("xmatch.stream")

SOURCE_TOPIC = "xmatch.source.topic"
SOURCE_PARTITION = "xmatch.source.partition"
SOURCE_OFFSET = "xmatch.source.offset"
ERROR_HEADER = "xmatch.error"
#: Server answers worth waiting for: the stream retries the batch until one succeeds.
TRANSIENT_CODES = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
                   grpc.StatusCode.CANCELLED, grpc.StatusCode.RESOURCE_EXHAUSTED,
                   grpc.StatusCode.ABORTED)
BROKER_SECONDS = 30.0
_LEGAL_TOPIC = re.compile(r"[A-Za-z0-9._-]{1,120}")


@dataclass
class StreamConfig:
    """What ``xmatch stream`` consumes, where it publishes, and how."""

    bootstrap: str
    input_topic: str
    output_topic: str
    group: str
    dead_letter_topic: str = ""          # default: OUTPUT.dead-letter
    annotation_topic: str = ""           # the compact annotation-only topic (none: "")
    annotation_format: str = "json"
    subscription_prefix: str = ""        # alerts hitting watch W also go to PREFIX + W
    batch_size: int = 1000               # messages per transaction at most
    wait_seconds: float = 0.2            # how long a batch waits to fill
    backoff_seconds: tuple[float, float] = (0.5, 30.0)
    kafka: dict = field(default_factory=dict)  # librdkafka settings for every client

    def __post_init__(self):
        self.dead_letter_topic = self.dead_letter_topic or f"{self.output_topic}.dead-letter"
        for name in ("input_topic", "output_topic", "group"):
            if not getattr(self, name):
                raise InputError(f"--{name.replace('_', '-')} is needed")
        topics = [self.input_topic, self.output_topic, self.dead_letter_topic,
                  self.annotation_topic]
        if len(set(filter(None, topics))) != len(list(filter(None, topics))):
            raise InputError(f"the input, output, dead-letter and annotation topics must "
                             f"differ: {', '.join(filter(None, topics))}")
        if self.annotation_format not in ANNOTATION_FORMATS:
            raise InputError(f"annotation format {self.annotation_format!r} is not one of "
                             f"{', '.join(ANNOTATION_FORMATS)}")
        if self.batch_size < 1:
            raise InputError("the batch size must be >= 1")
        if self.subscription_prefix and not _LEGAL_TOPIC.fullmatch(self.subscription_prefix):
            raise InputError(f"subscription prefix {self.subscription_prefix!r} is not "
                             "allowed; a Kafka topic name is letters, digits, '.', '_' and "
                             "'-'")

    @property
    def sinks(self) -> list[str]:
        """The topics the stream publishes to, each partition for partition with the input."""
        return [t for t in (self.output_topic, self.dead_letter_topic, self.annotation_topic)
                if t]

    def client_settings(self, **settings) -> dict:
        return {"bootstrap.servers": self.bootstrap, **settings, **self.kafka}


def prepare_topics(config: StreamConfig, sinks: list[str] | None = None) -> None:
    """Check the input topic exists; create missing ``sinks`` (default: the config's) with
    as many partitions as the input (each input partition publishes to its own number)."""
    from confluent_kafka.admin import AdminClient

    sinks = config.sinks if sinks is None else sinks
    admin = AdminClient(config.client_settings())
    topics = broker_topics(admin, config.bootstrap)
    source = topics.get(config.input_topic)
    if source is None or source.error is not None:
        raise InputError(f"the input topic {config.input_topic} does not exist on "
                         f"{config.bootstrap}")
    partitions = len(source.partitions)
    for topic in sinks:
        if topic in topics and len(topics[topic].partitions) < partitions:
            raise InputError(
                f"topic {topic} has {len(topics[topic].partitions)} partitions, fewer than "
                f"the {partitions} of {config.input_topic}: each input partition publishes "
                "to the output partition of its own number")
    create_topics(admin, [t for t in sinks if t not in topics], partitions)


def subscription_topics(config: StreamConfig) -> set[str]:
    """The subscription topics on the broker (those of the config's prefix)."""
    from confluent_kafka.admin import AdminClient

    if not config.subscription_prefix:
        return set()
    topics = broker_topics(AdminClient(config.client_settings()), config.bootstrap)
    return {t for t in topics if t.startswith(config.subscription_prefix)}


def broker_topics(admin, bootstrap: str) -> dict:
    """The topics of the cluster ``admin`` (an ``AdminClient``) reaches, by name."""
    from confluent_kafka import KafkaException

    try:
        return admin.list_topics(timeout=BROKER_SECONDS).topics
    except KafkaException as error:
        raise XmatchError(f"no Kafka broker answered at {bootstrap}: "
                          f"{error.args[0].str()}") from None


def create_topics(admin, names: list[str], partitions: int) -> None:
    """Create topics ``names`` (one that appeared meanwhile is fine)."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import NewTopic

    if not names:
        return
    created = admin.create_topics([NewTopic(name, partitions, 1) for name in names])
    for topic, future in created.items():
        try:
            future.result(BROKER_SECONDS)
        except KafkaException as error:
            if "TOPIC_ALREADY_EXISTS" not in error.args[0].name():
                raise XmatchError(f"cannot create topic {topic}: "
                                  f"{error.args[0].str()}") from None


class StreamProcessor:
    """Consume, annotate, publish, exactly once (see the module's description).

    Parameters
    ----------
    config : StreamConfig
    annotate : callable
        ``annotate(alerts) -> annotation table``: ``alerts`` is a table of compact alerts
        (alert_id, object_id, survey, ra_deg, dec_deg, mjd_tai), the answer has one row per
        alert in order (docs/alerts.md). Raises :class:`~xmatch.errors.ServiceError`.
    schemas : xmatch.alerts.Schemas
        Writer schemas of the input packets (with the registry's lookup, if any).
    framing : Framing
        How annotated packets and records are framed on the output topics.
    """

    def __init__(self, config: StreamConfig, annotate: Callable[[pa.Table], pa.Table],
                 schemas, framing: Framing, metrics: Metrics | None = None):
        self.config = config
        self.annotate = annotate
        self.schemas = schemas
        self.framing = framing
        self.metrics = metrics or Metrics()
        self._producers: dict = {}
        self._published: dict[tuple[str, int], set[int]] = defaultdict(set)
        self._generation = 0   # bumped by every rebalance: a batch read before one is dropped
        self._consumer = None
        self._scanner = None
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="xmatch-publish")
        self._inflight: dict = {}  # partition -> its transaction in flight (a Future)
        self._scan_lock = threading.Lock()  # one read-back at a time (one scanner)
        self._subscriptions: set[str] = set()  # subscription topics known to exist

    # ------------------------------------------------------------------ the loop

    def run(self, stop: threading.Event) -> None:
        """Process until ``stop`` is set; the batch in hand is finished first."""
        from confluent_kafka import Consumer

        prepare_topics(self.config)
        config = self.config
        self._scanner = Consumer(config.client_settings(**{
            "group.id": f"{config.group}.xmatch-scan", "enable.auto.commit": False,
            "isolation.level": "read_committed", "enable.partition.eof": True}))
        self._consumer = Consumer(config.client_settings(**{
            "group.id": config.group, "enable.auto.commit": False,
            "auto.offset.reset": "earliest", "isolation.level": "read_committed",
            "session.timeout.ms": 10_000, "heartbeat.interval.ms": 1_000}))
        self._consumer.subscribe([config.input_topic], on_assign=self._on_assign,
                                 on_revoke=self._on_revoke, on_lost=self._on_revoke)
        try:
            while not stop.is_set():
                messages = self._consumer.consume(config.batch_size, config.wait_seconds)
                messages = [m for m in messages if not self._broker_error(m)]
                if messages:
                    self._process(messages, stop)
                self._measure_lag()
        finally:
            try:
                self._settle_all(seek=False)
            finally:
                self._consumer.close()  # revokes: the producers are closed
                self._scanner.close()
                self._pool.shutdown()

    def _measure_lag(self) -> None:
        """The lag of each assigned partition: its end (as last fetched) less what is
        committed."""
        from confluent_kafka import TopicPartition

        topic = self.config.input_topic
        for partition, committed in list(self.metrics.committed_of(topic).items()):
            _, high = self._consumer.get_watermark_offsets(TopicPartition(topic, partition),
                                                           cached=True)
            if high is not None and high >= 0:
                self.metrics.set_lag(topic, partition, max(high - committed, 0))

    def _broker_error(self, message) -> bool:
        error = message.error()
        if error is None:
            return False
        if error.fatal():
            raise XmatchError(f"Kafka: {error.str()}")
        log.warning("Kafka: %s", error.str())
        return True

    def _process(self, messages: list, stop: threading.Event) -> None:
        generation = self._generation
        self.metrics.add("consumed", len(messages))
        decoded = self._retrying(lambda: decode_values([m.value() for m in messages],
                                                       self.schemas), stop, generation)
        if decoded is None:
            return
        usable = pc.is_null(decoded.alerts.column("error")).to_numpy(zero_copy_only=False)
        alerts = decoded.alerts.filter(usable).select(
            ["alert_id", "object_id", "survey", "ra_deg", "dec_deg", "mjd_tai", "band", "mag",
             "mag_err"])
        table = self._retrying(lambda: self.annotate(alerts), stop, generation)
        if table is None:
            return
        if table.num_rows != alerts.num_rows:
            raise XmatchError(f"the annotation answered {table.num_rows} rows for "
                              f"{alerts.num_rows} alerts")
        records = self._retrying(lambda: self._records(messages, decoded, usable, table),
                                 stop, generation)
        if records is None:
            return
        self._create_subscriptions(records)
        by_partition = defaultdict(list)
        for message, record in zip(messages, records, strict=True):
            by_partition[message.partition()].append((message, record))
        self._publish_all(by_partition)
        for target in annotation_info(table)["catalogs"]:
            self.metrics.add_states(target.name, table.column(f"{target.name}_state")
                                    .to_numpy(zero_copy_only=False))

    def _records(self, messages, decoded, usable: np.ndarray, table: pa.Table) -> list:
        """Per message: ``(topic, key, value, extra headers)`` of each record it publishes."""
        config = self.config
        annotations = annotation_records(table)
        objects = json_objects(table, annotations) \
            if config.annotation_topic or decoded.compact.any() else None
        errors = decoded.alerts.column("error").to_pylist()
        identifiers = table.column("alert_id").to_pylist()
        hits = (table.column(WATCH_HITS_COLUMN).to_pylist()
                if config.subscription_prefix and WATCH_HITS_COLUMN in table.column_names
                else None)
        out, row = [], 0
        for number, message in enumerate(messages):
            if not usable[number]:
                out.append([(config.dead_letter_topic, message.key(), message.value(),
                             [(ERROR_HEADER, errors[number].encode())])])
                continue
            alert = objects[row] if objects is not None else None
            identifier = identifiers[row]
            key = message.key() if identifier is None else str(identifier).encode()
            if decoded.compact[number]:
                value = compact_json(alert)
            else:
                schema, body = decoded.splits[number]
                value = self.framing.packet(config.output_topic, schema,
                                            annotated_body(body, annotations[row]))
            records = [(config.output_topic, key, value, [])]
            if config.annotation_topic:
                records.append((config.annotation_topic, key, self.framing.annotation(
                    config.annotation_topic, alert, config.annotation_format), []))
            if hits is not None and hits[row]:
                for watch in dict.fromkeys(hit["watch"] for hit in hits[row]):
                    records.append((config.subscription_prefix + watch, key, value, []))
            out.append(records)
            row += 1
        return out

    def _create_subscriptions(self, records: list) -> None:
        """Create the subscription topics the batch publishes to that do not exist yet."""
        prefix = self.config.subscription_prefix
        if not prefix:
            return
        wanted = {topic for entry in records for topic, *_ in entry
                  if topic.startswith(prefix)} - self._subscriptions
        if wanted:
            prepare_topics(self.config, sorted(wanted))
            self._subscriptions |= wanted
            log.info("subscription topic(s) %s ready", ", ".join(sorted(wanted)))

    def _sinks(self) -> list[str]:
        """Every topic the stream publishes to: the config's and the subscriptions'."""
        return self.config.sinks + sorted(self._subscriptions)

    def _retrying(self, attempt: Callable, stop: threading.Event, generation: int):
        """``attempt()``, again after a back-off while it fails for a reason that passes
        (server or registry unreachable); None when the batch is to be dropped (a
        rebalance took its partitions, or the stream is stopping)."""
        delay, longest = self.config.backoff_seconds
        paused = []
        try:
            while True:
                try:
                    return attempt()
                except (ServiceError, RegistryUnavailable) as error:
                    if isinstance(error, ServiceError) and error.code not in TRANSIENT_CODES:
                        raise
                    self.metrics.add("retries")
                    self.metrics.last_error = str(error)
                    log.warning("annotation failed (%s); nothing committed, retrying in "
                                "%.1f s", error, delay)
                if not paused:
                    paused = self._consumer.assignment()
                    self._consumer.pause(paused)
                if not self._wait(delay, stop, generation):
                    return None
                delay = min(delay * 2, longest)
        finally:
            if paused and generation == self._generation:
                self._consumer.resume(paused)

    def _wait(self, seconds: float, stop: threading.Event, generation: int) -> bool:
        """Keep the group membership alive for ``seconds`` with the partitions paused;
        False if the batch is to be dropped."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if stop.is_set():
                return False
            message = self._consumer.poll(min(0.2, max(deadline - time.monotonic(), 0)))
            if message is not None and message.error() is None:
                # Fetched before the pause: read again later, from where it is.
                from confluent_kafka import TopicPartition

                self._consumer.seek(TopicPartition(message.topic(), message.partition(),
                                                   message.offset()))
            if generation != self._generation:
                return False
        return True

    # ------------------------------------------------------------------ publishing

    def _publish_all(self, by_partition: dict) -> None:
        """One transaction per partition, on the publishing threads: the partitions' at
        once, and while the next batch is read and annotated (each commit mostly waits for
        the broker). A partition's transaction starts when its previous one has ended; if
        that one was aborted (the partition is read again from its first message), this
        batch's messages of the partition are dropped: they are read again too."""
        # The consumer is only touched from this thread: librdkafka serves its rebalance
        # callbacks here, and a publishing thread calling into it then would wait for them.
        group = self._consumer.consumer_group_metadata()
        for partition, entries in by_partition.items():
            if not self._settled(partition):
                continue
            self._inflight[partition] = self._pool.submit(self._publish, partition, entries,
                                                          group)

    def _settled(self, partition: int, seek: bool = True) -> bool:
        """Wait for the partition's transaction in flight; False if it was aborted, and
        then (with ``seek``) the partition is read again from that transaction's first
        message."""
        from confluent_kafka import TopicPartition

        future = self._inflight.pop(partition, None)
        if future is None:
            return True
        first = future.result()
        if first is None:
            return True
        if seek:
            self._consumer.seek(TopicPartition(self.config.input_topic, partition, first))
        return False

    def _settle_all(self, seek: bool = True) -> None:
        """Wait for every transaction in flight (before a rebalance moves partitions, and
        at the end)."""
        for partition in list(self._inflight):
            self._settled(partition, seek)

    def _publish(self, partition: int, entries: list, group) -> int | None:
        """One transaction: the records of ``entries`` (messages of one input partition, in
        order, with their records) and the offset after the last, for the consumer group
        ``group`` (its metadata). If it was aborted, the offset of its first message (to be
        read again); else None."""
        from confluent_kafka import KafkaException, TopicPartition

        config = self.config
        producer = self._producers[partition]
        first = entries[0][0].offset()
        last = entries[-1][0].offset()
        skipped = 0
        try:
            producer.begin_transaction()
            for message, records in entries:
                offset = message.offset()
                source = [(SOURCE_TOPIC, config.input_topic.encode()),
                          (SOURCE_PARTITION, str(partition).encode()),
                          (SOURCE_OFFSET, str(offset).encode())]
                # The input's timestamp carries over (as Kafka Streams does): end-to-end
                # latency is then readable on the output.
                stamp = message.timestamp()[1]
                for topic, key, value, headers in records:
                    if offset in self._published.get((topic, partition), ()):
                        skipped += 1
                        continue
                    self._produce(producer, topic, key, value, partition, source + headers,
                                  stamp)
            producer.send_offsets_to_transaction(
                [TopicPartition(config.input_topic, partition, last + 1)], group,
                BROKER_SECONDS)
            self._commit(producer)
        except KafkaException as error:
            kafka_error = error.args[0]
            if kafka_error.fatal() or not kafka_error.txn_requires_abort():
                raise XmatchError(f"Kafka transaction of {config.input_topic}[{partition}] "
                                  f"failed: {kafka_error.str()}") from None
            log.warning("transaction of %s[%d] aborted (%s); its messages are read again",
                        config.input_topic, partition, kafka_error.str())
            self.metrics.add("retries")
            producer.abort_transaction(BROKER_SECONDS)
            # Some brokers (tansu) show aborted records to read_committed readers: what
            # is there is not published again.
            self._find_published(partition, first)
            return first
        now = time.time()
        stamps = np.array([m.timestamp()[1] for m, _ in entries], np.float64) / 1000.0
        self.metrics.observe_latency(now - stamps[stamps > 0])
        self.metrics.add("transactions")
        self.metrics.add("skipped", skipped)
        dead = sum(1 for _, records in entries if records[0][0] == config.dead_letter_topic)
        self.metrics.add("dead_lettered", dead)
        self.metrics.add("annotated", len(entries) - dead)
        for topic in self._sinks():  # what a takeover found is behind the commit now
            found = self._published.get((topic, partition))
            if found:
                found.difference_update(range(first, last + 1))
        self.metrics.set_position(config.input_topic, partition, last + 1)
        return None

    @staticmethod
    def _produce(producer, topic, key, value, partition, headers, stamp) -> None:
        extra = {"timestamp": stamp} if stamp > 0 else {}
        while True:
            try:
                producer.produce(topic, value, key, partition=partition, headers=headers,
                                 **extra)
                return
            except BufferError:  # the local queue is full: let it drain
                producer.poll(0.05)

    @staticmethod
    def _commit(producer) -> None:
        from confluent_kafka import KafkaException

        while True:
            try:
                producer.commit_transaction(BROKER_SECONDS)
                return
            except KafkaException as error:
                if not error.args[0].retriable():
                    raise
                log.warning("commit of a transaction is retried: %s", error.args[0].str())

    # ------------------------------------------------------------------ takeovers

    def _on_assign(self, consumer, partitions) -> None:
        from confluent_kafka import Producer

        self._settle_all(seek=False)
        self._generation += 1
        config = self.config
        for tp in partitions:
            producer = Producer(config.client_settings(**{
                "transactional.id": f"xmatch-{config.group}-{config.input_topic}-{tp.partition}",
                "linger.ms": 5, "transaction.timeout.ms": 60_000}))
            # Fences (Apache Kafka: aborts) what a previous owner of the partition left open.
            producer.init_transactions(BROKER_SECONDS)
            self._producers[tp.partition] = producer
        # After the fencing: a subscription topic holding records of these partitions
        # exists by now, and is read back below like the others.
        self._subscriptions |= subscription_topics(config)
        for tp in consumer.committed(partitions, BROKER_SECONDS):
            start = tp.offset
            if start < 0:  # nothing committed yet: the partition's first offset
                start, _ = consumer.get_watermark_offsets(tp, BROKER_SECONDS)
            self._find_published(tp.partition, start)
            self.metrics.set_position(config.input_topic, tp.partition, start)
        log.info("assigned %s", ", ".join(f"{config.input_topic}[{tp.partition}]"
                                          for tp in partitions) or "nothing")

    def _on_revoke(self, consumer, partitions) -> None:
        self._settle_all(seek=False)  # what was read before the revocation is committed first
        self._generation += 1
        for tp in partitions:
            producer = self._producers.pop(tp.partition, None)
            if producer is not None:
                producer.flush(BROKER_SECONDS)
            for topic in self._sinks():
                self._published.pop((topic, tp.partition), None)
            self.metrics.forget_partition(self.config.input_topic, tp.partition)

    def _find_published(self, partition: int, start: int) -> None:
        """Note what every output topic already holds of input ``partition`` from offset
        ``start`` on: those records are not published again."""
        for topic in self._sinks():
            with self._scan_lock:
                found = self._already_published(topic, partition, start)
            self._published[(topic, partition)] = found
            if found:
                log.info("%s[%d]: %d record(s) of offsets >= %d already published; not "
                         "published again", topic, partition, len(found), start)

    def _already_published(self, topic: str, partition: int, start: int) -> set[int]:
        """Source offsets >= ``start`` of input partition ``partition`` found in the same
        partition of ``topic``, read back from its end (``read_committed``) until a record
        of an earlier source offset or the start of the partition."""
        from confluent_kafka import KafkaError, TopicPartition

        scanner = self._scanner
        source = self.config.input_topic.encode()
        low, high = scanner.get_watermark_offsets(TopicPartition(topic, partition),
                                                  BROKER_SECONDS)
        found: set[int] = set()
        end, step = high, 2 * self.config.batch_size
        while end > low:
            begin = max(low, end - step)
            scanner.assign([TopicPartition(topic, partition, begin)])
            earlier = False
            deadline = time.monotonic() + BROKER_SECONDS
            while time.monotonic() < deadline:
                message = scanner.poll(1.0)
                if message is None:
                    continue
                if message.error() is not None:
                    if message.error().code() != KafkaError._PARTITION_EOF:
                        raise XmatchError(f"reading back {topic}[{partition}]: "
                                          f"{message.error().str()}")
                    break  # the end (read_committed: the last stable offset)
                headers = dict(message.headers() or ())
                if headers.get(SOURCE_TOPIC) == source and \
                        headers.get(SOURCE_PARTITION) == str(partition).encode():
                    offset = int(headers[SOURCE_OFFSET])
                    if offset >= start:
                        found.add(offset)
                    else:
                        earlier = True
                if message.offset() >= end - 1:
                    break
            else:
                raise XmatchError(f"reading back {topic}[{partition}] from offset {begin} did "
                                  f"not finish within {BROKER_SECONDS:.0f} s")
            if earlier:
                break
            end, step = begin, step * 2
        scanner.unassign()
        return found
