"""Generic tables: CSV (optionally gzipped), ECSV, Parquet, FITS and VOTable files.

The format is taken from the file name (``.csv``, ``.csv.gz``, ``.ecsv``, ``.parquet``,
``.fits``, ``.fit``, ``.fits.gz``, ``.xml``, ``.vot``, ``.votable``) unless the spec's
``loader_options.format`` names it. Parquet is split by row groups and uncompressed FITS
by row ranges, both read lazily in the worker; CSV is streamed block by block; ECSV,
VOTable and compressed FITS, which have no random access, are parsed once and sliced.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from xmatch.errors import LoadError, missing_column, no_rows, unreadable
from xmatch.loaders import Chunk, inline_chunks, passthrough_table

FORMATS = {
    ".csv": "csv", ".csv.gz": "csv", ".tsv": "tsv", ".ecsv": "ecsv", ".parquet": "parquet",
    ".pq": "parquet", ".fits": "fits", ".fit": "fits", ".fits.gz": "fits",
    ".xml": "votable", ".vot": "votable", ".votable": "votable", ".vot.gz": "votable",
}


def detect_format(path: str) -> str:
    name = Path(path).name.lower()
    for suffix in sorted(FORMATS, key=len, reverse=True):
        if name.endswith(suffix):
            return FORMATS[suffix]
    raise LoadError(f"cannot tell the format from the file name; known endings: "
                    f"{', '.join(sorted(FORMATS))} (or set loader_options.format in the spec)",
                    source=path)


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
    from astropy.io import fits

    with fits.open(path, memmap=True) as hdul:
        return read_fits_rows_from(hdul, hdu, start, stop, columns)


def arrow_from_columns(columns: dict, units: dict | None = None) -> pa.Table:
    """Arrow table from numpy / masked columns: native byte order, masks as nulls."""
    arrays = {}
    for name, values in columns.items():
        mask = np.ma.getmaskarray(values) if np.ma.isMaskedArray(values) else None
        data = np.asarray(np.ma.getdata(values))
        if data.dtype.byteorder not in ("=", "|"):
            data = data.astype(data.dtype.newbyteorder("="))
        if data.dtype.kind in "SU":
            data = np.char.rstrip(data.astype(str)) if data.dtype.kind == "S" else data
        if data.ndim > 1:
            width = int(np.prod(data.shape[1:]))
            flat = pa.array(data.reshape(len(data) * width))
            arrays[name] = pa.FixedSizeListArray.from_arrays(flat, width)
            continue
        if mask is not None and mask.ndim > 1:
            mask = mask.any(axis=tuple(range(1, mask.ndim)))
        arrays[name] = pa.array(data, mask=mask if mask is not None and mask.any() else None)
    table = pa.table(arrays)
    if units:
        fields = [f.with_metadata({"unit": str(units[f.name])}) if units.get(f.name) else f
                  for f in table.schema]
        table = table.cast(pa.schema(fields))
    return table


def _astropy_table_to_arrow(table, columns) -> pa.Table:
    return arrow_from_columns({name: table[name] for name in columns},
                              units={name: table[name].unit for name in columns})


class TableLoader:
    name = "table"
    description = "CSV, ECSV, Parquet, FITS or VOTable file with the spec's column names"
    synthetic = False

    def chunks(self, source: str, spec, chunk_rows: int) -> Iterator[Chunk]:
        if not Path(source).is_file():
            raise LoadError("no such file", source=source)
        fmt = spec.loader_options.get("format") or detect_format(source)
        if Path(source).stat().st_size == 0:
            raise LoadError(no_rows(source), source=source)
        if fmt == "parquet":
            yield from self._parquet_chunks(source, spec, chunk_rows)
        elif fmt in ("csv", "tsv"):
            yield from self._csv_chunks(source, spec, chunk_rows, "\t" if fmt == "tsv" else ",")
        elif fmt == "fits":
            yield from self._fits_chunks(source, spec, chunk_rows)
        elif fmt in ("ecsv", "votable"):
            yield from self._astropy_chunks(source, spec, chunk_rows, fmt)
        else:
            raise LoadError(f"unknown format '{fmt}'; known: {sorted(set(FORMATS.values()))}",
                            source=source)

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
        try:
            reader = pacsv.open_csv(
                pa.input_stream(source, compression="detect"),
                read_options=pacsv.ReadOptions(block_size=8 << 20),
                parse_options=pacsv.ParseOptions(delimiter=delimiter),
                # Coordinates arrive as text so that a bad value can be located by row.
                convert_options=pacsv.ConvertOptions(
                    column_types={c: pa.string() for role, c in spec.role_columns.items()
                                  if role != "id"},
                    strings_can_be_null=True),
            )
            columns = columns_to_read(spec, reader.schema.names, source)
            pending, pending_rows, first_row = [], 0, 1
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
                raise LoadError(no_rows(source), source=source) from None
            raise LoadError(f"CSV parse error: {exc}", source=source) from None

    def _fits_chunks(self, source, spec, chunk_rows):
        from astropy.io import fits

        hdu_index = int(spec.loader_options.get("hdu", 1))
        try:
            with fits.open(source, memmap=not source.endswith(".gz")) as hdul:
                hdu = hdul[hdu_index]
                if not isinstance(hdu, fits.BinTableHDU | fits.TableHDU):
                    raise LoadError(f"HDU {hdu_index} is not a table", source=source)
                columns = columns_to_read(spec, list(hdu.columns.names), source)
                n_rows = hdu.header["NAXIS2"]
                if source.endswith(".gz"):
                    table = read_fits_rows_from(hdul, hdu_index, 0, n_rows, columns)
        except (OSError, ValueError, TypeError) as exc:
            raise LoadError(unreadable("FITS", str(exc)), source=source) from None
        if source.endswith(".gz"):
            yield from inline_chunks(table, source, chunk_rows)
            return
        for start in range(0, n_rows, chunk_rows):
            stop = min(start + chunk_rows, n_rows)
            yield Chunk(source, start + 1, stop - start, read_fits_rows,
                        (source, hdu_index, start, stop, columns))

    def _astropy_chunks(self, source, spec, chunk_rows, fmt):
        from astropy.table import Table

        try:
            table = Table.read(source, format="ascii.ecsv" if fmt == "ecsv" else "votable")
        except Exception as exc:  # astropy raises many types for malformed files
            raise LoadError(unreadable(fmt.upper(), str(exc)), source=source) from None
        columns = columns_to_read(spec, list(table.colnames), source)
        yield from inline_chunks(_astropy_table_to_arrow(table, columns), source, chunk_rows)


def read_fits_rows_from(hdul, hdu_index, start, stop, columns) -> pa.Table:
    data = hdul[hdu_index].data[start:stop]
    return arrow_from_columns({name: data[name] for name in columns},
                              units={name: hdul[hdu_index].columns[name].unit for name in columns})


LOADER = TableLoader()
