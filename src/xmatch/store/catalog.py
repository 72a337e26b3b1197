"""Reading catalogs: ours, or any HATS v1.0 catalog written by hats-import or LSDB."""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from xmatch.errors import (
    CatalogNotFoundError,
    DamagedCatalogError,
    UnknownColumnError,
    XmatchError,
    unknown_columns,
)
from xmatch.sky import healpix
from xmatch.specs import CatalogSpec
from xmatch.store import paths
from xmatch.store.data_dir import DataDirectory
from xmatch.store.manifest import check_manifest


@dataclass(frozen=True, order=True)
class HealpixPixel:
    """One partition: a NESTED pixel ``pixel`` at HEALPix depth ``order``."""

    order: int
    pixel: int

    def range29(self) -> tuple[int, int]:
        lo, hi = healpix.pixel_range29(self.order, self.pixel)
        return int(lo), int(hi)


def read_properties(root: Path) -> dict[str, str]:
    for name in (paths.PROPERTIES_FILE, paths.LEGACY_PROPERTIES_FILE):
        path = root / name
        if path.is_file():
            props = {}
            for line in path.read_text().splitlines():
                line = line.strip()
                if line and not line.startswith("#") and "=" in line:
                    key, value = line.split("=", 1)
                    props[key.strip()] = value.strip()
            return props
    raise CatalogNotFoundError(f"{root} is not a HATS catalog (no {paths.PROPERTIES_FILE})")


def _read_partitions(root: Path) -> list[HealpixPixel]:
    info = root / paths.PARTITION_INFO_FILE
    if info.is_file():
        with open(info, newline="") as handle:
            rows = list(csv.DictReader(handle))
        return sorted(HealpixPixel(int(r[paths.PARTITION_ORDER]), int(r[paths.PARTITION_PIXEL]))
                      for r in rows)
    pattern = re.compile(rf"{paths.PARTITION_ORDER}=(\d+)/{paths.PARTITION_DIR}=\d+/"
                         rf"{paths.PARTITION_PIXEL}=(\d+)")
    found = []
    for path in paths.dataset_dir(root).glob("*/*/*"):
        match = pattern.search(path.relative_to(root).as_posix())
        if match:
            found.append(HealpixPixel(int(match[1]), int(match[2])))
    return sorted(found)


