"""IGWN gravitational-wave notices: the alerts LIGO, Virgo and KAGRA publish on GCN Kafka
(topic ``igwn.gwalert``), read, validated and turned into a :class:`Notice`.

A notice is a JSON document following the IGWN alert schema (package
``igwn-gwalert-schema``, ``igwn.alerts.Alert.schema.json``, JSON Schema draft 2020-12), or
the same record in Avro (``igwn.alerts.Alert.avsc``), as SCiMMA's Hopskotch distributes it.
The two forms differ in one respect: JSON carries the sky maps (``event.skymap``,
``external_coinc.combined_skymap``) as base64 text, Avro as ``bytes``. An Avro record is
turned into the JSON form (its maps base64-encoded) and read by the same path, so both
forms are held to the same rules.

What is read, and what is refused (one line: where, the JSON path, what is allowed):

* everything the schema requires, with the types it gives;
* times (``time_created``, ``event.time``): ISO 8601 UTC, RFC 3339 style
  (``2020-01-29T06:54:58.432Z``); a ``T`` or a space between date and time, and a zone of
  ``Z``, ``+00:00`` or another offset (converted). A time without a zone is read as UTC:
  the schema's producer (gwcelery) writes UTC, and some of its versions wrote
  ``time_created`` without a zone;
* numbers must be finite (JSON has no NaN, but Python's parser and Avro let one through),
  and ``event.far`` at least 0;
* a RETRACTION carries no event and no external coincidence (both null, as LVK sends it);
  every other alert type carries an event;
* a sky map must be strict base64 of a FITS file (not gzipped: the schema's media type is
  ``application/fits``) holding a multi-order map (``UNIQ``, ``PROBDENSITY``), as the
  schema says. A flat HEALPix map, which :meth:`SkyMap.read` would accept from a file, is
  refused here: it contradicts the schema, and merging one takes seconds, too slow for a
  stream. ``event.skymap`` may be null (the schema allows it): the notice then has no map.

Fields the schema does not name are kept in :attr:`Notice.raw` (the schema does not forbid
them); ``urls`` values are checked to be URIs with a scheme.
"""

from __future__ import annotations

import base64
import copy
import datetime
import functools
import gzip
import io
import json
import math
import re
import reprlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from xmatch.errors import InputError

if TYPE_CHECKING:
    from xmatch.sky.skymap import SkyMap

#: The package and files of the IGWN alert schemas.
SCHEMA_PACKAGE = "igwn_gwalert_schema"
JSON_SCHEMA_FILE = "igwn.alerts.Alert.schema.json"
AVRO_SCHEMA_FILE = "igwn.alerts.Alert.avsc"
#: The full name of the Avro record a notice is.
AVRO_RECORD_NAME = "igwn.alerts.Alert"
ALERT_TYPES = ("EARLYWARNING", "PRELIMINARY", "INITIAL", "UPDATE", "RETRACTION")
RETRACTION = "RETRACTION"
AVRO_CONTAINER_MAGIC = b"Obj\x01"
FITS_MAGIC = b"SIMPLE  ="
GZIP_MAGIC = b"\x1f\x8b"
DEFAULT_WHERE = "the notice"
#: Where the sky maps sit in a notice (JSON paths).
SKYMAP_PATH = ("event", "skymap")
COMBINED_SKYMAP_PATH = ("external_coinc", "combined_skymap")
TIME_ALLOWED = "an ISO 8601 UTC date and time such as 2020-01-29T06:54:58.432Z"
# RFC 3339 date-time; a space may replace the T (RFC 3339 section 5.6 allows it), and the
# zone may be absent (read as UTC, see the module docstring).
_DATE_TIME = re.compile(r"(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2}(?:\.\d+)?)"
                        r"([Zz]|[+-]\d{2}:\d{2})?")
_SUPEREVENT_ID = re.compile(r"\S+")
_SHORT = reprlib.Repr()  # keyword arguments need Python 3.12
_SHORT.maxstring = _SHORT.maxother = 60
_SHORT.maxdict = _SHORT.maxlist = 4
_SHORT.maxlevel = 2


