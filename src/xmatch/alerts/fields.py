"""What an alert packet says about its detection, read from the packet's own schema.

:func:`layout_of` inspects a writer schema and finds where the survey keeps each field:
ZTF alerts (``ztf.alert``, schemas 1.x–4.02 and the 2018 packets without ``schemavsn``)
carry a ``candidate`` record with ``jd`` (UTC), ``ra``, ``dec``; Rubin alerts (lsst v3 to
v11.1, and brokers' re-serializations with their own record names) carry a ``diaSource``
record with ``midpointMjdTai`` (``midPointTai`` before v5), ``ra``, ``dec`` (``decl``
before v5), errors in degrees and a PSF flux in nJy. Field names are looked up in the
schema, never assumed from a version number.

Only the top-level fields up to the last one needed are decoded: an Avro record is its
fields one after another, so a writer schema cut after that field reads the packet's
prefix exactly and never touches the history or the cutouts behind it.

:func:`decode` turns packets into one Arrow table (:data:`ALERT_SCHEMA`), one row per alert;
a packet that cannot be read gets a row with its ``error`` and null fields.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Callable
from dataclasses import dataclass

import fastavro
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from xmatch.alerts.avro import PacketError, Schema, Schemas
from xmatch.errors import InputError
from xmatch.timescales import tai_mjd_of_utc_jd

ALERT_SCHEMA = pa.schema([
    ("alert_id", pa.int64()),
    ("object_id", pa.string()),
    ("survey", pa.string()),
    ("ra_deg", pa.float64()),
    ("dec_deg", pa.float64()),
    ("ra_err_arcsec", pa.float64()),
    ("dec_err_arcsec", pa.float64()),
    ("mjd_tai", pa.float64()),
    ("band", pa.string()),
    ("mag", pa.float64()),
    ("mag_err", pa.float64()),
    ("error", pa.string()),
])

ZTF_BANDS = {1: "g", 2: "r", 3: "i"}
#: AB magnitude of 1 nJy: Rubin fluxes are nJy, m = 31.4 - 2.5 log10(flux / nJy).
NJY_ZERO_POINT = 31.4
MJD_OF_JD = 2400000.5
MAG_PER_FLUX_FRACTION = 2.5 / math.log(10.0)


@dataclass(frozen=True)
class Layout:
    """Where one writer schema keeps the fields of an alert."""

    survey: str
    prefix: dict                 # parsed writer schema cut after the last field needed
    read: Callable[[dict], tuple]  # record -> (alert_id, object_id, ra, dec, ra_err, dec_err,
    #                                          time, band, mag, mag_err)
    time_scale: str              # "utc-jd" (ZTF jd) or "tai-mjd" (Rubin midpointMjdTai)


def layout_of(schema: Schema) -> Layout:
    """The layout of a writer schema (cached on the schema), or PacketError if the schema
    is neither a ZTF nor a Rubin alert."""
    layout = schema.derived.get("layout")
    if layout is None:
        layout = schema.derived["layout"] = _find_layout(schema)
    return layout


def _find_layout(schema: Schema) -> Layout:
    top = json.loads(fastavro.schema.to_parsing_canonical_form(schema.parsed))
    if not isinstance(top, dict) or top.get("type") != "record":
        raise PacketError(f"schema {schema.name!r} is not a record; not an alert schema")
    fields = {f["name"]: (i, f["type"]) for i, f in enumerate(top["fields"])}

    def record_fields(name):
        entry = fields.get(name)
        if entry is None:
            return None
        kind = entry[1]
        if isinstance(kind, list):  # a nullable record
            kind = next((k for k in kind if isinstance(k, dict)), None)
        if isinstance(kind, dict) and kind.get("type") == "record":
            return {f["name"] for f in kind["fields"]}
        return None

    def first(names, available):
        return next((n for n in names if n in available), None)

    candidate = record_fields("candidate")
    if candidate and {"jd", "ra", "dec"} <= candidate:
        top_id = "candid" if "candid" in fields else None
        needed = [n for n in ("objectId", "candid", "candidate") if n in fields]
        mag = "magpsf" if "magpsf" in candidate else None
        mag_err = "sigmapsf" if "sigmapsf" in candidate else None

        def read_ztf(record):
            c = record["candidate"]
            return (record[top_id] if top_id else c.get("candid"), record.get("objectId"),
                    c["ra"], c["dec"], None, None, c["jd"], ZTF_BANDS.get(c.get("fid")),
                    c.get(mag) if mag else None, c.get(mag_err) if mag_err else None)

        return Layout("ZTF", _prefix(top, needed), read_ztf, "utc-jd")

    source = record_fields("diaSource")
    if source:
        time = first(("midpointMjdTai", "midPointTai"), source)
        dec = first(("dec", "decl"), source)
        if time is None or "ra" not in source or dec is None:
            raise PacketError(f"schema {schema.name!r} has a diaSource without a midpoint "
                              "time, ra and dec; not a Rubin alert schema xmatch knows")
        top_id = first(("alertId", "diaSourceId"), fields)
        ra_err = "raErr" if "raErr" in source else None
        dec_err = first(("decErr", "declErr"), source)
        band = first(("band", "filterName"), source)
        flux = first(("psfFlux", "psFlux"), source)
        flux_err = first(("psfFluxErr", "psFluxErr"), source)
        needed = [n for n in (top_id, "diaSource") if n]

        def read_rubin(record):
            s = record["diaSource"]
            object_id = s.get("diaObjectId")
            return (record[top_id] if top_id else s.get("diaSourceId"),
                    None if object_id is None else str(object_id), s["ra"], s[dec],
                    _arcsec(s.get(ra_err)) if ra_err else None,
                    _arcsec(s.get(dec_err)) if dec_err else None, s[time],
                    s.get(band) if band else None,
                    _magnitude(s.get(flux)) if flux else None,
                    _magnitude_error(s.get(flux), s.get(flux_err)) if flux and flux_err
                    else None)

        return Layout("LSST", _prefix(top, needed), read_rubin, "tai-mjd")
    raise PacketError(f"schema {schema.name!r} is neither a ZTF alert (a 'candidate' record "
                      "with jd, ra, dec) nor a Rubin alert (a 'diaSource' record)")


def _prefix(top: dict, needed: list[str]) -> dict:
    last = max(i for i, f in enumerate(top["fields"]) if f["name"] in needed)
    return fastavro.parse_schema({**top, "fields": top["fields"][:last + 1]})


def _arcsec(degrees):
    return None if degrees is None else degrees * 3600.0


def _magnitude(flux_njy):
    if flux_njy is None or not flux_njy > 0:
        return None
    return NJY_ZERO_POINT - 2.5 * math.log10(flux_njy)


def _magnitude_error(flux_njy, flux_err_njy):
    """The magnitude error of a flux and its error (first order: 2.5 / ln 10 · σ_F / F)."""
    if flux_njy is None or flux_err_njy is None or not flux_njy > 0:
        return None
    return MAG_PER_FLUX_FRACTION * flux_err_njy / flux_njy


def read_alert(schema: Schema, body: bytes) -> tuple:
    """The fields of one alert (see :class:`Layout`), time still in its own scale."""
    layout = layout_of(schema)
    try:
        record = fastavro.schemaless_reader(io.BytesIO(body), layout.prefix, None)
        return layout.read(record) + (layout.time_scale,)
    except Exception as error:  # noqa: BLE001 (corrupt bytes raise anything in fastavro)
        raise PacketError(f"the alert does not decode with its schema {schema.name!r}: "
                          f"{type(error).__name__}: {error}") from None


def decode(packets: list[bytes], schemas: Schemas) -> pa.Table:
    """One row per packet (:data:`ALERT_SCHEMA`), each packet one alert; a packet that
    cannot be read gets a row with its ``error`` and the stream goes on."""
    return decode_split(packets, schemas)[0]


def decode_split(packets: list[bytes], schemas: Schemas, read=None
                 ) -> tuple[pa.Table, list[tuple[Schema, bytes] | None]]:
    """:func:`decode`, and each packet's ``(writer schema, schemaless body)`` (None for a
    packet that cannot be read): what annotated packets are built from. ``read(packet,
    schemas) -> (row, split)`` reads one packet (default :func:`packet_row`)."""
    read = read or packet_row
    rows, errors, splits = [], [], []
    for packet in packets:
        try:
            row, split = read(packet, schemas)
            rows.append(row)
            errors.append(None)
            splits.append(split)
        except PacketError as error:
            rows.append(None)
            errors.append(str(error))
            splits.append(None)
    return alert_table(rows, errors), splits


def packet_row(packet: bytes, schemas: Schemas) -> tuple[tuple, tuple[Schema, bytes]]:
    """The row of one packet for :func:`alert_table`, and its ``(schema, body)``;
    PacketError if it cannot be read."""
    alerts = schemas.split(packet)
    if len(alerts) != 1:
        raise PacketError(f"the container holds {len(alerts)} alerts; send one alert "
                          "per packet (xmatch.alerts.read_packets splits files)")
    schema, body = alerts[0]
    return (layout_of(schema).survey,) + read_alert(schema, body), alerts[0]


COMPACT_COLUMNS = {"alert_id": pa.int64(), "object_id": pa.string(), "survey": pa.string(),
                   "ra_deg": pa.float64(), "dec_deg": pa.float64(), "mjd_tai": pa.float64(),
                   "band": pa.string(), "mag": pa.float64(), "mag_err": pa.float64()}


def compact_alerts(table: pa.Table) -> pa.Table:
    """Compact alerts (ra_deg, dec_deg; optionally alert_id, object_id, survey, mjd_tai,
    band, mag, mag_err) as
    :data:`ALERT_SCHEMA`, without a per-alert Python step. Bad positions, and missing times
    in a batch where other alerts have one, become per-alert errors."""
    missing = [c for c in ("ra_deg", "dec_deg") if c not in table.column_names]
    if missing:
        raise InputError(f"compact alerts need columns ra_deg and dec_deg (missing: "
                         f"{', '.join(missing)}); alert_id, object_id, survey, mjd_tai, band, "
                         "mag and mag_err are optional")
    n = table.num_rows
    columns = {}
    for name, kind in COMPACT_COLUMNS.items():
        if name in table.column_names:
            try:
                columns[name] = table.column(name).cast(kind)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
                raise InputError(f"column {name} must be {kind}: {error}") from None
        else:
            columns[name] = pa.nulls(n, kind)
    ra = columns["ra_deg"].to_numpy(zero_copy_only=False).astype(np.float64)
    dec = columns["dec_deg"].to_numpy(zero_copy_only=False).astype(np.float64)
    times = columns["mjd_tai"]
    errors = np.full(n, None, dtype=object)
    if 0 < times.null_count < n:
        errors[pc.is_null(times).to_numpy(zero_copy_only=False)] = (
            "the alert has no mjd_tai while others of its batch have one; give every alert "
            "of a batch a time, or none")
    bad = _position_errors(ra, dec, errors)
    nan = pa.nulls(n, pa.float64())
    return pa.table([
        columns["alert_id"], columns["object_id"], columns["survey"],
        pa.array(np.where(bad, np.nan, ra % 360.0), pa.float64(), mask=bad),
        pa.array(np.where(bad, np.nan, dec), pa.float64(), mask=bad), nan, nan,
        times, columns["band"], columns["mag"], columns["mag_err"],
        pa.array(errors, pa.string()),
    ], schema=ALERT_SCHEMA)


def _position_errors(ra: np.ndarray, dec: np.ndarray, errors: np.ndarray) -> np.ndarray:
    """Mark alerts without a usable position in ``errors`` (first error kept); returns the
    mask of bad positions."""
    with np.errstate(invalid="ignore"):
        bad = ~((ra >= 0.0) & (ra <= 360.0) & (np.abs(dec) <= 90.0))  # NaN is bad too
    for i in np.flatnonzero(bad):
        if errors[i] is None:
            errors[i] = (f"the alert has no usable position (ra = {float(ra[i])!r}, dec = "
                         f"{float(dec[i])!r}); it needs 0 <= ra <= 360 and -90 <= dec <= 90 "
                         "deg")
    return bad


def alert_table(rows: list, errors: list) -> pa.Table:
    """Rows of ``(survey, alert_id, object_id, ra, dec, ra_err, dec_err, time, band, mag,
    mag_err, time_scale)`` (None for unreadable packets) as :data:`ALERT_SCHEMA`, with times
    converted to TAI MJD and bad positions marked as errors."""
    n = len(rows)
    columns = list(zip(*[r if r is not None else (None,) * 12 for r in rows], strict=True)) \
        if n else [()] * 12
    (survey, alert_id, object_id, ra, dec, ra_err, dec_err, time, band, mag, mag_err,
     scale) = columns
    ra_deg = _floats(ra)
    dec_deg = _floats(dec)
    mjd_tai = _mjd_tai(_floats(time), np.array(scale, dtype=object))
    errors = np.array(errors, dtype=object)
    bad = _position_errors(ra_deg, dec_deg, errors)
    return pa.table([
        pa.array([int(a) if a is not None else None for a in alert_id], pa.int64()),
        pa.array([str(o) if o is not None else None for o in object_id], pa.string()),
        pa.array(survey, pa.string()),
        pa.array(np.where(bad, np.nan, ra_deg % 360.0), pa.float64(), mask=bad),
        pa.array(np.where(bad, np.nan, dec_deg), pa.float64(), mask=bad),
        pa.array(_floats(ra_err), pa.float64(), from_pandas=True),
        pa.array(_floats(dec_err), pa.float64(), from_pandas=True),
        pa.array(mjd_tai, pa.float64(), from_pandas=True),
        pa.array(band, pa.string()),
        pa.array(_floats(mag), pa.float64(), from_pandas=True),
        pa.array(_floats(mag_err), pa.float64(), from_pandas=True),
        pa.array(errors, pa.string()),
    ], schema=ALERT_SCHEMA)


def _floats(values) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def _mjd_tai(times: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """Times in their own scale to TAI MJD: ZTF's jd is UTC (leap seconds from astropy)."""
    out = times.copy()
    utc = (scales == "utc-jd") & np.isfinite(times)
    if utc.any():
        out[utc] = tai_mjd_of_utc_jd(times[utc])
    return out
