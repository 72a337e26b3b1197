"""What a stream did, as counters for the command line and as Prometheus metrics.

Each :class:`Metrics` owns one :class:`prometheus_client.CollectorRegistry` (several streams
may run in one process, as in the tests), served by :func:`serve_metrics` at ``/metrics`` on
the ``--metrics-port`` of ``xmatch stream``, with the process collector
(``process_resident_memory_bytes``, ``process_cpu_seconds_total`` ...) beside the stream's
own metrics. docs/operations.md lists them and the dashboard that reads them.
"""

from __future__ import annotations

import threading
import time

import numpy as np
from prometheus_client import (
    CollectorRegistry,
    Counter,
    ProcessCollector,
    generate_latest,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily

from xmatch.alerts.annotation import STATES
from xmatch.errors import InputError, XmatchError

#: Upper bounds (s) of the end-to-end latency histogram: a packet's produce time on the
#: input topic to its annotated packet committed on the output topic.
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0)
COUNTERS = {
    "consumed": "Messages read from the input topic",
    "annotated": "Alerts annotated and published to the output topic",
    "dead_lettered": "Messages that could not be read, published to the dead-letter topic",
    "skipped": "Messages found already published when partitions were taken over",
    "retries": "Annotation or publication attempts that failed and were retried",
    "transactions": "Transactions committed",
}
LAG = "xmatch_stream_lag_messages"
COMMITTED = "xmatch_stream_committed_offset"
LATENCY = "xmatch_stream_latency_seconds"


class Metrics:
    """Counters of one stream process (thread-safe), in their own Prometheus registry.

    The totals and the alerts per catalog and state are ``prometheus_client`` counters; the
    per-partition gauges and the latency histogram are tables of this object, read at each
    scrape by a collector of the same registry (:class:`_Tables`).
    """

    def __init__(self):
        self._lock = threading.Lock()
        self.started = time.monotonic()
        self.registry = CollectorRegistry()
        self._counters = {name: Counter(f"xmatch_stream_{name}_total", f"{text}.",
                                        registry=self.registry)
                          for name, text in COUNTERS.items()}
        self._states = Counter(
            "xmatch_stream_catalog_alerts_total",
            f"Alerts by catalog and annotation state ({', '.join(STATES)}).",
            ("catalog", "state"), registry=self.registry)
        self.lag: dict[tuple[str, int], int] = {}
        self.committed: dict[tuple[str, int], int] = {}
        self._buckets = np.zeros(len(LATENCY_BUCKETS) + 1, np.int64)
        self._latency_sum = 0.0
        self._latency_count = 0
        self.registry.register(_Tables(self))
        ProcessCollector(registry=self.registry)
        self.last_error = ""

    @property
    def counters(self) -> dict[str, int]:
        """The totals of :data:`COUNTERS`, by their short names."""
        return {name: int(_total(counter)) for name, counter in self._counters.items()}

    @property
    def states(self) -> dict[tuple[str, str], int]:
        """Alerts counted per ``(catalog, state)``."""
        (family,) = self._states.collect()
        return {(s.labels["catalog"], s.labels["state"]): int(s.value)
                for s in family.samples if s.name.endswith("_total")}

    def add(self, name: str, n: int = 1) -> None:
        self._counters[name].inc(n)

    def add_states(self, catalog: str, states: np.ndarray) -> None:
        """Count a batch's states of one catalog (strings of STATES)."""
        values, counts = np.unique(states, return_counts=True)
        for state, count in zip(values, counts, strict=True):
            self._states.labels(catalog, str(state)).inc(int(count))

    def observe_latency(self, seconds: np.ndarray) -> None:
        # A batch at a time, in numpy: prometheus_client's Histogram.observe is one call per
        # value (1.4 us each, measured: a core's 3 % at 20 k alerts/s), for the same numbers.
        if not len(seconds):
            return
        bins = np.searchsorted(np.asarray(LATENCY_BUCKETS), seconds, side="left")
        with self._lock:
            self._buckets += np.bincount(bins, minlength=len(self._buckets))
            self._latency_sum += float(np.sum(seconds))
            self._latency_count += len(seconds)

    def set_position(self, topic: str, partition: int, committed: int) -> None:
        with self._lock:
            self.committed[(topic, partition)] = committed

    def set_lag(self, topic: str, partition: int, lag: int) -> None:
        with self._lock:
            if (topic, partition) in self.committed:
                self.lag[(topic, partition)] = lag

    def committed_of(self, topic: str) -> dict[int, int]:
        with self._lock:
            return {p: o for (t, p), o in self.committed.items() if t == topic}

    def forget_partition(self, topic: str, partition: int) -> None:
        with self._lock:
            self.committed.pop((topic, partition), None)
            self.lag.pop((topic, partition), None)

    def render(self) -> str:
        """The Prometheus text exposition of every metric (what a scrape reads)."""
        return generate_latest(self.registry).decode()

    def status_line(self) -> str:
        """Progress for the command line: totals, rate, lag, last commits."""
        counters = self.counters
        with self._lock:
            seconds = max(time.monotonic() - self.started, 1e-9)
            lag = sum(self.lag.values())
            committed = " ".join(f"{p}:{o}" for (_, p), o in sorted(self.committed.items()))
        done = counters["annotated"] + counters["dead_lettered"]
        where = f", lag {lag:,}, committed {committed}" if committed else ""
        return (f"{counters['annotated']:,} annotated, "
                f"{counters['dead_lettered']:,} dead-lettered, {done / seconds:,.0f} "
                f"alerts/s{where}")


