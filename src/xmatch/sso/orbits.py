"""Orbits of minor planets and comets: MPC files, Rubin alerts and synthetic populations.

Every source gives the same table (:data:`ORBIT_SCHEMA`): one row per object with
*cometary* elements, perihelion distance ``q``, eccentricity ``e``, inclination, node and
argument of perihelion (J2000 ecliptic, degrees) and time of perihelion ``tp``, so that
elliptic, parabolic and hyperbolic orbits alike are representable. Times are TT MJD.

Sources
-------
:func:`read_orbits`
    MPC fixed-width files: ``MPCORB.DAT`` (with or without its header, or any file of lines
    in that layout such as ``NEA.txt``) and ``CometEls.txt``; gzip or plain, recognised by
    content. Column layouts are those of the MPC "Export Format for Minor-Planet Orbits"
    and "Export Format for Comet Orbits" (the ``CometEls.txt`` variant), as
    ``skyfield.data.mpc`` reads them.
:func:`orbits_from_alerts`, :func:`alert_sso_observations`
    Rubin alert packets (schema v9 ``MPCORB``/``ssSource``, v10+ ``mpc_orbits``/``ssSource``).
:func:`synthetic_orbits`
    A deterministic synthetic population for tests and benchmarks.

An MPCORB line gives ``a``, ``e`` and the mean anomaly ``M`` at the epoch; ``q = a (1 - e)``
and ``tp = epoch - M / n`` with ``n = sqrt(GM / a^3)`` computed from ``a`` and
:data:`GM_SUN` (not the rounded ``n`` of columns 81-91), which is what skyfield's
``mpcorb_orbit`` does, so both place an object identically. ``M`` is first wrapped into
(-180, 180] deg: ``tp`` is the perihelion passage nearest the epoch.
"""

from __future__ import annotations

import gzip
import io
import math
import os
import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from xmatch.errors import InputError, LoadError

#: Gaussian gravitational constant squared (k^2): the Sun's GM in AU^3/day^2, as the MPC
#: and skyfield use it (equal to ``xmatch.kernels.orbits.GM_SUN``).
GM_SUN = 2.9591220828559115e-04
#: Speed of light in AU/day (c = 299792.458 km/s, au = 149597870.7 km).
C_AU_PER_DAY = 299792.458 * 86400.0 / 149597870.7
#: TT - TAI, seconds.
TT_MINUS_TAI_S = 32.184
#: Slope parameter G the MPC assumes when column 15-19 is blank.
DEFAULT_G = 0.15
KM_S_TO_AU_DAY = 86400.0 / 149597870.7

ORBIT_SCHEMA = pa.schema([
    pa.field("designation", pa.string(), nullable=False),
    pa.field("name", pa.string()),
    pa.field("epoch_mjd_tt", pa.float64(), nullable=False),
    pa.field("q_au", pa.float64(), nullable=False),
    pa.field("e", pa.float64(), nullable=False),
    pa.field("inc_deg", pa.float64(), nullable=False),
    pa.field("node_deg", pa.float64(), nullable=False),
    pa.field("argperi_deg", pa.float64(), nullable=False),
    pa.field("tp_mjd_tt", pa.float64(), nullable=False),
    pa.field("h_mag", pa.float64(), nullable=False),
    pa.field("g_slope", pa.float64(), nullable=False),
    pa.field("comet_k", pa.float64(), nullable=False),
    pa.field("kind", pa.string(), nullable=False),
    pa.field("synthetic", pa.bool_(), nullable=False),
    pa.field("source", pa.string(), nullable=False),
])
"""One row per object.

``designation``
    Packed MPC designation as the source writes it: ``00001``, ``K13L24L``, ``PLS2040``;
    for comets the 12-character form without its blanks: ``0001P``, ``CJ95O010``, ``0073Pbt``
    (fragment B-T of 73P). Synthetic objects: ``S0000001``...
``name``
    Readable designation (``(1) Ceres``, ``2013 LL24``, ``C/1995 O1 (Hale-Bopp)``); null for
    synthetic objects.
``epoch_mjd_tt``
    Osculation epoch (TT MJD). A comet without an epoch (unperturbed elements) gets its
    perihelion time.
``q_au``, ``e``, ``inc_deg``, ``node_deg``, ``argperi_deg``, ``tp_mjd_tt``
    Heliocentric cometary elements, J2000 ecliptic and equinox; ``tp`` in TT MJD.
``h_mag``, ``g_slope``, ``comet_k``
    Asteroids: absolute magnitude H (NaN when the source has none) and HG slope G (0.15
    when blank, the MPC default); ``comet_k`` NaN. Comets: total absolute magnitude in
    ``h_mag``, the MPC slope K (m = H + 5 log10(delta) + 2.5 K log10(r)) in ``comet_k``,
    ``g_slope`` NaN.
``kind``
    ``asteroid`` or ``comet``: which magnitude law applies. Everything read from a comet
    file is a ``comet``, the ``A/`` objects of ``CometEls.txt`` included.
``synthetic``, ``source``
    True only for :func:`synthetic_orbits`; the file name, ``synthetic`` or the alert
    packet the orbit came from.
"""

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