@dataclass(frozen=True, eq=False)
class Notice:
    """One IGWN gravitational-wave notice, read and checked.

    Equality is identity (a notice holds arrays and dicts, which do not compare as one
    value). For a RETRACTION the event fields are None or empty.

    Attributes
    ----------
    superevent_id : str
        The GraceDB superevent, e.g. ``S230518h`` (``M...``: a mock event).
    alert_type : str
        One of EARLYWARNING, PRELIMINARY, INITIAL, UPDATE, RETRACTION.
    time_created : str
        When the notice was made, as the notice gives it (ISO 8601, UTC).
    created_mjd_tai : float
        The same instant as a TAI MJD.
    event_time_iso : str or None
        The time of the event, as the notice gives it (ISO 8601, UTC).
    event_mjd_tai : float or None
        The same instant as a TAI MJD.
    far_hz : float or None
        False alarm rate (Hz).
    significant : bool or None
        LVK's significance flag.
    group, pipeline, search : str or None
        Who found the event: ``CBC``/``Burst``, ``gstlal``..., ``AllSky``/``MDC``...
    instruments : tuple of str
        The detectors that took part (``H1``, ``L1``, ``V1``, ``K1``).
    classification : dict of str to float
        Probabilities of the source categories (``BNS``, ``NSBH``, ``BBH``,
        ``Terrestrial``); empty when not given.
    properties : dict of str to float
        Probabilities of source properties (``HasNS``, ``HasRemnant``...).
    skymap : SkyMap or None
        The event's sky map, read.
    skymap_bytes : bytes or None
        The sky map as the notice carries it: a multi-order FITS file.
    raw : dict
        The notice as parsed (JSON form), for provenance, without the sky-map strings
        (``event.skymap`` and ``external_coinc.combined_skymap`` are removed: their content
        is in ``skymap_bytes`` and ``combined_skymap_bytes``).
    combined_skymap : SkyMap or None
        The map combining the GW map with an external coincidence's (RAVEN), if any.
    combined_skymap_bytes : bytes or None
        That map as carried (FITS).
    """

    superevent_id: str
    alert_type: str
    time_created: str
    created_mjd_tai: float
    event_time_iso: str | None = None
    event_mjd_tai: float | None = None
    far_hz: float | None = None
    significant: bool | None = None
    group: str | None = None
    pipeline: str | None = None
    search: str | None = None
    instruments: tuple[str, ...] = ()
    classification: dict[str, float] = field(default_factory=dict)
    properties: dict[str, float] = field(default_factory=dict)
    skymap: SkyMap | None = None
    skymap_bytes: bytes | None = None
    raw: dict = field(default_factory=dict)
    combined_skymap: SkyMap | None = None
    combined_skymap_bytes: bytes | None = None

    @property
    def is_retraction(self) -> bool:
        """True for a RETRACTION: the superevent is withdrawn."""
        return self.alert_type == RETRACTION

    @property
    def is_mock(self) -> bool:
        """True for a mock event (superevent id starting with M, as LVK's user guide says);
        real events start with S."""
        return self.superevent_id.startswith("M")


def read_notice(data, where: str = DEFAULT_WHERE, *, schemaless: bool = False) -> Notice:
    """Read and check one IGWN notice.

    Parameters
    ----------
    data : bytes, str or dict
        The notice: JSON text (bytes in UTF-8, or str), a JSON document already parsed
        (dict), or Avro bytes: an object container file (magic ``Obj\\x01``) holding one
        ``igwn.alerts.Alert`` record, or with ``schemaless`` one schemaless record of the
        shipped schema. Bytes are told apart by their first bytes: ``{`` or ``[`` (after
        whitespace) is JSON (an array is then refused: a notice is an object),
        ``Obj\\x01`` is Avro, anything else is refused; schemaless Avro has no mark, so it
        is read only when asked for.
    where : str
        Where the notice came from (a file, ``kafka igwn.gwalert[0]@42``), for messages.
        Messages start with ``notice <superevent_id> (<where>)``.
    schemaless : bool
        Read ``data`` (bytes) as one schemaless Avro record of ``igwn.alerts.Alert.avsc``.

    Returns
    -------
    Notice

    Raises
    ------
    InputError
        One line: where, the JSON path of the offending field, and what is allowed.
    """
    if isinstance(data, bytearray | memoryview):
        data = bytes(data)
    if schemaless:
        if not isinstance(data, bytes):
            raise InputError(f"{_label(where)}: schemaless Avro is bytes, not "
                             f"{type(data).__name__}")
        document = _avro_document(data, where, schemaless=True)
    elif isinstance(data, Mapping):
        document = dict(data)  # jsonschema's "object" is a dict
    elif isinstance(data, str):
        document = _json_document(data, where)
    elif isinstance(data, bytes):
        head = data.lstrip()[:1]
        if data[:4] == AVRO_CONTAINER_MAGIC:
            document = _avro_document(data, where, schemaless=False)
        elif head in (b"{", b"["):
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError as error:
                raise InputError(f"{_label(where)}: the JSON is not UTF-8 ({error.reason} at "
                                 f"byte {error.start})") from None
            document = _json_document(text, where)
        elif not data:
            raise InputError(f"{_label(where)}: empty; a notice is a JSON object or an Avro "
                             "container file")
        else:
            raise InputError(f"{_label(where)}: neither JSON (an object, starting with '{{') "
                             f"nor an Avro container file (starting with 'Obj\\x01'); it "
                             f"starts with {data[:12]!r} (schemaless Avro needs "
                             "schemaless=True)")
    else:
        raise InputError(f"{_label(where)}: a notice is JSON bytes or text, a dict, or Avro "
                         f"bytes, not {type(data).__name__}")
    if not isinstance(document, Mapping):
        raise InputError(f"{_label(where)}: the JSON is {_json_kind(document)}; a notice is a "
                         "JSON object")
    return _notice_of(document, where)


