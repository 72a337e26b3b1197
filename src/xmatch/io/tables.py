"""Users' tables in and results out, in the formats astronomers use.

In: :func:`read_table` reads any user table (query positions, alerts in compact form,
catalogs to load) strictly: CSV and TSV (a short or long row is an error naming it, never
filled), whitespace-separated ASCII with a header line, ECSV, FITS (any byte order),
Parquet, VOTable and HDF5, each optionally gzipped; the format comes from the name (or is
given), never guessed. :func:`position_columns` finds the right ascension and declination
as astronomers name them (or as told), and :func:`read_positions` reads them through
:mod:`xmatch.sky.coords`: degrees or sexagesimal, every value present and in range, or an
error naming file, 1-based row and column (or, with ``skip_invalid``, the row skipped and
counted).

Out: :func:`write_table` writes the terminal table, CSV, TSV, ECSV, FITS, Parquet, VOTable,
JSON or JSON lines, the format from the file's suffix (or given); units and UCDs of
positions and separations travel in ECSV, VOTable, FITS (``TUCDn``) and Parquet metadata.
"""

from __future__ import annotations

import gzip
import io
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from xmatch.errors import InputError, LoadError, missing_column, unreadable

#: Readable formats, by file suffix (a trailing ``.gz`` is gunzipped first).
INPUT_SUFFIXES = {
    ".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".txt": "ascii", ".dat": "ascii",
    ".ascii": "ascii", ".asc": "ascii", ".ecsv": "ecsv", ".fits": "fits", ".fit": "fits",
    ".fts": "fits", ".parquet": "parquet", ".pq": "parquet", ".vot": "votable",
    ".votable": "votable", ".xml": "votable", ".h5": "hdf5", ".hdf5": "hdf5",
}
INPUT_FORMATS = tuple(sorted(set(INPUT_SUFFIXES.values())))
#: Writable formats, and the suffixes that choose them.
OUTPUT_FORMATS = ("table", "csv", "tsv", "ecsv", "fits", "parquet", "votable", "json",
                  "jsonl")
OUTPUT_SUFFIXES = {
    ".csv": "csv", ".tsv": "tsv", ".ecsv": "ecsv", ".fits": "fits", ".fit": "fits",
    ".parquet": "parquet", ".pq": "parquet", ".vot": "votable", ".votable": "votable",
    ".xml": "votable", ".json": "json", ".jsonl": "jsonl", ".txt": "table",
}

#: Position columns as catalogs name them, most specific first (compared case-blind).
RA_NAMES = ("ra", "ra_deg", "radeg", "raj2000", "_raj2000", "ra_j2000", "ra2000", "ra_icrs",
            "ramean", "ra_mean", "objra", "ra_d", "alpha_j2000", "alpha", "raj2000_deg")
DEC_NAMES = ("dec", "dec_deg", "decdeg", "dej2000", "_dej2000", "decj2000", "dec_j2000",
             "de2000", "dec2000", "de_icrs", "dec_icrs", "decmean", "dec_mean", "objdec",
             "dec_d", "decl", "delta_j2000", "delta", "dej2000_deg")
RA_UCD, DEC_UCD = "pos.eq.ra;meta.main", "pos.eq.dec;meta.main"
POSITION_NAMES = frozenset(RA_NAMES + DEC_NAMES)

#: UCDs and units of the columns xmatch adds to answers.
ADDED_COLUMNS = {
    "separation_arcsec": ("pos.angDistance", "arcsec", "distance from the query position"),
    "position_angle_deg": ("pos.posAng", "deg", "position angle of the source seen from "
                           "the query, east of north"),
    "ra_at_epoch": ("pos.eq.ra", "deg", "right ascension moved to the query epoch"),
    "dec_at_epoch": ("pos.eq.dec", "deg", "declination moved to the query epoch"),
    "query_index": ("meta.id", None, "row of the query (0-based)"),
    "match_rank": ("meta.number", None, "1 for the nearest match, 2 for the next..."),
    "probdensity": ("stat.probability", "sr-1", "sky-map probability density"),
    "searched_prob": ("stat.probability", None, "credible level of the sky-map pixel"),
    "searched_area": ("phys.angArea", "deg2", "area of the sky map searched up to here"),
    "probdensity_vol": ("stat.probability", "Mpc-3", "3-D probability density"),
}
MAX_EXAMPLES = 20


