"""What a server tells its operator: Prometheus metrics and structured logs, each call with a
request id that a router passes on to its shards.

Metrics (``prometheus-client``, one registry per server so that several may share a test
process) count calls by RPC, catalog and status code, time them, count the rows returned and
each catalog's annotation states (a cross-match that silently stops matching shows as a
falling share of ``matched``), and, read at each scrape, what the server holds (index bytes
and rows per catalog) and, on a router, which shards answer. They are served over HTTP by
:func:`serve_metrics` (``--metrics-port``).

Logs: :func:`configure_logging` sets text or JSON lines; every record written during a call
carries its ``request_id`` (the caller's ``x-request-id``, or a new one), so one search is
followed from the router's log into each shard's.
"""

from __future__ import annotations

import contextvars
import json
import logging
import secrets
import sys
import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.process_collector import ProcessCollector

log = logging.getLogger("xmatch.service")
access_log = logging.getLogger("xmatch.access")

#: The request id of the call being answered ("" outside calls).
REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
REQUEST_ID_KEY = "x-request-id"
#: Upper bounds (s) of the call duration histogram: a 5" cone takes ~50 µs, a sky-map search
#: of a large catalog tens of seconds.
DURATION_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                    0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
#: Every metric a server or router exports (names as Prometheus shows them, without the
#: _total/_bucket/_sum/_count suffixes of counters and histograms).
METRIC_NAMES = frozenset({
    "xmatch_requests", "xmatch_request_duration_seconds", "xmatch_rows_returned",
    "xmatch_requests_in_flight", "xmatch_annotation_alerts", "xmatch_auth_refused",
    "xmatch_failovers", "xmatch_shard_up", "xmatch_index_bytes", "xmatch_index_rows",
    "xmatch_http_requests", "xmatch_http_request_duration_seconds"})
AUTH_CODES = ("UNAUTHENTICATED", "PERMISSION_DENIED")


def new_request_id() -> str:
    return secrets.token_hex(8)


class Observer:
    """The metrics of one server (``role``: embedded, shard or router) and its call log."""

    def __init__(self, role: str, servicer=None):
        self.role = role
        self.registry = registry = CollectorRegistry()
        ProcessCollector(registry=registry)
        self._requests = Counter("xmatch_requests", "Calls answered, by RPC, catalog and "
                                 "gRPC status code.", ["role", "method", "catalog", "code"],
                                 registry=registry)
        self._duration = Histogram("xmatch_request_duration_seconds", "Time to answer a call "
                                   "(a stream: until it ends).", ["role", "method", "catalog"],
                                   buckets=DURATION_BUCKETS, registry=registry)
        self._rows = Counter("xmatch_rows_returned", "Rows answered (cross-match: matches; "
                             "annotation: alerts).", ["role", "method", "catalog"],
                             registry=registry)
        self._in_flight = Gauge("xmatch_requests_in_flight", "Calls being answered.",
                                ["role", "method"], registry=registry)
        self._states = Counter("xmatch_annotation_alerts", "Annotated alerts by catalog and "
                               "state (matched, no_match, outside_coverage, failed).",
                               ["role", "catalog", "state"], registry=registry)
        self._refused = Counter("xmatch_auth_refused", "Calls refused by access control, by "
                                "status and reason.", ["role", "code", "reason"],
                                registry=registry)
        self._failovers = Counter("xmatch_failovers", "Shard calls sent to another replica "
                                  "because a shard was unavailable.", ["shard"],
                                  registry=registry)
        self._http_requests = Counter("xmatch_http_requests", "HTTP requests of the Virtual "
                                      "Observatory face, by endpoint and HTTP status.",
                                      ["role", "endpoint", "status"], registry=registry)
        self._http_duration = Histogram("xmatch_http_request_duration_seconds", "Time to "
                                        "answer an HTTP request of the Virtual Observatory "
                                        "face.", ["role", "endpoint"],
                                        buckets=DURATION_BUCKETS, registry=registry)
        self._children: dict[tuple, tuple] = {}
        if servicer is not None:
            registry.register(_HeldCollector(servicer))

    # ------------------------------------------------------------------ calls

    def _of(self, method: str, catalog: str):
        key = (method, catalog)
        children = self._children.get(key)
        if children is None:  # labels() takes a lock and builds a key: once per pair
            children = self._children[key] = (
                self._duration.labels(self.role, method, catalog),
                self._rows.labels(self.role, method, catalog),
                self._in_flight.labels(self.role, method))
        return children

    def began(self, method: str) -> None:
        self._of(method, "")[2].inc()

    def ended(self, method: str, catalog: str, code: str, seconds: float, rows: int,
              peer: str, token: str, request_id: str) -> None:
        duration, rows_counter, _ = self._of(method, catalog)
        self._of(method, "")[2].dec()
        duration.observe(seconds)
        if rows:
            rows_counter.inc(rows)
        self._requests.labels(self.role, method, catalog, code).inc()
        if code in AUTH_CODES or code == "RESOURCE_EXHAUSTED":
            self._refused.labels(self.role, code, _reason(code)).inc()
        if access_log.isEnabledFor(logging.DEBUG) or code not in ("OK", "CANCELLED"):
            level = logging.WARNING if code in AUTH_CODES else (
                logging.DEBUG if code == "OK" else logging.INFO)
            access_log.log(level, "%s %s", method, code, extra={"call": {
                "method": method, "catalog": catalog, "code": code,
                "ms": round(seconds * 1e3, 3), "rows": rows, "peer": peer,
                "token": token, "request_id": request_id}})

    # ------------------------------------------------------------------ annotation, routing

    def annotation_states(self, table, catalogs) -> None:
        """Count an annotated batch's states of each catalog (its ``C_state`` column)."""
        import pyarrow.compute as pc

        for name in catalogs:
            counts = pc.value_counts(table.column(f"{name}_state")).to_pylist()
            for item in counts:
                self._states.labels(self.role, name, str(item["values"])).inc(item["counts"])

    def failover(self, shard: str) -> None:
        self._failovers.labels(shard).inc()

    def http_answered(self, endpoint: str, status: int, seconds: float) -> None:
        """One HTTP request of the VO face answered (its gRPC calls are counted too)."""
        self._http_requests.labels(self.role, endpoint, str(status)).inc()
        self._http_duration.labels(self.role, endpoint).observe(seconds)


