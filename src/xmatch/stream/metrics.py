"""What a stream did, as counters for the command line and as Prometheus metrics.

Served in the Prometheus text exposition format (version 0.0.4) at ``/metrics`` on the
``--metrics-port`` of ``xmatch stream``.
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

from xmatch.alerts.annotation import STATES

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


class Metrics:
    """Counters of one stream process (thread-safe)."""

    def __init__(self):
        self._lock = threading.Lock()
        self.started = time.monotonic()
        self.counters = dict.fromkeys(COUNTERS, 0)
        self.states: dict[tuple[str, str], int] = {}
        self.lag: dict[tuple[str, int], int] = {}
        self.committed: dict[tuple[str, int], int] = {}
        self._buckets = np.zeros(len(LATENCY_BUCKETS) + 1, np.int64)
        self._latency_sum = 0.0
        self._latency_count = 0
        self.last_error = ""

    def add(self, name: str, n: int = 1) -> None:
        with self._lock:
            self.counters[name] += n

    def add_states(self, catalog: str, states: np.ndarray) -> None:
        """Count a batch's states of one catalog (strings of STATES)."""
        values, counts = np.unique(states, return_counts=True)
        with self._lock:
            for state, count in zip(values, counts, strict=True):
                key = (catalog, str(state))
                self.states[key] = self.states.get(key, 0) + int(count)

    def observe_latency(self, seconds: np.ndarray) -> None:
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
        """The Prometheus text exposition of every metric."""
        with self._lock:
            lines = []
            for name, help_text in COUNTERS.items():
                metric = f"xmatch_stream_{name}_total"
                lines += [f"# HELP {metric} {help_text}.", f"# TYPE {metric} counter",
                          f"{metric} {self.counters[name]}"]
            metric = "xmatch_stream_catalog_alerts_total"
            lines += [f"# HELP {metric} Alerts by catalog and annotation state "
                      f"({', '.join(STATES)}).", f"# TYPE {metric} counter"]
            lines += [f'{metric}{{catalog="{c}",state="{s}"}} {n}'
                      for (c, s), n in sorted(self.states.items())]
            for metric, values, help_text in (
                    ("xmatch_stream_lag_messages", self.lag,
                     "Messages of the input partition not yet committed"),
                    ("xmatch_stream_committed_offset", self.committed,
                     "Next offset of the input partition to process (committed)")):
                lines += [f"# HELP {metric} {help_text}.", f"# TYPE {metric} gauge"]
                lines += [f'{metric}{{topic="{t}",partition="{p}"}} {v}'
                          for (t, p), v in sorted(values.items())]
            metric = "xmatch_stream_latency_seconds"
            lines += [f"# HELP {metric} From the input message's timestamp to its annotated "
                      "packet committed on the output topic.", f"# TYPE {metric} histogram"]
            cumulative = np.cumsum(self._buckets)
            for bound, count in zip(LATENCY_BUCKETS, cumulative, strict=False):
                lines.append(f'{metric}_bucket{{le="{bound}"}} {count}')
            lines += [f'{metric}_bucket{{le="+Inf"}} {cumulative[-1]}',
                      f"{metric}_sum {self._latency_sum:.6f}",
                      f"{metric}_count {self._latency_count}"]
            return "\n".join(lines) + "\n"

    def status_line(self) -> str:
        """Progress for the command line: totals, rate, lag, last commits."""
        with self._lock:
            seconds = max(time.monotonic() - self.started, 1e-9)
            done = self.counters["annotated"] + self.counters["dead_lettered"]
            lag = sum(self.lag.values())
            committed = " ".join(f"{p}:{o}" for (_, p), o in sorted(self.committed.items()))
        where = f", lag {lag:,}, committed {committed}" if committed else ""
        return (f"{self.counters['annotated']:,} annotated, "
                f"{self.counters['dead_lettered']:,} dead-lettered, {done / seconds:,.0f} "
                f"alerts/s{where}")


def serve_metrics(metrics: Metrics, port: int, host: str = "") -> ThreadingHTTPServer:
    """Serve ``metrics`` at ``http://host:port/metrics`` from a daemon thread."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (the name http.server calls)
            if self.path.split("?")[0] not in ("/metrics", "/"):
                self.send_error(404, "the metrics are at /metrics")
                return
            body = metrics.render().encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):  # scrapes are not news
            pass

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="xmatch-metrics", daemon=True).start()
    return server