# ------------------------------------------------------------------------- formats


def _suffix_format(path: str, suffixes: dict) -> str | None:
    name = Path(str(path)).name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    for suffix in sorted(suffixes, key=len, reverse=True):
        if name.endswith(suffix):
            return suffixes[suffix]
    return None


def input_format(path, requested: str | None = None) -> str:
    """The format to read ``path`` as: ``requested``, else from its name."""
    if requested:
        if requested not in INPUT_FORMATS:
            raise InputError(f"input format {requested!r} is not one of "
                             f"{', '.join(INPUT_FORMATS)}")
        return requested
    found = _suffix_format(path, INPUT_SUFFIXES)
    if found is None:
        raise LoadError("cannot tell the format from the file name; name it "
                        f"{', '.join(sorted(INPUT_SUFFIXES))} (optionally .gz), or give "
                        "the format", source=str(path))
    return found


def output_format(path, requested: str | None = None) -> str:
    """The format to write: ``requested``, else from the suffix of ``path``; the terminal
    table without a path."""
    if requested:
        if requested not in OUTPUT_FORMATS:
            raise InputError(f"output format {requested!r} is not one of "
                             f"{', '.join(OUTPUT_FORMATS)}")
        return requested
    if path is None:
        return "table"
    found = _suffix_format(path, OUTPUT_SUFFIXES)
    if found is None or (str(path).lower().endswith(".gz") and found != "fits"):
        raise InputError(f"cannot tell the output format of {path} from its suffix; name it "
                         f"{', '.join(sorted(OUTPUT_SUFFIXES))} or give --format "
                         f"({', '.join(OUTPUT_FORMATS)})")
    return found


# ------------------------------------------------------------------------- reading


def read_table(path, *, format: str | None = None, text_columns=()) -> pa.Table:
    """Every column of a user's table, as Arrow (masked and empty values as nulls; column
    units and UCDs in field metadata ``unit`` and ``ucd``). Refuses, naming the file and
    the row where it can, what cannot be read as it is: a CSV row with too few or too many
    values, a truncated or corrupt file, an empty one. In CSV and TSV the columns that may
    hold positions (named as :data:`RA_NAMES`, :data:`DEC_NAMES`, or ``text_columns``) are
    read as written, so each value is judged on its own; the others' types are inferred."""
    path = str(path)
    fmt = input_format(path, format)
    data = _file_bytes(path)
    if not data.strip():
        raise LoadError("the file is empty", source=path)
    if fmt in ("csv", "tsv"):
        table = _read_csv(data, path, "\t" if fmt == "tsv" else ",", text_columns)
    elif fmt == "parquet":
        table = _read_parquet(data, path)
    else:
        table = _read_with_astropy(data, path, fmt)
    if table.num_rows == 0:
        raise LoadError("the table has no data rows", source=path)
    return table


def read_schema(path, *, format: str | None = None) -> pa.Schema:
    """The columns of a user's table (with units and UCDs), reading no more of it than its
    format needs: the header line of a CSV, the footer of a Parquet file."""
    path = str(path)
    fmt = input_format(path, format)
    if fmt in ("csv", "tsv") and not path.lower().endswith(".gz"):
        try:
            with open(path, "rb") as handle:
                first = handle.readline()
        except FileNotFoundError:
            raise LoadError("no such file", source=path) from None
        except OSError as error:
            raise LoadError(f"cannot read: {error.strerror}", source=path) from None
        if not first.strip():
            raise LoadError("the file is empty", source=path)
        names = _csv_header(first, "\t" if fmt == "tsv" else ",")
        return pa.schema([(name, pa.string()) for name in names])
    if fmt == "parquet" and not path.lower().endswith(".gz"):
        import pyarrow.parquet as pq

        try:
            return pq.read_schema(path)
        except (pa.ArrowException, OSError) as error:
            raise LoadError(unreadable("Parquet", str(error)), source=path) from None
    return read_table(path, format=fmt).schema


