"""Metrics and logs of a real server: the Prometheus endpoint over HTTP, parsed by
prometheus_client's own parser; JSON log lines with their request ids."""

from __future__ import annotations

import json
import logging
import sys
import urllib.request

import numpy as np
import pyarrow as pa
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import LIMITS
from xmatch.errors import ServiceError
from xmatch.service.client import Client
from xmatch.service.embedded import running_servicer
from xmatch.service.observe import METRIC_NAMES, REQUEST_ID, JsonFormatter, configure_logging
from xmatch.service.security import Exposure
from xmatch.service.server import ServedCatalog, XmatchServicer
from xmatch.store.catalog import open_catalog


def scrape(address: str) -> dict[tuple, float]:
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def value(samples, name, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture(scope="module")
def observed(service_data):
    catalogs = {name: ServedCatalog.from_catalog(open_catalog(name, service_data))
                for name in ("gaia_dr3", "random")}
    with running_servicer(lambda: XmatchServicer(catalogs, LIMITS),
                          exposure=Exposure(metrics=("127.0.0.1", 0))) as (address, servicer):
        yield address, servicer


def test_calls_rows_errors_and_states_are_counted(observed):
    address, servicer = observed
    before = scrape(servicer.metrics_address)
    rng = np.random.default_rng(3)
    with Client(address) as client:
        rows = sum(len(client.cone_search("gaia_dr3", 56.75, 24.12, 1800.0)) for _ in range(3))
        with pytest.raises(ServiceError):
            client.cone_search("nope", 0.0, 0.0, 1.0)
        alerts = pa.table({"ra_deg": rng.uniform(0, 360, 500),
                           "dec_deg": np.degrees(np.arcsin(rng.uniform(-1, 1, 500))),
                           "mjd_tai": np.full(500, 60_000.0)})
        annotated = pa.concat_tables(batch.table for batch in client.annotate(
            alerts, catalogs=["gaia_dr3", "random"], radius_arcsec={"gaia_dr3": 600.0,
                                                                  "random": 3600.0}))
    after = scrape(servicer.metrics_address)
    labels = {"role": "embedded", "method": "Cone", "catalog": "gaia_dr3"}
    assert value(after, "xmatch_requests_total", code="OK", **labels) - value(
        before, "xmatch_requests_total", code="OK", **labels) == 3
    assert value(after, "xmatch_rows_returned_total", **labels) - value(
        before, "xmatch_rows_returned_total", **labels) == rows > 0
    assert value(after, "xmatch_request_duration_seconds_count", **labels) - value(
        before, "xmatch_request_duration_seconds_count", **labels) == 3
    assert value(after, "xmatch_requests_total", role="embedded", method="Cone",
                 catalog="nope", code="NOT_FOUND") == 1
    for name in ("gaia_dr3", "random"):
        states = annotated.column(f"{name}_state").to_pylist()
        for state in set(states):
            assert value(after, "xmatch_annotation_alerts_total", role="embedded",
                         catalog=name, state=state) - value(
                before, "xmatch_annotation_alerts_total", role="embedded", catalog=name,
                state=state) == states.count(state)
        held = servicer.catalogs[name]
        assert value(after, "xmatch_index_rows", catalog=name) == len(held.index)
        assert value(after, "xmatch_index_bytes", catalog=name) == held.index.memory_bytes()
    assert value(after, "process_resident_memory_bytes") > 0
    suffixes = ("_total", "_count", "_sum", "_bucket", "_created")
    names = {next((name.removesuffix(s) for s in suffixes if name.endswith(s)), name)
             for name, _ in after if name.startswith("xmatch_")}
    assert names <= METRIC_NAMES


def test_json_log_lines_carry_the_request_id(tmp_path):
    path = tmp_path / "log.jsonl"
    configure_logging("json", "debug", path)
    try:
        reset = REQUEST_ID.set("abc123")
        logging.getLogger("xmatch.service").warning("a shard is down: %s", "shard-1")
        REQUEST_ID.reset(reset)
        logging.getLogger("xmatch.access").debug("Cone OK", extra={"call": {
            "method": "Cone", "code": "OK", "request_id": "def456"}})
    finally:
        root = logging.getLogger("xmatch")
        for handler in list(root.handlers):
            root.removeHandler(handler)
            handler.close()
    first, second = (json.loads(line) for line in path.read_text().splitlines())
    assert first["message"] == "a shard is down: shard-1" and first["request_id"] == "abc123"
    assert first["level"] == "warning" and first["logger"] == "xmatch.service"
    assert second["request_id"] == "def456" and second["method"] == "Cone"
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("xmatch", logging.ERROR, __file__, 1, "bug", (), None)
        record.exc_info = sys.exc_info()
    assert "ValueError: boom" in json.loads(JsonFormatter().format(record))["traceback"]
