"""Existing HATS catalogs (written by hats-import or LSDB): registered, not converted.

Registration checks that the directory is a HATS catalog whose position columns match
the spec, records a manifest of its files (so later damage is detected) and links it
into the data directory under the catalog's name.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from xmatch.errors import LoadError, missing_column
from xmatch.store import paths
from xmatch.store.catalog import Catalog
from xmatch.store.manifest import build_manifest


class HatsCatalogLoader:
    name = "hats"
    description = "existing HATS catalog directory, served in place without conversion"
    synthetic = False
    registers = True

    def chunks(self, source, spec, chunk_rows):
        raise LoadError("a HATS catalog is registered, not read in chunks", source=source)

    def register(self, source: str, spec, data):
        root = Path(source)
        if not paths.is_hats_catalog(root):
            raise LoadError(f"not a HATS catalog directory (no {paths.PROPERTIES_FILE})",
                            source=source)
        catalog = Catalog(root)
        if not catalog.partitions:
            raise LoadError("HATS catalog has no partitions", source=source)
        schema = catalog.schema
        props = catalog.properties
        ra = props.get("hats_col_ra", spec.ra)
        dec = props.get("hats_col_dec", spec.dec)
        if (ra, dec) != (spec.ra, spec.dec):
            raise LoadError(f"the spec says ra/dec are '{spec.ra}'/'{spec.dec}' but the "
                            f"catalog's properties say '{ra}'/'{dec}'", source=source)
        missing = spec.first_missing_column(schema.names)
        if missing is not None:
            raise LoadError(missing_column(missing, schema.names), source=source, column=missing)
        if paths.HEALPIX29_COLUMN not in schema.names:
            raise LoadError(missing_column(paths.HEALPIX29_COLUMN, schema.names), source=source)
        for partition in catalog.partitions:
            path = catalog.partition_path(partition)
            try:
                pq.read_metadata(path)
            except Exception as exc:  # pyarrow raises several types for unreadable files
                raise LoadError(f"partition file unreadable: {exc}", source=str(path)) from None
        metadata = {
            "name": spec.name,
            "spec": spec.to_dict(),
            "provenance": {"loader": self.name, "sources": [{"source": str(root.resolve())}],
                           "rows": catalog.num_rows, "registered": True,
                           "hats_builder": props.get("hats_builder", ""),
                           "synthetic": spec.synthetic},
            "manifest": build_manifest(root),
        }
        return data.register(spec.name, root, metadata)


LOADER = HatsCatalogLoader()