class OrbitFormatError(LoadError):
    """An orbit file that cannot be read: the message names the file, the 1-based line
    number in the (decompressed) file, the field with its columns, and the bad text.

    Parameters
    ----------
    message : str
        What is wrong and what is allowed.
    source : str, optional
        File name.
    line : int, optional
        1-based line number, header and blank lines counted.
    field : str, optional
        Field name as in :data:`MPCORB_COLUMNS` / :data:`COMET_COLUMNS`.
    """

    def __init__(self, message, *, source=None, line=None, field=None):
        self.line = line
        self.field = field
        super().__init__(message, source=source, column=field)

    def __str__(self):
        where = [str(self.source)] if self.source is not None else []
        if self.line is not None:
            where.append(f"line {self.line}")
        return f"{' '.join(where)}: {self.message}" if where else self.message

    def __reduce__(self):
        return (_rebuild_orbit_format_error, (self.message, self.source, self.line, self.field))


def _rebuild_orbit_format_error(message, source, line, field):
    return OrbitFormatError(message, source=source, line=line, field=field)


# -- messages (tests reuse them) ---------------------------------------------------------

def not_a_number(field: str, columns: tuple[int, int], text: str) -> str:
    return f"field '{field}' (columns {columns[0]}-{columns[1]}) is {text!r}, not a number"


def blank_field(field: str, columns: tuple[int, int], line_length: int) -> str:
    message = f"field '{field}' (columns {columns[0]}-{columns[1]}) is blank"
    if line_length < columns[1]:
        message += f"; the line has only {line_length} characters (truncated?)"
    return message


def field_out_of_range(field: str, columns: tuple[int, int], text: str, allowed: str) -> str:
    return (f"field '{field}' (columns {columns[0]}-{columns[1]}) is {text!r}; "
            f"{field} must be {allowed}")


def not_a_designation(field: str, columns: tuple[int, int], text: str) -> str:
    return (f"field '{field}' (columns {columns[0]}-{columns[1]}) is {text!r}, not a packed "
            "MPC designation")


def not_a_packed_date(field: str, columns: tuple[int, int], text: str) -> str:
    return (f"field '{field}' (columns {columns[0]}-{columns[1]}) is {text!r}, not a packed "
            "date such as 'K25BL' (2025-11-21)")


def unknown_layout(line_text: str) -> str:
    return ("neither an MPCORB line (packed epoch in columns 21-25) nor a CometEls line "
            f"(orbit type in column 5, perihelion year in columns 15-18): {line_text[:60]!r}")


#: MPCORB field columns, 1-based and inclusive (MPC "Export Format for Minor-Planet Orbits").
MPCORB_COLUMNS = {
    "designation": (1, 7), "H": (9, 13), "G": (15, 19), "epoch": (21, 25), "M": (27, 35),
    "peri": (38, 46), "node": (49, 57), "incl": (60, 68), "e": (71, 79), "a": (93, 103),
    "readable designation": (167, 194),
}
#: CometEls.txt field columns, 1-based and inclusive.
COMET_COLUMNS = {
    # Periodic number (1-4), orbit type (5) and packed provisional designation (6-12).
    "designation": (1, 12),
    "perihelion year": (15, 18), "perihelion month": (20, 21), "perihelion day": (23, 29),
    "q": (31, 39), "e": (42, 49), "peri": (52, 59), "node": (62, 69), "incl": (72, 79),
    "epoch year": (82, 85), "epoch month": (86, 87), "epoch day": (88, 89), "H": (92, 95),
    "K": (97, 100), "name": (103, 158),
}

# -- packed designations and dates ------------------------------------------------------

_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_B62_VALUE = {c: i for i, c in enumerate(_B62)}
_CENTURY = {"I": 1800, "J": 1900, "K": 2000}
_HALF_MONTHS = "ABCDEFGHJKLMNOPQRSTUVWXY"          # I is not used
_SECOND_LETTERS = "ABCDEFGHJKLMNOPQRSTUVWXYZ"      # I is not used: 25 letters a cycle
_COMET_TYPES = "PCDXIA"
_SURVEYS = {"PL": "P-L", "T1": "T-1", "T2": "T-2", "T3": "T-3"}

_NUMBERED = r"[0-9A-Za-z]\d{4}|~[0-9A-Za-z]{4}"
# Century, year, half-month, cycle count (2 chars), then the second letter (asteroids),
# 0 (comet order number) or a lower-case fragment letter (split comets).
_PROVISIONAL = r"[IJK]\d\d[A-HJ-Y][0-9A-Za-z]\d[A-HJ-Za-z0]"
_EXTENDED = r"_[0-9A-Za-z][A-HJ-Y][0-9A-Za-z]{4}"
_SURVEY = r"(?:PL|T1|T2|T3)S\d{4}"
_ASTEROID_DESIGNATION = re.compile(
    rf"^(?:{_NUMBERED}|[IJK]\d\d[A-HJ-Y][0-9A-Za-z]\d[A-HJ-Z]|{_EXTENDED}|{_SURVEY})$")
# A numbered comet may carry a fragment (``0073Pbt``) or its provisional designation.
_COMET_DESIGNATION = re.compile(
    rf"^(?:\d{{4}}[{_COMET_TYPES}](?:[a-z]{{1,2}}|{_PROVISIONAL})?"
    rf"|[{_COMET_TYPES}](?:{_PROVISIONAL}|{_EXTENDED}))$")


def _b62(text: str) -> int:
    value = 0
    for char in text:
        value = value * 62 + _B62_VALUE[char]
    return value


