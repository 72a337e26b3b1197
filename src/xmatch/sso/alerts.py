"""Solar-system objects in Rubin alert packets: the orbits they carry and the observations
Rubin associated with known objects.

Alert schema v9 carries ``MPCORB`` and ``ssSource``, v10 and later ``mpc_orbits`` and
``ssSource``. :func:`orbits_from_alerts` gives the orbit table of
:data:`xmatch.sso.mpc.readers.ORBIT_SCHEMA`, as the MPC's files do;
:func:`alert_sso_observations` gives one row per associated detection
(:data:`OBSERVATION_SCHEMA`).
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable

import numpy as np
import pyarrow as pa

from xmatch.sso.mpc.designations import (
    ASTEROID_DESIGNATION,
    COMET_DESIGNATION,
    pack_provisional,
    unpack_designation,
)
from xmatch.sso.mpc.readers import (
    DEFAULT_G,
    GM_SUN,
    ORBIT_SCHEMA,
    empty_orbits,
    orbit_table,
    tp_from_mean_anomaly,
)

#: Speed of light in AU/day (c = 299792.458 km/s, au = 149597870.7 km).
C_AU_PER_DAY = 299792.458 * 86400.0 / 149597870.7
#: TT - TAI, seconds.
TT_MINUS_TAI_S = 32.184
KM_S_TO_AU_DAY = 86400.0 / 149597870.7

OBSERVATION_SCHEMA = pa.schema([
    pa.field("alert_id", pa.int64()),
    pa.field("designation", pa.string()),
    pa.field("ss_object_id", pa.int64()),
    pa.field("ra_deg", pa.float64()),
    pa.field("dec_deg", pa.float64()),
    pa.field("mjd_tai", pa.float64()),
    pa.field("residual_ra_arcsec", pa.float64()),
    pa.field("residual_dec_arcsec", pa.float64()),
    pa.field("source", pa.string()),
])
"""One row per alert associated with a solar-system object (:func:`alert_sso_observations`).

``residual_ra_arcsec``/``residual_dec_arcsec`` are observed minus predicted: schema v9
``residualRa``/``residualDec`` (published in degrees, converted), v10+
``ephOffsetRa``/``ephOffsetDec`` (arcsec, R.A. offset including cos(dec)); NaN when absent.
"""


def _first(record: dict | None, *names):
    if not record:
        return None
    for name in names:
        value = record.get(name)
        if value is not None:
            return value
    return None


def _sso_alerts(inputs: Iterable):
    """(origin, alert record) of every alert naming a solar-system object."""
    import fastavro

    from xmatch.alerts.avro import Schemas
    from xmatch.alerts.sources import read_packets

    schemas = Schemas()
    for packet in read_packets(inputs, schemas):
        for schema, body in schemas.split(packet.data):
            record = fastavro.schemaless_reader(io.BytesIO(body), schema.parsed, None)
            orbit = record.get("MPCORB") or record.get("mpc_orbits")
            if record.get("ssSource") or orbit:
                yield packet.origin, record


def _nan_if_none(value) -> float:
    return math.nan if value is None else float(value)


def _coalesce(*values):
    return next((value for value in values if value is not None), None)


def _readable(designation: str) -> str | None:
    try:
        return unpack_designation(designation)
    except ValueError:  # a form unpack_designation does not know: keep it packed
        return None


def _designation_of(record: dict) -> str | None:
    """Packed designation: the orbit record's, else ssSource's (unpacked in v10+), else the
    one Rubin's v9 ``ssObjectId`` carries as ASCII bytes (``b'\\0K13L24L'``)."""
    orbit = record.get("MPCORB") or record.get("mpc_orbits")
    packed = _first(orbit, "mpcDesignation", "packed_primary_provisional_designation")
    if packed:
        return packed.strip()
    source = record.get("ssSource") or {}
    readable = _first(source, "designation") or _first(orbit, "designation")
    if readable:
        return pack_provisional(readable)
    object_id = _coalesce(_first(source, "ssObjectId"),
                          _first(record.get("diaSource"), "ssObjectId"))
    if object_id and object_id > 0:
        text = object_id.to_bytes(8, "big").lstrip(b"\0")
        if text.isascii() and ASTEROID_DESIGNATION.match(text.decode()):
            return text.decode()
    return None


