"""docs/grafana-dashboard.json: importable into Grafana, every panel queried through the
imported Prometheus datasource, every query valid PromQL (Prometheus' grammar, by the
``promql-parser`` package) on metrics that xmatch exports.

Metric names are compared by their family name: a series suffix (``_bucket``, ``_sum``,
``_count`` of a histogram, ``_total`` of a counter, ``_created``) is removed from the name a
query uses and from the names exported, so ``xmatch_requests_total`` in a query is
``xmatch_requests`` of ``xmatch.service.observe.METRIC_NAMES`` (which lists names without
those suffixes), and the stream's names come from a scrape of its own registry.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import promql_parser
import pytest

from xmatch.alerts.annotation import STATES
from xmatch.stream.metrics import Metrics

DASHBOARD = Path(__file__).parents[1] / "docs" / "grafana-dashboard.json"
DATASOURCE = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
#: Grafana's own interval variables, replaced by a duration before parsing.
INTERVALS = {"__rate_interval": "5m", "__interval": "1m", "__range": "1h"}
VARIABLES = ("job", "instance", "catalog")
SUFFIXES = re.compile(r"(_bucket|_sum|_count|_total|_created)$")
#: Stream series the dashboard leaves out, and why.
NOT_SHOWN = {"xmatch_stream_committed_offset": "positions, for a debugging session, not a "
             "trend (the lag panel shows what they imply)"}


def family(name: str) -> str:
    return SUFFIXES.sub("", name)


@pytest.fixture(scope="module")
def dashboard():
    return json.loads(DASHBOARD.read_text())


def queried(dashboard) -> list[dict]:
    """Every panel that draws something (rows only group them)."""
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    panels += [p for row in dashboard["panels"] if row["type"] == "row"
               for p in row.get("panels", [])]
    return panels


def targets(dashboard):
    for panel in queried(dashboard):
        for target in panel["targets"]:
            yield panel, target


def substituted(expr: str) -> str:
    """A query with Grafana's variables replaced by values of their kind."""
    def value(match):
        name = match.group(1) or match.group(2)
        if name in INTERVALS:
            return INTERVALS[name]
        assert name in VARIABLES, f"{expr}: ${name} is not a variable of the dashboard"
        return "x"
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", value, expr)


def nodes(expr: str, kind: type) -> list:
    """The nodes of a kind in a query's syntax tree, depth first."""
    found = []
    promql_parser.walk(promql_parser.parse(substituted(expr)), pre_visit=lambda node: (
        found.append(node) if isinstance(node, kind) else None))
    return found


def selectors(expr: str):
    """The vector selectors of a query (with those inside range selectors)."""
    return nodes(expr, promql_parser.VectorSelector)


def names_of(selector) -> list[str]:
    """The metric names a selector picks: its name or an alternation on ``__name__``."""
    if selector.name is not None:
        return [selector.name]
    names = [m.value for m in selector.matchers.matchers if m.name == "__name__"]
    assert names and all(re.fullmatch(r"[a-z_]+(\|[a-z_]+)*", n) for n in names), (
        f"{selector}: a selector without a metric name, or a __name__ regex that is not a "
        "plain alternation of names")
    return [name for n in names for name in n.split("|")]


def used_names(dashboard) -> set[str]:
    exprs = [target["expr"] for _, target in targets(dashboard)]
    exprs += [re.fullmatch(r"label_values\((.*), *\w+\)", v["query"]).group(1)
              for v in dashboard["templating"]["list"]]
    return {name for expr in exprs for s in selectors(expr) for name in names_of(s)}


@pytest.fixture(scope="module")
def stream_families():
    """The families a stream's scrape shows once every metric has a value."""
    metrics = Metrics()
    for name in metrics.counters:
        metrics.add(name)
    metrics.add_states("gaia_dr3", np.array(STATES))
    metrics.set_position("alerts", 0, 10)
    metrics.set_lag("alerts", 0, 5)
    metrics.observe_latency(np.array([0.5]))
    return {family(s.name) for f in metrics.registry.collect() for s in f.samples}