def build_notice(superevent_id: str, alert_type: str, *, skymap=None,
                 event_time_iso: str | None = None, time_created_iso: str | None = None,
                 far_hz: float = 1e-9, significant: bool = True, group: str = "CBC",
                 pipeline: str = "gstlal", search: str = "AllSky",
                 instruments=("H1", "L1", "V1"), classification: dict | None = None,
                 properties: dict | None = None, external_coinc: dict | None = None) -> dict:
    """A notice (JSON form, a dict) around a real sky map, as LVK's gwcelery lays one out:
    for tests, the demo and the docs, where the envelopes are built and the maps real.

    The fields are not checked here (tests build broken notices from it); :func:`read_notice`
    reads every notice built from valid arguments.

    Parameters
    ----------
    superevent_id, alert_type : str
        E.g. ``MS200129a`` (``M``: mock) and ``PRELIMINARY``.
    skymap : path or bytes, optional
        A FITS sky map (gzipped or not; stored gunzipped, base64-encoded). None: the
        event has no map (``event.skymap`` null). A RETRACTION takes none.
    event_time_iso : str, optional
        The event time; by default the map's ``DATE-OBS`` (UTC) with a ``Z``.
    time_created_iso : str, optional
        When the notice was made; by default the event time (so built notices are
        reproducible), or the current time for a retraction given neither.
    far_hz, significant, group, pipeline, search, instruments, classification, properties
        The event's fields (``classification`` and ``properties`` default to empty).
    external_coinc : dict, optional
        An ``external_coinc`` block; its ``combined_skymap`` may be a path (str or
        ``Path``) or bytes of a FITS map, encoded as ``skymap`` is.

    Returns
    -------
    dict
        The notice; :func:`notice_json` serialises it.
    """
    if alert_type == RETRACTION:
        if skymap is not None:
            raise InputError("a RETRACTION notice carries no sky map (its event is null)")
        created = time_created_iso or event_time_iso or _now_iso()
        return {"alert_type": alert_type, "time_created": created,
                "superevent_id": superevent_id, "urls": _urls(superevent_id), "event": None,
                "external_coinc": None}
    fits_bytes = None if skymap is None else _fits_bytes(skymap)
    if event_time_iso is None:
        if fits_bytes is None:
            raise InputError("build_notice needs event_time_iso when there is no sky map to "
                             "take DATE-OBS from")
        event_time_iso = _date_obs(fits_bytes) + "Z"
    if external_coinc is not None:
        external_coinc = dict(external_coinc)
        combined = external_coinc.get("combined_skymap")
        if isinstance(combined, bytes | str | Path):
            external_coinc["combined_skymap"] = _base64(_fits_bytes(combined))
    event = {
        "time": event_time_iso,
        "far": far_hz,
        "significant": significant,
        "instruments": list(instruments),
        "group": group,
        "pipeline": pipeline,
        "search": search,
        "properties": dict(properties or {}),
        "classification": dict(classification or {}),
        "duration": None,
        "central_frequency": None,
        "skymap": None if fits_bytes is None else _base64(fits_bytes),
    }
    return {"alert_type": alert_type, "time_created": time_created_iso or event_time_iso,
            "superevent_id": superevent_id, "urls": _urls(superevent_id), "event": event,
            "external_coinc": external_coinc}


