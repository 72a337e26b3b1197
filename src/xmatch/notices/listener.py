"""``xmatch notices listen``: IGWN notices from a Kafka topic (GCN's ``igwn.gwalert``), each
followed (:mod:`xmatch.notices.follow`) and its candidates published.

One consumer-group member reads the notices in order. For each, one Kafka transaction holds
the candidates message (keyed by superevent) and the consumed offset, so the candidates
topic gets each notice's message exactly once; without a candidates topic the offset is
committed after the notice is followed. Following a notice again (after a crash between
following and committing) gives the same watchmap and the same files: it is idempotent.

A notice that is refused (schema, sky map, a retraction of an unknown event) is logged in
one line and its offset committed: the listener goes on. If the server that follows the
notices does not answer, the same notice is tried again after a back-off.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from xmatch.errors import InputError, ServiceError, XmatchError
from xmatch.notices.follow import FollowUp, candidates_message, write_follow_up

log = logging.getLogger("xmatch.notices")
BROKER_SECONDS = 30.0


class NoticeListener:
    """Consume notices from ``topic`` and follow each with ``follow(value, where)``.

    Parameters
    ----------
    bootstrap, topic, group : str
        The Kafka cluster, the notices' topic, the consumer group (its committed offset is
        where a restart resumes).
    follow : callable
        ``follow(value: bytes, where: str) -> FollowUp``; raises ``InputError`` for a notice
        it refuses.
    candidates_topic : str, optional
        Where each notice's candidates go (JSON, :func:`candidates_message`).
    out_dir : path, optional
        Where the candidate files go (:func:`write_follow_up`), in format ``fmt``.
    publish_limit : int
        Candidates of each kind in a published message (all are in the files).
    kafka : dict
        Extra librdkafka settings (security, SASL...).
    """

    def __init__(self, bootstrap: str, topic: str, group: str,
                 follow: Callable[[bytes, str], FollowUp], *, candidates_topic: str | None = None,
                 out_dir=None, fmt: str = "ecsv", publish_limit: int = 100,
                 kafka: dict | None = None, backoff_seconds: tuple[float, float] = (0.5, 30.0)):
        if candidates_topic == topic:
            raise InputError(f"the candidates topic must differ from the notices' ({topic})")
        self.bootstrap, self.topic, self.group = bootstrap, topic, group
        self.follow = follow
        self.candidates_topic = candidates_topic
        self.out_dir = None if out_dir is None else Path(out_dir)
        self.fmt = fmt
        self.publish_limit = publish_limit
        self.kafka = dict(kafka or {})
        self.backoff_seconds = backoff_seconds
        self.followed = 0
        self.refused = 0

    def _settings(self, **settings) -> dict:
        return {"bootstrap.servers": self.bootstrap, **settings, **self.kafka}

    def run(self, stop: threading.Event, on_follow: Callable | None = None) -> None:
        """Follow notices until ``stop`` is set; ``on_follow(follow_up or None, where,
        error)`` is called after each notice."""
        from confluent_kafka import Consumer, Producer

        self._prepare()
        consumer = Consumer(self._settings(**{
            "group.id": self.group, "enable.auto.commit": False,
            "auto.offset.reset": "earliest", "isolation.level": "read_committed",
            "session.timeout.ms": 10_000, "heartbeat.interval.ms": 1_000}))
        producer = None
        if self.candidates_topic:
            producer = Producer(self._settings(**{
                "transactional.id": f"xmatch-notices-{self.group}-{self.topic}"}))
            producer.init_transactions(BROKER_SECONDS)
        consumer.subscribe([self.topic])
        try:
            while not stop.is_set():
                message = consumer.poll(0.5)
                if message is None:
                    continue
                if message.error() is not None:
                    if message.error().fatal():
                        raise XmatchError(f"Kafka: {message.error().str()}")
                    log.warning("Kafka: %s", message.error().str())
                    continue
                where = f"kafka {message.topic()}[{message.partition()}]@{message.offset()}"
                follow_up, error = self._follow_retrying(message.value() or b"", where, stop)
                if stop.is_set() and follow_up is None and error is None:
                    break
                self._commit(consumer, producer, message, follow_up)
                if on_follow is not None:
                    on_follow(follow_up, where, error)
        finally:
            consumer.close()
            if producer is not None:
                producer.flush(BROKER_SECONDS)

    def _follow_retrying(self, value: bytes, where: str, stop: threading.Event):
        """``(follow_up, None)``, or ``(None, the refusal)``; ``(None, None)`` if stopped
        while the server did not answer."""
        from xmatch.stream.processor import TRANSIENT_CODES

        delay, longest = self.backoff_seconds
        while not stop.is_set():
            try:
                follow_up = self.follow(value, where)
            except InputError as error:
                self.refused += 1
                log.warning("notice refused (%s): %s", where, error)
                return None, str(error)
            except ServiceError as error:
                if error.code not in TRANSIENT_CODES:
                    raise
                log.warning("following the notice (%s) failed: %s; again in %.1f s", where,
                            error, delay)
                stop.wait(delay)
                delay = min(2 * delay, longest)
                continue
            if self.out_dir is not None:
                write_follow_up(follow_up, self.out_dir, self.fmt)
            self.followed += 1
            return follow_up, None
        return None, None

    def _commit(self, consumer, producer, message, follow_up: FollowUp | None) -> None:
        from confluent_kafka import TopicPartition

        if producer is None:
            consumer.commit(message, asynchronous=False)
            return
        producer.begin_transaction()
        if follow_up is not None:
            producer.produce(self.candidates_topic,
                             candidates_message(follow_up, self.publish_limit),
                             follow_up.superevent_id.encode())
        producer.send_offsets_to_transaction(
            [TopicPartition(message.topic(), message.partition(), message.offset() + 1)],
            consumer.consumer_group_metadata(), BROKER_SECONDS)
        producer.commit_transaction(BROKER_SECONDS)

    def _prepare(self) -> None:
        """Check the notices' topic exists; create the candidates topic if missing."""
        from confluent_kafka.admin import AdminClient

        from xmatch.stream.processor import broker_topics, create_topics

        admin = AdminClient(self._settings())
        topics = broker_topics(admin, self.bootstrap)
        if self.topic not in topics or topics[self.topic].error is not None:
            raise InputError(f"the notices' topic {self.topic} does not exist on "
                             f"{self.bootstrap}")
        if self.candidates_topic and self.candidates_topic not in topics:
            create_topics(admin, [self.candidates_topic], 1)