def _elements_of(orbit: dict | None) -> dict | None:
    """Cometary elements from a v9 ``MPCORB`` or v10+ ``mpc_orbits`` record, or None when
    they are incomplete (Rubin v9 alerts carry the record with every element null)."""
    e = _first(orbit, "e")
    inc = _first(orbit, "incl", "i")
    node = _first(orbit, "node")
    argperi = _first(orbit, "peri", "argperi")
    epoch = _first(orbit, "epoch", "epoch_mjd")  # MJD, .0 TT
    q, a = _first(orbit, "q"), _first(orbit, "a")
    if None in (e, inc, node, argperi, epoch) or e < 0:
        return None
    if q is None and a is not None and e < 1:
        q = a * (1.0 - e)
    if q is None or q <= 0:
        return None
    mean_anomaly = _first(orbit, "M", "mean_anomaly")
    tp = _first(orbit, "t_p")  # v9: MJD of the pericentric passage
    if tp is None and mean_anomaly is not None and e != 1:
        tp = float(tp_from_mean_anomaly(epoch, mean_anomaly, q / (1.0 - e)))
    if tp is None and _first(orbit, "peri_time") is not None:
        tp = _peri_time_to_tp(orbit["peri_time"], epoch)
    if tp is None:
        return None
    return {"epoch_mjd_tt": epoch, "q_au": q, "e": e, "inc_deg": inc, "node_deg": node,
            "argperi_deg": argperi, "tp_mjd_tt": tp}


def _peri_time_to_tp(peri_time: float, epoch: float) -> float:
    """v10+ ``peri_time``, documented as "time from pericenter passage [days]", while the
    MPC's own table of that name holds the MJD of the passage. Only used without
    ``mean_anomaly``: an MJD-like value (1900-2130) near the epoch is taken as the passage
    itself, anything else as the time elapsed since it."""
    if 15000.0 < peri_time < 100000.0 and abs(peri_time - epoch) < 40000.0:
        return peri_time
    return epoch - peri_time


def _state_of(record: dict) -> tuple[list[float], float] | None:
    """Heliocentric ICRS state (AU, AU/day) from ssSource and its epoch (TT MJD).

    The state is "at the emit time": the observation time (TAI -> TT) less the light time
    over the topocentric distance. v9 gives velocities in AU/day; v10+ in km/s (Rubin's
    data model, lsst/sdm_schemas sso_base.yaml: the Avro schema itself states no unit).
    """
    source = record.get("ssSource") or {}
    if source.get("heliocentricX") is not None:
        names, velocity_unit = ("heliocentricX", "heliocentricY", "heliocentricZ",
                                "heliocentricVX", "heliocentricVY", "heliocentricVZ"), 1.0
        distance = source.get("topocentricDist")
    elif source.get("helio_x") is not None:
        names, velocity_unit = ("helio_x", "helio_y", "helio_z", "helio_vx", "helio_vy",
                                "helio_vz"), KM_S_TO_AU_DAY
        distance = source.get("topoRange")
    else:
        return None
    values = [source.get(name) for name in names]
    observed = _first(record.get("diaSource"), "midpointMjdTai")
    if None in values or observed is None:
        return None
    state = [float(v) for v in values[:3]] + [float(v) * velocity_unit for v in values[3:]]
    epoch = observed + TT_MINUS_TAI_S / 86400.0
    if distance is not None:
        epoch -= distance / C_AU_PER_DAY
    return state, epoch