def notice_json(notice_dict: Mapping) -> bytes:
    """A notice (JSON form) as UTF-8 JSON bytes, what GCN sends on ``igwn.gwalert``.
    Non-finite numbers are refused (JSON has none)."""
    try:
        return json.dumps(notice_dict, allow_nan=False).encode("utf-8")
    except ValueError as error:
        raise InputError(f"the notice cannot be written as JSON: {error}") from None


def json_schema() -> dict:
    """The IGWN alert JSON schema (``igwn.alerts.Alert.schema.json``), parsed."""
    return json.loads(_schema_text(JSON_SCHEMA_FILE))


def avro_schema() -> dict:
    """The IGWN alert Avro schema (``igwn.alerts.Alert.avsc``), parsed by fastavro: what a
    producer writes notices with (its sky maps as ``bytes``, not base64)."""
    return _avro_schema()


# --- decoding ------------------------------------------------------------------------


def _json_document(text: str, where: str):
    try:
        return json.loads(text, object_pairs_hook=_unique_keys,
                          parse_constant=_refuse_constant)
    except json.JSONDecodeError as error:
        raise InputError(f"{_label(where)}: not JSON: {error.msg} at line {error.lineno} "
                         f"column {error.colno}") from None
    except _JsonValueError as error:
        raise InputError(f"{_label(where)}: {error}") from None


class _JsonValueError(ValueError):
    """A JSON text that parses but that a notice cannot be: raised from the parser's
    hooks."""


def _unique_keys(pairs):
    # json keeps the last of repeated keys silently; a repeated key makes a notice
    # ambiguous, so it is refused.
    document = {}
    for key, value in pairs:
        if key in document:
            raise _JsonValueError(f"key {key!r} appears twice in one JSON object")
        document[key] = value
    return document


def _refuse_constant(name: str):
    raise _JsonValueError(f"{name} is not a JSON number; numbers in a notice are finite")


def _avro_document(data: bytes, where: str, *, schemaless: bool) -> dict:
    """The record of an Avro notice, in the JSON form (sky maps base64-encoded)."""
    import fastavro

    from xmatch.alerts.avro import PacketError

    reader = _avro_schema()
    try:
        if schemaless:
            body, writer = data, reader
        else:
            records = _avro_schemas().split(data)
            if len(records) != 1:
                raise InputError(f"{_label(where)}: the Avro container holds {len(records)} "
                                 "records; a notice is one")
            schema, body = records[0]
            if schema.name != AVRO_RECORD_NAME:
                raise InputError(f"{_label(where)}: the Avro container holds a "
                                 f"{schema.name!r} record, not an {AVRO_RECORD_NAME} notice")
            writer = schema.parsed
        stream = io.BytesIO(body)
        record = fastavro.schemaless_reader(stream, writer, reader)
    except PacketError as error:
        raise InputError(f"{_label(where)}: not a readable Avro container: {error}") from None
    except InputError:
        raise
    except Exception as error:  # noqa: BLE001 (fastavro raises many kinds on bad bytes)
        raise InputError(f"{_label(where)}: the Avro record does not decode as "
                         f"{AVRO_RECORD_NAME}: {type(error).__name__}: "
                         f"{_one_line(str(error))}") from None
    if stream.tell() != len(body):
        raise InputError(f"{_label(where)}: {len(body) - stream.tell()} bytes follow the Avro "
                         "record; a notice is one record")
    for path in (SKYMAP_PATH, COMBINED_SKYMAP_PATH):
        parent = record.get(path[0])
        if isinstance(parent, dict) and isinstance(parent.get(path[1]), bytes):
            parent[path[1]] = _base64(parent[path[1]])
    return record


# --- checking ------------------------------------------------------------------------