def _file_bytes(path: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        raise LoadError("no such file", source=path) from None
    except IsADirectoryError:
        raise LoadError("is a directory, not a table file", source=path) from None
    except OSError as error:
        raise LoadError(f"cannot read: {error.strerror}", source=path) from None
    if data[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(data)
        except (OSError, EOFError) as error:
            raise LoadError(unreadable("gzip", str(error)), source=path) from None
    return data


def _read_csv(data: bytes, path: str, delimiter: str, text_columns=()) -> pa.Table:
    """CSV/TSV, empty values as nulls, the position columns as text (so that sexagesimal
    positions and bad values are seen as written); the first malformed row is an error."""
    import pyarrow.csv as pacsv

    bad_rows = []

    def on_invalid(row):
        bad_rows.append(row)
        return "skip"

    try:
        header = _csv_header(data, delimiter)
        table = pacsv.read_csv(
            io.BytesIO(data),
            parse_options=pacsv.ParseOptions(delimiter=delimiter,
                                             invalid_row_handler=on_invalid),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.string() for name in header
                              if name.lower() in POSITION_NAMES or name in text_columns},
                strings_can_be_null=True, null_values=[""]))
    except pa.ArrowInvalid as error:
        raise LoadError(f"not a readable {'TSV' if delimiter == chr(9) else 'CSV'} file: "
                        f"{error}", source=path) from None
    if bad_rows:
        row = bad_rows[0]
        raise LoadError(f"has {row.actual_columns} values where the header has "
                        f"{row.expected_columns} columns ({row.text[:60]!r}); every row needs "
                        "a value (or an empty field) for each column", source=path,
                        row=_first_malformed_row(data, delimiter, row.expected_columns))
    return table


def _first_malformed_row(data: bytes, delimiter: str, width: int) -> int | None:
    """The 1-based data row of the first row of a CSV without ``width`` values (found again
    row by row: only when a file has one)."""
    import csv

    text = io.StringIO(data.decode("utf-8-sig", errors="replace"), newline="")
    for number, values in enumerate(csv.reader(text, delimiter=delimiter)):
        if number and values and len(values) != width:
            return number
    return None


def _csv_header(data: bytes, delimiter: str) -> list[str]:
    import csv

    first = data.split(b"\n", 1)[0].decode("utf-8-sig", errors="replace").strip("\r")
    return next(csv.reader([first], delimiter=delimiter))


def _read_parquet(data: bytes, path: str) -> pa.Table:
    import pyarrow.parquet as pq

    try:
        return pq.read_table(io.BytesIO(data))
    except (pa.ArrowException, OSError) as error:
        raise LoadError(unreadable("Parquet", str(error)), source=path) from None


ASTROPY_FORMATS = {"ascii": "ascii.basic", "ecsv": "ascii.ecsv", "fits": "fits",
                   "votable": "votable", "hdf5": "hdf5"}


def read_votable_bytes(data: bytes, source: str) -> pa.Table:
    """A VOTable document's first table (``source`` names it in messages: LoadError)."""
    return _read_with_astropy(data, source, "votable")