class _Tables:
    """The collector of a :class:`Metrics`' own tables: gauges per partition, latency."""

    def __init__(self, metrics: Metrics):
        self.metrics = metrics

    def describe(self):
        return self._families({}, {}, np.zeros(len(LATENCY_BUCKETS) + 1, np.int64), 0.0)

    def collect(self):
        metrics = self.metrics
        with metrics._lock:
            lag, committed = dict(metrics.lag), dict(metrics.committed)
            buckets, total = metrics._buckets.copy(), metrics._latency_sum
        return self._families(lag, committed, buckets, total)

    @staticmethod
    def _families(lag, committed, buckets, total):
        families = []
        for name, values, text in (
                (LAG, lag, "Messages of the input partition not yet committed."),
                (COMMITTED, committed,
                 "Next offset of the input partition to process (committed).")):
            family = GaugeMetricFamily(name, text, labels=("topic", "partition"))
            for (topic, partition), value in sorted(values.items()):
                family.add_metric((topic, str(partition)), value)
            families.append(family)
        cumulative = np.cumsum(buckets)
        bounds = [*(str(b) for b in LATENCY_BUCKETS), "+Inf"]
        families.append(HistogramMetricFamily(
            LATENCY, "From the input message's timestamp to its annotated packet committed "
            "on the output topic.", buckets=list(zip(bounds, cumulative.tolist(), strict=True)),
            sum_value=total))
        return families


def _total(counter: Counter) -> float:
    """The value of an unlabelled counter, through the public collector interface."""
    (family,) = counter.collect()
    return next(s.value for s in family.samples if s.name.endswith("_total"))


def serve_metrics(metrics: Metrics, port: int, host: str = ""):
    """Serve ``metrics`` at ``http://host:port/metrics`` from a daemon thread.

    ``host`` "" is every IPv4 interface; port 0 takes a free port (``server_address[1]``).
    Returns the HTTP server: ``shutdown()`` then ``server_close()`` stop it.
    """
    if not 0 <= port <= 65535:
        raise InputError(f"metrics port {port}: a port is 0 (any free port) to 65535")
    try:
        server, _ = start_http_server(port, host or "0.0.0.0", registry=metrics.registry)
    except OSError as error:  # a port taken or not ours: one line, as the servers say it
        raise XmatchError(f"cannot serve metrics on {host or '0.0.0.0'}:{port}: "
                          f"{error.strerror or error}") from None
    return server