def _notice_of(document: Mapping, where: str) -> Notice:
    superevent_id = document.get("superevent_id")
    label = _label(where, superevent_id)
    error = _schema_error(document)
    if error is not None:
        raise InputError(f"{label}: {error}")
    if not _SUPEREVENT_ID.fullmatch(superevent_id):
        raise InputError(f"{label}: /superevent_id: {_short(superevent_id)} is not a GraceDB "
                         "superevent id (a name without spaces, e.g. S230518h)")
    bad = _first_non_finite(document, "")
    if bad is not None:
        raise InputError(f"{label}: {bad[0]}: {bad[1]!r} is not allowed; numbers in a notice "
                         "are finite")
    alert_type, event, external = (document["alert_type"], document["event"],
                                   document["external_coinc"])
    if alert_type == RETRACTION:
        for name, value in (("event", event), ("external_coinc", external)):
            if value is not None:
                raise InputError(f"{label}: /{name}: a RETRACTION carries no {name} (null); "
                                 f"this one has {_describe(value)}")
    elif event is None:
        raise InputError(f"{label}: /event: null, but a {alert_type} notice carries an event; "
                         "only a RETRACTION has none")
    created_mjd = _tai_mjd(document["time_created"])
    raw = _without_skymaps(document)
    if event is None:
        return Notice(superevent_id, alert_type, document["time_created"], created_mjd,
                      raw=raw)
    if event["far"] < 0:
        raise InputError(f"{label}: /event/far: {event['far']!r} is not allowed; a false alarm "
                         "rate is a rate, at least 0 (Hz)")
    skymap, skymap_bytes = _skymap(event["skymap"], SKYMAP_PATH, label)
    combined = combined_bytes = None
    if external is not None:
        combined, combined_bytes = _skymap(external["combined_skymap"], COMBINED_SKYMAP_PATH,
                                           label)
    for name, read in (("sky map", skymap), ("combined sky map", combined)):
        if read is not None:  # the name later messages give the map
            read.name = f"{superevent_id} {name} ({alert_type})"
    return Notice(
        superevent_id, alert_type, document["time_created"], created_mjd,
        event_time_iso=event["time"], event_mjd_tai=_tai_mjd(event["time"]),
        far_hz=float(event["far"]), significant=event["significant"], group=event["group"],
        pipeline=event["pipeline"], search=event["search"],
        instruments=tuple(event["instruments"]),
        classification={k: float(v) for k, v in event["classification"].items()},
        properties={k: float(v) for k, v in event["properties"].items()},
        skymap=skymap, skymap_bytes=skymap_bytes, raw=raw, combined_skymap=combined,
        combined_skymap_bytes=combined_bytes)


def _schema_error(document: Mapping) -> str | None:
    """The most telling schema violation of ``document`` as ``/json/path: what``, or
    None."""
    from jsonschema.exceptions import best_match

    error = best_match(_validator().iter_errors(document))
    return None if error is None else _describe_error(_within_alternative(error))


def _within_alternative(error):
    """For a value that fits no alternative of a ``oneOf`` (``event``: null or an object),
    the error inside the one alternative of the value's JSON type: ``/event/far`` is not a
    number, not "``/event`` is neither null nor a valid object"."""
    from jsonschema.exceptions import best_match

    while error.validator in ("oneOf", "anyOf") and error.context:
        fitting = [index for index, option in enumerate(error.validator_value)
                   if _type_fits(option, error.instance)]
        if len(fitting) != 1:
            break
        inner = [e for e in error.context if e.relative_schema_path[0] == fitting[0]]
        if not inner:
            break
        error = best_match(inner)
    return error


def _type_fits(schema, instance) -> bool:
    kinds = schema.get("type") if isinstance(schema, Mapping) else None
    if kinds is None:
        return False
    kinds = [kinds] if isinstance(kinds, str) else kinds
    return any(_validator().is_type(instance, kind) for kind in kinds)


def _describe_error(error) -> str:
    """One line for a jsonschema ``ValidationError``: the JSON path and what is allowed
    (the instance shortened: a sky map is a megabyte of base64)."""
    path = _pointer(error.absolute_path)
    kind, allowed, instance = error.validator, error.validator_value, error.instance
    if kind == "required":
        missing = [name for name in allowed if name not in instance]
        return (f"{_pointer([*error.absolute_path, missing[0]])}: missing; "
                f"{path or 'a notice'} needs {', '.join(allowed)}")
    if kind == "enum":
        return f"{path}: {_short(instance)} is not one of {', '.join(map(str, allowed))}"
    if kind == "type":
        expected = " or ".join(repr(t) for t in ([allowed] if isinstance(allowed, str)
                                                 else allowed))
        return f"{path}: {_short(instance)} is not of type {expected}"
    if kind == "format" and error.cause is not None:
        return f"{path}: {error.cause}"
    if kind == "oneOf":
        options = " or ".join(_schema_kind(option) for option in allowed)
        return f"{path}: {_short(instance)} is not allowed; it must be {options}"
    if kind == "additionalProperties":
        return f"{path}: {_one_line(error.message)}"
    return f"{path}: {_short(instance)} is not allowed ({kind} {_short(allowed)})"


