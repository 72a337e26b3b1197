"""Reading catalogs: ours, or any HATS v1.0 catalog written by hats-import or LSDB."""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from xmatch.errors import (
    CatalogNotFoundError,
    DamagedCatalogError,
    InputError,
    UnknownColumnError,
    XmatchError,
    unknown_columns,
)
from xmatch.index.motion import MotionBounds
from xmatch.index.protocol import Searches
from xmatch.sky import coords, healpix
from xmatch.sky.regions import ARCSEC_TO_RAD
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


class Catalog(Searches):
    """A HATS catalog on disk: partitions, schema, our metadata, and searches that read only
    the partitions they need."""

    def __init__(self, root: Path, registered: dict | None = None):
        self.root = Path(root)
        self.properties = read_properties(self.root)
        sidecar_path = self.root / paths.SIDECAR_FILE
        # A registered catalog is what it was registered as (its name and spec), even
        # when its directory holds the metadata of the xmatch load that wrote it.
        self.sidecar = registered if registered is not None else (
            json.loads(sidecar_path.read_text()) if sidecar_path.is_file() else {})
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
        self._bounds = None  # motion bounds worked out from the rows (older catalogs)

    def __repr__(self):
        return f"<Catalog {self.name!r}: {self.num_rows} rows in {len(self.partitions)} partitions>"

    # ------------------------------------------------------------ metadata

    @property
    def num_rows(self) -> int:
        if "hats_nrows" in self.properties:
            return int(self.properties["hats_nrows"])
        return sum(pq.read_metadata(self.partition_path(p)).num_rows for p in self.partitions)

    @cached_property
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
            "proper_motions": (", ".join(f"{role}={column}" for role, column
                                         in self.motion_columns().items() if column)
                               if self.has_proper_motions else
                               "none: positions are not moved to other epochs"),
            "default_radius_arcsec": self.spec.default_radius_arcsec,
            "key_columns": list(self.spec.key),
            "registered": self.registered,
            "disk_bytes": disk,
            "spec": {**self.spec.role_columns, "keep": list(self.spec.keep or []) or "all",
                     "key": list(self.spec.key), "loader": self.spec.loader,
                     **({"context": self.spec.context} if self.spec.context else {})},
            "provenance": self.provenance,
        }

    # ------------------------------------------------------------ data

    def partition_path(self, partition: HealpixPixel) -> Path:
        suffix = self.properties.get("hats_npix_suffix", ".parquet")
        return self.root / paths.partition_file(partition.order, partition.pixel, suffix)

    def read_partition(self, partition: HealpixPixel, columns: list[str] | None = None,
                       within: np.ndarray | None = None) -> pa.Table:
        """The rows of a partition, or only those inside the order-29 ranges ``within``
        (``columns`` then include ``_healpix_29``): of those, only the row groups whose
        pixel statistics overlap the ranges are read."""
        path = self.partition_path(partition)
        if within is None:
            return pq.read_table(path, columns=columns, partitioning=None)
        parquet = pq.ParquetFile(path)
        groups = _row_groups_within(parquet.metadata, within)
        table = parquet.read_row_groups(groups, columns=columns) if groups else (
            parquet.schema_arrow.empty_table() if columns is None
            else pa.schema([parquet.schema_arrow.field(c) for c in columns]).empty_table())
        return _rows_within(table, within)

    def read(self, columns: list[str] | None = None) -> pa.Table:
        """All rows, partition by partition in order (loads the whole catalog in memory)."""
        tables = [self.read_partition(p, columns) for p in self.partitions]
        return pa.concat_tables(tables) if tables else self.schema.empty_table()

    # ------------------------------------------------------------ search

    def check_columns(self, columns) -> None:
        """Refuse columns the catalog does not have (:class:`UnknownColumnError`)."""
        if columns is None:
            return
        if isinstance(columns, str):
            raise InputError(f"columns must be a list of names, not the string {columns!r}")
        names = self.schema.names
        unknown = [c for c in columns if c not in names]
        if unknown:
            raise UnknownColumnError(unknown_columns(unknown, self.name, names))

    @cached_property
    def _partition_ranges(self) -> tuple[list[HealpixPixel], np.ndarray, np.ndarray]:
        """The partitions in order-29 range order, and their ranges."""
        ordered = sorted(self.partitions, key=lambda p: p.range29()[0])
        ranges = np.array([p.range29() for p in ordered], dtype=np.int64).reshape(-1, 2)
        return ordered, np.ascontiguousarray(ranges[:, 0]), np.ascontiguousarray(ranges[:, 1])

    def partitions_of(self, region) -> list[HealpixPixel]:
        """The partitions ``region`` (:mod:`xmatch.sky.regions`) may touch."""
        ordered, starts, stops = self._partition_ranges
        return [ordered[i] for i in region.partitions(starts, stops)]

    def search(self, region, *, columns=None, limit=None, epoch=None, rank_by=None):
        """Rows inside ``region``, reading only the partitions it may touch (widened, for a
        cone at another epoch, by how far the catalog's proper motions reach); see
        :meth:`xmatch.index.protocol.Searches.search`."""
        from xmatch.index import SkyIndex
        from xmatch.sky.regions import Cone

        self.check_columns(columns)
        cover = region
        if isinstance(region, Cone) and epoch is not None:
            bounds = self.motion_bounds()
            if bounds is not None:
                cover = region.widened(bounds.drift_arcsec(coords.epochs(epoch, 1)[0]))
        index = SkyIndex.from_catalog(self, columns, partitions=self.partitions_of(cover))
        return index.search(region, columns=columns, limit=limit, epoch=epoch, rank_by=rank_by)

    def crossmatch(self, ra, dec=None, *, radius_arcsec=None, mode="nearest", k=1,
                   epoch=None, columns=None, queries=None):
        """Match positions against the catalog, reading only the rows their searches may
        reach (:func:`reach_ranges29`); see :meth:`xmatch.index.SkyIndex.crossmatch`."""
        from xmatch.index import SkyIndex

        self.check_columns(columns)
        ra_deg, dec_deg, coord_epoch = coords.positions(ra, dec)
        n = len(ra_deg)
        radius = coords.radii_arcsec(self.spec.default_radius_arcsec if radius_arcsec is None
                                     else radius_arcsec, n)
        epochs = coords.epochs(epoch, n) if epoch is not None else coord_epoch
        reach = radius * ARCSEC_TO_RAD
        bounds = self.motion_bounds() if epochs is not None else None
        if bounds is not None:
            reach = reach + bounds.drift_rad(epochs)
        within = reach_ranges29(ra_deg, dec_deg, float(reach.max()) if n else 0.0)
        ordered, starts, stops = self._partition_ranges
        touched = np.flatnonzero(_overlapping(starts, stops, within))
        index = SkyIndex.from_catalog(self, columns, partitions=[ordered[i] for i in touched],
                                      within=within)
        return index.crossmatch(ra_deg, dec_deg, radius_arcsec=radius, mode=mode, k=k,
                                epoch=epochs, columns=columns, queries=queries)

    # ------------------------------------------------------------ proper motions

    def motion_columns(self) -> dict[str, str | None]:
        """The columns that move rows (``pmra``, ``pmdec``, ``parallax``,
        ``radial_velocity``), those the catalog has; all None without proper motions."""
        names = self.schema.names
        spec = self.spec

        def present(column):
            return column if column and column in names else None

        if not (present(spec.pmra) and present(spec.pmdec)):
            return dict.fromkeys(("pmra", "pmdec", "parallax", "radial_velocity"))
        return {"pmra": spec.pmra, "pmdec": spec.pmdec, "parallax": present(spec.parallax),
                "radial_velocity": present(spec.radial_velocity)}

    @property
    def has_proper_motions(self) -> bool:
        return self.motion_columns()["pmra"] is not None

    def motion_bounds(self, partitions=None) -> MotionBounds | None:
        """How fast the rows of ``partitions`` (default: all) can move (None without proper
        motions), from the per-partition bounds the load stored in the metadata; worked out
        from the rows, partition by partition, for catalogs loaded without them."""
        if not self.has_proper_motions:
            return None
        stored = self.sidecar.get("motion_bounds")
        if stored is None:
            stored = self._computed_bounds()
        chosen = self.partitions if partitions is None else partitions
        return MotionBounds.union(MotionBounds.from_dict(stored[f"{p.order}/{p.pixel}"])
                                  for p in chosen)

    def _computed_bounds(self) -> dict:
        if self._bounds is None:
            self._bounds = {f"{p.order}/{p.pixel}": partition_motion_bounds(
                self.read_partition(p, self._motion_read_columns()), self.spec).to_dict()
                for p in self.partitions}
        return self._bounds

    def _motion_read_columns(self) -> list[str]:
        columns = [c for c in self.motion_columns().values() if c]
        return list(dict.fromkeys([*columns, *([self.spec.epoch_column]
                                               if self.spec.epoch_column else [])]))

    @property
    def distance_column(self) -> str | None:
        """The distance (Mpc) column, when the catalog has one."""
        return self.spec.distance if self.spec.distance in self.schema.names else None