def _reason(code: str) -> str:
    return {"UNAUTHENTICATED": "token", "PERMISSION_DENIED": "permission"}.get(code, "limit")


class _HeldCollector:
    """Read at each scrape: index bytes and rows per catalog, and a router's shard health."""

    def __init__(self, servicer):
        self.servicer = servicer

    def collect(self):
        catalogs = getattr(self.servicer, "catalogs", {})
        size = GaugeMetricFamily("xmatch_index_bytes", "Bytes held in memory for a catalog "
                                 "(index and payload).", labels=["catalog"])
        rows = GaugeMetricFamily("xmatch_index_rows", "Rows held in memory for a catalog.",
                                 labels=["catalog"])
        for name, served in sorted(catalogs.items()):
            slices = getattr(served, "slices", None)
            indexes = list(slices.values()) if isinstance(slices, dict) else []
            if not indexes or not all(hasattr(i, "memory_bytes") for i in indexes):
                continue  # a router's catalogs hold no rows
            size.add_metric([name], float(sum(i.memory_bytes() for i in indexes)))
            rows.add_metric([name], float(sum(len(i) for i in indexes)))
        yield size
        yield rows
        links = getattr(self.servicer, "links", None)
        if links is not None:
            up = GaugeMetricFamily("xmatch_shard_up", "1 when the shard last answered, 0 when "
                                   "it was found unavailable.", labels=["shard", "address"])
            for link in links:
                up.add_metric([link.name, link.address], 0.0 if link.down_since else 1.0)
            yield up


def serve_metrics(observer: Observer, port: int, host: str = "127.0.0.1"):
    """Serve ``observer``'s metrics at ``http://host:port/metrics`` from a daemon thread;
    returns the HTTP server (its ``server_address`` has the port bound)."""
    from prometheus_client import start_http_server

    from xmatch.errors import XmatchError

    try:
        server, _ = start_http_server(port, host, registry=observer.registry)
    except OSError as error:
        raise XmatchError(f"cannot serve metrics on {host}:{port}: "
                          f"{error.strerror or error}") from None
    return server


# ------------------------------------------------------------------------------- logs


class _RequestIdFilter(logging.Filter):
    def filter(self, record):
        record.request_id = REQUEST_ID.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id, the call's
    fields, and the traceback of an error."""

    def format(self, record) -> str:
        entry = {"time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
                 + f".{int(record.msecs):03d}Z",
                 "level": record.levelname.lower(), "logger": record.name,
                 "message": record.getMessage()}
        request_id = getattr(record, "request_id", "")
        if request_id:
            entry["request_id"] = request_id
        entry.update(getattr(record, "call", {}))  # a call's own line: its id and fields
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self):
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record) -> str:
        text = super().format(record)
        call = getattr(record, "call", None)
        if call:  # a call's own line: its id and fields
            return text + " " + " ".join(f"{k}={v}" for k, v in call.items()
                                         if v not in ("", None))
        request_id = getattr(record, "request_id", "")
        return f"{text} request_id={request_id}" if request_id else text


LOG_FORMATS = ("text", "json")
LOG_LEVELS = ("debug", "info", "warning", "error")


def configure_logging(fmt: str = "text", level: str = "info", file=None) -> None:
    """Send xmatch's logs to standard error (or ``file``) as text or JSON lines, each with
    the request id of the call it belongs to; ``debug`` logs every call."""
    handler = logging.FileHandler(file) if file else logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(_RequestIdFilter())
    root = logging.getLogger("xmatch")
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())


def request_metadata(token: str | None) -> tuple:
    """The metadata of a call made while answering one: the request id (so the callee's
    log lines carry it) and the caller's token."""
    metadata = ((REQUEST_ID_KEY, REQUEST_ID.get() or new_request_id()),)
    if token:
        metadata += (("authorization", f"Bearer {token}"),)
    return metadata