def test_the_dashboard_is_importable(dashboard):
    assert dashboard["schemaVersion"] >= 36 and dashboard["uid"] and dashboard["title"]
    assert dashboard["id"] is None  # Grafana numbers it on import
    (source,) = dashboard["__inputs"]
    assert source == {**source, "name": "DS_PROMETHEUS", "type": "datasource",
                      "pluginId": "prometheus"}
    ids = [p["id"] for p in dashboard["panels"]] + [
        p["id"] for row in dashboard["panels"] for p in row.get("panels", [])]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    for panel in dashboard["panels"]:
        assert set(panel["gridPos"]) == {"h", "w", "x", "y"}
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24, panel["title"]
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert set(variables) == set(VARIABLES)
    for variable in variables.values():
        assert variable["type"] == "query" and variable["datasource"] == DATASOURCE
        assert variable["query"].startswith("label_values(")
        assert variable["includeAll"] and variable["allValue"] == ".*"


def test_every_panel_queries_the_imported_datasource(dashboard):
    panels = queried(dashboard)
    assert len(panels) >= 20
    for panel in panels:
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["targets"], f"{panel['title']}: no query"
        assert panel.get("description"), f"{panel['title']}: no description"
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE, panel["title"]
            assert target["expr"].strip(), panel["title"]


def test_every_query_is_valid_promql(dashboard):
    for panel, target in targets(dashboard):
        try:
            promql_parser.parse(substituted(target["expr"]))
        except ValueError as error:
            pytest.fail(f"{panel['title']} {target['refId']}: {error}: {target['expr']}")
    for variable in dashboard["templating"]["list"]:
        query = re.fullmatch(r"label_values\((.*), *(\w+)\)", variable["query"])
        assert query, f"${variable['name']}: {variable['query']}"
        promql_parser.parse(substituted(query.group(1)))


def test_quantiles_read_histogram_buckets_kept_by_le(dashboard):
    """histogram_quantile over the rate of _bucket series, summed without losing ``le``;
    a _bucket series nowhere else."""
    quantiles = 0
    for panel, target in targets(dashboard):
        calls = [call for call in nodes(target["expr"], promql_parser.Call)
                 if call.func.name == "histogram_quantile"]
        buckets = [s for s in selectors(target["expr"]) if (s.name or "").endswith("_bucket")]
        assert len(buckets) == len(calls), f"{panel['title']}: a _bucket series outside " \
            "histogram_quantile"
        for call in calls:
            quantiles += 1
            assert 0 < call.args[0].val < 1, panel["title"]
            inner = call.args[1]
            assert isinstance(inner, promql_parser.AggregateExpr), panel["title"]
            assert str(inner.modifier.type) == "AggModifierType.By", panel["title"]
            assert "le" in inner.modifier.labels, f"{panel['title']}: sum without le"
            assert isinstance(inner.expr, promql_parser.Call), panel["title"]
            assert inner.expr.func.name == "rate", panel["title"]
    assert quantiles >= 4  # service p50/p99, stream p50/p99


def test_the_hit_rate_panel_draws_a_threshold_line(dashboard):
    (panel,) = [p for p in queried(dashboard) if p["title"] == "Annotation hit rate per catalog"]
    defaults = panel["fieldConfig"]["defaults"]
    assert "line" in defaults["custom"]["thresholdsStyle"]["mode"]
    assert [step["value"] for step in defaults["thresholds"]["steps"]][1] > 0
    assert all('state="matched"' in t["expr"] for t in panel["targets"])


def test_states_are_the_annotation_states(dashboard):
    for panel, target in targets(dashboard):
        for selector in selectors(target["expr"]):
            for matcher in selector.matchers.matchers:
                if matcher.name == "state":
                    assert matcher.value in STATES, f"{panel['title']}: {matcher.value}"


def test_stream_panels_name_the_stream_metrics(dashboard, stream_families):
    used = {family(n) for n in used_names(dashboard)}
    ours = {n for n in used if n.startswith(("xmatch_stream_", "process_"))}
    assert ours <= stream_families, f"not exported by a stream: {sorted(ours - stream_families)}"
    shown = {n for n in stream_families if n.startswith("xmatch_stream_")}
    assert shown - used == set(NOT_SHOWN), "stream metrics without a panel"


def test_service_panels_name_the_service_metrics(dashboard, stream_families):
    observe = pytest.importorskip(
        "xmatch.service.observe", reason="the service metrics (xmatch.service.observe) are "
        "not in this tree")
    if not hasattr(observe, "METRIC_NAMES"):
        pytest.skip("xmatch.service.observe has no METRIC_NAMES yet")
    service = {family(n) for n in observe.METRIC_NAMES}
    used = {family(n) for n in used_names(dashboard)}
    unknown = used - service - stream_families
    assert not unknown, f"not exported by xmatch: {sorted(unknown)}"
    assert service <= used, f"service metrics without a panel: {sorted(service - used)}"