def orbits_from_alerts(inputs: Iterable) -> pa.Table:
    """Orbits of the solar-system objects Rubin alert packets name, one row per object.

    The orbit record (v9 ``MPCORB``, v10+ ``mpc_orbits``) is used when its elements are
    complete; otherwise the heliocentric state of ``ssSource`` is turned into elements
    (:func:`xmatch.kernels.orbits.state_to_elements`, two-body about the Sun) at the
    emission time of the observed light, which becomes the epoch.

    Parameters
    ----------
    inputs : iterable
        What :func:`xmatch.alerts.sources.read_packets` takes: ``.avro`` files, directories,
        tarballs, or packet bytes.

    Returns
    -------
    pyarrow.Table
        :data:`~xmatch.sso.mpc.readers.ORBIT_SCHEMA`; one row per designation, from its
        first alert that yields an orbit, in input order; ``source`` is that alert's
        packet.
    """
    rows: dict[str, dict] = {}
    pending: list[tuple[str, list[float], float]] = []
    for origin, record in _sso_alerts(inputs):
        designation = _designation_of(record)
        if designation is None or designation in rows:
            continue
        orbit = record.get("MPCORB") or record.get("mpc_orbits")
        elements = _elements_of(orbit)
        if elements is None:
            state = _state_of(record)
            if state is None:
                continue
            pending.append((designation, *state))
            elements = {}
        comet = bool(COMET_DESIGNATION.match(designation))
        g = _first(orbit, "g")
        rows[designation] = {
            "designation": designation, "name": _readable(designation),
            **elements,
            "h_mag": _nan_if_none(_first(orbit, "mpcH", "h")),
            "g_slope": math.nan if comet else (g if g is not None else DEFAULT_G),
            "comet_k": math.nan, "kind": "comet" if comet else "asteroid",
            "source": origin,
        }
    if pending:
        from xmatch.kernels.orbits import state_to_elements

        states = np.array([state for _, state, _ in pending], dtype=np.float64)
        epochs = np.array([epoch for _, _, epoch in pending], dtype=np.float64)
        elements = state_to_elements(states, epochs, GM_SUN)
        for k, (designation, _, epoch) in enumerate(pending):
            rows[designation].update(
                epoch_mjd_tt=epoch, q_au=elements["q_au"][k], e=elements["e"][k],
                inc_deg=elements["inc_deg"][k], node_deg=elements["node_deg"][k],
                argperi_deg=elements["argperi_deg"][k], tp_mjd_tt=elements["tp_mjd"][k])
    if not rows:
        return empty_orbits()
    values = list(rows.values())
    columns = {field.name: [row[field.name] for row in values] for field in ORBIT_SCHEMA
               if field.name != "synthetic"}
    return orbit_table({**columns, "synthetic": False}, len(values))


def alert_sso_observations(inputs: Iterable) -> pa.Table:
    """The observations of solar-system objects in Rubin alert packets, one row per alert.

    Parameters
    ----------
    inputs : iterable
        As for :func:`orbits_from_alerts`.

    Returns
    -------
    pyarrow.Table
        :data:`OBSERVATION_SCHEMA`: ``alert_id`` (``diaSourceId``), the packed designation
        (null when the alert gives none), ``ss_object_id``, the observed position and TAI
        time of ``diaSource``, and the residuals against the ephemeris Rubin associated.
    """
    rows = []
    for origin, record in _sso_alerts(inputs):
        dia = record.get("diaSource") or {}
        source = record.get("ssSource") or {}
        if "residualRa" in source:
            scale, ra_name, dec_name = 3600.0, "residualRa", "residualDec"  # v9: degrees
        else:
            scale, ra_name, dec_name = 1.0, "ephOffsetRa", "ephOffsetDec"  # v10+: arcsec
        residual_ra, residual_dec = source.get(ra_name), source.get(dec_name)
        rows.append({
            "alert_id": _coalesce(_first(record, "diaSourceId"), _first(dia, "diaSourceId")),
            "designation": _designation_of(record),
            "ss_object_id": _coalesce(_first(source, "ssObjectId"), _first(dia, "ssObjectId")),
            "ra_deg": dia.get("ra"), "dec_deg": dia.get("dec"),
            "mjd_tai": dia.get("midpointMjdTai"),
            "residual_ra_arcsec": math.nan if residual_ra is None else residual_ra * scale,
            "residual_dec_arcsec": math.nan if residual_dec is None else residual_dec * scale,
            "source": origin,
        })
    return pa.Table.from_pylist(rows, schema=OBSERVATION_SCHEMA)

