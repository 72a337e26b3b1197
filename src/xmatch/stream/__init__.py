"""Kafka in, Kafka out: ``xmatch stream``.

:mod:`~xmatch.stream.processor` consumes alert packets from a topic, annotates them and
publishes each annotated packet exactly once (Kafka transactions, and a check of what was
already published whenever partitions are taken over); :mod:`~xmatch.stream.messages` reads
and frames the messages; :mod:`~xmatch.stream.replay` is the firehose simulator;
:mod:`~xmatch.stream.metrics` counts; :mod:`~xmatch.stream.registry` talks to a Confluent
schema registry; :mod:`~xmatch.stream.broker` starts a local Kafka-protocol broker (tansu)
for tests, benchmarks and rehearsals. See docs/streams.md.
"""