class Catalog:
    """A HATS catalog on disk: partitions, schema, our metadata, and cone searches."""

    def __init__(self, root: Path, registered: dict | None = None):
        self.root = Path(root)
        self.properties = read_properties(self.root)
        sidecar_path = self.root / paths.SIDECAR_FILE
        self.sidecar = (json.loads(sidecar_path.read_text()) if sidecar_path.is_file()
                        else registered or {})
        self.registered = registered is not None
        self.partitions = _read_partitions(self.root)
        if "spec" in self.sidecar:
            self.spec = CatalogSpec.from_dict(self.sidecar["spec"])
        else:
            self.spec = CatalogSpec(
                name=self.properties.get("obs_collection", self.root.name),
                ra=self.properties.get("hats_col_ra", "ra"),
                dec=self.properties.get("hats_col_dec", "dec"))
        self.name = self.sidecar.get("name", self.spec.name)

    def __repr__(self):
        return f"<Catalog {self.name!r}: {self.num_rows} rows in {len(self.partitions)} partitions>"

    # ------------------------------------------------------------ metadata

    @property
    def num_rows(self) -> int:
        if "hats_nrows" in self.properties:
            return int(self.properties["hats_nrows"])
        return sum(pq.read_metadata(self.partition_path(p)).num_rows for p in self.partitions)

    @property
    def schema(self) -> pa.Schema:
        common = paths.dataset_dir(self.root) / paths.COMMON_METADATA_FILE
        schema = pq.read_schema(common if common.is_file() else
                                self.partition_path(self.partitions[0]))
        hive = {paths.PARTITION_ORDER, paths.PARTITION_DIR, paths.PARTITION_PIXEL}
        return pa.schema([f for f in schema if f.name not in hive])

    @property
    def provenance(self) -> dict:
        return self.sidecar.get("provenance", {})

    @property
    def manifest(self) -> dict | None:
        path = self.root / paths.MANIFEST_FILE
        if path.is_file():
            return json.loads(path.read_text())
        return self.sidecar.get("manifest")

    def verify(self, checksums: bool = True) -> list[str]:
        """Problems found against the manifest; empty means intact."""
        manifest = self.manifest
        if manifest is None:
            return ["no manifest: integrity cannot be checked"]
        return check_manifest(self.root, manifest, checksums)

    def coverage_fraction(self) -> float:
        """Fraction of the sky covered by the catalog's partitions."""
        return sum(4.0 ** -p.order for p in self.partitions) / 12

    def info(self) -> dict:
        orders = {}
        for p in self.partitions:
            orders[p.order] = orders.get(p.order, 0) + 1
        disk = sum(self.partition_path(p).stat().st_size for p in self.partitions)
        point = self.sidecar.get("point_coverage")
        return {
            "name": self.name,
            "path": str(self.root),
            "version_path": str(self.root.resolve()),
            "title": self.spec.title,
            "rows": self.num_rows,
            "partitions": len(self.partitions),
            "partitions_per_order": dict(sorted(orders.items())),
            "coverage_fraction_partitions": round(self.coverage_fraction(), 6),
            "coverage_fraction_points": point and {"order": point["order"],
                                                   "fraction": round(point["fraction"], 6)},
            "columns": {f.name: str(f.type) for f in self.schema},
            "epoch_jyear": self.spec.epoch_jyear,
            "epoch_column": self.spec.epoch_column,
            "proper_motion_columns": [self.spec.pmra, self.spec.pmdec] if self.spec.pmra else None,
            "default_radius_arcsec": self.spec.default_radius_arcsec,
            "key_columns": list(self.spec.key),
            "registered": self.registered,
            "provenance": self.provenance,
            "disk_bytes": disk,
        }

    # ------------------------------------------------------------ data

    def partition_path(self, partition: HealpixPixel) -> Path:
        suffix = self.properties.get("hats_npix_suffix", ".parquet")
        return self.root / paths.partition_file(partition.order, partition.pixel, suffix)

    def read_partition(self, partition: HealpixPixel, columns: list[str] | None = None) -> pa.Table:
        return pq.read_table(self.partition_path(partition), columns=columns,
                             partitioning=None)

    def read(self, columns: list[str] | None = None) -> pa.Table:
        """All rows, partition by partition in order (loads the whole catalog in memory)."""
        tables = [self.read_partition(p, columns) for p in self.partitions]
        return pa.concat_tables(tables) if tables else self.schema.empty_table()

    def cone(self, ra_deg: float, dec_deg: float, radius_arcsec: float,
             columns: list[str] | None = None, limit: int | None = None,
             epoch=None) -> pa.Table:
        """Rows within ``radius_arcsec`` of (ra, dec), closest first, with separations and
        position angles; rows with proper motions are moved to ``epoch`` (Julian year or
        astropy Time) first.

        Two phases: partitions that may hold such rows are picked with HEALPix (widened by
        the fastest proper motion when an epoch is given), then only those partitions are
        read and searched with the kernels (:meth:`xmatch.index.SkyIndex.cone`).
        """
        from xmatch.index import SkyIndex, check_cone_arguments, widest_drift_arcsec

        check_cone_arguments(ra_deg, dec_deg, radius_arcsec, limit, epoch)
        if columns is not None:
            unknown = [c for c in columns if c not in self.schema.names]
            if unknown:
                raise UnknownColumnError(unknown_columns(unknown, self.name, self.schema.names))
        reach_deg = (radius_arcsec + widest_drift_arcsec(self, epoch)) / 3600
        wanted = []
        for order in sorted({p.order for p in self.partitions}):
            hits = set(healpix.cone_pixels(order, ra_deg, dec_deg, min(reach_deg, 180.0)).tolist())
            wanted += [p for p in self.partitions if p.order == order and p.pixel in hits]
        index = SkyIndex.from_catalog(self, columns, partitions=wanted)
        return index.cone(ra_deg, dec_deg, radius_arcsec, limit=limit, epoch=epoch)


def open_catalog(name_or_path: str | Path, data: DataDirectory | str | Path | None = None,
                 verify: str = "size") -> Catalog:
    """Open a catalog by name (in the data directory) or by path to its directory.

    ``verify`` is ``"none"``, ``"size"`` (every file present with its manifest size, the
    default, cheap) or ``"checksum"`` (also re-hash every file).
    """
    if verify not in ("none", "size", "checksum"):
        raise ValueError("verify must be 'none', 'size' or 'checksum'")
    candidate = Path(name_or_path)
    registered = None
    if paths.is_hats_catalog(candidate) and (len(candidate.parts) > 1 or data is None):
        root = candidate
    else:
        directory = data if isinstance(data, DataDirectory) else DataDirectory(data)
        root = directory.path(str(name_or_path))
        registered = directory.registered_metadata(str(name_or_path))
    try:
        catalog = Catalog(root, registered)
    except (OSError, ValueError, KeyError) as exc:
        raise XmatchError(f"cannot open catalog at {root}: {exc}") from None
    if verify != "none" and catalog.manifest is not None:
        problems = catalog.verify(checksums=verify == "checksum")
        if problems:
            raise DamagedCatalogError(
                f"catalog {catalog.name} at {root} is damaged: " + "; ".join(problems[:5])
                + (f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""))
    return catalog