#: Fewer neighbourhood cells than this are always fine; beyond it, at most one cell per
#: ``QUERIES_PER_CELL`` queries (coarser cells), so routing stays a small cost of the match.
MIN_ROUTING_CELLS = 256
QUERIES_PER_CELL = 16


def reach_ranges29(ra_deg: np.ndarray, dec_deg: np.ndarray,
                   reach_rad: float) -> np.ndarray | None:
    """Order-29 ranges, shape (n, 2), that hold every point within ``reach_rad`` of any of
    the positions (None: the whole sky, for a reach wider than a pixel neighbourhood).

    Each position's cell and its eight neighbours at an order whose pixels are wider than
    the reach (the router's cone seeds, :func:`xmatch.kernels.healpix.cone_seeds`): as deep
    as the reach allows for a few positions, coarser for many, so that a catalog's rows
    are read only where a search may reach them."""
    from xmatch.kernels.healpix import MAX_ORDER, cone_seed_order
    from xmatch.kernels.routing import seed_cells_kernel
    from xmatch.kernels.search import radec_to_pixel_kernel

    order = cone_seed_order(reach_rad)
    if order < 0:
        return None
    pixels = np.empty(len(ra_deg), np.int64)
    radec_to_pixel_kernel(MAX_ORDER, np.radians(ra_deg), np.radians(dec_deg), pixels)
    cells = _distinct(np.sort(pixels >> 2 * (MAX_ORDER - order)))
    most = max(MIN_ROUTING_CELLS, len(ra_deg) // QUERIES_PER_CELL)
    while len(cells) > most and order > 0:
        order -= 1  # wider cells still hold the reach
        cells = _distinct(cells >> 2)
    seeds = np.empty(9 * len(cells), np.int64)
    seed_cells_kernel(cells, order, seeds)
    seeds = _distinct(np.sort(seeds[seeds >= 0]))
    return healpix.cells_to_ranges29(np.full(len(seeds), order), seeds)


def _row_groups_within(metadata, within: np.ndarray) -> list[int]:
    """The row groups of a Parquet file whose ``_healpix_29`` statistics overlap the
    order-29 ranges (every group, when the file has no statistics)."""
    names = metadata.schema.names
    column = names.index(paths.HEALPIX29_COLUMN)
    chosen = []
    for group in range(metadata.num_row_groups):
        statistics = metadata.row_group(group).column(column).statistics
        if statistics is None or not statistics.has_min_max:
            return list(range(metadata.num_row_groups))
        lo, hi = int(statistics.min), int(statistics.max) + 1
        if _overlapping(np.array([lo]), np.array([hi]), within)[0]:
            chosen.append(group)
    return chosen


def _rows_within(table: pa.Table, within: np.ndarray) -> pa.Table:
    """The rows of ``table`` whose ``_healpix_29`` lies inside the order-29 ranges: slices
    runs found by binary search in a table in pixel order (the store's), a mask otherwise."""
    from xmatch.kernels.search import in_ranges_kernel, is_sorted_kernel

    pixels = np.ascontiguousarray(table.column(paths.HEALPIX29_COLUMN).to_numpy())
    if not is_sorted_kernel(pixels):
        inside = np.empty(len(pixels), np.bool_)
        in_ranges_kernel(pixels, np.ascontiguousarray(within[:, 0]),
                         np.ascontiguousarray(within[:, 1]), inside)
        return table.filter(inside)
    first = np.searchsorted(pixels, within[:, 0])
    last = np.searchsorted(pixels, within[:, 1])
    runs = last > first
    first, last = first[runs], last[runs]
    kept = int((last - first).sum())
    if kept == len(pixels):
        return table
    lengths = last - first
    rows = np.repeat(first - (np.cumsum(lengths) - lengths), lengths) + np.arange(kept)
    return table.take(rows)


def _distinct(ordered: np.ndarray) -> np.ndarray:
    """The distinct values of a sorted array (numpy's unique hashes integers: slower)."""
    return ordered[np.r_[True, ordered[1:] != ordered[:-1]]] if len(ordered) else ordered


def _overlapping(starts: np.ndarray, stops: np.ndarray, ranges: np.ndarray | None) -> np.ndarray:
    """Which of the sorted, disjoint ranges ``starts[i]:stops[i]`` overlap ``ranges``
    (None: all)."""
    if ranges is None:
        return np.ones(len(starts), bool)
    first = np.searchsorted(ranges[:, 1], starts, side="right")  # first range ending after
    return (first < len(ranges)) & (ranges[np.minimum(first, len(ranges) - 1), 0] < stops)


def partition_motion_bounds(table: pa.Table, spec) -> MotionBounds:
    """The motion bounds of one partition's rows (which have the spec's proper-motion
    columns)."""
    def column(name):
        if not name or name not in table.column_names:
            return None
        return table.column(name).cast(pa.float64()).to_numpy(zero_copy_only=False)

    epoch0 = (column(spec.epoch_column) if spec.epoch_column
              else np.full(table.num_rows, float(spec.epoch_jyear)))
    return MotionBounds.of(column(spec.pmra), column(spec.pmdec), column(spec.parallax),
                           column(spec.radial_velocity), epoch0)


def open_catalog(name_or_path: str | Path, data: DataDirectory | str | Path | None = None,
                 verify: str = "size") -> Catalog:
    """Open a catalog by name (in the data directory) or by path to its directory.

    ``verify`` is ``"none"``, ``"size"`` (every file present with its manifest size, the
    default, cheap) or ``"checksum"`` (also re-hash every file).
    """
    if verify not in ("none", "size", "checksum"):
        raise InputError("verify must be 'none', 'size' or 'checksum'")
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
