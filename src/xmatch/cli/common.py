"""What the commands share: argument types that refuse bad values at parse time, the data
directory, output options, and writing a result (format from the suffix, units and UCDs,
the ``--limit`` note)."""

from __future__ import annotations

import argparse
import sys

DATA_ENV_VAR = "XMATCH_DATA"
INPUT_FORMATS = ("csv", "tsv", "ascii", "ecsv", "fits", "parquet", "votable", "hdf5")
OUTPUT_FORMATS = ("table", "csv", "tsv", "ecsv", "fits", "parquet", "votable", "json",
                  "jsonl")


def _typed(parse):
    """An argparse type from a parser raising InputError: its message, one line."""
    def convert(text: str):
        from xmatch.errors import InputError

        try:
            return parse(text)
        except InputError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    convert.__name__ = parse.__name__
    return convert


@_typed
def radius(text: str) -> float:
    """An angle with its unit: '5arcsec', '1.5arcmin', '0.1deg' -> arcsec."""
    from xmatch.sky.coords import radius_of_text

    return radius_of_text(text)


@_typed
def error_angle(text: str) -> float:
    """A positional error with its unit, 0 allowed ('0.1arcsec', '0arcsec') -> arcsec."""
    import astropy.units as u

    from xmatch.sky.coords import radius_of_text

    try:
        quantity = u.Quantity(text.strip().replace('"', "arcsec").replace("'", "arcmin"))
        if quantity.unit.physical_type == "angle" and quantity.value == 0:
            return 0.0
    except (ValueError, TypeError):
        pass
    return radius_of_text(text)  # the checks and messages of any other angle


@_typed
def epoch(text: str) -> float:
    from xmatch.timescales import epoch_jyear_of_text

    return epoch_jyear_of_text(text)


@_typed
def ra(text: str) -> float:
    from xmatch.sky import coords

    value = coords.angles(text, "ra")
    coords.check_radec(value, value * 0)
    return float(value[0])


@_typed
def dec(text: str) -> float:
    from xmatch.sky import coords

    value = coords.angles(text, "dec")
    coords.check_radec(value * 0, value)
    return float(value[0])


def positive_int(text: str) -> int:
    """A count that must be at least 1 (a row limit, k)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not allowed; give 1 or more")
    return value


def add_data(parser) -> None:
    parser.add_argument("--data", metavar="DIR", default=None,
                        help=f"data directory (default: ${DATA_ENV_VAR} or "
                             "~/.local/share/xmatch)")


def add_server(parser, what: str = "reading the data directory") -> None:
    parser.add_argument("--server", metavar="HOST:PORT",
                        help=f"ask a running xmatch server or router instead of {what}")


def add_output(parser, formats=OUTPUT_FORMATS) -> None:
    parser.add_argument("--out", metavar="FILE",
                        help="write to FILE instead of the terminal; its suffix picks the "
                             f"format ({', '.join(f for f in formats if f != 'table')})")
    parser.add_argument("--format", choices=formats, default=None,
                        help="output format (default: from the --out suffix, else a table "
                             "on the terminal)")


def add_columns(parser) -> None:
    parser.add_argument("--columns", default=None, metavar="A,B",
                        help="comma-separated catalog columns to return (default: all but "
                             "_healpix_29)")


def add_position_columns(parser) -> None:
    parser.add_argument("--ra-column", default=None, metavar="NAME",
                        help="the right ascension column (default: found by UCD or name: "
                             "ra, RAJ2000, raMean, objra...)")
    parser.add_argument("--dec-column", default=None, metavar="NAME",
                        help="the declination column (default: dec, DEJ2000, decMean...)")


def columns_of(args) -> list[str] | None:
    if not args.columns:
        return None
    columns = [c.strip() for c in args.columns.split(",")]
    if not all(columns):
        from xmatch.errors import InputError

        raise InputError(f"--columns {args.columns!r} has an empty name")
    return columns


def data_of(args):
    from xmatch.store.data_dir import DataDirectory

    return DataDirectory(args.data)


def write_result(table, args, *, positions=None, asked=None, limit: int | None = None,
                 what: str = "rows", summary=(), secondary=()) -> None:
    """Write a search's rows as ``--out``/``--format`` say, described (units, UCDs) by the
    ``positions`` (id, ra, dec) of its rows and ``secondary`` ones (:func:`described`);
    ``_healpix_29`` only when ``asked`` for. Then the summary lines and, when ``--limit``
    cut the rows, how many there were: on standard error when the rows went to the
    terminal, on standard output otherwise."""
    from xmatch.index.results import rows_found
    from xmatch.io.tables import described, output_format, write_table
    from xmatch.store.paths import HEALPIX29_COLUMN

    fmt = output_format(args.out, args.format)
    found = rows_found(table)
    if HEALPIX29_COLUMN in table.column_names and HEALPIX29_COLUMN not in (asked or ()):
        table = table.drop_columns([HEALPIX29_COLUMN])
    if positions is not None:
        table = described(table, ra=positions.ra, dec=positions.dec,
                          identifier=positions.id, secondary=secondary)
    write_table(table, fmt, args.out)
    lines = list(summary)
    count = f"{table.num_rows:,} {what}"
    if limit is not None and found > table.num_rows:
        count = f"{table.num_rows:,} of {found:,} {what} (cut by --limit {limit})"
    if args.out:
        lines.append(f"{count} -> {args.out}")
    elif count != f"{table.num_rows:,} {what}":
        lines.append(count)
    for line in lines:
        print(line, file=sys.stdout if args.out else sys.stderr)


def note(text: str) -> None:
    print(f"note: {text}", file=sys.stderr)


class CatalogColumns:
    """A catalog's identifier and position columns: what outputs are described by and what
    summaries and plots show."""

    def __init__(self, identifier: str | None, ra: str, dec: str, names):
        from xmatch.store.paths import ROW_ID_COLUMN

        identifier = identifier or ROW_ID_COLUMN  # the row number a load adds, if kept
        self.id = identifier if identifier in names else None
        self.ra, self.dec = ra, dec

    @classmethod
    def of_catalog(cls, catalog) -> CatalogColumns:
        return cls(catalog.spec.id, catalog.spec.ra, catalog.spec.dec, catalog.schema.names)

    @classmethod
    def of_description(cls, described: dict) -> CatalogColumns:
        return cls(described["id_column"], described["ra_column"], described["dec_column"],
                   described["schema"].names)

    def with_positions(self, columns: list[str] | None) -> list[str] | None:
        """The columns to ask for: summaries and plots need the identifier and position
        even when --columns leaves them out (they are dropped again from the output)."""
        if columns is None:
            return None
        wanted = [*columns, self.id, self.ra, self.dec]
        return [c for c in dict.fromkeys(wanted) if c is not None]


def add_memory(parser) -> None:
    """``--history`` and ``--watches`` of the commands that annotate."""
    parser.add_argument("--history", action="store_true",
                        help="record every alert in the alert history (the data directory's, "
                             "or the server's) and add each alert's object and light-curve "
                             "summary (history_* columns; docs/history.md)")
    parser.add_argument("--watches", action="store_true",
                        help="add each alert's hits in the watchlists and watchmaps "
                             "(watch_hits; `xmatch watch --help`)")


def memory_of(args, data):
    """The :class:`~xmatch.history.memory.AlertMemory` an in-process server keeps for
    ``--history``/``--watches`` (None without either)."""
    if not (args.history or args.watches):
        return None
    from xmatch.history.memory import AlertMemory

    return AlertMemory(data, history=args.history)
