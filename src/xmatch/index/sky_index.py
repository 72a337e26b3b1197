"""In-memory HEALPix index over catalog rows, answering searches with the numba kernels:
regions (cone, polygon, MOC, sky-map credible region) and batch cross-match (nearest,
k nearest, all within radius).

A :class:`SkyIndex` holds rows sorted by their order-29 pixel, their positions, a dense
cell-offset table and, for catalogs with proper motions, what is needed to move each row to
any epoch. Rows read from the store are already in pixel order: the pixels and positions
are then the payload's own Arrow buffers, not copies, and the index adds only its cell
table (measured in ``benchmarks/bench_memory.py``; see ``docs/sizing.md``). Build one from
a catalog in the store (:meth:`SkyIndex.from_catalog`) or from any table
(:meth:`SkyIndex.from_table`), then query it as often as needed.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np
import pyarrow as pa

from xmatch.errors import InputError, UnknownColumnError, unknown_columns
from xmatch.index import results
from xmatch.index.motion import BLOCK_ROWS, Motion, radec_deg
from xmatch.index.protocol import MODES, Searches
from xmatch.kernels import search
from xmatch.kernels.motion import MOTION_WIDTH, motion_arrays, propagate_kernel
from xmatch.sky import coords
from xmatch.sky.healpix import MAX_ORDER, npix_at
from xmatch.sky.regions import ARCSEC_TO_RAD, Cone, SkyMapRegion, check_ranges29

#: The dense cell table is at the coarsest order whose cells hold at most this many rows on
#: average (capped at order 10: 12.6 M cells, 100 MB).
ROWS_PER_CELL = 8
#: A batch at one epoch searches a copy of the index with every row moved there
#: (:meth:`SkyIndex.fixed_at`) when the index has at most this many rows per query: moving
#: a row costs about what a query does, and a shard's whole catalog is never copied for a
#: small batch.
FIXED_ROWS_PER_QUERY = 16
#: The cell table (whole sky) has at most this many cells per row.
CELLS_PER_ROW = 8
MAX_CELL_ORDER = 10

#: A batch whose rows could drift further than this many times its radius (because the
#: catalog has proper motions and the batch epoch is far from the index epoch) is matched
#: against a copy of the index re-sorted at the batch epoch.
REINDEX_DRIFT_FACTOR = 4.0
REINDEX_MIN_QUERIES = 64

#: Queries are visited sorted by their pixel at this order (or the cell order if coarser),
#: unless the index is smaller than CACHE_BYTES: measured, sorting then gains nothing.
QUERY_SORT_ORDER = 8
CACHE_BYTES = 32 * 2**20

#: After reading more than this many bytes of partitions, freed memory is handed back to
#: the system: Arrow's allocator otherwise keeps the pages of the partitions read (with
#: every partition read before being concatenated, a shard's resident memory was 120 B/row
#: instead of 69 for id, ra, dec at 10 M rows; measured).
RELEASE_BYTES = 64 * 2**20

_NO_VECTORS = np.empty((0, 3))
_NO_VALUES = np.empty(0)


def choose_cell_order(n_rows: int, sky_fraction: float = 1.0) -> int:
    """Coarsest order whose cells hold at most ROWS_PER_CELL rows on average where the rows
    are (``sky_fraction`` of the sky), capped, and with at most CELLS_PER_ROW cells per row
    (the cell table covers the whole sky)."""
    order = 0
    while (order < MAX_CELL_ORDER
           and npix_at(order) * sky_fraction * ROWS_PER_CELL < n_rows
           and npix_at(order + 1) <= CELLS_PER_ROW * n_rows):
        order += 1
    return order


def check_limit(limit) -> int | None:
    """A row limit: None or an integer >= 1."""
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, int | np.integer) or limit < 1:
        raise InputError(f"limit = {limit!r} is not allowed; limit must be an integer >= 1")
    return int(limit)


def check_mode(mode: str, k) -> int:
    """The number of matches kept per query: 1 (nearest), ``k`` (k), 0 (all)."""
    if mode not in MODES:
        raise InputError(f"mode = {mode!r} is not allowed; mode must be one of "
                         f"{', '.join(MODES)}")
    if mode == "k":
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
            raise InputError(f"k = {k!r} is not allowed; k must be an integer >= 1")
        return int(k)
    if k != 1:
        raise InputError(f"k = {k!r} applies to mode 'k' only, not to mode {mode!r}")
    return 1 if mode == "nearest" else 0


@dataclass(frozen=True)
class SkyIndex(Searches):
    """Rows sorted by order-29 pixel, with their positions and a dense cell-offset table.

    Attributes
    ----------
    h29, cell_order, cell_start
        The index arrays (see :mod:`xmatch.kernels.search`).
    ra_deg, dec_deg : numpy.ndarray or None
        Position of each index position, degrees: views of the table's position columns
        when the table is in index order, else copies in index order.
    xyz : numpy.ndarray or None
        Unit vectors, held instead of ``ra_deg``, ``dec_deg`` by a copy of the index moved
        to another epoch (:meth:`at_epoch`).
    permutation : numpy.ndarray or None
        Row number, in ``table``, of each index position; None when the table is in index
        order (rows read from the store are): see :attr:`rows`.
    table : pyarrow.Table
        The payload columns, in original row order.
    motion : Motion or None
        Set when rows have proper motions; positions are then moved to the query epoch.
    epoch_range : tuple of float
        Julian-year range of the epochs of the indexed positions (NaN if unknown).
    """

    h29: np.ndarray
    ra_deg: np.ndarray | None
    dec_deg: np.ndarray | None
    xyz: np.ndarray | None
    cell_order: int
    cell_start: np.ndarray
    permutation: np.ndarray | None
    table: pa.Table
    motion: Motion | None = None
    epoch_range: tuple = (math.nan, math.nan)
    name: str = "catalog"
    ra_column: str = "ra"
    dec_column: str = "dec"
    distance_column: str | None = None  # Mpc, for the 3-D density of sky-map searches
    default_radius_arcsec: float | None = None
    _epoch_copies: dict = field(default_factory=dict, compare=False, repr=False)
    _empty_results: dict = field(default_factory=dict, compare=False, repr=False)

    # ------------------------------------------------------------------ building

    @classmethod
    def from_table(cls, table, ra: str = "ra", dec: str = "dec", *, pmra: str | None = None,
                   pmdec: str | None = None, parallax: str | None = None,
                   radial_velocity: str | None = None, epoch=None, healpix29: str | None = None,
                   name: str = "catalog") -> SkyIndex:
        """Index the rows of an Arrow or astropy table (or anything ``pa.table`` accepts).

        ``epoch`` is the epoch of the positions: a Julian year, or the name of a column of
        per-row epochs. With ``pmra`` (mu_alpha*, mas/yr) and ``pmdec`` the rows are moved
        to each query's epoch; ``parallax`` (mas) and ``radial_velocity`` (km/s) add
        perspective acceleration. ``healpix29`` names a column of order-29 NESTED pixels
        already computed (the store's ``_healpix_29``); otherwise they are computed.

        Rows already in pixel order (the store's) are not copied: the index uses the
        table's float64 position and pixel columns in place, and adds its cell table.
        """
        table = _one_chunk(_as_arrow(table))  # row lookups stay cheap
        ra_deg = _column(table, ra)  # float64 columns: views of the table's buffers
        dec_deg = _column(table, dec)
        if ra_deg.shape != dec_deg.shape or not search.positions_valid_kernel(ra_deg, dec_deg):
            coords.check_radec(ra_deg, dec_deg)  # raises, naming the first bad value
        if healpix29 is not None:
            pixels = np.ascontiguousarray(_column(table, healpix29, np.int64))
        else:
            pixels = np.empty(len(ra_deg), dtype=np.int64)
            search.radec_to_pixel_kernel(MAX_ORDER, np.radians(ra_deg), np.radians(dec_deg),
                                         pixels)
        if isinstance(epoch, str):
            epoch0 = _column(table, epoch)
        elif epoch is not None:
            epoch0 = np.full(len(ra_deg), float(epoch))
        else:
            epoch0 = None
        motion = None
        if pmra is not None or pmdec is not None:
            if pmra is None or pmdec is None:
                raise InputError("give both pmra and pmdec, or neither")
            if epoch0 is None:
                raise InputError("rows with proper motions need the epoch of their positions "
                                 "(epoch=Julian year or column name)")
            motion = _motion(table, ra_deg, dec_deg, pmra, pmdec, parallax, radial_velocity,
                             epoch0)
        epoch_range = ((float(epoch0.min()), float(epoch0.max()))
                       if epoch0 is not None and len(epoch0) else (math.nan, math.nan))
        index = cls._sorted(pixels, ra_deg, dec_deg, table, motion, epoch_range, name)
        return replace(index, ra_column=ra, dec_column=dec)

    @classmethod
    def from_catalog(cls, catalog, columns: list[str] | None = None,
                     partitions=None, within: np.ndarray | None = None) -> SkyIndex:
        """Index a catalog of the store (all partitions, or the given ones; of those, only
        the rows inside the order-29 ranges ``within``, when given).

        ``columns`` are the payload columns kept (default: all); the catalog's position,
        pixel, epoch and proper-motion columns are always read.
        """
        from xmatch.store.paths import HEALPIX29_COLUMN

        spec = catalog.spec
        catalog.check_columns(columns)
        motion_columns = catalog.motion_columns()
        needed = [c for c in (spec.ra, spec.dec, HEALPIX29_COLUMN, spec.epoch_column) if c]
        distance = catalog.distance_column
        read = None if columns is None else list(dict.fromkeys(
            [*columns, *needed, *[c for c in motion_columns.values() if c],
             *([distance] if distance else [])]))
        chosen = catalog.partitions if partitions is None else list(partitions)
        chosen = sorted(chosen, key=lambda p: p.range29()[0])
        table = _read_partitions(catalog, chosen, read, within) if chosen else (
            catalog.schema.empty_table() if read is None
            else pa.schema([catalog.schema.field(c) for c in read]).empty_table())
        read_bytes = table.nbytes
        index = cls.from_table(table, spec.ra, spec.dec, **motion_columns,
                               epoch=spec.epoch_column or spec.epoch_jyear,
                               healpix29=HEALPIX29_COLUMN, name=catalog.name)
        del table
        index = replace(index, default_radius_arcsec=spec.default_radius_arcsec,
                        distance_column=distance)
        if columns is not None:  # the distance stays: sky-map searches need it
            kept = list(dict.fromkeys([*columns, *([distance] if distance else [])]))
            index = replace(index, table=index.table.select(kept), _empty_results={})
        if read_bytes > RELEASE_BYTES:
            pa.default_memory_pool().release_unused()
        return index

    @classmethod
    def _sorted(cls, pixels, ra_deg, dec_deg, table, motion, epoch_range, name) -> SkyIndex:
        """The index of rows in table order: kept as they are when already in pixel order
        (the store's), else sorted, with their permutation."""
        permutation = None
        if not search.is_sorted_kernel(pixels):
            permutation = np.argsort(pixels, kind="stable")
            pixels, ra_deg, dec_deg = (pixels[permutation], ra_deg[permutation],
                                       dec_deg[permutation])
            motion = motion.take(permutation) if motion is not None else None
        # Rows of a small area (a join's neighbourhood) get cells as fine as their density
        # asks: the span of their sorted pixels bounds the area they are in.
        span = (int(pixels[-1]) - int(pixels[0]) + 1) / npix_at(MAX_ORDER) if len(pixels) else 1
        cell_order = choose_cell_order(len(pixels), span)
        return cls(np.ascontiguousarray(pixels), np.ascontiguousarray(ra_deg),
                   np.ascontiguousarray(dec_deg), None, cell_order,
                   _cell_table(pixels, cell_order), permutation, table, motion, epoch_range,
                   name)

    def at_epoch(self, epoch_jyear: float) -> SkyIndex:
        """A copy of the index with every row moved to ``epoch_jyear`` and re-sorted, so
        queries at (or near) that epoch search no wider than their radius."""
        if self.motion is None:
            return self
        epoch_jyear = float(coords.epochs(epoch_jyear, 1)[0])
        cached = self._epoch_copies.get(epoch_jyear)
        if cached is not None:
            return cached
        pixels, xyz, by_pixel = self._moved_by_pixel(epoch_jyear)
        moved = replace(self, h29=pixels, ra_deg=None, dec_deg=None, xyz=xyz,
                        permutation=self.rows[by_pixel], motion=self.motion.take(by_pixel),
                        epoch_range=(epoch_jyear, epoch_jyear),
                        _epoch_copies={})
        moved = replace(moved, cell_start=_cell_table(moved.h29, moved.cell_order))
        if len(self._epoch_copies) >= 4:
            self._epoch_copies.pop(next(iter(self._epoch_copies)))
        self._epoch_copies[epoch_jyear] = moved
        return moved

    def _moved_by_pixel(self, epoch_jyear: float):
        """Every row moved to ``epoch_jyear``, sorted by its new pixel: (order-29 pixels,
        unit vectors, the sorting permutation)."""
        xyz = np.empty((len(self), 3))
        propagate_kernel(self.motion.vectors, self.motion.epoch0,
                         np.full(len(self), epoch_jyear), xyz)
        pixels = np.empty(len(self), dtype=np.int64)
        search.vector_to_pixel_kernel(MAX_ORDER, xyz, pixels)
        by_pixel = np.argsort(pixels, kind="stable")
        return (np.ascontiguousarray(pixels[by_pixel]), np.ascontiguousarray(xyz[by_pixel]),
                by_pixel)

    def fixed_at(self, epoch_jyear: float) -> SkyIndex:
        """A copy of the index with every row moved to ``epoch_jyear``, re-sorted, and no
        motion left: a batch of queries all at that epoch searches it as a catalog without
        proper motions, about twice as fast as moving each candidate row to the query's
        epoch. Its positions are where the rows are at that epoch."""
        key = (epoch_jyear, "fixed")
        cached = self._epoch_copies.get(key)
        if cached is not None:
            return cached
        # The moved unit vectors themselves are kept (not their RA/Dec): separations and
        # positions at the epoch are then bit for bit those of moving each row per query.
        pixels, xyz, by_pixel = self._moved_by_pixel(epoch_jyear)
        fixed = replace(self, h29=pixels, ra_deg=None, dec_deg=None, xyz=xyz,
                        cell_start=_cell_table(pixels, self.cell_order),
                        permutation=self.rows[by_pixel], motion=None,
                        epoch_range=(epoch_jyear, epoch_jyear), _epoch_copies={},
                        _empty_results={})
        if len(self._epoch_copies) >= 4:
            self._epoch_copies.pop(next(iter(self._epoch_copies)))
        self._epoch_copies[key] = fixed
        return fixed

    def __len__(self) -> int:
        return len(self.h29)

    @property
    def rows(self) -> np.ndarray:
        """Row number, in ``table``, of each index position (made when asked for, when the
        table is in index order)."""
        if self.permutation is None:
            return np.arange(len(self), dtype=np.int64)
        return self.permutation

    def table_rows(self, positions: np.ndarray) -> np.ndarray:
        """Row numbers, in ``table``, of index ``positions``."""
        return positions if self.permutation is None else self.permutation[positions]

    def vectors(self, positions: np.ndarray) -> np.ndarray:
        """Unit vectors (n, 3) of index ``positions`` at the index epoch."""
        if self.xyz is not None:
            return self.xyz[positions]
        xyz = np.empty((len(positions), 3))
        search.unit_vectors_at_kernel(self.ra_deg, self.dec_deg,
                                      np.ascontiguousarray(positions, dtype=np.int64), xyz)
        return xyz

    def memory_bytes(self) -> int:
        """Bytes this index holds: its arrays, the payload's Arrow buffers, and copies of
        it moved to other epochs; memory shared by several of them (the pixels and
        positions that are views of payload columns) is counted once."""
        return held_bytes(self._held())

    def payload_bytes(self) -> int:
        """Bytes of the payload's Arrow buffers (part of :meth:`memory_bytes`)."""
        return held_bytes([self.table])

    def _held(self) -> list:
        held = [self.h29, self.ra_deg, self.dec_deg, self.xyz, self.cell_start,
                self.permutation, self.table]
        if self.motion is not None:
            held += [self.motion.vectors, self.motion.epoch0]
        for copy in list(self._epoch_copies.values()):
            held += copy._held()
        return held

    def __repr__(self) -> str:
        moving = ", with proper motions" if self.motion is not None else ""
        return (f"<SkyIndex {self.name!r}: {len(self)} rows, cells at order "
                f"{self.cell_order}{moving}>")

    # ------------------------------------------------------------------ queries

    def crossmatch(self, ra, dec=None, *, radius_arcsec=None, mode: str = "nearest",
                   k: int = 1, epoch=None, columns: list[str] | None = None,
                   queries: pa.Table | None = None) -> pa.Table:
        """Match query positions against the indexed rows (a left join).

        Parameters
        ----------
        ra, dec
            A ``SkyCoord`` (its ``obstime`` is the default epoch), or right ascensions and
            declinations (degrees, sexagesimal strings or angle Quantities; arrays, lists,
            astropy, pandas or pyarrow columns).
        radius_arcsec
            Search radius: arcsec as a number, an angle Quantity, or one per query
            (default: the catalog's match radius).
        mode
            ``"nearest"`` (the closest row), ``"k"`` (the ``k`` closest) or ``"all"``
            (every row within the radius, closest first).
        epoch
            Epoch of the queries (Julian year, astropy ``Time``, or one per query): rows
            with proper motions are moved there before the distance test.
        columns
            Payload columns of the matched rows to return (default: all).
        queries
            Optional table with one row per query whose columns lead the result.

        Returns
        -------
        pyarrow.Table
            One row per match, ordered by query and then by distance; a query without a
            match appears once with null match columns (:mod:`xmatch.index.results`).
        """
        ra_deg, dec_deg, coord_epoch = coords.positions(ra, dec)
        n = len(ra_deg)
        keep = check_mode(mode, k)
        radius_arcsec = coords.radii_arcsec(self._radius(radius_arcsec), n)
        epoch_jyear = coords.epochs(epoch, n) if epoch is not None else coord_epoch
        if queries is not None and queries.num_rows != n:
            raise InputError(f"queries has {queries.num_rows} rows for {n} positions")
        payload = self.payload_columns(columns)
        moving = self.motion is not None and epoch_jyear is not None
        if keep == 0:
            query, pos, sep, angle, _, moved = self._all_within(ra_deg, dec_deg, radius_arcsec,
                                                                epoch_jyear, 0, moving)
            query, pos, sep, angle, rank, moved = _with_unmatched(n, query, pos, sep, angle,
                                                                  moved)
        else:
            pos, sep, angle, moved = self._nearest(ra_deg, dec_deg, radius_arcsec, epoch_jyear,
                                                   keep, moving)
            query, pos, sep, angle, rank, moved = _flatten_nearest(pos, sep, angle, moved)
        return self._result(query, pos, sep, angle, rank, payload, queries, moved)

    def search(self, region, *, columns=None, limit=None, epoch=None,
               rank_by=None) -> pa.Table:
        limit = check_limit(limit)
        payload = self.payload_columns(columns)
        if isinstance(region, Cone):
            if rank_by:
                raise InputError("rank_by ranks the rows of a sky-map search; a cone's rows "
                                 "come closest first")
            epoch_jyear = coords.epochs(epoch, 1) if epoch is not None else None
            query, pos, sep, angle, found, moved = self._all_within(
                np.array([region.ra_deg]), np.array([region.dec_deg]),
                np.array([region.radius_arcsec]), epoch_jyear, limit or 0,
                self.motion is not None and epoch_jyear is not None)
            if found == 0 and moved is None:
                return self._nothing_found(payload)
            table = self._result(query, pos, sep, angle, None, payload, None, moved)
            return results.with_rows_found(table.drop_columns([results.QUERY_COLUMN]), found)
        if epoch is not None:
            raise InputError(f"epoch applies to cones and cross-matches; the rows of a "
                             f"{region.describe()} are searched where the catalog has them")
        rows = RegionRows(self, region, payload, rank_by=rank_by)
        end = rows.total if limit is None else min(rows.total, limit)
        return results.with_rows_found(rows.take(0, end), rows.total)

    # ------------------------------------------------------------------ internals

    def _nothing_found(self, payload: list[str]) -> pa.Table:
        """The answer of a cone with no row (most small cones), built once per column
        choice."""
        key = ("cone", tuple(payload))
        empty = self._empty_results.get(key)
        if empty is None:
            none = np.empty(0, np.int64)
            table = self._result(none, none, np.empty(0), np.empty(0), None, payload, None, None)
            empty = self._empty_results[key] = results.with_rows_found(
                table.drop_columns([results.QUERY_COLUMN]), 0)
        return empty

    @cached_property
    def _column_names(self) -> list[str]:
        return list(self.table.column_names)

    def payload_columns(self, columns: list[str] | None) -> list[str]:
        """The payload columns a request asks for (None: all); unknown ones raise
        :class:`~xmatch.errors.UnknownColumnError`."""
        if columns is None:
            return list(self._column_names)
        if isinstance(columns, str):
            raise InputError(f"columns must be a list of names, not the string {columns!r}")
        unknown = [c for c in columns if c not in self._column_names]
        if unknown:
            raise UnknownColumnError(unknown_columns(unknown, self.name, self._column_names))
        return list(columns)

    def _radius(self, radius_arcsec):
        if radius_arcsec is not None:
            return radius_arcsec
        if self.default_radius_arcsec is None:
            raise InputError(f"give radius_arcsec: {self.name} has no default match radius")
        return self.default_radius_arcsec

    def _for_epochs(self, epoch_jyear, radius_arcsec):
        """The index to search (this one, or a copy at the batch epoch) and the per-query
        drift (radians) by which to widen the search."""
        n = len(radius_arcsec)
        if self.motion is None or epoch_jyear is None:
            return self, np.zeros(n), np.full(n, np.nan)
        if (n >= REINDEX_MIN_QUERIES and len(self) <= FIXED_ROWS_PER_QUERY * n
                and epoch_jyear.min() == epoch_jyear[0] == epoch_jyear.max()):
            # One epoch for the batch (a catalog's): every row moved there once.
            return self.fixed_at(float(epoch_jyear[0])), np.zeros(n), np.full(n, np.nan)
        index = self
        drift = self.motion.drift_rad(epoch_jyear, self.epoch_range)
        if n >= REINDEX_MIN_QUERIES and np.median(drift) > REINDEX_DRIFT_FACTOR * max(
                np.median(radius_arcsec) * ARCSEC_TO_RAD, 1e-6):
            index = self.at_epoch(round(float(np.median(epoch_jyear)), 3))
            drift = index.motion.drift_rad(epoch_jyear, index.epoch_range)
        return index, drift, epoch_jyear

    def _kernel_arrays(self):
        positions = ((_NO_VECTORS, self.ra_deg, self.dec_deg) if self.xyz is None
                     else (self.xyz, _NO_VALUES, _NO_VALUES))
        if self.motion is None:
            return (self.h29, *positions, self.cell_order, self.cell_start,
                    np.empty((0, MOTION_WIDTH)), _NO_VALUES, False)
        return (self.h29, *positions, self.cell_order, self.cell_start,
                self.motion.vectors, self.motion.epoch0, True)

    def _query_order(self, q_ra, q_dec):
        """Order that visits queries by HEALPix pixel (NESTED order keeps neighbours on the
        sky together, as the index does), so consecutive queries reuse the index rows in
        cache; None (keep the caller's order) where that cannot pay: a few queries, or an
        index small enough to stay in cache anyway."""
        index_bytes = self.h29.nbytes + self.cell_start.nbytes + (
            self.xyz.nbytes if self.xyz is not None
            else self.ra_deg.nbytes + self.dec_deg.nbytes)
        if len(q_ra) < 64 or index_bytes < CACHE_BYTES:
            return None
        depth = min(self.cell_order, QUERY_SORT_ORDER)
        pixels = np.empty(len(q_ra), dtype=np.int64)
        search.radec_to_pixel_kernel(depth, q_ra, q_dec, pixels)
        return search.pixel_order_kernel(pixels, npix_at(depth))

    def _kernel_queries(self, ra, dec, radius_arcsec, epoch_jyear):
        """Everything a search kernel needs about the queries, in the order to visit them:
        (index to search, that permutation or None, ra, dec, radius in radians, epochs,
        drifts)."""
        index, drift, epochs = self._for_epochs(epoch_jyear, radius_arcsec)
        q_ra, q_dec = np.radians(ra), np.radians(dec)
        q_radius = radius_arcsec * ARCSEC_TO_RAD
        visit = index._query_order(q_ra, q_dec)
        if visit is not None:
            q_ra, q_dec, q_radius = q_ra[visit], q_dec[visit], q_radius[visit]
            epochs, drift = epochs[visit], drift[visit]
        return index, visit, q_ra, q_dec, q_radius, epochs, drift

    def _nearest(self, ra, dec, radius_arcsec, epoch_jyear, k, moving):
        """The ``k`` closest rows of each query within its radius: (n, k) table rows (-1:
        none), separations, angles and, when ``moving``, (n, k, 3) moved unit vectors."""
        n = len(ra)
        out_pos = np.full((n, k), -1, dtype=np.int64)
        out_sep = np.full((n, k), np.nan)
        out_pa = np.full((n, k), np.nan)
        moved = np.full((n, k, 3), np.nan) if moving else None
        if n == 0 or len(self) == 0:
            return out_pos, out_sep, out_pa, moved
        index, visit, *queries = self._kernel_queries(ra, dec, radius_arcsec, epoch_jyear)
        _run_kernel(search.nearest_kernel, search._nearest_task, len(ra), *queries, k,
                    *index._kernel_arrays(), out_pos, out_sep, out_pa)
        matched = out_pos >= 0
        if moving:
            epochs = np.broadcast_to(queries[3][:, None], (n, k))
            moved[matched] = index._moved_xyz(out_pos[matched], epochs[matched])
        out_pos[matched] = index.table_rows(out_pos[matched])
        if visit is None:
            return out_pos, out_sep, out_pa, moved
        unsorted = np.empty_like(visit)
        unsorted[visit] = np.arange(n)
        return (out_pos[unsorted], out_sep[unsorted], out_pa[unsorted],
                None if moved is None else moved[unsorted])

    def _all_within(self, ra, dec, radius_arcsec, epoch_jyear, limit, moving):
        """Every row within each query's radius (at most ``limit`` per query, the closest;
        0: all): (query, table row, separation, angle) grouped by query, closest first, the
        number found before the limit, and when ``moving`` the moved unit vectors."""
        n = len(ra)
        no_rows, no_values = np.empty(0, np.int64), np.empty(0)
        nothing = (no_rows, no_rows, no_values, no_values, 0,
                   np.empty((0, 3)) if moving else None)
        if n == 0 or len(self) == 0:
            return nothing
        index, visit, *queries = self._kernel_queries(ra, dec, radius_arcsec, epoch_jyear)
        arrays = index._kernel_arrays()
        counts = np.empty(n, dtype=np.int64)
        offsets = np.zeros(n + 1, dtype=np.int64)
        _run_kernel(search.within_kernel, search._within_task, n, *queries, offsets, True,
                    *arrays, counts, no_rows, no_rows, no_values, no_values)
        found = int(counts.sum())
        np.cumsum(np.minimum(counts, limit) if limit else counts, out=offsets[1:])
        total = int(offsets[-1])
        if total == 0:
            return (*nothing[:4], found, nothing[5])
        query = np.empty(total, dtype=np.int64)
        pos = np.empty(total, dtype=np.int64)
        sep = np.empty(total)
        angle = np.empty(total)
        _run_kernel(search.within_kernel, search._within_task, n, *queries, offsets, False,
                    *arrays, counts, query, pos, sep, angle)
        moved = index._moved_xyz(pos, queries[3][query]) if moving else None
        if visit is None:
            return query, index.table_rows(pos), sep, angle, found, moved
        # Back to the caller's query order: move each query's block of matches (closest
        # first) to where its query sits in the caller's order.
        unsorted = np.empty_like(visit)
        unsorted[visit] = np.arange(n)
        lengths = np.diff(offsets)[unsorted]
        new_starts = np.cumsum(lengths) - lengths
        regroup = np.repeat(offsets[:-1][unsorted] - new_starts, lengths) + np.arange(total)
        return (visit[query[regroup]], index.table_rows(pos[regroup]), sep[regroup],
                angle[regroup], found, None if moved is None else moved[regroup])

    def _moved_xyz(self, positions: np.ndarray, epochs: np.ndarray) -> np.ndarray:
        """Unit vectors of the rows at index ``positions`` moved to ``epochs`` (an index
        fixed at one epoch, :meth:`fixed_at`, holds them already)."""
        if self.motion is None:
            return self.vectors(positions)
        xyz = np.empty((len(positions), 3))
        propagate_kernel(np.ascontiguousarray(self.motion.vectors[positions]),
                         np.ascontiguousarray(self.motion.epoch0[positions]),
                         np.ascontiguousarray(epochs, dtype=np.float64), xyz)
        return xyz

    def _result(self, query, rows, sep, angle, rank, payload, queries, moved) -> pa.Table:
        if len(rows) or queries is not None or moved is not None:
            return self._build_result(query, rows, sep, angle, rank, payload, queries, moved)
        # No match (most small cones): the same empty table every time, built once.
        key = (tuple(payload), rank is not None)
        empty = self._empty_results.get(key)
        if empty is None:
            empty = self._build_result(query, rows, sep, angle, rank, payload, None, None)
            self._empty_results[key] = empty
        return empty

    def _build_result(self, query, rows, sep, angle, rank, payload, queries,
                      moved) -> pa.Table:
        nulls = results.Nulls(rows >= 0)
        safe = nulls.safe(rows)
        taken = {results.QUERY_COLUMN, *(queries.column_names if queries is not None else ())}
        columns = [(name if name not in taken else f"{name}_{self.name}",
                    results.take_payload(self.table.column(name), safe, nulls))
                   for name in payload]
        if moved is not None:  # where the matched rows are at the query epoch
            ra, dec = radec_deg(moved) if len(moved) else (np.empty(0), np.empty(0))
            columns += [(results.MOVED_COLUMNS[0], nulls.wrap(ra, pa.float64())),
                        (results.MOVED_COLUMNS[1], nulls.wrap(dec, pa.float64()))]
        return results.left_join(query, rank, columns, sep, angle, nulls, queries)




class RegionRows:
    """The rows of an index inside a (non-cone) region, taken in batches so a huge region
    never sits in memory whole: in pixel order, or ranked by a sky-map column (which holds
    only the row positions and scores of the whole region). Regions whose cover is not
    exact (a polygon) are filtered exactly, keeping the positions of the rows inside.

    With a sky map the rows carry its values (:func:`xmatch.sky.skymap.with_skymap_values`).
    """

    def __init__(self, index: SkyIndex, region, columns: list[str], *,
                 rank_by: str | None = None, clip29=None):
        from xmatch.sky.skymap import check_rank

        self.index = index
        self.columns = columns
        self.skymap = region.skymap if isinstance(region, SkyMapRegion) else None
        ranges = region.cover29()
        if clip29 is not None:
            ranges = _intersect(ranges, check_ranges29(clip29))
        starts, stops = ranges[:, 0], ranges[:, 1]
        first = np.searchsorted(index.h29, starts)
        last = np.searchsorted(index.h29, stops)
        keep = last > first
        self.first, self.last = first[keep], last[keep]
        self.ends = np.cumsum(self.last - self.first)  # rows up to the end of each span
        self.total = int(self.ends[-1]) if len(self.ends) else 0
        self.chosen = None  # index positions of the answer, when not the spans themselves
        if not region.exact_cover:
            positions = self._span_positions(0, self.total)
            self.chosen = positions[region.contains_vectors(index.vectors(positions))]
            self.total = len(self.chosen)
        if check_rank(rank_by, self.skymap, index.distance_column) is not None:
            positions = self._positions(0, self.total)
            score = self._values(positions)[rank_by]
            self.chosen = positions[np.argsort(-score, kind="stable")]  # NaN last

    def take(self, start: int, stop: int) -> pa.Table:
        """Rows ``start`` to ``stop`` (exclusive) of the answer, as an Arrow table."""
        from xmatch.sky.skymap import with_skymap_values

        stop = min(stop, self.total)
        start = min(start, stop)
        positions = self._positions(start, stop)
        table = self.index.table.select(self.columns).take(self.index.table_rows(positions))
        if self.skymap is None:
            return table
        return with_skymap_values(table, self._values(positions))

    def _positions(self, start: int, stop: int) -> np.ndarray:
        if self.chosen is not None:
            return self.chosen[start:stop]
        return self._span_positions(start, stop)

    def _span_positions(self, start: int, stop: int) -> np.ndarray:
        """Index positions of answer rows ``start`` to ``stop``, spans laid end to end."""
        if stop <= start:
            return np.empty(0, dtype=np.int64)
        a = int(np.searchsorted(self.ends, start, side="right"))
        b = int(np.searchsorted(self.ends, stop, side="left")) + 1
        span_start = self.ends[a:b] - (self.last[a:b] - self.first[a:b])  # answer row
        lo = np.maximum(span_start, start)
        hi = np.minimum(self.ends[a:b], stop)
        counts = hi - lo
        shift = np.repeat(self.first[a:b] + lo - span_start - np.cumsum(counts) + counts,
                          counts)
        return np.arange(stop - start, dtype=np.int64) + shift

    def _values(self, positions: np.ndarray) -> dict[str, np.ndarray]:
        distance = None
        if self.index.distance_column is not None:
            column = self.index.table.column(self.index.distance_column)
            distance = column.take(self.index.table_rows(positions)).to_numpy(
                zero_copy_only=False)
            distance = np.asarray(distance, dtype=np.float64)  # nulls become NaN
        return self.skymap.values_at(self.index.h29[positions], distance)


def _intersect(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The intersection of two sets of sorted, disjoint half-open ranges."""
    if len(a) == 0 or len(b) == 0:
        return np.empty((0, 2), np.int64)
    points = np.unique(np.concatenate([a.ravel(), b.ravel()]))
    lo, hi = points[:-1], points[1:]
    inside_a = _inside(a, lo)
    inside_b = _inside(b, lo)
    keep = inside_a & inside_b
    pieces = np.stack([lo[keep], hi[keep]], axis=1)
    if len(pieces) == 0:
        return np.empty((0, 2), np.int64)
    new = np.r_[True, pieces[1:, 0] != pieces[:-1, 1]]
    last = np.r_[np.flatnonzero(new)[1:] - 1, len(pieces) - 1]
    return np.stack([pieces[new, 0], pieces[last, 1]], axis=1)


def _inside(ranges: np.ndarray, points: np.ndarray) -> np.ndarray:
    slot = np.searchsorted(ranges[:, 0], points, side="right") - 1
    return (slot >= 0) & (points < ranges[np.maximum(slot, 0), 1])


def _read_partitions(catalog, partitions, columns, within=None) -> pa.Table:
    """The rows of ``partitions`` (those inside the order-29 ranges ``within``, when
    given), in that order, as one table with each column in one chunk, read one partition
    at a time.

    Numeric columns without nulls (positions, pixels, identifiers) are copied into arrays
    made once for all rows, and each partition read is dropped before the next: a shard
    starting holds its catalog about once. (Reading every partition, then
    ``combine_chunks``, held it twice: 70 bytes a row at the start-up peak for 32 bytes a
    row of id, ra, dec and pixels.) Other columns (with nulls, or of variable width) are
    kept as read and concatenated one at a time at the end.
    """
    import pyarrow.parquet as pq

    if within is None:
        total = sum(pq.read_metadata(catalog.partition_path(p)).num_rows for p in partitions)
        pieces = (catalog.read_partition(p, columns) for p in partitions)
    else:  # the rows kept are few: read them all first, to know how many
        kept = [catalog.read_partition(p, columns, within) for p in partitions]
        total = sum(piece.num_rows for piece in kept)
        kept.reverse()
        pieces = (kept.pop() for _ in range(len(kept)))  # each dropped once copied
    filled: dict[str, np.ndarray] = {}  # numeric columns without nulls, made once
    chunks: dict[str, list] = {}        # every other column, as read
    schema = None
    at = 0
    for piece in pieces:
        if schema is None:
            schema = piece.schema
        elif not piece.schema.equals(schema):
            pa.concat_tables([schema.empty_table(), piece])  # raises, saying what differs
        for name, column in zip(piece.column_names, piece.columns, strict=True):
            numeric = pa.types.is_integer(column.type) or (
                pa.types.is_floating(column.type) and not pa.types.is_float16(column.type))
            if name not in chunks and numeric and column.null_count == 0:
                target = filled.get(name)
                if target is None:
                    target = filled[name] = np.empty(max(total, at + piece.num_rows),
                                                     dtype=column.type.to_pandas_dtype())
                start = at
                for chunk in column.chunks:
                    target[start:start + len(chunk)] = chunk.to_numpy()
                    start += len(chunk)
                continue
            if name in filled:  # nulls in a later partition: keep the rows so far as read
                chunks[name] = [pa.array(filled.pop(name)[:at])]
            chunks.setdefault(name, []).extend(column.chunks)
        at += piece.num_rows
        del piece
    arrays = []
    for field_ in schema:
        if field_.name in filled:
            arrays.append(pa.array(filled.pop(field_.name)[:at]))  # no copy
        else:
            parts = chunks.pop(field_.name)
            arrays.append(parts[0] if len(parts) == 1 else pa.concat_arrays(parts))
            del parts
    return pa.Table.from_arrays(arrays, schema=schema)


def _motion(table, ra_deg, dec_deg, pmra, pmdec, parallax, radial_velocity,
            epoch0) -> Motion:
    """The motion of every row, made a block of rows at a time: the float64 copies of the
    astrometry columns (nulls become NaN) and the kernel's temporaries stay the size of a
    block. Made whole, they raised the start-up peak of a Gaia-like shard from 125 to 200
    bytes a row (measured)."""
    n = len(ra_deg)
    vectors = np.empty((n, MOTION_WIDTH))
    for start in range(0, max(n, 1), BLOCK_ROWS):  # an empty table still checks the names
        part = table.slice(start, BLOCK_ROWS)
        stop = start + part.num_rows
        vectors[start:stop] = motion_arrays(
            ra_deg[start:stop], dec_deg[start:stop], _column(part, pmra), _column(part, pmdec),
            None if parallax is None else _column(part, parallax),
            None if radial_velocity is None else _column(part, radial_velocity))
    return Motion.from_vectors(vectors, epoch0)


def _one_chunk(table: pa.Table) -> pa.Table:
    """The table with each column in one chunk (those already in one are not copied)."""
    if all(column.num_chunks == 1 for column in table.columns):
        return table
    return table.combine_chunks()


def held_bytes(things) -> int:
    """Bytes of memory held by the numpy arrays and Arrow tables, record batches and arrays
    among ``things`` (anything else is ignored), each byte counted once however many of
    them share it (a numpy view of a column's buffer, a table and a selection of it)."""
    spans = []
    for thing in things:
        if isinstance(thing, np.ndarray):
            if thing.nbytes:
                start = thing.__array_interface__["data"][0]
                spans.append((start, start + thing.nbytes))
            continue
        if isinstance(thing, pa.Table | pa.RecordBatch):
            arrays = thing.columns
        elif isinstance(thing, pa.Array | pa.ChunkedArray):
            arrays = [thing]
        else:
            continue
        for array in arrays:
            for chunk in getattr(array, "chunks", [array]):
                for buffer in chunk.buffers():
                    if buffer is not None and buffer.size:
                        spans.append((buffer.address, buffer.address + buffer.size))
    total, end = 0, None
    for lo, hi in sorted(spans):
        if end is None or lo >= end:
            total += hi - lo
            end = hi
        elif hi > end:
            total += hi - end
            end = hi
    return total


def _cell_table(pixels: np.ndarray, cell_order: int) -> np.ndarray:
    """The dense cell offsets: int32 (half the bytes) unless the rows need int64."""
    dtype = np.int32 if len(pixels) <= np.iinfo(np.int32).max else np.int64
    cell_start = np.empty(npix_at(cell_order) + 1, dtype=dtype)
    search.cell_offsets_kernel(pixels, cell_order, cell_start)
    return cell_start


def crossmatch(left, right, *, radius_arcsec=None, mode: str = "nearest", k: int = 1,
               left_columns: list[str] | None = None,
               right_columns: list[str] | None = None, left_epoch=None) -> pa.Table:
    """Cross-match two catalogs: every row of ``left`` with its counterparts in ``right``.

    ``left`` and ``right`` are :class:`SkyIndex` objects or catalogs of the store (of a
    ``right`` catalog, only the partitions the left rows' searches reach are read). Proper
    motions are honoured on either side: when ``left`` has them and ``right`` has a single
    epoch, left positions are moved to that epoch (Hipparcos at J1991.25 against Gaia at
    J2016.0); when ``right`` has them, its rows are moved to each left row's epoch
    (``left_epoch``, a Julian year, for a left side without an epoch of its own).
    ``radius_arcsec`` defaults to the right catalog's match radius. The result is a left
    join as in :meth:`SkyIndex.crossmatch`, led by the left columns.
    """
    if not isinstance(left, SkyIndex):
        keep = None if left_columns is None else [*left_columns, left.spec.ra, left.spec.dec]
        left = SkyIndex.from_catalog(left, None if keep is None else list(dict.fromkeys(keep)))
    if isinstance(right, SkyIndex):
        lo, hi = right.epoch_range
        right_moves, right_epoch = right.motion is not None, lo if lo == hi else None
    else:
        right.check_columns(right_columns)
        right_moves = right.has_proper_motions
        right_epoch = None if right.spec.epoch_column else right.spec.epoch_jyear
    ra = _column(left.table, left.ra_column) if left.ra_column in left.table.column_names \
        else None
    if ra is None or left.dec_column not in left.table.column_names:
        raise InputError(f"the left catalog {left.name} must keep its position columns "
                         f"({left.ra_column}, {left.dec_column})")
    dec = _column(left.table, left.dec_column)
    if left_epoch is not None and (left.motion is not None
                                   or not math.isnan(left.epoch_range[0])):
        raise InputError(f"{left.name} has the epochs of its positions; left_epoch is for a "
                         "left side without them")
    epoch = None
    if left.motion is not None and not right_moves and right_epoch is not None:
        motion = np.empty_like(left.motion.vectors)
        motion[left.rows] = left.motion.vectors
        epoch0 = np.empty_like(left.motion.epoch0)
        epoch0[left.rows] = left.motion.epoch0
        xyz = np.empty((len(left), 3))
        propagate_kernel(motion, epoch0, np.full(len(left), float(right_epoch)), xyz)
        ra, dec = radec_deg(xyz)
    elif right_moves:
        if left.motion is not None:
            epoch = np.empty(len(left))
            epoch[left.rows] = left.motion.epoch0
        elif left.epoch_range[0] == left.epoch_range[1]:
            epoch = left.epoch_range[0]
        elif left_epoch is not None:
            epoch = coords.epochs(left_epoch, 1)[0]
    queries = left.table if left_columns is None else left.table.select(left_columns)
    return right.crossmatch(ra, dec, radius_arcsec=radius_arcsec, mode=mode, k=k, epoch=epoch,
                            columns=right_columns, queries=queries)


def moc_contains(ranges29, ra, dec) -> np.ndarray:
    """Boolean mask of the positions (degrees) inside a MOC given as order-29 ranges."""
    ranges = check_ranges29(ranges29)
    ra_deg, dec_deg, _ = coords.positions(ra, dec)
    pixels = np.empty(len(ra_deg), dtype=np.int64)
    search.radec_to_pixel_kernel(MAX_ORDER, np.radians(ra_deg), np.radians(dec_deg), pixels)
    out = np.empty(len(ra_deg), dtype=np.bool_)
    search.in_ranges_kernel(pixels, np.ascontiguousarray(ranges[:, 0]),
                            np.ascontiguousarray(ranges[:, 1]), out)
    return out


def _as_arrow(table) -> pa.Table:
    if isinstance(table, pa.Table):
        return table
    if hasattr(table, "to_pandas") and hasattr(table, "colnames"):  # astropy Table
        return pa.table({name: np.asarray(table[name]) for name in table.colnames})
    return pa.table(table)


def _column(table: pa.Table, name: str, dtype=np.float64) -> np.ndarray:
    if name not in table.column_names:
        raise InputError(f"column '{name}' is missing; columns present: "
                         f"{', '.join(table.column_names)}")
    column = table.column(name)
    if dtype == np.float64:
        column = column.cast(pa.float64())
        return np.ascontiguousarray(column.to_numpy(zero_copy_only=False), dtype=np.float64)
    return np.ascontiguousarray(column.to_numpy(zero_copy_only=False), dtype=dtype)


def _with_unmatched(n, query, pos, sep, angle, moved):
    """Ranks, and one unmatched row (pos -1) for each query without matches, in query
    order."""
    rank = results.match_ranks(query)
    unmatched = np.setdiff1d(np.arange(n), query, assume_unique=False)
    if len(unmatched) == 0:
        return query, pos, sep, angle, rank, moved
    query = np.concatenate([query, unmatched])
    pos = np.concatenate([pos, np.full(len(unmatched), -1)])
    sep = np.concatenate([sep, np.full(len(unmatched), np.nan)])
    angle = np.concatenate([angle, np.full(len(unmatched), np.nan)])
    rank = np.concatenate([rank, np.zeros(len(unmatched), np.int64)])
    if moved is not None:
        moved = np.concatenate([moved, np.full((len(unmatched), 3), np.nan)])
    order = np.argsort(query, kind="stable")
    return (query[order], pos[order], sep[order], angle[order], rank[order],
            None if moved is None else moved[order])


def _flatten_nearest(pos, sep, angle, moved):
    """(n, k) nearest results to one row per match; a query with no match keeps one row."""
    n, k = pos.shape
    keep = pos >= 0
    keep[:, 0] = True
    query = np.repeat(np.arange(n), k).reshape(n, k)[keep]
    rank = np.tile(np.arange(1, k + 1), n).reshape(n, k)[keep]
    return (query, pos[keep], sep[keep], angle[keep], rank,
            None if moved is None else moved[keep])


#: One parallel kernel at a time: each uses every core already, and numba's fallback
#: threading layer (workqueue) must not be entered from two threads at once.
_PARALLEL_LAUNCH = threading.Lock()


def _run_kernel(parallel_kernel, serial_task, n_queries, *args):
    """Run a search kernel: small batches (a cone, a few alerts) serially in the calling
    thread, so that concurrent requests run side by side without launching threads;
    larger ones on all cores."""
    if n_queries <= search.QUERIES_PER_TASK:
        serial_task(0, n_queries, *args)
    else:
        with _PARALLEL_LAUNCH:
            parallel_kernel(*args)