def _read_with_astropy(data: bytes, path: str, fmt: str) -> pa.Table:
    import warnings

    from astropy.table import Table

    if fmt == "hdf5":
        try:
            import h5py  # noqa: F401
        except ImportError:
            raise LoadError("reading HDF5 needs the h5py package: pip install h5py",
                            source=path) from None
    import tempfile

    source = io.BytesIO(data) if fmt in ("fits", "votable") else data.decode(
        "utf-8", errors="replace")
    try:
        with warnings.catch_warnings(), tempfile.TemporaryDirectory() as scratch:
            warnings.simplefilter("ignore")  # units astropy does not know stay as text
            if fmt == "hdf5":  # h5py opens files only: a gunzipped copy in scratch space
                source = Path(scratch) / "table.hdf5"
                source.write_bytes(data)
            table = Table.read(source, format=ASTROPY_FORMATS[fmt],
                               **({"fast_reader": False} if fmt == "ascii" else {}))
    except Exception as error:  # noqa: BLE001 (astropy raises many kinds on malformed files)
        raise LoadError(unreadable(fmt.upper() if fmt != "ascii" else "whitespace-separated "
                                   "ASCII", f"{type(error).__name__}: {error}"),
                        source=path) from None
    return arrow_of_astropy(table)


def arrow_of_astropy(table) -> pa.Table:
    """An astropy Table as Arrow: native byte order, masked values as nulls, units and UCDs
    (column meta ``ucd``) in field metadata."""
    arrays, fields = [], []
    for name in table.colnames:
        column = table[name]
        values = _arrow_array(column)
        metadata = {}
        if getattr(column, "unit", None) is not None:
            metadata[b"unit"] = str(column.unit).encode()
        ucd = (column.meta or {}).get("ucd") if hasattr(column, "meta") else None
        if ucd:
            metadata[b"ucd"] = str(ucd).encode()
        if getattr(column, "description", None):
            metadata[b"description"] = str(column.description).encode()
        arrays.append(values)
        fields.append(pa.field(name, values.type, metadata=metadata or None))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def _arrow_array(column) -> pa.Array:
    mask = np.ma.getmaskarray(column) if np.ma.isMaskedArray(column) else None
    data = np.asarray(np.ma.getdata(column))
    if data.dtype.byteorder not in ("=", "|"):
        data = data.astype(data.dtype.newbyteorder("="))
    if data.dtype.kind == "S":
        data = np.char.rstrip(np.char.decode(data, "utf-8", errors="replace"))
    elif data.dtype.kind == "U":
        data = np.char.rstrip(data)
    if data.ndim > 1:
        width = int(np.prod(data.shape[1:]))
        return pa.FixedSizeListArray.from_arrays(pa.array(data.reshape(len(data) * width)),
                                                 width)
    if data.dtype.kind == "O":
        return pa.array([None if (mask is not None and mask[i]) else v
                         for i, v in enumerate(data)])
    if mask is not None and mask.ndim > 1:
        mask = mask.any(axis=tuple(range(1, mask.ndim)))
    return pa.array(data, mask=mask if mask is not None and mask.any() else None)


def position_columns(table: pa.Table, ra_column: str | None = None,
                     dec_column: str | None = None, source: str = "") -> tuple[str, str]:
    """The names of the right ascension and declination columns: the ones given, else the
    columns whose UCD is ``pos.eq.ra;meta.main`` / ``pos.eq.dec;meta.main``, else the first
    of :data:`RA_NAMES` / :data:`DEC_NAMES` present (case-blind)."""
    names = table.column_names

    def find(given, ucd, candidates, kind, option):
        if given is not None:
            if given not in names:
                raise LoadError(f"{missing_column(given, names)} (given with {option})",
                                source=source or None, column=given)
            return given
        by_ucd = [f.name for f in table.schema
                  if (f.metadata or {}).get(b"ucd", b"").decode().lower() == ucd]
        if len(by_ucd) == 1:
            return by_ucd[0]
        lowered = {}
        for name in names:
            lowered.setdefault(name.lower(), []).append(name)
        for candidate in candidates:
            found = lowered.get(candidate, [])
            if len(found) > 1:
                raise LoadError(f"columns {', '.join(found)} could all be the {kind}; say "
                                f"which with {option}", source=source or None)
            if found:
                return found[0]
        raise LoadError(f"no {kind} column found (looked for {', '.join(candidates[:8])}... "
                        f"and the UCD {ucd}); columns present: {', '.join(names)}; name it "
                        f"with {option}", source=source or None)

    ra = find(ra_column, RA_UCD.lower(), RA_NAMES, "right ascension", "--ra-column")
    dec = find(dec_column, DEC_UCD.lower(), DEC_NAMES, "declination", "--dec-column")
    if ra == dec:
        raise LoadError(f"the right ascension and declination cannot both be column {ra}",
                        source=source or None)
    return ra, dec


