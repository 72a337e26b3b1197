"""Generic tables: every format :mod:`xmatch.io.tables` reads (CSV, TSV, whitespace ASCII,
ECSV, FITS, Parquet, VOTable, HDF5, optionally gzipped), with the spec's column names.

The format comes from the file name unless the spec's ``loader_options.format`` names it.
Large inputs are never held whole: Parquet is split by row groups and uncompressed FITS by
row ranges, both read lazily in the worker; CSV and TSV are streamed block by block (a row
with too few or too many values is an error naming it). Formats without random access
(ECSV, VOTable, whitespace ASCII, HDF5, gzipped FITS) are read once by the common reader
and sliced. Values are checked by the writer (:func:`xmatch.store.writer.standardize`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from xmatch.errors import LoadError, missing_column, unreadable
from xmatch.io.tables import arrow_of_astropy, input_format, read_table
from xmatch.loaders import Chunk, inline_chunks, passthrough_table


def columns_to_read(spec, available: list[str], source: str) -> list[str]:
    """Columns of ``available`` the spec needs; raises on a missing required one."""
    missing = spec.first_missing_column(available)
    if missing is not None:
        raise LoadError(missing_column(missing, available), source=source, column=missing)
    if spec.keep is None:
        return list(available)
    return [name for name in spec.source_columns(include_keep=True) if name in available]


def read_parquet_row_groups(path: str, row_groups: list[int], columns: list[str]) -> pa.Table:
    try:
        return pq.ParquetFile(path).read_row_groups(row_groups, columns=columns)
    except (pa.ArrowException, OSError) as exc:
        raise LoadError(unreadable("Parquet", str(exc)), source=path) from None


def read_fits_rows(path: str, hdu: int, start: int, stop: int, columns: list[str]) -> pa.Table:
    """Rows ``start:stop`` of a FITS table, any byte order, masks and units kept."""
    from astropy.io import fits
    from astropy.table import Table

    with fits.open(path, memmap=True) as hdul:
        piece = Table(hdul[hdu].data[start:stop], copy=False)
        for name in columns:
            unit = hdul[hdu].columns[name].unit
            if unit:
                piece[name].unit = unit
        return arrow_of_astropy(piece[columns])


class TableLoader:
    name = "table"
    description = ("CSV, TSV, whitespace ASCII, ECSV, FITS, Parquet, VOTable or HDF5 file "
                   "(optionally gzipped) with the spec's column names")
    synthetic = False

    def chunks(self, source: str, spec, chunk_rows: int) -> Iterator[Chunk]:
        if not Path(source).is_file():
            raise LoadError("no such file", source=source)
        fmt = input_format(source, spec.loader_options.get("format"))
        if Path(source).stat().st_size == 0:
            raise LoadError("the file is empty", source=source)
        gzipped = source.lower().endswith(".gz")
        if fmt == "parquet" and not gzipped:
            yield from self._parquet_chunks(source, spec, chunk_rows)
        elif fmt in ("csv", "tsv"):
            yield from self._csv_chunks(source, spec, chunk_rows, "\t" if fmt == "tsv" else ",")
        elif fmt == "fits" and not gzipped:
            yield from self._fits_chunks(source, spec, chunk_rows)
        else:
            table = read_table(source, format=fmt)
            columns = columns_to_read(spec, table.column_names, source)
            yield from inline_chunks(table.select(columns), source, chunk_rows)

    def _parquet_chunks(self, source, spec, chunk_rows):
        try:
            meta = pq.ParquetFile(source).metadata
        except (pa.ArrowException, OSError) as exc:
            raise LoadError(unreadable("Parquet", str(exc)), source=source) from None
        columns = columns_to_read(spec, meta.schema.to_arrow_schema().names, source)
        group, group_rows, first_row = [], 0, 1
        for index in range(meta.num_row_groups):
            group.append(index)
            group_rows += meta.row_group(index).num_rows
            if group_rows >= chunk_rows or index == meta.num_row_groups - 1:
                yield Chunk(source, first_row, group_rows, read_parquet_row_groups,
                            (source, group, columns))
                first_row += group_rows
                group, group_rows = [], 0

    def _csv_chunks(self, source, spec, chunk_rows, delimiter):
        malformed = []

        def on_invalid(row):
            malformed.append(row)
            return "error"

        first_row = 1
        try:
            reader = pacsv.open_csv(
                pa.input_stream(source, compression="detect"),
                read_options=pacsv.ReadOptions(block_size=8 << 20),
                parse_options=pacsv.ParseOptions(delimiter=delimiter,
                                                 invalid_row_handler=on_invalid),
                # Role columns arrive as text so that a bad value (or a sexagesimal one) is
                # seen as written and located by row.
                convert_options=pacsv.ConvertOptions(
                    column_types={c: pa.string() for role, c in spec.role_columns.items()
                                  if role != "id"},
                    strings_can_be_null=True),
            )
            columns = columns_to_read(spec, reader.schema.names, source)
            pending, pending_rows = [], 0
            for batch in reader:
                pending.append(batch.select(columns))
                pending_rows += batch.num_rows
                if pending_rows >= chunk_rows:
                    yield Chunk(source, first_row, pending_rows, passthrough_table,
                                (pa.Table.from_batches(pending),))
                    first_row += pending_rows
                    pending, pending_rows = [], 0
            if pending_rows:
                yield Chunk(source, first_row, pending_rows, passthrough_table,
                            (pa.Table.from_batches(pending),))
        except pa.ArrowInvalid as exc:
            if "Empty CSV file" in str(exc):
                raise LoadError("the file is empty", source=source) from None
            if malformed:
                row = malformed[0]
                raise LoadError(
                    f"has {row.actual_columns} values where the header has "
                    f"{row.expected_columns} columns ({row.text[:60]!r}); every row needs a "
                    "value (or an empty field) for each column", source=source,
                    row=_malformed_row(source, delimiter, row.expected_columns)) from None
            raise LoadError(f"CSV parse error: {exc}", source=source) from None

    def _fits_chunks(self, source, spec, chunk_rows):
        from astropy.io import fits

        hdu_index = int(spec.loader_options.get("hdu", 1))
        try:
            with fits.open(source, memmap=True) as hdul:
                hdu = hdul[hdu_index]
                if not isinstance(hdu, fits.BinTableHDU | fits.TableHDU):
                    raise LoadError(f"HDU {hdu_index} is not a table", source=source)
                columns = columns_to_read(spec, list(hdu.columns.names), source)
                n_rows = hdu.header["NAXIS2"]
        except (OSError, ValueError, TypeError, IndexError) as exc:
            raise LoadError(unreadable("FITS", str(exc)), source=source) from None
        for start in range(0, n_rows, chunk_rows):
            stop = min(start + chunk_rows, n_rows)
            yield Chunk(source, start + 1, stop - start, read_fits_rows,
                        (source, hdu_index, start, stop, columns))


def _malformed_row(source: str, delimiter: str, width: int) -> int | None:
    """The 1-based data row of the first row without ``width`` values (read again only when
    a file has one)."""
    import csv
    import gzip

    opener = gzip.open if source.lower().endswith(".gz") else open
    with opener(source, "rt", encoding="utf-8-sig", errors="replace", newline="") as handle:
        for number, values in enumerate(csv.reader(handle, delimiter=delimiter)):
            if number and values and len(values) != width:
                return number
    return None


LOADER = TableLoader()