def _skymap(text: str | None, path: tuple[str, str], label: str):
    """A sky map of a notice (base64 text) read: ``(SkyMap, FITS bytes)``, or Nones."""
    from xmatch.sky.skymap import SkyMap

    if text is None:
        return None, None
    where = f"{label}: {_pointer(path)}"
    try:
        data = base64.b64decode(text, validate=True)
    except ValueError as error:
        raise InputError(f"{where}: not valid base64 ({error}); the schema carries the FITS "
                         "file base64-encoded") from None
    if data[:2] == GZIP_MAGIC:
        raise InputError(f"{where}: a gzip file; a notice carries the FITS file itself "
                         "(application/fits), not compressed")
    if data[:len(FITS_MAGIC)] != FITS_MAGIC:
        raise InputError(f"{where}: the {len(data)} decoded bytes are not a FITS file (they "
                         f"start with {data[:16]!r}; FITS starts with {FITS_MAGIC.decode()!r})")
    columns = _table_columns(data)
    if columns is not None and "PROB" in columns and "UNIQ" not in columns:
        raise InputError(f"{where} is a flat HEALPix map (column PROB); a notice carries a "
                         "multi-order map (UNIQ, PROBDENSITY), as the IGWN alert schema says")
    return SkyMap.read(data, name=where), data


def _table_columns(data: bytes) -> set[str] | None:
    """The column names of the first extension of a FITS file (upper case), read from its
    header only; None when that cannot be read (:meth:`SkyMap.read` then says why)."""
    from astropy.io import fits

    try:
        with fits.open(io.BytesIO(data)) as hdus:
            return {name.upper() for name in hdus[1].columns.names}
    except (OSError, ValueError, IndexError, KeyError, AttributeError, TypeError):
        return None


def _first_non_finite(value, path: str):
    """``(JSON path, value)`` of the first NaN or infinity in a parsed document, or None."""
    if isinstance(value, float):
        return None if math.isfinite(value) else (path or "/", value)
    if isinstance(value, Mapping):
        items = value.items()
    elif isinstance(value, list | tuple):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        found = _first_non_finite(item, f"{path}/{_escape(str(key))}")
        if found is not None:
            return found
    return None


def _without_skymaps(document: Mapping) -> dict:
    """A deep copy of the notice without the sky-map strings (removed first, so the copy
    is of kilobytes, not of the maps)."""
    raw = dict(document)
    for name, key in (SKYMAP_PATH, COMBINED_SKYMAP_PATH):
        if isinstance(raw.get(name), Mapping):
            raw[name] = {k: v for k, v in raw[name].items() if k != key}
    return copy.deepcopy(raw)


# --- times ---------------------------------------------------------------------------


@functools.lru_cache(maxsize=256)
def _tai_mjd(text: str) -> float:
    """TAI MJD of a notice time (see the module docstring for what is read)."""
    from xmatch.timescales import tai_mjd

    match = _DATE_TIME.fullmatch(text)
    if match is None:
        raise InputError(f"{_short(text)} is not {TIME_ALLOWED}")
    date, time, zone = match.groups()
    iso = f"{date}T{time}"
    if zone and zone.upper() != "Z" and zone[1:] != "00:00":
        # Another offset: to UTC by calendar arithmetic (a leap second, :60, cannot carry
        # an offset here; LVK writes UTC anyway).
        try:
            instant = datetime.datetime.fromisoformat(iso + zone)
        except ValueError:
            raise InputError(f"{_short(text)} is not {TIME_ALLOWED}") from None
        iso = instant.astimezone(datetime.UTC).replace(tzinfo=None).isoformat()
    try:
        return float(tai_mjd(iso, "utc")[0])
    except InputError:
        raise InputError(f"{_short(text)} is not {TIME_ALLOWED}") from None


def _check_date_time(value) -> bool:
    # The schema's "date-time" format, checked by the reader of the times themselves, so
    # a time the schema lets through is one that converts.
    if isinstance(value, str):
        _tai_mjd(value)
    return True