@dataclass
class Positions:
    """The positions of a table's rows (degrees), the rows kept, and those skipped."""

    table: pa.Table            # the rows kept, every column
    ra: np.ndarray
    dec: np.ndarray
    ra_column: str
    dec_column: str
    rows: np.ndarray           # 1-based row numbers of the rows kept, in the file
    skipped: int = 0
    examples: list = field(default_factory=list)


def read_positions(path, *, format: str | None = None, ra_column: str | None = None,
                   dec_column: str | None = None, skip_invalid: bool = False) -> Positions:
    """A user's table and the positions of its rows (see :func:`positions_of`)."""
    given = [c for c in (ra_column, dec_column) if c]
    table = read_table(path, format=format, text_columns=given)
    return positions_of(table, str(path), ra_column, dec_column, skip_invalid)


def positions_of(table: pa.Table, source: str, ra_column: str | None = None,
                 dec_column: str | None = None, skip_invalid: bool = False) -> Positions:
    """The positions of a table's rows, read strictly: each value degrees or sexagesimal,
    present, finite and in range, else a :class:`LoadError` naming ``source``, the 1-based
    row and the column; with ``skip_invalid`` such rows are dropped and counted."""
    from xmatch.sky import coords

    ra_name, dec_name = position_columns(table, ra_column, dec_column, source)
    ra, ra_bad, ra_raw = _angles(table, ra_name, "ra", source)
    dec, dec_bad, dec_raw = _angles(table, dec_name, "dec", source)
    with np.errstate(invalid="ignore"):
        ra_bad |= ~((ra >= 0) & (ra <= 360))
        dec_bad |= ~((dec >= -90) & (dec <= 90))
    bad = ra_bad | dec_bad
    examples = []
    for i in np.flatnonzero(bad)[:MAX_EXAMPLES if skip_invalid else 1]:
        column, value, kind = ((ra_name, ra_raw[i], "ra") if ra_bad[i]
                               else (dec_name, dec_raw[i], "dec"))
        problem = position_problem(kind, value)
        if not skip_invalid:
            raise LoadError(problem, source=source, row=int(i) + 1, column=column)
        examples.append({"source": source, "row": int(i) + 1, "column": column,
                         "problem": problem})
    rows = np.flatnonzero(~bad) + 1
    if bad.any():
        table = table.filter(pa.array(~bad))
        ra, dec = ra[~bad], dec[~bad]
    coords.check_radec(ra, dec)
    # The positions as read (degrees, whatever the text or unit was), as the UCDs say.
    for name, values in ((ra_name, ra), (dec_name, dec)):
        field = table.schema.field(name)
        metadata = {**(field.metadata or {}), b"unit": b"deg"}
        table = table.set_column(table.schema.get_field_index(name),
                                 pa.field(name, pa.float64(), metadata=metadata),
                                 pa.array(values, pa.float64()))
    return Positions(table, np.ascontiguousarray(ra), np.ascontiguousarray(dec), ra_name,
                     dec_name, rows, int(bad.sum()), examples)


def _angles(table: pa.Table, name: str, kind: str, source: str):
    from xmatch.sky import coords

    column = table.column(name)
    unit = (table.schema.field(name).metadata or {}).get(b"unit")
    degrees, bad, raw = coords.parse_angles(column, kind)
    if unit:
        import astropy.units as u

        try:
            degrees = degrees * u.Unit(unit.decode()).to(u.deg)
        except (ValueError, u.UnitsError):
            raise LoadError(f"has unit {unit.decode()!r}, not an angle", source=source,
                            column=name) from None
    return degrees, bad, raw


