"""Watchlists: named tables of sky positions, each entry with its own radius and an optional
name, checked against every alert position and, when a list is added, against the whole
history of detections (back-matching, in chunks).

A watchlist *is* a :class:`~xmatch.index.region_index.RegionIndex` of circles: an entry
matches a position when their separation is at most the entry's radius. Radii run up to
:data:`MAX_WATCH_RADIUS_ARCSEC` (1 deg): a wider "watch" is a region, better given as a
watchmap (:class:`xmatch.watch.maps.Watchmap`).

Reading a user's table (:meth:`Watchlist.from_table`, :meth:`Watchlist.read`) is strict: the
positions through :func:`xmatch.io.tables.positions_of` (degrees or sexagesimal, by UCD,
name or option), the radius of every entry present, a number, above 0 and at most 1 deg,
else an :class:`~xmatch.errors.InputError` naming the file, the 1-based row and the column.
An entry without a name is allowed (its name is null). A list of 0 entries is allowed (it
matches nothing: a user's list filtered down to nothing is still a list), though
:func:`~xmatch.io.tables.read_table` refuses a file without data rows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from xmatch.errors import (
    InputError,
    LoadError,
    length_mismatch,
    missing_column,
    missing_value,
    not_numeric,
    out_of_range,
)
from xmatch.index.region_index import ROW_COLUMN, QueryPositions, RegionIndex
from xmatch.index.results import QUERY_COLUMN, SEPARATION_COLUMN
from xmatch.io.tables import positions_of, read_table
from xmatch.sky import coords

#: The widest radius of a watchlist entry (1 deg).
MAX_WATCH_RADIUS_ARCSEC = 3600.0
RADIUS_ALLOWED = f"a radius is > 0 and <= {MAX_WATCH_RADIUS_ARCSEC:g} arcsec"
#: The column :meth:`Watchlist.from_table` takes the radii from when none is named.
DEFAULT_RADIUS_COLUMN = "radius_arcsec"
#: Column of :meth:`Watchlist.matches` and of the store's hits: the entry's 0-based row.
ENTRY_COLUMN = "entry"

#: A watch name: it is also a file name in the store and the end of its subscription's
#: Kafka topic name (whose characters these are); notices register maps named like
#: ``gw.S250101a``.
WATCH_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
WATCH_NAME_ALLOWED = ("1 to 128 letters, digits, '_', '.' or '-', starting with a letter or "
                      "a digit")

_UNIT = b"unit"


def check_watch_name(name) -> str:
    """``name`` if it may name a watch (list or map), else an ``InputError``."""
    if not (isinstance(name, str) and WATCH_NAME_PATTERN.fullmatch(name)):
        raise InputError(out_of_range("watch name", name, None, WATCH_NAME_ALLOWED))
    return name


def _located(where: str, row: int | None, column: str | None, message: str) -> str:
    """``watchlist targets.csv row 17, column radius_arcsec: message`` (row 1-based)."""
    place = where + (f" row {row}" if row is not None else "")
    if column is not None:
        place += f", column {column}"
    return f"{place}: {message}"


@dataclass(frozen=True, eq=False)
class Watchlist:
    """A named list of sky positions, each with its own radius and an optional name.

    Build one with :meth:`from_table` or :meth:`read`; the constructor checks its arrays
    too (copying them: a list never changes under its index).

    Attributes
    ----------
    name : str
        The watch name (:func:`check_watch_name`).
    ra_deg, dec_deg, radius_arcsec : numpy.ndarray
        The entries' centres (degrees) and radii (arcsec), float64, read-only.
    entry_names : pyarrow.StringArray or None
        The entries' names (null for an entry without one), or None when no entry has one.
    source : str
        Where the list came from (a file name), for listings and messages.
    """

    name: str
    ra_deg: np.ndarray
    dec_deg: np.ndarray
    radius_arcsec: np.ndarray
    entry_names: pa.StringArray | None = None
    source: str = ""

    def __post_init__(self):
        check_watch_name(self.name)
        where = f"watchlist {self.name}"
        arrays = {}
        for field in ("ra_deg", "dec_deg", "radius_arcsec"):
            try:
                values = np.array(getattr(self, field), dtype=np.float64).reshape(-1)
            except (TypeError, ValueError):
                raise InputError(f"{where}: {field} must be numbers") from None
            values.flags.writeable = False
            arrays[field] = values
            object.__setattr__(self, field, values)
        lengths = {field: len(values) for field, values in arrays.items()}
        names = self.entry_names
        if names is not None:
            names = _names_array(names, where, "entry_names")
            lengths["entry_names"] = len(names)
            object.__setattr__(self, "entry_names", names)
        if len(set(lengths.values())) > 1:
            raise InputError(f"{where}: {length_mismatch(lengths)}")
        try:
            coords.check_radec(self.ra_deg, self.dec_deg)
        except InputError as error:
            raise InputError(f"{where}: {error}") from None
        radius = self.radius_arcsec
        bad = ~((radius > 0) & (radius <= MAX_WATCH_RADIUS_ARCSEC))  # NaN is bad
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise InputError(f"{where}: " + out_of_range(
                "radius_arcsec", float(radius[row]), row,
                f"> 0 and <= {MAX_WATCH_RADIUS_ARCSEC:g} arcsec"))
        if not isinstance(self.source, str):
            raise InputError(f"{where}: source must be a str, not {type(self.source).__name__}")

    # ------------------------------------------------------------------ reading

    @classmethod
    def from_table(cls, name: str, table: pa.Table, source: str, *,
                   ra_column: str | None = None, dec_column: str | None = None,
                   radius_column: str | None = None, radius_arcsec=None,
                   name_column: str | None = None) -> Watchlist:
        """A watchlist from the rows of a user's table.

        Parameters
        ----------
        name : str
            The watch name (:func:`check_watch_name`).
        table : pyarrow.Table
            One row per entry (other columns are ignored).
        source : str
            Where the table came from (its file name): messages name it.
        ra_column, dec_column : str, optional
            The position columns; else found by UCD or name
            (:func:`xmatch.io.tables.position_columns`).
        radius_column : str, optional
            A column of radii, in arcsec (or in the angle unit of the column's ``unit``
            metadata).
        radius_arcsec : float or astropy.units.Quantity, optional
            One radius for every entry. Exactly one of ``radius_column`` and
            ``radius_arcsec`` is given; when neither is and the table has a column named
            ``radius_arcsec``, the radii are taken from it.
        name_column : str, optional
            A column of entry names (text or integers; a null name is an entry without
            one). Without it the entries have no names.

        Raises
        ------
        InputError
            One line naming ``source``, the 1-based row and the column of the first bad
            value, and what is allowed.
        """
        check_watch_name(name)
        source = str(source)
        where = f"watchlist {source}"
        if not isinstance(table, pa.Table):
            raise InputError(f"{where}: a watchlist is read from a pyarrow Table, not "
                             f"{type(table).__name__}")
        if radius_column is not None and radius_arcsec is not None:
            raise InputError(f"{where}: give radius_column or radius_arcsec, not both")
        if radius_column is None and radius_arcsec is None:
            if DEFAULT_RADIUS_COLUMN not in table.column_names:
                raise InputError(
                    f"{where}: no radius; give radius_column (a column of radii in arcsec) "
                    f"or radius_arcsec (one radius for every entry), or name a column "
                    f"{DEFAULT_RADIUS_COLUMN}; columns present: "
                    f"{', '.join(table.column_names)}")
            radius_column = DEFAULT_RADIUS_COLUMN
        for option, column in (("radius_column", radius_column), ("name_column", name_column)):
            if column is not None and column not in table.column_names:
                problem = missing_column(column, table.column_names)
                raise InputError(_located(where, None, column,
                                          f"{problem} (given with {option})"))
        try:
            found = positions_of(table, source, ra_column, dec_column)
        except LoadError as error:
            raise InputError(_located(where, error.row, error.column, error.message)) from None
        if radius_column is not None:
            radius = _radii_of_column(table, radius_column, where)
        else:
            radius = np.full(table.num_rows, _one_radius(radius_arcsec, where))
        names = None
        if name_column is not None:
            names = _names_array(table.column(name_column), where, f"column {name_column}")
        return cls(name, found.ra, found.dec, radius, names, source)

    @classmethod
    def read(cls, name: str, path, *, format: str | None = None, **options) -> Watchlist:
        """A watchlist from a user's table file (any format
        :func:`xmatch.io.tables.read_table` reads); ``options`` as :meth:`from_table`."""
        given = [options[key] for key in ("ra_column", "dec_column") if options.get(key)]
        try:
            table = read_table(path, format=format, text_columns=given)
        except LoadError as error:
            raise InputError(_located(f"watchlist {error.source or path}", error.row,
                                      error.column, error.message)) from None
        return cls.from_table(name, table, str(path), **options)

    # ------------------------------------------------------------------ using

    def __len__(self) -> int:
        return len(self.ra_deg)

    def __repr__(self) -> str:
        return f"<Watchlist {self.name!r}: {len(self)} entries from {self.source or '?'}>"

    @cached_property
    def index(self) -> RegionIndex:
        """The entries as circles filed by HEALPix cell, built on first use (about 6 s and
        280 MB per million entries of a few arcsec)."""
        return RegionIndex.from_arrays(self.ra_deg, self.dec_deg, self.radius_arcsec,
                                       name=f"watchlist {self.name}")

    def matches(self, ra_deg, dec_deg=None) -> pa.Table:
        """Every (position, entry) pair within the entry's radius: columns ``query_index``
        (int64), ``entry`` (int64, the 0-based row of the list) and ``separation_arcsec``
        (float64), grouped by position ascending, closest first (ties by entry).

        Positions in any form :mod:`xmatch.sky.coords` reads, or a
        :class:`~xmatch.index.region_index.QueryPositions` shared with other lookups.
        Back-matching a history goes chunk by chunk: ``query_index`` counts in the chunk.
        """
        found = self.index.containing(QueryPositions.of(ra_deg, dec_deg))
        query = found.column(QUERY_COLUMN).to_numpy()
        entry = found.column(ROW_COLUMN).to_numpy()
        separation = found.column(SEPARATION_COLUMN).to_numpy()
        # containing() ranks by normalised distance (separation / radius); a list ranks by
        # separation, which differs when radii differ.
        order = np.lexsort((entry, separation, query))
        return pa.table({QUERY_COLUMN: query[order], ENTRY_COLUMN: entry[order],
                         SEPARATION_COLUMN: separation[order]})

    def entries_table(self) -> pa.Table:
        """The entries as a table: ``entry`` (int64), ``ra_deg``, ``dec_deg``,
        ``radius_arcsec`` (float64, with their units in the field metadata) and ``name``
        (string, null for an entry without one)."""
        n = len(self)
        names = self.entry_names if self.entry_names is not None else pa.nulls(n, pa.string())
        schema = pa.schema([
            pa.field(ENTRY_COLUMN, pa.int64()),
            pa.field("ra_deg", pa.float64(), metadata={_UNIT: b"deg"}),
            pa.field("dec_deg", pa.float64(), metadata={_UNIT: b"deg"}),
            pa.field("radius_arcsec", pa.float64(), metadata={_UNIT: b"arcsec"}),
            pa.field("name", pa.string()),
        ])
        return pa.table([pa.array(np.arange(n, dtype=np.int64)), pa.array(self.ra_deg),
                         pa.array(self.dec_deg), pa.array(self.radius_arcsec), names],
                        schema=schema)


def _one_radius(value, where: str) -> float:
    """One radius for every entry: a number of arcsec or an angle Quantity."""
    radius = float("nan")
    if not isinstance(value, str | bytes | bool | np.bool_):  # text needs a unit: refused
        try:
            radius = coords.radius_arcsec(value)
        except InputError:
            pass
    if not 0 < radius <= MAX_WATCH_RADIUS_ARCSEC:
        raise InputError(f"{where}: radius_arcsec = {value!r} is not allowed; "
                         f"{RADIUS_ALLOWED}")
    return radius


def _radii_of_column(table: pa.Table, column: str, where: str) -> np.ndarray:
    """The radii of a column in arcsec (its ``unit`` metadata honoured), every one present
    and allowed, else an ``InputError`` at the first bad row."""
    values = table.column(column).combine_chunks()
    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    kind = values.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        trimmed = pc.utf8_trim_whitespace(values)
        try:
            values = pc.cast(pc.if_else(pc.equal(trimmed, ""), None, trimmed), pa.float64())
        except pa.ArrowInvalid:
            # Some value is not a number as Arrow reads them: read each as Python does and
            # name the first that is not (the error path of a text column only).
            numbers = []
            for row, value in enumerate(trimmed.to_pylist()):
                try:
                    numbers.append(float(value) if value else None)
                except ValueError:
                    raise InputError(_located(where, row + 1, column,
                                              not_numeric(value))) from None
            values = pa.array(numbers, pa.float64())
    elif pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        values = pc.cast(values, pa.float64())
    else:
        raise InputError(_located(where, None, column, f"holds {kind} values, not numbers "
                                  "of arcsec"))
    written = values.fill_null(np.nan).to_numpy(zero_copy_only=False)
    radius = written
    unit = (table.schema.field(column).metadata or {}).get(_UNIT)
    if unit:
        import astropy.units as u

        try:
            radius = written * u.Unit(unit.decode()).to(u.arcsec)
        except (ValueError, u.UnitsError):
            raise InputError(_located(where, None, column, f"has unit {unit.decode()!r}, not "
                                      "an angle")) from None
    bad = ~((radius > 0) & (radius <= MAX_WATCH_RADIUS_ARCSEC))  # NaN (missing) is bad
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        if np.isnan(written[row]):
            problem = missing_value("radius")
        else:
            shown = f"{float(written[row])!r}" + (f" {unit.decode()}" if unit else "")
            problem = f"{shown} is not allowed; {RADIUS_ALLOWED}"
        raise InputError(_located(where, row + 1, column, problem))
    return np.asarray(radius, np.float64)


def _names_array(values, where: str, what: str) -> pa.StringArray:
    """Entry names as one string array (integers as their digits; nulls kept)."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if not isinstance(values, pa.Array):
        try:
            values = pa.array(values)
        except (pa.ArrowException, TypeError, ValueError):
            raise InputError(f"{where}: {what} must be text (or integers)") from None
    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    kind = values.type
    if pa.types.is_null(kind) or pa.types.is_string(kind) or pa.types.is_large_string(kind) \
            or pa.types.is_integer(kind):
        return pc.cast(values, pa.string())
    raise InputError(f"{where}: {what} holds {kind} values; entry names are text (or "
                     "integers)")
