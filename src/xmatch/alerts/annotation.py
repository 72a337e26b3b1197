"""The annotation of alerts with their counterparts: one row per alert, versioned.

The annotation table (what the ``Annotate`` RPC answers and what Parquet output holds) has
the alert's own fields (:data:`~xmatch.alerts.fields.ALERT_SCHEMA` less its position
errors) and, for every catalog ``C`` asked for, in the order asked:

``C_state``
    ``matched`` (sources within the radius), ``no_match`` (none, where the catalog has
    sources), ``outside_coverage`` (none, and the alert lies outside the catalog's coverage
    MOC) or ``failed`` (the catalog could not answer for the alert: ``C_failure`` says why);
``C_failure``
    why the state is ``failed`` (the alert's own ``error``, or, for ``sso``, the night or
    site without an ephemeris cache); null otherwise;
``C_count``
    sources within the radius (null when the state is ``failed``);
``C_<id column>``, ``C_separation_arcsec``, ``C_position_angle_deg``, ``C_<key column>``...
    of the nearest one (null when there is none);
``C_matches``
    with ``all_matches``: every source within the radius, closest first, as a list of
    structs with the same fields.

The catalog ``sso`` stands for the known solar-system objects: each alert is matched with
the nightly ephemeris cache of its site (:data:`SURVEY_OBSERVATORIES`) whose night holds the
alert's time, with the objects placed where they are at that instant.

The table's schema metadata ``xmatch.annotation`` (JSON) holds the version, and for each
catalog its name, radius, id column and key columns. The same content as a nested record
(:func:`annotation_records`, :data:`AVRO_ANNOTATION`) is what annotated Avro packets carry
in their ``xmatch`` field and what JSON lines hold. See docs/alerts.md.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from xmatch.errors import InputError
from xmatch.index import POSITION_ANGLE_COLUMN, QUERY_COLUMN, RANK_COLUMN, SEPARATION_COLUMN

#: Version of the annotation record; a change that is not backward compatible bumps the
#: major number.
ANNOTATION_VERSION = "2.2"
METADATA_KEY = b"xmatch.annotation"
ALERT_COLUMNS = ("alert_id", "object_id", "survey", "ra_deg", "dec_deg", "mjd_tai", "band",
                 "mag", "mag_err", "error")

#: What a catalog says about an alert. "no_match" and "failed" never look alike: a failed
#: catalog has no count, and says why.
MATCHED, NO_MATCH, OUTSIDE_COVERAGE, FAILED = STATES = (
    "matched", "no_match", "outside_coverage", "failed")

#: What the alert history says of an alert (xmatch.history.store.STATES).
HISTORY_STATES = ("new", "known", "duplicate", "failed")
HISTORY_PREFIX = "history_"
WATCH_HITS_COLUMN = "watch_hits"

#: The annotation catalog of known solar-system objects, and what a match of it carries.
SSO_CATALOG = "sso"
SSO_KEY_COLUMNS = ("name", "kind", "v_mag", "distance_au", "rate_ra_arcsec_h",
                   "rate_dec_arcsec_h")
#: The MPC site of each survey's alerts: ZTF at Palomar, LSST at Cerro Pachon (Rubin).
SURVEY_OBSERVATORIES = {"ZTF": "I41", "LSST": "X05"}

#: The ``xmatch`` record of an annotated Avro packet (appended as the last field of the
#: alert record, as ``["null", Annotation]`` with default null).
AVRO_ANNOTATION = {
    "type": "record", "name": "Annotation", "namespace": "xmatch.v1",
    "doc": f"Counterparts of the alert in each catalog (xmatch annotation "
           f"{ANNOTATION_VERSION}, see docs/alerts.md)",
    "fields": [
        {"name": "schema_version", "type": "string"},
        {"name": "error", "type": ["null", "string"], "default": None},
        {"name": "mjd_tai", "type": ["null", "double"], "default": None},
        {"name": "catalogs", "type": {"type": "array", "items": {
            "type": "record", "name": "CatalogAnnotation", "fields": [
                {"name": "catalog", "type": "string"},
                {"name": "radius_arcsec", "type": "double"},
                {"name": "state", "type": {"type": "enum", "name": "MatchState",
                                           "symbols": list(STATES)}},
                {"name": "failure", "type": ["null", "string"], "default": None},
                {"name": "count", "type": ["null", "int"], "default": None},
                {"name": "nearest", "type": ["null", {
                    "type": "record", "name": "Counterpart", "fields": [
                        {"name": "id", "type": ["null", "string"]},
                        {"name": "separation_arcsec", "type": "double"},
                        {"name": "position_angle_deg", "type": "double"},
                        {"name": "columns", "type": {"type": "map", "values": [
                            "null", "boolean", "long", "double", "string"]}},
                    ]}], "default": None},
                {"name": "matches", "type": {"type": "array", "items": "Counterpart"},
                 "default": []},
            ]}}},
        {"name": "context", "type": ["null", {
            "type": "record", "name": "Context",
            "doc": "The alert's context and class (docs/context.md); null when not asked for",
            "fields": [
                {"name": "class", "type": "string"},
                {"name": "reason", "type": ["null", "string"], "default": None},
                {"name": "evidence", "type": ["null", {
                    "type": "record", "name": "Evidence", "fields": [
                        {"name": "layer", "type": "string"},
                        {"name": "catalog", "type": "string"},
                        {"name": "id", "type": ["null", "string"]},
                        {"name": "separation_arcsec", "type": "double"},
                        {"name": "distance", "type": "double"},
                    ]}], "default": None},
                {"name": "layers", "type": {"type": "array", "items": {
                    "type": "record", "name": "ContextLayer", "fields": [
                        {"name": "layer", "type": "string"},
                        {"name": "kind", "type": "string"},
                        {"name": "catalog", "type": "string"},
                        {"name": "state", "type": "MatchState"},
                        {"name": "failure", "type": ["null", "string"], "default": None},
                        {"name": "count", "type": ["null", "int"], "default": None},
                        {"name": "nearest", "type": ["null", {
                            "type": "record", "name": "ContextCandidate", "fields": [
                                {"name": "id", "type": ["null", "string"]},
                                {"name": "separation_arcsec", "type": "double"},
                                {"name": "distance", "type": "double"},
                                {"name": "columns", "type": {"type": "map", "values": [
                                    "null", "boolean", "long", "double", "string"]}},
                            ]}], "default": None},
                    ]}}},
            ]}], "default": None},
        {"name": "history", "type": ["null", {
            "type": "record", "name": "History",
            "doc": "The alert's object in the alert history (docs/history.md); null when "
                   "not asked for",
            "fields": [
                {"name": "state", "type": {"type": "enum", "name": "HistoryState",
                                           "symbols": list(HISTORY_STATES)}},
                {"name": "failure", "type": ["null", "string"], "default": None},
                {"name": "object_id", "type": ["null", "long"], "default": None},
                {"name": "separation_arcsec", "type": ["null", "double"], "default": None},
                {"name": "detections", "type": ["null", "int"], "default": None},
                {"name": "first_mjd_tai", "type": ["null", "double"], "default": None},
                {"name": "last_mjd_tai", "type": ["null", "double"], "default": None},
                {"name": "surveys", "type": ["null", "string"], "default": None},
                {"name": "peak_mag", "type": ["null", "double"], "default": None},
                {"name": "peak_band", "type": ["null", "string"], "default": None},
                {"name": "previous_mag", "type": ["null", "double"], "default": None},
                {"name": "previous_mjd_tai", "type": ["null", "double"], "default": None},
                {"name": "rate_mag_per_day", "type": ["null", "double"], "default": None},
            ]}], "default": None},
        {"name": "watch_hits", "type": ["null", {"type": "array", "items": {
            "type": "record", "name": "WatchHit", "fields": [
                {"name": "watch", "type": "string"},
                {"name": "kind", "type": "string"},
                {"name": "entry", "type": ["null", "long"], "default": None},
                {"name": "entry_name", "type": ["null", "string"], "default": None},
                {"name": "separation_arcsec", "type": ["null", "double"], "default": None},
            ]}}], "default": None},
    ],
}

#: A record of the compact annotation topic: the alert's identity and position, and its
#: ``xmatch`` annotation (for consumers that do not want the packet back).
AVRO_ALERT_ANNOTATION = {
    "type": "record", "name": "AlertAnnotation", "namespace": "xmatch.v1",
    "fields": [
        {"name": "alert_id", "type": ["null", "long"]},
        {"name": "object_id", "type": ["null", "string"]},
        {"name": "survey", "type": ["null", "string"]},
        {"name": "ra_deg", "type": ["null", "double"]},
        {"name": "dec_deg", "type": ["null", "double"]},
        {"name": "xmatch", "type": AVRO_ANNOTATION},
    ],
}


@dataclass(frozen=True)
class Target:
    """One catalog an alert is annotated with."""

    name: str
    radius_arcsec: float
    id_column: str
    key_columns: list[str] = field(default_factory=list)

    @property
    def columns(self) -> list[str]:
        """The catalog columns a match needs."""
        return [self.id_column, *[c for c in self.key_columns if c != self.id_column]]


def annotation_table(alerts: pa.Table, targets: list[Target], matches: list[pa.Table],
                     all_matches: bool, failures: dict[str, np.ndarray] | None = None,
                     outside: dict[str, np.ndarray] | None = None,
                     context: pa.Table | None = None, context_layers: list | None = None,
                     history: pa.Table | None = None, watch_hits: pa.Array | None = None
                     ) -> pa.Table:
    """The annotation of ``alerts`` (rows of ALERT_SCHEMA) from one left join per target
    over the alerts without an error (``query_index`` counting those alerts).

    ``failures``: for a target that could not answer every usable alert, why not (an
    object array over the usable alerts, None where it answered). ``outside``: for a target
    with a coverage, the usable alerts outside it (a boolean array). ``context``: the
    ``context_`` columns of the usable alerts, and ``context_layers`` (name, kind, catalog)
    of its layers. ``history``: the ``history_`` columns of every alert
    (:data:`xmatch.history.store.HISTORY_SCHEMA`); ``watch_hits``: every alert's hits in
    the watchlists and watchmaps (a list of structs)."""
    n = alerts.num_rows
    usable = pc.is_null(alerts.column("error")).to_numpy(zero_copy_only=False)
    slot = np.full(n, -1, np.int64)          # alert -> its position among the usable
    slot[usable] = np.arange(int(usable.sum()))
    columns = {name: alerts.column(name) for name in ALERT_COLUMNS}
    alert_errors = alerts.column("error").to_numpy(zero_copy_only=False)
    for target, table in zip(targets, matches, strict=True):
        failure = alert_errors.copy()       # an unreadable alert fails every catalog
        if failures and target.name in failures:
            failure[usable] = failures[target.name]
        away = np.zeros(n, bool)
        if outside and target.name in outside:
            away[usable] = outside[target.name]
        columns.update(_catalog_columns(target, table, slot, usable, failure, away,
                                        all_matches))
    info = {"version": ANNOTATION_VERSION, "catalogs": [asdict(t) for t in targets]}
    if context is not None:
        columns.update(_context_columns(context, slot, alert_errors))
        info["context_layers"] = [list(layer) for layer in context_layers]
    if history is not None:
        columns.update({name: history.column(name) for name in history.column_names})
        info["history"] = True
    if watch_hits is not None:
        columns[WATCH_HITS_COLUMN] = watch_hits
        info["watches"] = True
    metadata = {METADATA_KEY: json.dumps(info)}
    return pa.table(columns).replace_schema_metadata(metadata)


def _context_columns(context: pa.Table, slot: np.ndarray, alert_errors: np.ndarray) -> dict:
    """The context columns of the usable alerts spread over every alert: an alert that
    could not be read has every layer failed (with its error) and the class unclear."""
    if np.all(slot >= 0):  # every alert was read: the columns as they are
        return {name: context.column(name) for name in context.column_names}
    indices = pa.array(slot, pa.int64(), mask=slot < 0)
    unread = pa.array(slot < 0)
    out = {}
    for name in context.column_names:
        column = context.column(name).take(indices)
        if name.endswith("_state"):
            column = pc.if_else(unread, pa.scalar(FAILED), column)
        elif name.endswith("_failure") or name == "context_class_reason":
            column = pc.if_else(unread, pa.array(alert_errors, pa.string()), column)
        elif name == "context_class":
            column = pc.if_else(unread, pa.scalar("unclear"), column)
        out[name] = column
    return out


def _catalog_columns(target: Target, table: pa.Table, slot: np.ndarray, usable: np.ndarray,
                     failure: np.ndarray, outside: np.ndarray, all_matches: bool) -> dict:
    prefix = f"{target.name}_"
    failed = np.not_equal(failure, None)
    found = pc.is_valid(table.column(RANK_COLUMN)).to_numpy(zero_copy_only=False)
    query = table.column(QUERY_COLUMN).to_numpy()
    n_usable = int(usable.sum())
    # One more slot than usable alerts: unusable ones (slot -1) read the last, which stays
    # empty (also when no alert of the batch is usable).
    counts = np.bincount(query[found], minlength=n_usable + 1).astype(np.int32)
    # The nearest match of each usable alert (the left join is grouped by query, closest
    # first), then spread over every alert with nulls for errors and misses.
    nearest_row = np.full(n_usable + 1, -1, np.int64)
    first = found & (table.column(RANK_COLUMN).fill_null(0).to_numpy() == 1)
    nearest_row[query[first]] = np.flatnonzero(first)
    own = np.where(slot >= 0, slot, n_usable)
    take = nearest_row[own]
    indices = pa.array(take, pa.int64(), mask=take < 0)
    payload = _payload(target)
    per_alert = np.where(usable, counts[own], 0)
    state = np.where(failed, FAILED, np.where(
        per_alert > 0, MATCHED, np.where(outside, OUTSIDE_COVERAGE, NO_MATCH)))
    out = {f"{prefix}state": pa.array(state, pa.string()),
           f"{prefix}failure": pa.array(failure, pa.string()),
           f"{prefix}count": pa.array(per_alert, pa.int32(), mask=failed)}
    for name in payload:
        out[prefix + name] = table.column(name).take(indices)
    if all_matches:
        rows = np.flatnonzero(found)
        offsets = np.r_[0, np.cumsum(per_alert)].astype(np.int32)
        structs = pa.StructArray.from_arrays(
            [pa.concat_arrays(table.column(c).take(rows).chunks) if table.num_rows else
             pa.array([], table.schema.field(c).type) for c in payload], names=payload)
        out[f"{prefix}matches"] = pa.ListArray.from_arrays(
            pa.array(offsets, pa.int32()), structs, mask=pa.array(failed))
    return out


def annotation_info(table: pa.Table) -> dict:
    """The ``xmatch.annotation`` metadata of an annotation table: version and targets."""
    metadata = table.schema.metadata or {}
    if METADATA_KEY not in metadata:
        raise InputError("the table carries no xmatch.annotation metadata")
    info = json.loads(metadata[METADATA_KEY])
    info["catalogs"] = [Target(**t) for t in info["catalogs"]]
    info.setdefault("context_layers", None)
    info.setdefault("history", False)
    info.setdefault("watches", False)
    return info


def annotation_records(table: pa.Table) -> list[dict]:
    """The ``xmatch`` record (:data:`AVRO_ANNOTATION`) of each alert of an annotation
    table, as dictionaries (what fastavro writes and JSON lines hold)."""
    info = annotation_info(table)
    catalogs = []  # per target: its name, radius and columns as Python lists
    for target in info["catalogs"]:
        prefix = f"{target.name}_"
        matches = (table.column(prefix + "matches").to_pylist()
                   if prefix + "matches" in table.column_names else None)
        catalogs.append((target, *(table.column(prefix + name).to_pylist()
                                   for name in ("state", "failure", "count")),
                         {c: table.column(prefix + c).to_pylist() for c in _payload(target)},
                         matches))
    errors = table.column("error").to_pylist()
    times = finite_floats(table.column("mjd_tai"))
    contexts = (_context_records(table, info["context_layers"])
                if info["context_layers"] is not None else [None] * table.num_rows)
    histories = (_history_records(table) if info["history"]
                 else [None] * table.num_rows)
    hits = (table.column(WATCH_HITS_COLUMN).to_pylist() if info["watches"]
            else [None] * table.num_rows)
    records = []
    for row in range(table.num_rows):
        record = []
        for target, states, failures, counts, nearest, matches in catalogs:
            record.append({
                "catalog": target.name, "radius_arcsec": target.radius_arcsec,
                "state": states[row], "failure": failures[row], "count": counts[row],
                "nearest": _counterpart(target, {c: v[row] for c, v in nearest.items()})
                if nearest[SEPARATION_COLUMN][row] is not None else None,
                "matches": [_counterpart(target, m) for m in matches[row] or ()]
                if matches is not None else []})
        records.append({"schema_version": info["version"], "error": errors[row],
                        "mjd_tai": times[row], "catalogs": record, "context": contexts[row],
                        "history": histories[row], "watch_hits": hits[row]})
    return records


def _history_records(table: pa.Table) -> list[dict]:
    """The ``history`` record (:data:`AVRO_ANNOTATION`) of each alert."""
    columns = {name[len(HISTORY_PREFIX):]: (finite_floats(table.column(name))
                                            if pa.types.is_floating(table.column(name).type)
                                            else table.column(name).to_pylist())
               for name in table.column_names if name.startswith(HISTORY_PREFIX)}
    return [{name: values[row] for name, values in columns.items()}
            for row in range(table.num_rows)]


def _context_records(table: pa.Table, layers: list) -> list[dict]:
    """The ``context`` record (:data:`AVRO_ANNOTATION`) of each alert of an annotation
    table with context columns."""
    from xmatch.context.engine import EXTRA_COLUMNS

    def values(name):
        return table.column("context_" + name).to_pylist()

    per_layer = []
    for name, kind, catalog in layers:
        fields = {c: values(f"{name}_{c}") for c in ("state", "failure", "count", "id",
                                                     SEPARATION_COLUMN, "distance")}
        extra = {c: values(f"{name}_{c}") for c in EXTRA_COLUMNS[kind]}
        per_layer.append((name, kind, catalog, fields, extra))
    klass, reason = values("class"), values("class_reason")
    evidence = {c: values(f"class_{c}") for c in ("layer", "catalog", "id",
                                                   SEPARATION_COLUMN, "distance")}
    records = []
    for row in range(table.num_rows):
        layer_records = []
        for name, kind, catalog, fields, extra in per_layer:
            nearest = None
            if fields[SEPARATION_COLUMN][row] is not None:
                nearest = {"id": fields["id"][row],
                           "separation_arcsec": fields[SEPARATION_COLUMN][row],
                           "distance": fields["distance"][row],
                           "columns": {c: _plain(v[row]) for c, v in extra.items()}}
            layer_records.append({"layer": name, "kind": kind, "catalog": catalog,
                                  "state": fields["state"][row],
                                  "failure": fields["failure"][row],
                                  "count": fields["count"][row], "nearest": nearest})
        decided = evidence["layer"][row] is not None and evidence["id"][row] is not None
        records.append({"class": klass[row], "reason": reason[row], "layers": layer_records,
                        "evidence": {c: evidence[c][row] for c in evidence} if decided
                        else None})
    return records


def finite_floats(column) -> list:
    """A float column as a list, NaN as None."""
    return pc.if_else(pc.is_nan(column), pa.scalar(None, column.type), column).to_pylist()


def _payload(target: Target) -> list[str]:
    return [target.id_column, SEPARATION_COLUMN, POSITION_ANGLE_COLUMN,
            *[c for c in target.key_columns if c != target.id_column]]


def _counterpart(target: Target, values: dict) -> dict | None:
    if values[SEPARATION_COLUMN] is None:
        return None
    identifier = values[target.id_column]
    return {"id": None if identifier is None else str(identifier),
            "separation_arcsec": values[SEPARATION_COLUMN],
            "position_angle_deg": values[POSITION_ANGLE_COLUMN],
            "columns": {c: _plain(values[c]) for c in target.key_columns
                        if c != target.id_column}}


def _plain(value):
    """A key column value as an Avro map value: NaN becomes null."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    return str(value)