def position_problem(kind: str, value) -> str:
    """What is wrong with a position value as a file has it (missing, not an angle, or
    out of range)."""
    from xmatch.errors import bad_coordinate, missing_value

    if value is None or (isinstance(value, str) and not value.strip()) or (
            isinstance(value, float) and np.isnan(value)):
        return missing_value(kind)
    try:
        float(value)
    except (TypeError, ValueError):
        return (f"{kind} = {value!r} is neither degrees nor sexagesimal (e.g. 56.75, "
                "'03:47:00' hours for ra, '+24:07:00' degrees for dec)")
    return bad_coordinate(kind, float(value))


# ------------------------------------------------------------------------- writing


def to_astropy(table: pa.Table):
    """An astropy Table with the Arrow column types kept, nulls masked, and the units,
    UCDs and descriptions of the field metadata attached (``meta["rows_found"]``: how many
    rows the search found before a limit)."""
    from astropy.table import Column, MaskedColumn, Table

    from xmatch.index.results import ROWS_FOUND_KEY

    columns = []
    for field_ in table.schema:
        values = table.column(field_.name).combine_chunks()
        if pa.types.is_dictionary(values.type):
            values = values.dictionary_decode()
        is_text = pa.types.is_string(values.type) or pa.types.is_large_string(values.type)
        filled = values.fill_null("" if is_text else 0) if values.null_count else values
        data = (np.array(filled.to_pylist(), dtype=str) if is_text
                else filled.to_numpy(zero_copy_only=False))
        mask = values.is_null().to_numpy(zero_copy_only=False) if values.null_count else None
        meta = field_.metadata or {}
        unit = meta.get(b"unit", b"").decode() or None
        kwargs = {"name": field_.name, "unit": unit,
                  "description": meta.get(b"description", b"").decode() or None,
                  "meta": {"ucd": meta[b"ucd"].decode()} if b"ucd" in meta else None}
        columns.append(MaskedColumn(data, mask=mask, **kwargs) if mask is not None
                       else Column(data, **kwargs))
    found = (table.schema.metadata or {}).get(ROWS_FOUND_KEY)
    return Table(columns, meta={"rows_found": int(found)} if found is not None else None)


def described(table: pa.Table, *, ra: str | None = None, dec: str | None = None,
              identifier: str | None = None, secondary: tuple = ()) -> pa.Table:
    """``table`` with UCDs, units and descriptions on its main position (``ra``, ``dec``)
    and identifier columns, on other positions (``secondary``: (ra, dec) name pairs, a
    matched catalog's), and on the columns xmatch adds (separations, moved positions...)."""
    known = dict(ADDED_COLUMNS)
    for other_ra, other_dec in secondary:
        known[other_ra] = ("pos.eq.ra", "deg", None)
        known[other_dec] = ("pos.eq.dec", "deg", None)
    if ra:
        known[ra] = (RA_UCD, "deg", None)
    if dec:
        known[dec] = (DEC_UCD, "deg", None)
    if identifier:
        known[identifier] = ("meta.id;meta.main", None, None)
    fields = []
    for f in table.schema:
        ucd, unit, description = known.get(f.name, (None, None, None))
        metadata = dict(f.metadata or {})
        if ucd and b"ucd" not in metadata:
            metadata[b"ucd"] = ucd.encode()
        if unit and b"unit" not in metadata:
            metadata[b"unit"] = unit.encode()
        if description and b"description" not in metadata:
            metadata[b"description"] = description.encode()
        fields.append(f.with_metadata(metadata) if metadata else f)
    return table.cast(pa.schema(fields, metadata=table.schema.metadata))


