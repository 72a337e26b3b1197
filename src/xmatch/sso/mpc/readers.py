"""The MPC's orbit files, read into the orbit table every source of orbits gives.

:func:`read_orbits` reads the fixed-width files of the Minor Planet Center:
``MPCORB.DAT`` (with or without its header, or any file of lines in that layout such as
``NEA.txt``) and ``CometEls.txt``; gzip or plain, recognised by content. Column layouts are
those of the MPC "Export Format for Minor-Planet Orbits" and "Export Format for Comet
Orbits" (the ``CometEls.txt`` variant), as ``skyfield.data.mpc`` reads them. A malformed
line raises :class:`OrbitFormatError` naming the file, the line, the field and its columns.

Every source of orbits (these files, :mod:`xmatch.sso.alerts`, :mod:`xmatch.sso.synthetic`)
gives the same table, :data:`ORBIT_SCHEMA`: one row per object with *cometary* elements,
perihelion distance ``q``, eccentricity ``e``, inclination, node and argument of perihelion
(J2000 ecliptic, degrees) and time of perihelion ``tp``, so that elliptic, parabolic and
hyperbolic orbits alike are representable. Times are TT MJD.

An MPCORB line gives ``a``, ``e`` and the mean anomaly ``M`` at the epoch; ``q = a (1 - e)``
and ``tp = epoch - M / n`` with ``n = sqrt(GM / a^3)`` computed from ``a`` and
:data:`GM_SUN` (not the rounded ``n`` of columns 81-91), which is what skyfield's
``mpcorb_orbit`` does, so both place an object identically. ``M`` is first wrapped into
(-180, 180] deg: ``tp`` is the perihelion passage nearest the epoch.
"""

from __future__ import annotations

import gzip
import math
import os
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from xmatch.errors import InputError, LoadError
from xmatch.sso.mpc.designations import (
    ASTEROID_DESIGNATION,
    COMET_DESIGNATION,
    COMET_TYPES,
    NUMBERED,
    mjd_from_calendar,
    unpack_designation,
    unpack_epoch,
)

#: Gaussian gravitational constant squared (k^2): the Sun's GM in AU^3/day^2, as the MPC
#: and skyfield use it (equal to ``xmatch.kernels.orbits.GM_SUN``).
GM_SUN = 2.9591220828559115e-04
#: Slope parameter G the MPC assumes when column 15-19 is blank.
DEFAULT_G = 0.15

# -- the orbit table ---------------------------------------------------------------------

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
    True only for :func:`xmatch.sso.synthetic.synthetic_orbits`; the file name,
    ``synthetic`` or the alert packet the orbit came from.
"""


def orbit_table(columns: dict, n: int) -> pa.Table:
    """An :data:`ORBIT_SCHEMA` table, the one way every source builds its table.

    Parameters
    ----------
    columns : dict
        Every column of the schema by name: an array, a list, or a scalar string or bool
        repeated on every row.
    n : int
        Number of rows.

    Returns
    -------
    pyarrow.Table
    """
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


def _wrap_degrees(angle):
    """Angles in (-180, 180]."""
    return 180.0 - np.mod(180.0 - np.asarray(angle, dtype=np.float64), 360.0)


def tp_from_mean_anomaly(epoch, mean_anomaly_deg, a):
    """Perihelion time nearest the epoch, with the mean motion of ``a`` and :data:`GM_SUN`.

    Parameters
    ----------
    epoch : float or numpy.ndarray
        Osculation epoch, TT MJD.
    mean_anomaly_deg : float or numpy.ndarray
        Mean anomaly at the epoch, any turn (wrapped into (-180, 180] deg).
    a : float or numpy.ndarray
        Semimajor axis, AU.

    Returns
    -------
    float or numpy.ndarray
        TT MJD.
    """
    n_deg = np.degrees(np.sqrt(GM_SUN / np.abs(a) ** 3))
    return epoch - _wrap_degrees(mean_anomaly_deg) / n_deg


# -- errors ----------------------------------------------------------------------------------

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
    valid = pc.match_substring_regex(designation, ASTEROID_DESIGNATION.pattern)
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
        "tp_mjd_tt": tp_from_mean_anomaly(epoch, angles["M"], a), "h_mag": kept(h),
        "g_slope": np.where(np.isnan(g), DEFAULT_G, g), "comet_k": np.full(len(e), math.nan),
        "kind": "asteroid",
    }


def _mpcorb_names(designation: pa.Array, readable: pa.Array) -> pa.Array:
    """Readable designations: columns 167-194 as they are when they give the number in
    parentheses or the object is unnumbered; ``(number) name`` when a file keeps only the
    name there (like the K25BL excerpt); the unpacked designation when they are blank."""
    numbered = pc.match_substring_regex(designation, f"^(?:{NUMBERED})$")
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
    valid = pc.match_substring_regex(designation, COMET_DESIGNATION.pattern)
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
    tp = mjd_from_calendar(np.nan_to_num(year), np.nan_to_num(month, nan=1), day)
    has_epoch = ~np.isnan(epoch_parts[0])
    epoch = np.where(has_epoch, mjd_from_calendar(
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
    if len(line) > 21 and line[4] in COMET_TYPES and line[14:18].strip().isdigit() \
            and line[18] == " ":
        return "comet"
    return None


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
    return orbit_table({**columns, "synthetic": False, "source": source}, count)