def _check_uri(value) -> bool:
    if isinstance(value, str) and not (urlsplit(value).scheme and value.isprintable()
                                       and " " not in value):
        raise InputError(f"{_short(value)} is not a URI (scheme://...)")
    return True


# --- schemas (parsed and compiled once) ----------------------------------------------


#: Said when the schemas are not installed.
SCHEMAS_NEEDED = ("reading IGWN notices needs LVK's alert schemas: pip install 'xmatch[gw]' "
                  "(igwn-gwalert-schema, GPL-3.0-or-later)")


def schemas_installed() -> bool:
    """Whether LVK's alert schemas (the optional ``gw`` extra) are installed."""
    import importlib.util

    return importlib.util.find_spec(SCHEMA_PACKAGE) is not None


def _schema_text(name: str) -> str:
    # A missing package is an installation fault, not bad input: no InputError.
    try:
        return resources.files(SCHEMA_PACKAGE).joinpath(name).read_text(encoding="utf-8")
    except ModuleNotFoundError:
        from xmatch.errors import XmatchError

        raise XmatchError(SCHEMAS_NEEDED) from None


@functools.cache
def _validator():
    from jsonschema import Draft202012Validator, FormatChecker

    schema = json_schema()
    Draft202012Validator.check_schema(schema)
    # Our own checkers, not jsonschema's: its date-time check depends on an optional
    # package being installed and would not say what is allowed.
    checker = FormatChecker(formats=())
    checker.checks("date-time", raises=InputError)(_check_date_time)
    checker.checks("uri", raises=InputError)(_check_uri)
    return Draft202012Validator(schema, format_checker=checker)


@functools.cache
def _avro_schema() -> dict:
    import fastavro

    return fastavro.parse_schema(json.loads(_schema_text(AVRO_SCHEMA_FILE)))


@functools.cache
def _avro_schemas():
    """Writer schemas of Avro containers, parsed once per distinct header."""
    from xmatch.alerts.avro import Schemas

    return Schemas()


# --- building ------------------------------------------------------------------------


def _fits_bytes(source) -> bytes:
    """A FITS map from a path or bytes, gunzipped if it is gzip."""
    from xmatch.sky.skymap import skymap_bytes

    data = skymap_bytes(source if isinstance(source, bytes) else Path(source))
    if data[:2] == GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as error:
            name = "the sky map bytes" if isinstance(source, bytes) else f"sky map {source}"
            raise InputError(f"{name} is not a readable gzip file: {error}") from None
    return data


def _date_obs(fits_bytes: bytes) -> str:
    from astropy.io import fits

    try:
        with fits.open(io.BytesIO(fits_bytes)) as hdus:
            for hdu in hdus:
                if "DATE-OBS" in hdu.header:
                    return str(hdu.header["DATE-OBS"])
    except (OSError, ValueError) as error:
        raise InputError(f"the sky map is not a readable FITS file: {error}") from None
    raise InputError("the sky map has no DATE-OBS; give event_time_iso")


def _urls(superevent_id: str) -> dict:
    return {"gracedb": f"https://gracedb.ligo.org/superevents/{superevent_id}/view/"}


def _now_iso() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _base64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# --- messages ------------------------------------------------------------------------


def _label(where: str, superevent_id=None) -> str:
    """How messages name a notice: by its superevent id when it has a readable one."""
    known = isinstance(superevent_id, str) and _SUPEREVENT_ID.fullmatch(superevent_id) \
        and len(superevent_id) <= 64
    if where == DEFAULT_WHERE:
        return f"notice {superevent_id}" if known else where
    return f"notice {superevent_id} ({where})" if known else f"notice ({where})"


def _pointer(path) -> str:
    """A JSON Pointer (RFC 6901) of a path of keys and indexes."""
    return "".join(f"/{_escape(str(part))}" for part in path)


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def _short(value) -> str:
    return _one_line(_SHORT.repr(value))


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _describe(value) -> str:
    return "an object" if isinstance(value, Mapping) else _short(value)


def _json_kind(value) -> str:
    return {list: "an array", str: "a string", bool: "a boolean", type(None): "null",
            int: "a number", float: "a number"}.get(type(value), type(value).__name__)


def _schema_kind(schema: Mapping) -> str:
    kind = schema.get("type", "a value") if isinstance(schema, Mapping) else "a value"
    return " or ".join(kind) if isinstance(kind, list) else str(kind)