def _unpack_provisional(packed: str) -> str:
    """Seven-character provisional designation, asteroid or comet style."""
    if packed[0] == "_":  # extended scheme: cycle counts of 620 and more
        year = 2000 + _B62_VALUE[packed[1]]
        number = _b62(packed[3:7])
        cycle, letter = 620 + number // 25, _SECOND_LETTERS[number % 25]
        return f"{year} {packed[2]}{letter}{cycle}"
    year = _CENTURY[packed[0]] + int(packed[1:3])
    cycle = _B62_VALUE[packed[4]] * 10 + int(packed[5])
    last = packed[6]
    if last == "0":      # comet style: order number within the half-month
        return f"{year} {packed[3]}{cycle}"
    if last.islower():   # a fragment of a split comet
        return f"{year} {packed[3]}{cycle}-{last.upper()}"
    return f"{year} {packed[3]}{last}{cycle or ''}"


def unpack_designation(packed: str) -> str:
    """The readable form of a packed MPC designation.

    Parameters
    ----------
    packed : str
        Numbered minor planet (``00001``, ``A0001``, ``~0000``), provisional (``K13L24L``,
        extended ``_QC0000``), survey (``PLS2040``, ``T1S3138``) or comet designation
        (``0001P``, ``0073Pbt``, ``CJ95O010``, ``PK13R03a``); blanks are ignored, so the
        12-character comet form of CometEls.txt is accepted as it stands.

    Returns
    -------
    str
        ``(1)``, ``(100001)``, ``(620000)``, ``2013 LL24``, ``2026 CA620``, ``2040 P-L``,
        ``3138 T-1``, ``1P``, ``73P-BT``, ``C/1995 O1``, ``P/2013 R3-A``.

    Raises
    ------
    ValueError
        When ``packed`` is none of these forms.
    """
    text = packed.replace(" ", "")
    if _ASTEROID_DESIGNATION.match(text):
        if len(text) == 5:
            if text[0] == "~":
                return f"({620000 + _b62(text[1:])})"
            return f"({_B62_VALUE[text[0]] * 10000 + int(text[1:])})"
        if text[2] == "S" and text[:2] in _SURVEYS:
            return f"{text[3:]} {_SURVEYS[text[:2]]}"
        return _unpack_provisional(text)
    if re.fullmatch(_PROVISIONAL, text):  # a comet's, without its orbit type
        return _unpack_provisional(text)
    if _COMET_DESIGNATION.match(text):
        if text[0].isdigit():
            fragment = text[5:].upper() if len(text) <= 7 else ""
            return f"{int(text[:4])}{text[4]}" + (f"-{fragment}" if fragment else "")
        return f"{text[0]}/{_unpack_provisional(text[1:])}"
    raise InputError(f"{packed!r} is not a packed MPC designation (number such as 00001 or "
                     "A0001, provisional such as K13L24L, survey such as PLS2040, comet such "
                     "as 0001P or CJ95O010)")


def _pack_provisional(readable: str) -> str | None:
    """``2013 LL24`` -> ``K13L24L`` (plain provisional designations only; None otherwise)."""
    match = re.fullmatch(r"(1[89]|20)(\d\d) ([A-HJ-Y])([A-HJ-Z])(\d*)", readable.strip())
    if not match:
        return None
    century, year, half, letter, cycle = match.groups()
    cycle = int(cycle or 0)
    if cycle >= 620:
        return None
    return f"{'IJK'[int(century) - 18]}{year}{half}{_B62[cycle // 10]}{cycle % 10}{letter}"


def _mjd_from_calendar(year, month, day):
    """TT MJD of a proleptic Gregorian date (``day`` may carry a fraction); vectorized."""
    year = np.asarray(year, dtype=np.int64)
    month = np.asarray(month, dtype=np.int64)
    a = (14 - month) // 12
    y = year + 4800 - a
    m = month + 12 * a - 3
    day0 = (153 * m + 2) // 5 + 365 * y + y // 4 - y // 100 + y // 400 - 32045
    return (day0 - 2400001) + np.asarray(day, dtype=np.float64)


