"""Tables out: Arrow to astropy, and writing results in the formats astronomers use."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa

OUTPUT_FORMATS = ("table", "csv", "ecsv", "json", "parquet", "votable")


def to_astropy(table: pa.Table):
    """An astropy Table with the Arrow column types kept, nulls masked and units (from
    field metadata ``unit``) attached."""
    from astropy.table import Column, MaskedColumn, Table

    columns = []
    for field in table.schema:
        values = table.column(field.name).combine_chunks()
        is_text = pa.types.is_string(field.type) or pa.types.is_large_string(field.type)
        filled = values.fill_null("" if is_text else 0) if values.null_count else values
        data = (np.array(filled.to_pylist(), dtype=str) if is_text
                else filled.to_numpy(zero_copy_only=False))
        mask = values.is_null().to_numpy(zero_copy_only=False) if values.null_count else None
        unit = (field.metadata or {}).get(b"unit")
        unit = unit.decode() if unit else None
        columns.append(MaskedColumn(data, name=field.name, mask=mask, unit=unit)
                       if mask is not None else Column(data, name=field.name, unit=unit))
    return Table(columns)


def write_table(table: pa.Table, fmt: str, out: str | Path | None = None) -> None:
    """Write ``table`` as one of :data:`OUTPUT_FORMATS` to ``out`` (standard output if None;
    Parquet needs a file)."""
    import pyarrow.parquet as pq

    if fmt not in OUTPUT_FORMATS:
        raise ValueError(f"unknown format '{fmt}'; choose one of {', '.join(OUTPUT_FORMATS)}")
    if fmt == "parquet":
        if not out:
            raise ValueError("Parquet output needs a file (--out FILE)")
        pq.write_table(table, out)
    elif fmt == "json":
        text = json.dumps(table.to_pylist(), default=str)
        Path(out).write_text(text + "\n") if out else print(text)
    elif fmt == "table":
        lines = to_astropy(table).pformat(max_lines=-1, max_width=-1)
        Path(out).write_text("\n".join(lines) + "\n") if out else print("\n".join(lines))
    else:
        astropy_format = {"csv": "ascii.csv", "ecsv": "ascii.ecsv", "votable": "votable"}[fmt]
        to_astropy(table).write(out or sys.stdout, format=astropy_format, overwrite=bool(out))


def select_present(table: pa.Table, columns) -> pa.Table:
    return table.select([c for c in columns if c in table.column_names])