def write_table(table: pa.Table, fmt: str, out=None) -> None:
    """Write ``table`` as one of :data:`OUTPUT_FORMATS` to ``out`` (standard output if None;
    Parquet and FITS need a file). Written to a temporary name and renamed: a failed write
    leaves no half file."""
    if fmt not in OUTPUT_FORMATS:
        raise InputError(f"unknown format '{fmt}'; choose one of {', '.join(OUTPUT_FORMATS)}")
    if fmt in ("parquet", "fits") and not out:
        raise InputError(f"{fmt} output needs a file (--out FILE)")
    if out is None:
        sys.stdout.write(encoded(table, fmt).decode())
        sys.stdout.flush()
        return
    out = Path(out)
    temporary = out.with_name(f".{out.name}.tmp")
    try:
        temporary.write_bytes(encoded(table, fmt))
        temporary.replace(out)
    finally:
        temporary.unlink(missing_ok=True)


def encoded(table: pa.Table, fmt: str) -> bytes:
    if fmt == "parquet":
        import pyarrow.parquet as pq

        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        return sink.getvalue().to_pybytes()
    if fmt in ("csv", "tsv", "ecsv", "json", "jsonl"):
        table = _floats_as_written(table)
    if fmt in ("json", "jsonl"):
        rows = [json_ready(row) for row in table.to_pylist()]
        if fmt == "json":
            return (json.dumps(rows) + "\n").encode()
        return "".join(json.dumps(row) + "\n" for row in rows).encode()
    astropy_table = to_astropy(table)
    astropy_table.meta.pop("rows_found", None)  # what a search found: said, not written
    if fmt == "table":
        _readable_precision(astropy_table)
        lines = astropy_table.pformat(max_lines=-1, max_width=-1)
        return ("\n".join(lines) + "\n").encode()
    if fmt == "fits":
        sink = io.BytesIO()
        _write_fits(astropy_table, sink)
        return sink.getvalue()
    if fmt == "votable":
        import warnings

        sink = io.BytesIO()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # VOTable's notes on units it cannot check
            astropy_table.write(sink, format="votable")
        return sink.getvalue()
    text = io.StringIO()
    astropy_table.write(text, format={"csv": "ascii.csv", "tsv": "ascii.tab",
                                      "ecsv": "ascii.ecsv"}[fmt])
    return text.getvalue().encode()


def _floats_as_written(table: pa.Table) -> pa.Table:
    """Single-precision columns as the doubles their shortest decimal form reads as (1.57,
    not 1.5700000524520874), for text outputs."""
    import pyarrow.compute as pc

    for i, f in enumerate(table.schema):
        if pa.types.is_float32(f.type):
            text = pc.cast(table.column(i), pa.string())
            table = table.set_column(i, f.with_type(pa.float64()),
                                     pc.cast(text, pa.float64()))
    return table


def _write_fits(table, sink) -> None:
    from astropy.io import fits

    hdu = fits.table_to_hdu(table)
    for number, name in enumerate(table.colnames, start=1):
        ucd = (table[name].meta or {}).get("ucd")
        if ucd:
            hdu.header[f"TUCD{number}"] = ucd  # the STIL/TOPCAT convention
        if table[name].description:
            hdu.header[f"TCOMM{number}"] = table[name].description[:68]
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(sink)


def _readable_precision(table) -> None:
    """Terminal formats: angles in degrees to 1e-6 deg (3.6 mas), in arcsec to 0.1 mas,
    magnitudes to a millimag, other doubles to 8 significant digits, floats to 6."""
    for column in table.itercols():
        if column.dtype.kind != "f":
            continue
        unit = str(column.unit) if column.unit is not None else ""
        default = ".8g" if column.dtype.itemsize == 8 else ".6g"
        column.info.format = {"deg": ".6f", "arcsec": ".4f", "mag": ".3f"}.get(unit, default)


def json_ready(value):
    """JSON has no NaN or bytes: NaN becomes null, bytes text."""
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_ready(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value if isinstance(value, str | int | float | bool) or value is None else str(value)


def select_present(table: pa.Table, columns) -> pa.Table:
    return table.select([c for c in columns if c in table.column_names])