def unpack_epoch(packed: str) -> float:
    """TT MJD of a packed MPC date (``.0 TT``): ``K25BL`` is 2025-11-21, MJD 61000.0.

    Parameters
    ----------
    packed : str
        Century letter (I = 1800, J = 1900, K = 2000), two digits of year, month and day
        as one character each (1-9, then A = 10 ... V = 31).

    Returns
    -------
    float

    Raises
    ------
    ValueError
        When ``packed`` is not a valid packed date.
    """
    match = re.fullmatch(r"([IJK])(\d\d)([1-9A-C])([1-9A-V])", packed.strip())
    if not match:
        raise InputError(f"{packed!r} is not a packed date such as 'K25BL' (2025-11-21)")
    year = _CENTURY[match[1]] + int(match[2])
    month, day = _B62_VALUE[match[3]], _B62_VALUE[match[4]]
    mjd = float(_mjd_from_calendar(year, month, day))
    # A 31st of a 30-day month would silently become the 1st of the next.
    if float(_mjd_from_calendar(year, month, 1)) + day - 1 >= float(
            _mjd_from_calendar(year + month // 12, month % 12 + 1, 1)):
        raise InputError(f"{packed!r} is not a date: month {month} of {year} has no day {day}")
    return mjd


def _wrap_degrees(angle):
    """Angles in (-180, 180]."""
    return 180.0 - np.mod(180.0 - np.asarray(angle, dtype=np.float64), 360.0)


def _tp_from_mean_anomaly(epoch, mean_anomaly_deg, a):
    """Perihelion time nearest the epoch, with the mean motion of ``a`` and GM_SUN."""
    n_deg = np.degrees(np.sqrt(GM_SUN / np.abs(a) ** 3))
    return epoch - _wrap_degrees(mean_anomaly_deg) / n_deg


# -- reading MPC files -----------------------------------------------------------------

_NUMBER_PATTERN = r"^[+-]?(?:\d+\.?\d*|\.\d+)$"
_INTEGER_PATTERN = r"^\d+$"


def _read_bytes(path_or_file) -> tuple[bytes, str]:
    if isinstance(path_or_file, str | os.PathLike):
        path = Path(path_or_file)
        data, name = path.read_bytes(), path.name
    elif hasattr(path_or_file, "read"):
        data = path_or_file.read()
        if isinstance(data, str):
            data = data.encode()
        name = Path(str(getattr(path_or_file, "name", "<stream>"))).name
    else:
        raise InputError(f"read_orbits takes a path or an open file, not "
                        f"{type(path_or_file).__name__}")
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as error:
            raise OrbitFormatError(f"not a readable gzip file (truncated or corrupt?): {error}",
                                   source=name) from None
    return data, name


def _lines(data: bytes, source: str) -> tuple[pa.Array, bool]:
    """Every line of ``data`` as one string array (no per-line Python), newlines kept, and
    whether the text is all ASCII (then columns are bytes)."""
    buffer = np.frombuffer(data, dtype=np.uint8)
    ascii_only = not len(buffer) or int(buffer.max()) < 128
    ends = np.flatnonzero(buffer == 10) + 1
    offsets = np.concatenate([[0], ends, [] if len(data) in ends[-1:] else [len(data)]])
    large = len(data) >= 2**31 - 1
    offsets = offsets.astype(np.int64 if large else np.int32)
    lines = pa.Array.from_buffers(pa.large_string() if large else pa.string(),
                                  len(offsets) - 1, [None, pa.py_buffer(offsets),
                                                     pa.py_buffer(data)])
    if ascii_only:
        return lines, True
    try:
        lines.validate(full=True)
    except pa.ArrowInvalid:
        for number, raw in enumerate(data.split(b"\n"), start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                raise OrbitFormatError(f"not text (invalid UTF-8): {raw[:60]!r}",
                                       source=source, line=number) from None
    return lines, False


def _non_blank(lines: pa.Array, ascii_only: bool) -> np.ndarray:
    """Lines with anything but white space. Only lines blank in their first 12 columns
    (where every layout has its designation) are trimmed whole: trimming every line of
    MPCORB.DAT would cost more than parsing a field."""
    head = pc.binary_slice(lines.view(pa.large_binary() if lines.type == pa.large_string()
                                      else pa.binary()), 0, 12).view(lines.type) \
        if ascii_only else pc.utf8_slice_codeunits(lines, 0, 12)
    keep = pc.not_equal(pc.ascii_trim_whitespace(head), "").to_numpy(zero_copy_only=False)
    suspects = np.flatnonzero(~keep)
    if len(suspects):
        whole = pc.ascii_trim_whitespace(lines.take(pa.array(suspects)))
        keep[suspects] = pc.not_equal(whole, "").to_numpy(zero_copy_only=False)
    return keep


class _Fields:
    """Fixed-width fields of every line of one file, and the problems found in the data
    lines (``keep``: header and blank lines are parsed too, which is cheaper than copying
    the data lines out, but never reported).

    Problems are collected rather than raised at once, so that the error reported is the
    first one in the file, whatever the order in which the fields are checked.
    """

    def __init__(self, lines: pa.Array, keep: np.ndarray, ascii_only: bool, source: str,
                 layout: dict):
        self.lines = lines
        self.binary = lines.view(pa.large_binary() if lines.type == pa.large_string()
                                 else pa.binary())
        self.ascii = ascii_only
        self.keep = keep
        self.all_kept = bool(keep.all())
        self.source = source
        self.layout = layout
        self.order = {name: k for k, name in enumerate(layout)}
        self.problems: list[tuple[int, int, str, str]] = []

    def text(self, name: str) -> pa.Array:
        first, last = self.layout[name]
        if self.ascii:  # columns are bytes: slicing bytes is five times faster
            field = pc.binary_slice(self.binary, first - 1, last).view(self.lines.type)
        else:
            field = pc.utf8_slice_codeunits(self.lines, first - 1, last)
        return pc.ascii_trim_whitespace(field)

    def flag(self, name: str, mask, message) -> None:
        """Record the first row of ``mask``; ``message(text, row)`` words the problem."""
        mask = np.asarray(mask, dtype=bool) & self.keep
        if mask.any():
            row = int(np.argmax(mask))
            text = self.text(name)[row].as_py()
            self.problems.append((row, self.order[name], name, message(text, row)))

    def kept(self, values):
        """``values`` (one per line) of the data lines only."""
        if self.all_kept:
            return values
        if isinstance(values, pa.Array):
            return values.filter(pa.array(self.keep))
        return np.asarray(values)[self.keep]

    def line_length(self, row: int) -> int:
        return len(self.lines[row].as_py().rstrip("\r\n"))

    def number(self, name: str, *, required: bool = True, integer: bool = False) -> np.ndarray:
        """The field as float64, NaN where blank (and where malformed, which is flagged)."""
        text = self.text(name)
        columns = self.layout[name]
        blank = pc.equal(text, "")
        valid = pc.match_substring_regex(text, _INTEGER_PATTERN if integer else _NUMBER_PATTERN)
        self.flag(name, pc.invert(pc.or_(blank, valid)).to_numpy(zero_copy_only=False),
                  lambda text, row: not_a_number(name, columns, text))
        if required:
            self.flag(name, blank.to_numpy(zero_copy_only=False),
                      lambda text, row: blank_field(name, columns, self.line_length(row)))
        values = pc.cast(pc.if_else(valid, text, pa.scalar(None, pa.string())), pa.float64())
        return values.to_numpy(zero_copy_only=False)

    def check(self, name: str, values: np.ndarray, allowed_mask, allowed: str) -> None:
        """Flag rows whose (non-NaN) value is outside ``allowed_mask``."""
        columns = self.layout[name]
        self.flag(name, ~np.isnan(values) & ~np.asarray(allowed_mask),
                  lambda text, row: field_out_of_range(name, columns, text, allowed))

    def raise_first(self) -> None:
        if self.problems:
            row, _, name, message = min(self.problems)
            raise OrbitFormatError(message, source=self.source, line=row + 1, field=name)


def _angle_checks(fields: _Fields, angles: dict[str, np.ndarray], inclination: str) -> None:
    for name, values in angles.items():
        if name == inclination:
            fields.check(name, values, (values >= 0) & (values <= 180), "in [0, 180] deg")
        else:
            fields.check(name, values, (values >= 0) & (values <= 360), "in [0, 360] deg")


def _unique_map(values: pa.Array, convert) -> tuple[np.ndarray, np.ndarray]:
    """``convert`` applied once per distinct value: (results per row, failed-row mask)."""
    distinct = pc.unique(values)
    results, failed = [], []
    for value in distinct.to_pylist():
        try:
            results.append(convert(value))
            failed.append(False)
        except (ValueError, KeyError):
            results.append(math.nan)
            failed.append(True)
    index = pc.index_in(values, value_set=distinct).to_numpy(zero_copy_only=False)
    return np.asarray(results, dtype=np.float64)[index], np.asarray(failed, dtype=bool)[index]


def _read_mpcorb(fields: _Fields) -> dict:
    layout = fields.layout
    designation = fields.text("designation")
    valid = pc.match_substring_regex(designation, _ASTEROID_DESIGNATION.pattern)
    fields.flag("designation", pc.invert(valid).to_numpy(zero_copy_only=False),
                lambda text, row: not_a_designation("designation", layout["designation"], text))
    h = fields.number("H", required=False)
    g = fields.number("G", required=False)
    epoch_text = fields.text("epoch")
    epoch, bad_epoch = _unique_map(epoch_text, unpack_epoch)
    fields.flag("epoch", bad_epoch,
                lambda text, row: not_a_packed_date("epoch", layout["epoch"], text))
    angles = {name: fields.number(name) for name in ("M", "peri", "node", "incl")}
    e = fields.number("e")
    a = fields.number("a")
    _angle_checks(fields, angles, "incl")
    fields.check("e", e, e >= 0, ">= 0")
    fields.check("e", e, e < 1, "< 1 in the MPCORB format, which holds elliptic orbits "
                 "only (parabolic and hyperbolic orbits belong in a comet file)")
    fields.check("a", a, a > 0, "> 0 AU")
    fields.raise_first()

    kept = fields.kept
    designation, a, e, epoch = kept(designation), kept(a), kept(e), kept(epoch)
    angles = {name: kept(values) for name, values in angles.items()}
    g = kept(g)
    return {
        "designation": designation,
        "name": _mpcorb_names(designation, kept(fields.text("readable designation"))),
        "epoch_mjd_tt": epoch, "q_au": a * (1.0 - e), "e": e, "inc_deg": angles["incl"],
        "node_deg": angles["node"], "argperi_deg": angles["peri"],
        "tp_mjd_tt": _tp_from_mean_anomaly(epoch, angles["M"], a), "h_mag": kept(h),
        "g_slope": np.where(np.isnan(g), DEFAULT_G, g), "comet_k": np.full(len(e), math.nan),
        "kind": "asteroid",
    }


def _mpcorb_names(designation: pa.Array, readable: pa.Array) -> pa.Array:
    """Readable designations: columns 167-194 as they are when they give the number in
    parentheses or the object is unnumbered; ``(number) name`` when a file keeps only the
    name there (like the K25BL excerpt); the unpacked designation when they are blank."""
    numbered = pc.match_substring_regex(designation, f"^(?:{_NUMBERED})$")
    complete = pc.or_(pc.starts_with(readable, "("),
                      pc.and_(pc.invert(numbered), pc.not_equal(readable, "")))
    todo = np.flatnonzero(~complete.to_numpy(zero_copy_only=False))
    if not len(todo):
        return readable
    names = readable.to_pylist()
    packed = designation.take(pa.array(todo)).to_pylist()
    for row, code in zip(todo, packed, strict=True):
        names[row] = f"{unpack_designation(code)} {names[row]}".strip()
    return pa.array(names, pa.string())


def _read_comets(fields: _Fields) -> dict:
    layout = fields.layout
    designation = pc.replace_substring(fields.text("designation"), " ", "")
    valid = pc.match_substring_regex(designation, _COMET_DESIGNATION.pattern)
    fields.flag("designation", pc.invert(valid).to_numpy(zero_copy_only=False),
                lambda text, row: not_a_designation("designation", layout["designation"], text))
    year = fields.number("perihelion year", integer=True)
    month = fields.number("perihelion month", integer=True)
    day = fields.number("perihelion day")
    fields.check("perihelion month", month, (month >= 1) & (month <= 12), "in 1-12")
    fields.check("perihelion day", day, (day >= 0) & (day < 32), "in [0, 32)")
    q = fields.number("q")
    e = fields.number("e")
    angles = {name: fields.number(name) for name in ("peri", "node", "incl")}
    fields.check("q", q, q > 0, "> 0 AU")
    fields.check("e", e, e >= 0, ">= 0")
    _angle_checks(fields, angles, "incl")
    epoch_parts = [fields.number(name, required=False, integer=True)
                   for name in ("epoch year", "epoch month", "epoch day")]
    given = [~np.isnan(part) for part in epoch_parts]
    partial = (given[0] | given[1] | given[2]) & ~(given[0] & given[1] & given[2])
    for name, present in zip(("epoch year", "epoch month", "epoch day"), given, strict=True):
        fields.flag(name, partial & ~present,
                    lambda text, row, name=name: blank_field(name, layout[name],
                                                             fields.line_length(row)))
    fields.check("epoch month", epoch_parts[1], (epoch_parts[1] >= 1) & (epoch_parts[1] <= 12),
                 "in 1-12")
    fields.check("epoch day", epoch_parts[2], (epoch_parts[2] >= 1) & (epoch_parts[2] <= 31),
                 "in 1-31")
    h = fields.number("H", required=False)
    k = fields.number("K", required=False)
    fields.raise_first()

    kept = fields.kept
    year, month, day, q, e, h, k = (kept(v) for v in (year, month, day, q, e, h, k))
    angles = {name: kept(values) for name, values in angles.items()}
    epoch_parts = [kept(part) for part in epoch_parts]
    designation = kept(designation)
    tp = _mjd_from_calendar(np.nan_to_num(year), np.nan_to_num(month, nan=1), day)
    has_epoch = ~np.isnan(epoch_parts[0])
    epoch = np.where(has_epoch, _mjd_from_calendar(
        np.nan_to_num(epoch_parts[0]), np.nan_to_num(epoch_parts[1], nan=1),
        np.nan_to_num(epoch_parts[2])), tp)
    names = kept(fields.text("name"))
    missing = np.flatnonzero(pc.equal(names, "").to_numpy(zero_copy_only=False))
    if len(missing):
        names = names.to_pylist()
        for row in missing:
            names[row] = unpack_designation(designation[int(row)].as_py())
        names = pa.array(names, pa.string())
    return {
        "designation": designation, "name": names, "epoch_mjd_tt": epoch, "q_au": q, "e": e,
        "inc_deg": angles["incl"], "node_deg": angles["node"], "argperi_deg": angles["peri"],
        "tp_mjd_tt": tp, "h_mag": h, "g_slope": np.full(len(q), math.nan), "comet_k": k,
        "kind": "comet",
    }


def _header_lines(head: list[str]) -> int:
    """How many leading lines are header: MPCORB.DAT's, which ends with a line of dashes,
    or a single line of column titles starting with ``Des'n``."""
    for number, line in enumerate(head):
        if line.startswith("-----"):
            return number + 1
    for number, line in enumerate(head):
        if line.strip():
            return number + 1 if line.startswith("Des'n") else 0
    return 0


def _layout_of(line: str) -> str | None:
    if len(line) > 25 and line[7] == " " and re.fullmatch(
            r"[IJK]\d\d[1-9A-C][1-9A-V]", line[20:25]):
        return "asteroid"
    if len(line) > 21 and line[4] in _COMET_TYPES and line[14:18].strip().isdigit() \
            and line[18] == " ":
        return "comet"
    return None


def _table(columns: dict, n: int) -> pa.Table:
    """An ORBIT_SCHEMA table from arrays, lists or (repeated) scalars by column name."""
    arrays = []
    for field in ORBIT_SCHEMA:
        value = columns[field.name]
        if isinstance(value, str | bool):
            value = pa.repeat(pa.scalar(value, field.type), n)
        elif not isinstance(value, pa.Array | pa.ChunkedArray):
            value = pa.array(value, field.type)
        arrays.append(value.cast(field.type) if value.type != field.type else value)
    return pa.Table.from_arrays(arrays, schema=ORBIT_SCHEMA)


def empty_orbits() -> pa.Table:
    """A table of no orbits, with :data:`ORBIT_SCHEMA`."""
    return ORBIT_SCHEMA.empty_table()


def read_orbits(path_or_file, *, kind: str | None = None) -> pa.Table:
    """Orbits from an MPC file: ``MPCORB.DAT`` layout or ``CometEls.txt`` layout.

    Parameters
    ----------
    path_or_file : str, os.PathLike or binary file
        Plain or gzip-compressed (recognised by its magic bytes, not its name). MPCORB.DAT's
        header (everything up to its line of dashes) or a single ``Des'n ...`` title line is
        skipped, and so are blank lines anywhere.
    kind : {None, 'asteroid', 'comet'}
        The layout: ``asteroid`` for MPCORB lines (MPCORB.DAT, NEA.txt and the like),
        ``comet`` for CometEls.txt; None recognises it from the first data line.

    Returns
    -------
    pyarrow.Table
        :data:`ORBIT_SCHEMA`, in file order; empty (with that schema) for a file without
        data lines.

    Raises
    ------
    OrbitFormatError
        For the first malformed line: a field that is not a number (or blank when it is
        required, as on a truncated line), an invalid designation or packed epoch, or a
        value out of range: ``e < 0``, ``q <= 0`` or ``a <= 0``, an inclination outside
        [0, 180] deg or another angle outside [0, 360] deg, and ``e >= 1`` on an MPCORB
        line (that layout gives ``a`` and ``M``, which cannot express it). The message
        names the file, the line number, the field, its columns and the text found.
    """
    if kind not in (None, "asteroid", "comet"):
        raise InputError(f"kind = {kind!r} is not allowed; kind must be None (recognise the "
                         "layout), 'asteroid' (MPCORB layout) or 'comet' (CometEls layout)")
    data, source = _read_bytes(path_or_file)
    lines, ascii_only = _lines(data, source)
    start = _header_lines(lines.slice(0, 200).to_pylist())
    keep = _non_blank(lines, ascii_only)
    keep[:start] = False
    count = int(keep.sum())
    if not count:
        return empty_orbits()
    first_row = int(np.argmax(keep))
    first = lines[first_row].as_py().rstrip("\r\n")
    layout = kind or _layout_of(first)
    if layout is None:
        raise OrbitFormatError(unknown_layout(first), source=source, line=first_row + 1)
    fields = _Fields(lines, keep, ascii_only, source,
                     MPCORB_COLUMNS if layout == "asteroid" else COMET_COLUMNS)
    columns = _read_mpcorb(fields) if layout == "asteroid" else _read_comets(fields)
    return _table({**columns, "synthetic": False, "source": source}, count)


# -- Rubin alerts -------------------------------------------------------------------------

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
    except ValueError:  # a designation of a form this module does not know: keep it packed
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
        return _pack_provisional(readable)
    object_id = _coalesce(_first(source, "ssObjectId"),
                          _first(record.get("diaSource"), "ssObjectId"))
    if object_id and object_id > 0:
        text = object_id.to_bytes(8, "big").lstrip(b"\0")
        if text.isascii() and _ASTEROID_DESIGNATION.match(text.decode()):
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
        tp = float(_tp_from_mean_anomaly(epoch, mean_anomaly, q / (1.0 - e)))
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
        :data:`ORBIT_SCHEMA`; one row per designation, from its first alert that yields
        an orbit, in input order; ``source`` is that alert's packet.
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
        comet = bool(_COMET_DESIGNATION.match(designation))
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
    return _table({**columns, "synthetic": False}, len(values))


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


# -- synthetic population -----------------------------------------------------------------

#: Population fractions of :func:`synthetic_orbits`.
SYNTHETIC_POPULATIONS = {"main belt": 0.90, "hungaria": 0.03, "outer main belt": 0.03,
                         "near-earth": 0.02, "jupiter trojan": 0.015, "hilda": 0.005}
#: Main-belt semimajor-axis ranges (AU) and their relative densities: the Kirkwood gaps of the
#: 3:1 (2.50 AU), 5:2 (2.82 AU) and 7:3 (2.95 AU) resonances with Jupiter hold 5 %.
_MAIN_BELT_A = np.array([2.1, 2.48, 2.52, 2.805, 2.845, 2.94, 2.97, 3.3])
_MAIN_BELT_DENSITY = np.array([1.0, 0.05, 1.0, 0.05, 1.0, 0.05, 1.0])


def _rayleigh(rng, sigma: float, upper: float, size: int) -> np.ndarray:
    """Rayleigh(sigma) truncated to [0, upper), by inverting its distribution function."""
    u = rng.random(size)
    return sigma * np.sqrt(-2.0 * np.log1p(-u * -np.expm1(-upper**2 / (2.0 * sigma**2))))


def _jupiter_mean_longitude(epoch_mjd_tt: float) -> float:
    """Jupiter's mean longitude (deg, J2000 ecliptic) from the linear elements of Standish's
    "Keplerian Elements for Approximate Positions of the Major Planets" (JPL, 1800-2050
    table: L = 34.39644051 + 3034.74612775 T, T in Julian centuries from J2000): good to a
    fraction of a degree, plenty for placing synthetic Trojans near L4 and L5."""
    centuries = (epoch_mjd_tt - 51544.5) / 36525.0
    return (34.39644051 + 3034.74612775 * centuries) % 360.0


def synthetic_orbits(n: int, seed: int = 0, epoch_mjd_tt: float = 61000.0) -> pa.Table:
    """A synthetic asteroid population with realistic element and magnitude distributions.

    Populations (:data:`SYNTHETIC_POPULATIONS`): main belt 90 % (a 2.1-3.3 AU with the
    Kirkwood gaps depleted, e Rayleigh sigma 0.08 below 0.35, i Rayleigh sigma 8 deg),
    Hungarias 3 % (a 1.78-2.0, i 16-34 deg), outer main belt 3 % (a 3.3-3.7), near-Earth
    objects 2 % (a 0.8-3.0 AU with q < 1.3 AU, e up to 0.8, i Rayleigh sigma 12 deg),
    Jupiter Trojans 1.5 % (a 5.1-5.3, e < 0.15, i < 35 deg, mean longitude 60 deg ahead of
    or behind Jupiter's, spread 10 deg) and Hildas 0.5 % (a near 3.97 AU, the 3:2
    resonance). Node, argument of perihelion and mean anomaly are uniform (Trojans: the mean
    longitude sets the anomaly). H follows a cumulative power law, N(<H) ~ 10^(0.3 H),
    between 8 and 22; G is 0.15.

    Parameters
    ----------
    n : int
        Number of objects.
    seed : int
        Seed of ``numpy.random.default_rng``: the same seed gives the same table.
    epoch_mjd_tt : float
        Osculation epoch of every orbit (default 61000.0: 2025-11-21, the K25BL epoch).

    Returns
    -------
    pyarrow.Table
        :data:`ORBIT_SCHEMA`; designations ``S0000001``..., ``synthetic`` true, ``source``
        ``synthetic``, ``name`` null.
    """
    if n < 0:
        raise InputError(f"n = {n!r} is not allowed; n must be >= 0")
    rng = np.random.default_rng(seed)
    names = list(SYNTHETIC_POPULATIONS)
    population = rng.choice(len(names), size=n, p=list(SYNTHETIC_POPULATIONS.values()))
    a, e, inc = np.empty(n), np.empty(n), np.empty(n)
    node = rng.uniform(0.0, 360.0, n)
    argperi = rng.uniform(0.0, 360.0, n)
    mean_anomaly = rng.uniform(0.0, 360.0, n)

    def fill(name, draw):
        rows = population == names.index(name)
        a[rows], e[rows], inc[rows] = draw(int(rows.sum()))
        return rows

    def main_belt(k):
        widths = np.diff(_MAIN_BELT_A)
        weights = widths * _MAIN_BELT_DENSITY
        piece = rng.choice(len(widths), size=k, p=weights / weights.sum())
        return (_MAIN_BELT_A[piece] + rng.random(k) * widths[piece],
                _rayleigh(rng, 0.08, 0.35, k), _rayleigh(rng, 8.0, 40.0, k))

    def near_earth(k):
        semimajor = rng.uniform(0.8, 3.0, k)
        # q = a (1 - e) < 1.3 AU: e above 1 - 1.3 / a, and at least 0.1.
        low = np.maximum(0.1, 1.0 - 1.3 / semimajor)
        return semimajor, rng.uniform(low, 0.8), _rayleigh(rng, 12.0, 70.0, k)

    fill("main belt", main_belt)
    fill("hungaria", lambda k: (rng.uniform(1.78, 2.0, k), _rayleigh(rng, 0.07, 0.18, k),
                                   rng.uniform(16.0, 34.0, k)))
    fill("outer main belt", lambda k: (rng.uniform(3.3, 3.7, k),
                                          _rayleigh(rng, 0.07, 0.25, k),
                                          _rayleigh(rng, 6.0, 30.0, k)))
    fill("near-earth", near_earth)
    fill("hilda", lambda k: (np.clip(rng.normal(3.97, 0.02, k), 3.9, 4.05),
                                rng.uniform(0.05, 0.3, k), _rayleigh(rng, 8.0, 20.0, k)))
    trojans = fill("jupiter trojan", lambda k: (rng.uniform(5.1, 5.3, k),
                                                   _rayleigh(rng, 0.06, 0.15, k),
                                                   _rayleigh(rng, 12.0, 35.0, k)))
    k = int(trojans.sum())
    longitude = (_jupiter_mean_longitude(epoch_mjd_tt) + rng.choice([60.0, -60.0], k)
                 + rng.normal(0.0, 10.0, k))
    mean_anomaly[trojans] = np.mod(longitude - node[trojans] - argperi[trojans], 360.0)

    alpha, h_min, h_max = 0.3, 8.0, 22.0
    u = rng.random(n)
    h = np.log10(10 ** (alpha * h_min) + u * (10 ** (alpha * h_max) - 10 ** (alpha * h_min)))
    h /= alpha

    width = max(7, len(str(n)))
    numbers = pc.cast(pa.array(np.arange(1, n + 1, dtype=np.int64)), pa.string())
    designation = pc.binary_join_element_wise("S", pc.utf8_lpad(numbers, width, "0"), "")
    epoch = np.full(n, float(epoch_mjd_tt))
    columns = {
        "designation": designation, "name": pa.nulls(n, pa.string()), "epoch_mjd_tt": epoch,
        "q_au": a * (1.0 - e), "e": e, "inc_deg": inc, "node_deg": node,
        "argperi_deg": argperi, "tp_mjd_tt": _tp_from_mean_anomaly(epoch, mean_anomaly, a),
        "h_mag": h, "g_slope": np.full(n, DEFAULT_G), "comet_k": np.full(n, math.nan),
        "kind": "asteroid", "synthetic": True, "source": "synthetic",
    }
    return _table(columns, n)
