"""In-memory HEALPix index over catalog rows, and the public API over the search kernels:
cone search, batch cross-match (nearest, k nearest, all within radius), MOC filter.

A :class:`SkyIndex` holds rows sorted by their order-29 pixel, their unit vectors, a dense
cell-offset table and, for catalogs with proper motions, what is needed to move each row to
any epoch. Build one from a catalog in the store (:meth:`SkyIndex.from_catalog`) or from
any table (:meth:`SkyIndex.from_table`), then query it as often as needed.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field, replace

import numpy as np
import pyarrow as pa

from xmatch.errors import UnknownColumnError, length_mismatch, unknown_columns
from xmatch.kernels import search
from xmatch.kernels.motion import MOTION_WIDTH, max_drift_rad, motion_arrays, propagate_kernel
from xmatch.sky import coords
from xmatch.sky.healpix import MAX_ORDER, npix_at

SEPARATION_COLUMN = "separation_arcsec"
POSITION_ANGLE_COLUMN = "position_angle_deg"
QUERY_COLUMN = "query_index"
RANK_COLUMN = "match_rank"
MODES = ("nearest", "k", "all")

ARCSEC_TO_RAD = math.pi / (180.0 * 3600.0)

#: The dense cell table is at the coarsest order whose cells hold at most this many rows on
#: average (capped at order 10: 12.6 M cells, 100 MB).
ROWS_PER_CELL = 8
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


def choose_cell_order(n_rows: int) -> int:
    """Coarsest order whose cells hold at most ROWS_PER_CELL rows on average (capped)."""
    order = 0
    while order < MAX_CELL_ORDER and npix_at(order) * ROWS_PER_CELL < n_rows:
        order += 1
    return order


@dataclass(frozen=True)
class Motion:
    """What is needed to move each indexed row to another epoch."""

    vectors: np.ndarray      # (n, 7): unit vector and motion at epoch0, rad and rad/yr
    epoch0: np.ndarray       # (n,) Julian years of each row's astrometry
    mu_max: float            # largest total proper motion, rad/yr
    mu_r_max: float          # largest |radial proper motion|, rad/yr
    epoch0_range: tuple      # (min, max) of epoch0

    def take(self, order: np.ndarray) -> Motion:
        return replace(self, vectors=np.ascontiguousarray(self.vectors[order]),
                       epoch0=np.ascontiguousarray(self.epoch0[order]))

    def drift_rad(self, epoch_jyear, indexed_range) -> np.ndarray:
        """Upper bound of how far any row moves between its indexed position (at an epoch
        within ``indexed_range``) and ``epoch_jyear`` (array or scalar)."""
        epoch_jyear = np.asarray(epoch_jyear, dtype=np.float64)
        e0_lo, e0_hi = self.epoch0_range
        lo, hi = indexed_range
        span = np.maximum(np.abs(epoch_jyear - lo), np.abs(epoch_jyear - hi))
        tau = np.maximum.reduce([np.abs(epoch_jyear - e0_lo), np.abs(epoch_jyear - e0_hi),
                                 np.full_like(epoch_jyear, max(abs(hi - e0_lo), abs(lo - e0_hi)))])
        return max_drift_rad(self.mu_max, self.mu_r_max, tau, span)


@dataclass(frozen=True)
class SkyIndex:
    """Rows sorted by order-29 pixel, with unit vectors and a dense cell-offset table.

    Attributes
    ----------
    h29, xyz, cell_order, cell_start
        The index arrays (see :mod:`xmatch.kernels.search`).
    rows : numpy.ndarray
        Row number, in ``table``, of each index position.
    table : pyarrow.Table
        The payload columns, in original row order.
    motion : Motion or None
        Set when rows have proper motions; positions are then moved to the query epoch.
    epoch_range : tuple of float
        Julian-year range of the epochs of the indexed positions ``xyz`` (NaN if unknown).
    """

    h29: np.ndarray
    xyz: np.ndarray
    cell_order: int
    cell_start: np.ndarray
    rows: np.ndarray
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
        """
        table = _as_arrow(table).combine_chunks()  # one chunk: row lookups stay cheap
        ra_deg = _column(table, ra)
        dec_deg = _column(table, dec)
        coords.check_radec(ra_deg, dec_deg)
        if healpix29 is not None:
            pixels = np.ascontiguousarray(_column(table, healpix29, np.int64))
        else:
            pixels = np.empty(len(ra_deg), dtype=np.int64)
            search.radec_to_pixel_kernel(MAX_ORDER, np.radians(ra_deg), np.radians(dec_deg),
                                         pixels)
        xyz = np.empty((len(ra_deg), 3))
        search.unit_vectors_kernel(np.radians(ra_deg), np.radians(dec_deg), xyz)
        if isinstance(epoch, str):
            epoch0 = _column(table, epoch)
        elif epoch is not None:
            epoch0 = np.full(len(ra_deg), float(epoch))
        else:
            epoch0 = None
        motion = None
        if pmra is not None or pmdec is not None:
            if pmra is None or pmdec is None:
                raise ValueError("give both pmra and pmdec, or neither")
            if epoch0 is None:
                raise ValueError("rows with proper motions need the epoch of their positions "
                                 "(epoch=Julian year or column name)")
            motion = _motion(ra_deg, dec_deg, _column(table, pmra), _column(table, pmdec),
                             None if parallax is None else _column(table, parallax),
                             None if radial_velocity is None else _column(table,
                                                                          radial_velocity),
                             epoch0)
        epoch_range = ((float(epoch0.min()), float(epoch0.max()))
                       if epoch0 is not None and len(epoch0) else (math.nan, math.nan))
        index = cls._sorted(pixels, xyz, np.arange(len(ra_deg), dtype=np.int64), table, motion,
                            epoch_range, name)
        return replace(index, ra_column=ra, dec_column=dec)

    @classmethod
    def from_catalog(cls, catalog, columns: list[str] | None = None,
                     partitions=None) -> SkyIndex:
        """Index a catalog of the store (all partitions, or the given ones).

        ``columns`` are the payload columns kept (default: all); the catalog's position,
        pixel, epoch and proper-motion columns are always read.
        """
        from xmatch.store.paths import HEALPIX29_COLUMN

        spec = catalog.spec
        available = catalog.schema.names

        def present(column):  # optional spec columns may be absent from a given load
            return column if column and column in available else None

        has_pm = bool(present(spec.pmra) and present(spec.pmdec))
        needed = [c for c in (spec.ra, spec.dec, HEALPIX29_COLUMN, spec.epoch_column) if c]
        motion_columns = [c for c in (spec.pmra, spec.pmdec, present(spec.parallax),
                                      present(spec.radial_velocity)) if c and has_pm]
        if columns is not None:
            unknown = [c for c in columns if c not in available]
            if unknown:
                raise UnknownColumnError(unknown_columns(unknown, catalog.name, available))
        read = None if columns is None else list(dict.fromkeys(
            [*columns, *needed, *motion_columns, *([spec.distance] if present(spec.distance)
                                                   else [])]))
        chosen = catalog.partitions if partitions is None else list(partitions)
        chosen = sorted(chosen, key=lambda p: p.range29()[0])
        pieces = [catalog.read_partition(p, read) for p in chosen]
        table = pa.concat_tables(pieces) if pieces else (
            catalog.schema.empty_table() if read is None
            else pa.schema([catalog.schema.field(c) for c in read]).empty_table())
        index = cls.from_table(
            table, spec.ra, spec.dec,
            pmra=spec.pmra if has_pm else None, pmdec=spec.pmdec if has_pm else None,
            parallax=present(spec.parallax) if has_pm else None,
            radial_velocity=present(spec.radial_velocity) if has_pm else None,
            epoch=spec.epoch_column or spec.epoch_jyear, healpix29=HEALPIX29_COLUMN,
            name=catalog.name)
        distance = present(spec.distance)
        index = replace(index, default_radius_arcsec=spec.default_radius_arcsec,
                        distance_column=distance)
        if columns is not None:  # the distance stays: sky-map searches need it
            kept = list(dict.fromkeys([*columns, *([distance] if distance else [])]))
            index = replace(index, table=index.table.select(kept), _empty_results={})
        return index

    @classmethod
    def _sorted(cls, pixels, xyz, rows, table, motion, epoch_range, name) -> SkyIndex:
        if len(pixels) and not np.all(pixels[1:] >= pixels[:-1]):
            order = np.argsort(pixels, kind="stable")
            pixels, xyz, rows = pixels[order], xyz[order], rows[order]
            motion = motion.take(order) if motion is not None else None
        cell_order = choose_cell_order(len(pixels))
        return cls(np.ascontiguousarray(pixels), np.ascontiguousarray(xyz), cell_order,
                   _cell_table(pixels, cell_order), np.ascontiguousarray(rows), table, motion,
                   epoch_range, name)

    def at_epoch(self, epoch_jyear: float) -> SkyIndex:
        """A copy of the index with every row moved to ``epoch_jyear`` and re-sorted, so
        queries at (or near) that epoch search no wider than their radius."""
        if self.motion is None:
            return self
        epoch_jyear = float(coords.epochs(epoch_jyear, 1)[0])
        cached = self._epoch_copies.get(epoch_jyear)
        if cached is not None:
            return cached
        xyz = np.empty_like(self.xyz)
        propagate_kernel(self.motion.vectors, self.motion.epoch0,
                         np.full(len(self), epoch_jyear), xyz)
        pixels = np.empty(len(self), dtype=np.int64)
        search.vector_to_pixel_kernel(MAX_ORDER, xyz, pixels)
        order = np.argsort(pixels, kind="stable")
        moved = replace(self, h29=np.ascontiguousarray(pixels[order]),
                        xyz=np.ascontiguousarray(xyz[order]), rows=self.rows[order],
                        motion=self.motion.take(order), epoch_range=(epoch_jyear, epoch_jyear),
                        _epoch_copies={})
        moved = replace(moved, cell_start=_cell_table(moved.h29, moved.cell_order))
        if len(self._epoch_copies) >= 4:
            self._epoch_copies.pop(next(iter(self._epoch_copies)))
        self._epoch_copies[epoch_jyear] = moved
        return moved

    def __len__(self) -> int:
        return len(self.h29)

    def __repr__(self) -> str:
        moving = ", with proper motions" if self.motion is not None else ""
        return (f"<SkyIndex {self.name!r}: {len(self)} rows, cells at order "
                f"{self.cell_order}{moving}>")

    # ------------------------------------------------------------------ queries

    def crossmatch(self, positions, dec=None, *, radius, mode: str = "nearest", k: int = 1,
                   epoch=None, columns: list[str] | None = None,
                   queries: pa.Table | None = None) -> pa.Table:
        """Match query positions against the indexed rows (a left join).

        Parameters
        ----------
        positions, dec
            A ``SkyCoord`` (its ``obstime`` is the default epoch), or right ascensions and
            declinations (degrees or angle Quantities).
        radius
            Search radius: arcsec as a number, an angle Quantity, or one per query.
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
            match appears once with null match columns. Columns: ``query_index``,
            ``match_rank`` (1 = closest), the payload columns,
            ``separation_arcsec`` and ``position_angle_deg`` (of the match seen from the
            query, east of north).
        """
        ra, dec, coord_epoch = coords.positions(positions, dec)
        n = len(ra)
        if mode not in MODES:
            raise ValueError(f"mode = {mode!r} is not allowed; mode must be one of "
                             f"{', '.join(MODES)}")
        if mode == "nearest":
            k = 1
        elif mode == "k" and (isinstance(k, bool) or not isinstance(k, int | np.integer)
                              or k < 1):
            raise ValueError(f"k = {k!r} is not allowed; k must be an integer >= 1")
        radius_arcsec = coords.radii_arcsec(radius, n)
        epoch_jyear = coords.epochs(epoch, n) if epoch is not None else coord_epoch
        if queries is not None and queries.num_rows != n:
            raise ValueError(f"queries has {queries.num_rows} rows for {n} positions")
        payload = self.payload_columns(columns)
        if mode == "all":
            query, pos, sep, angle = self._all_within(ra, dec, radius_arcsec, epoch_jyear, 0)
            rank = match_ranks(query)
            query, pos, sep, angle, rank = _left_join(n, query, pos, sep, angle, rank)
        else:
            pos, sep, angle = self._nearest(ra, dec, radius_arcsec, epoch_jyear, k)
            query, pos, sep, angle, rank = _flatten_nearest(pos, sep, angle)
        return self._result(query, pos, sep, angle, rank, payload, queries)

    def cone(self, ra, dec, radius, *, limit: int | None = None, epoch=None,
             columns: list[str] | None = None) -> pa.Table:
        """Rows within ``radius`` (arcsec or angle Quantity) of one position, closest
        first, at most ``limit`` of them, moved to ``epoch`` if given."""
        ra_deg, dec_deg, radius_arcsec, epoch_jyear = check_cone_arguments(ra, dec, radius,
                                                                           limit, epoch)
        payload = self.payload_columns(columns)
        query, pos, sep, angle = self._all_within(ra_deg, dec_deg, radius_arcsec, epoch_jyear,
                                                  limit or 0)
        result = self._result(query, pos, sep, angle, None, payload, None)
        return result.drop_columns([QUERY_COLUMN])

    def rows_in_moc(self, ranges29, columns: list[str] | None = None) -> pa.Table:
        """Rows whose order-29 pixel lies in a MOC given as sorted, disjoint half-open
        order-29 ranges (``mocpy.MOC.to_depth29_ranges``), in pixel order."""
        region = RegionRows(self, ranges29, columns)
        return region.take(0, region.total)

    def rows_in_skymap(self, skymap, level: float = 0.9, columns: list[str] | None = None,
                       *, rank_by: str | None = None) -> pa.Table:
        """Rows inside the credible region at ``level`` of a sky map
        (:class:`xmatch.regions.SkyMap`), each with the probability density at its position,
        its searched probability and area and, when the index has a ``distance_column``
        and the map distance layers, its 3-D probability density (see
        :meth:`xmatch.regions.SkyMap.values_at`). In pixel order, or ranked by ``rank_by``
        (``"probdensity"`` or ``"probdensity_vol"``, highest first)."""
        region = RegionRows(self, skymap.region_ranges(level), columns, skymap=skymap,
                            rank_by=rank_by)
        return region.take(0, region.total)

    # ------------------------------------------------------------------ internals

    def payload_columns(self, columns: list[str] | None) -> list[str]:
        """The payload columns a request asks for (None: all); unknown ones raise
        :class:`~xmatch.errors.UnknownColumnError`."""
        if columns is None:
            return list(self.table.column_names)
        unknown = [c for c in columns if c not in self.table.column_names]
        if unknown:
            raise UnknownColumnError(unknown_columns(unknown, self.name, self.table.column_names))
        return list(columns)

    def _for_epochs(self, epoch_jyear, radius_arcsec):
        """The index to search (this one, or a copy at the batch epoch) and the per-query
        drift (radians) by which to widen the search."""
        n = len(radius_arcsec)
        if self.motion is None or epoch_jyear is None:
            return self, np.zeros(n), np.full(n, np.nan)
        index = self
        drift = self.motion.drift_rad(epoch_jyear, self.epoch_range)
        if n >= REINDEX_MIN_QUERIES and np.median(drift) > REINDEX_DRIFT_FACTOR * max(
                np.median(radius_arcsec) * ARCSEC_TO_RAD, 1e-6):
            index = self.at_epoch(round(float(np.median(epoch_jyear)), 3))
            drift = index.motion.drift_rad(epoch_jyear, index.epoch_range)
        return index, drift, epoch_jyear

    def _kernel_arrays(self):
        if self.motion is None:
            return (self.h29, self.xyz, self.cell_order, self.cell_start,
                    np.empty((0, MOTION_WIDTH)), np.empty(0), False)
        return (self.h29, self.xyz, self.cell_order, self.cell_start,
                self.motion.vectors, self.motion.epoch0, True)

    def _query_order(self, q_ra, q_dec):
        """Order that visits queries by HEALPix pixel (NESTED order keeps neighbours on the
        sky together, as the index does), so consecutive queries reuse the index rows in
        cache; None (keep the caller's order) where that cannot pay: a few queries, or an
        index small enough to stay in cache anyway."""
        index_bytes = self.h29.nbytes + self.xyz.nbytes + self.cell_start.nbytes
        if len(q_ra) < 64 or index_bytes < CACHE_BYTES:
            return None
        order = min(self.cell_order, QUERY_SORT_ORDER)
        pixels = np.empty(len(q_ra), dtype=np.int64)
        search.radec_to_pixel_kernel(order, q_ra, q_dec, pixels)
        return search.pixel_order_kernel(pixels, npix_at(order))

    def _kernel_queries(self, ra, dec, radius_arcsec, epoch_jyear):
        """Everything a search kernel needs about the queries, in the order to visit them:
        (index to search, order or None, ra, dec, radius in radians, epochs, drifts)."""
        index, drift, epochs = self._for_epochs(epoch_jyear, radius_arcsec)
        q_ra, q_dec = np.radians(ra), np.radians(dec)
        q_radius = radius_arcsec * ARCSEC_TO_RAD
        order = index._query_order(q_ra, q_dec)
        if order is not None:
            q_ra, q_dec, q_radius = q_ra[order], q_dec[order], q_radius[order]
            epochs, drift = epochs[order], drift[order]
        return index, order, q_ra, q_dec, q_radius, epochs, drift

    def _nearest(self, ra, dec, radius_arcsec, epoch_jyear, k):
        n = len(ra)
        out_pos = np.full((n, k), -1, dtype=np.int64)
        out_sep = np.full((n, k), np.nan)
        out_pa = np.full((n, k), np.nan)
        if n == 0 or len(self) == 0:
            return out_pos, out_sep, out_pa
        index, order, *queries = self._kernel_queries(ra, dec, radius_arcsec, epoch_jyear)
        _run_kernel(search.nearest_kernel, search._nearest_task, len(ra), *queries, k,
                    *index._kernel_arrays(), out_pos, out_sep, out_pa)
        matched = out_pos >= 0
        out_pos[matched] = index.rows[out_pos[matched]]
        if order is None:
            return out_pos, out_sep, out_pa
        unsorted = np.empty_like(order)
        unsorted[order] = np.arange(n)
        return out_pos[unsorted], out_sep[unsorted], out_pa[unsorted]

    def _all_within(self, ra, dec, radius_arcsec, epoch_jyear, limit):
        n = len(ra)
        if n == 0 or len(self) == 0:
            empty = np.empty(0)
            return np.empty(0, np.int64), np.empty(0, np.int64), empty, empty
        index, order, *queries = self._kernel_queries(ra, dec, radius_arcsec, epoch_jyear)
        arrays = index._kernel_arrays()
        counts = np.empty(n, dtype=np.int64)
        offsets = np.zeros(n + 1, dtype=np.int64)
        no_rows, no_values = np.empty(0, np.int64), np.empty(0)
        _run_kernel(search.within_kernel, search._within_task, n, *queries, offsets, True,
                    *arrays, counts, no_rows, no_rows, no_values, no_values)
        np.cumsum(np.minimum(counts, limit) if limit else counts, out=offsets[1:])
        total = int(offsets[-1])
        if total == 0:
            return no_rows, no_rows, no_values, no_values
        query = np.empty(total, dtype=np.int64)
        pos = np.empty(total, dtype=np.int64)
        sep = np.empty(total)
        angle = np.empty(total)
        _run_kernel(search.within_kernel, search._within_task, n, *queries, offsets, False,
                    *arrays, counts, query, pos, sep, angle)
        if order is None:
            return query, index.rows[pos], sep, angle
        # Back to the caller's query order: move each query's block of matches (closest
        # first) to where its query sits in the caller's order.
        unsorted = np.empty_like(order)
        unsorted[order] = np.arange(n)
        lengths = np.diff(offsets)[unsorted]
        new_starts = np.cumsum(lengths) - lengths
        regroup = np.repeat(offsets[:-1][unsorted] - new_starts, lengths) + np.arange(total)
        return order[query[regroup]], index.rows[pos[regroup]], sep[regroup], angle[regroup]

    def _result(self, query, rows, sep, angle, rank, payload, queries) -> pa.Table:
        if len(rows) or queries is not None:
            return self._build_result(query, rows, sep, angle, rank, payload, queries)
        # No match (most small cones): the same empty table every time, built once.
        key = (tuple(payload), rank is not None)
        empty = self._empty_results.get(key)
        if empty is None:
            empty = self._build_result(query, rows, sep, angle, rank, payload, None)
            self._empty_results[key] = empty
        return empty

    def _build_result(self, query, rows, sep, angle, rank, payload, queries) -> pa.Table:
        matched = rows >= 0
        all_matched = bool(matched.all())
        # One validity bitmap (Arrow packs booleans as bits) shared by the match columns.
        validity = None if all_matched else pa.array(matched).buffers()[1]
        null_count = 0 if all_matched else int(len(rows) - matched.sum())

        def with_nulls(values: np.ndarray, arrow_type) -> pa.Array:
            return pa.Array.from_buffers(arrow_type, len(values),
                                         [validity, pa.py_buffer(values)], null_count)

        names, arrays = [QUERY_COLUMN], [pa.array(query, pa.int64())]
        if queries is not None:
            query_rows = queries.take(pa.array(query, pa.int64()))
            names += queries.column_names
            arrays += query_rows.columns
        if rank is not None:
            names.append(RANK_COLUMN)
            arrays.append(with_nulls(np.ascontiguousarray(rank, dtype=np.int32), pa.int32()))
        safe_rows = rows if all_matched else np.where(matched, rows, 0)
        for name in payload:
            names.append(name if name not in names else f"{name}_{self.name}")
            arrays.append(_take(self.table.column(name), safe_rows, with_nulls,
                                None if all_matched else matched))
        names += [SEPARATION_COLUMN, POSITION_ANGLE_COLUMN]
        arrays += [with_nulls(np.ascontiguousarray(sep, dtype=np.float64), pa.float64()),
                   with_nulls(np.ascontiguousarray(angle, dtype=np.float64), pa.float64())]
        fields = [pa.field(name, array.type) for name, array in zip(names, arrays, strict=True)]
        fields[-2] = fields[-2].with_metadata({"unit": "arcsec"})
        fields[-1] = fields[-1].with_metadata({"unit": "deg"})
        return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def _take(column: pa.ChunkedArray, rows: np.ndarray, with_nulls, matched) -> pa.Array:
    """``column[rows]``, null where ``matched`` is False: numpy's take for plain numeric
    columns (several times faster than Arrow's take with null indices), Arrow's otherwise."""
    if len(column) == 0:  # an empty catalog: nothing matched
        return pa.nulls(len(rows), column.type)
    if column.null_count == 0 and (pa.types.is_integer(column.type)
                                   or pa.types.is_floating(column.type)):
        values = np.take(column.to_numpy(), rows)
        return pa.array(values) if matched is None else with_nulls(values, column.type)
    indices = pa.array(rows) if matched is None else pa.array(rows, mask=~matched)
    return column.take(indices).combine_chunks()


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


def check_cone_arguments(ra, dec, radius, limit, epoch):
    """Validated (ra_deg, dec_deg, radius_arcsec, epoch_jyear or None) of one cone."""
    ra_deg, dec_deg, coord_epoch = coords.positions(ra, dec)
    if len(ra_deg) != 1:
        raise ValueError("cone takes one position; use crossmatch(..., mode='all') for many")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int | np.integer)
                              or limit < 1):
        raise ValueError(f"limit = {limit!r} is not allowed; limit must be an integer >= 1")
    radius_arcsec = coords.radii_arcsec(radius, 1)
    epoch_jyear = coords.epochs(epoch, 1) if epoch is not None else coord_epoch
    return ra_deg, dec_deg, radius_arcsec, epoch_jyear


def catalog_motion(catalog) -> Motion | None:
    """The motions of every row of a store catalog (None without proper motions), read
    once per catalog object."""
    if not hasattr(catalog, "_motion"):
        spec = catalog.spec
        names = catalog.schema.names
        motion = None
        if spec.pmra in names and spec.pmdec in names:
            optional = [c if c in names else None for c in (spec.parallax, spec.radial_velocity)]
            table = catalog.read(list(dict.fromkeys(
                c for c in (spec.ra, spec.dec, spec.pmra, spec.pmdec, *optional,
                            spec.epoch_column) if c)))
            epoch0 = (_column(table, spec.epoch_column) if spec.epoch_column
                      else np.full(table.num_rows, float(spec.epoch_jyear)))
            motion = _motion(_column(table, spec.ra), _column(table, spec.dec),
                             _column(table, spec.pmra), _column(table, spec.pmdec),
                             *(None if c is None else _column(table, c) for c in optional),
                             epoch0)
        catalog._motion = motion
    return catalog._motion


def widest_drift_arcsec(catalog, epoch) -> float:
    """How far any row of a store catalog can move between its epoch and ``epoch`` (0
    without proper motions or epoch)."""
    motion = None if epoch is None else catalog_motion(catalog)
    if motion is None:
        return 0.0
    drift = motion.drift_rad(coords.epochs(epoch, 1)[0], motion.epoch0_range)
    return float(drift) / ARCSEC_TO_RAD


def _cell_table(pixels: np.ndarray, cell_order: int) -> np.ndarray:
    cell_start = np.empty(npix_at(cell_order) + 1, dtype=np.int64)
    search.cell_offsets_kernel(pixels, cell_order, cell_start)
    return cell_start


def crossmatch(left, right, *, radius=None, mode: str = "nearest", k: int = 1,
               left_columns: list[str] | None = None,
               right_columns: list[str] | None = None) -> pa.Table:
    """Cross-match two catalogs: every row of ``left`` with its counterparts in ``right``.

    ``left`` and ``right`` are :class:`SkyIndex` objects or catalogs of the store. Proper
    motions are honoured on either side: when ``left`` has them and ``right`` has a single
    epoch, left positions are moved to that epoch (Hipparcos at J1991.25 against Gaia at
    J2016.0); when ``right`` has them, its rows are moved to each left row's epoch.
    ``radius`` defaults to the right catalog's default radius. The result is a left join
    as in :meth:`SkyIndex.crossmatch`, led by the left columns.
    """
    if not isinstance(left, SkyIndex):
        keep = None if left_columns is None else [*left_columns, left.spec.ra, left.spec.dec]
        left = SkyIndex.from_catalog(left, None if keep is None else list(dict.fromkeys(keep)))
    if not isinstance(right, SkyIndex):
        right = SkyIndex.from_catalog(right, right_columns)
    if radius is None:
        if right.default_radius_arcsec is None:
            raise ValueError(f"give a radius: {right.name} has no default radius")
        radius = right.default_radius_arcsec
    ra = _column(left.table, left.ra_column) if left.ra_column in left.table.column_names \
        else None
    if ra is None or left.dec_column not in left.table.column_names:
        raise ValueError(f"the left catalog {left.name} must keep its position columns "
                         f"({left.ra_column}, {left.dec_column})")
    dec = _column(left.table, left.dec_column)
    epoch = None
    lo, hi = right.epoch_range
    if left.motion is not None and right.motion is None and lo == hi:
        motion = np.empty_like(left.motion.vectors)
        motion[left.rows] = left.motion.vectors
        epoch0 = np.empty_like(left.motion.epoch0)
        epoch0[left.rows] = left.motion.epoch0
        xyz = np.empty((len(left), 3))
        propagate_kernel(motion, epoch0, np.full(len(left), lo), xyz)
        ra, dec = _radec_deg(xyz)
    elif right.motion is not None:
        if left.motion is not None:
            epoch = np.empty(len(left))
            epoch[left.rows] = left.motion.epoch0
        elif left.epoch_range[0] == left.epoch_range[1]:
            epoch = left.epoch_range[0]
    queries = left.table if left_columns is None else left.table.select(left_columns)
    return right.crossmatch(ra, dec, radius=radius, mode=mode, k=k, epoch=epoch,
                            columns=right_columns, queries=queries)


class RegionRows:
    """The rows of an index inside a region, taken in batches so a huge region never sits in
    memory whole: in pixel order, or ranked by a sky-map column (which holds only the row
    positions and scores of the whole region).

    With a ``skymap`` the rows carry its values (:func:`xmatch.regions.with_skymap_values`).
    """

    def __init__(self, index: SkyIndex, ranges29, columns: list[str] | None = None, *,
                 skymap=None, rank_by: str | None = None):
        from xmatch.regions import check_rank

        self.index = index
        self.columns = index.payload_columns(columns)
        self.skymap = skymap
        starts, stops = moc_ranges(ranges29)
        first = np.searchsorted(index.h29, starts)
        last = np.searchsorted(index.h29, stops)
        keep = last > first
        self.first, self.last = first[keep], last[keep]
        self.ends = np.cumsum(self.last - self.first)  # rows up to the end of each span
        self.total = int(self.ends[-1]) if len(self.ends) else 0
        self.ranked = None
        if check_rank(rank_by, skymap, index.distance_column) is not None:
            positions = self._positions(0, self.total)
            score = self._values(positions)[rank_by]
            self.ranked = positions[np.argsort(-score, kind="stable")]  # NaN last

    def take(self, start: int, stop: int) -> pa.Table:
        """Rows ``start`` to ``stop`` (exclusive) of the answer, as an Arrow table."""
        stop = min(stop, self.total)
        start = min(start, stop)
        positions = (self.ranked[start:stop] if self.ranked is not None
                     else self._positions(start, stop))
        table = self.index.table.select(self.columns).take(self.index.rows[positions])
        if self.skymap is None:
            return table
        from xmatch.regions import with_skymap_values

        return with_skymap_values(table, self._values(positions))

    def _positions(self, start: int, stop: int) -> np.ndarray:
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
            distance = column.take(self.index.rows[positions]).to_numpy(zero_copy_only=False)
            distance = np.asarray(distance, dtype=np.float64)  # nulls become NaN
        return self.skymap.values_at(self.index.h29[positions], distance)


def moc_ranges(ranges29) -> tuple[np.ndarray, np.ndarray]:
    """Validated (starts, stops) of sorted, disjoint half-open order-29 ranges."""
    ranges = np.asarray(ranges29, dtype=np.int64)
    if ranges.size == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    if ranges.ndim != 2 or ranges.shape[1] != 2:
        raise ValueError("MOC ranges must be an (n, 2) array of [start, stop) order-29 pixels")
    starts = np.ascontiguousarray(ranges[:, 0])
    stops = np.ascontiguousarray(ranges[:, 1])
    if np.any(starts < 0) or np.any(stops > npix_at(MAX_ORDER)) or np.any(stops <= starts) \
            or np.any(starts[1:] < stops[:-1]):
        raise ValueError("MOC ranges must be sorted, disjoint, non-empty [start, stop) "
                         f"ranges within 0..{npix_at(MAX_ORDER)}")
    return starts, stops


def ranges_overlapping(starts: np.ndarray, stops: np.ndarray, ranges29) -> np.ndarray:
    """Indexes of the intervals ``[starts, stops)`` (partitions, say) that overlap sorted,
    disjoint order-29 ranges (n, 2)."""
    ranges = np.asarray(ranges29, dtype=np.int64).reshape(-1, 2)
    if len(ranges) == 0 or len(starts) == 0:
        return np.empty(0, dtype=np.int64)
    # The first range ending after an interval starts overlaps it if it starts before the
    # interval ends.
    after = np.searchsorted(ranges[:, 1], starts, side="right")
    hit = after < len(ranges)
    hit[hit] = ranges[after[hit], 0] < stops[hit]
    return np.flatnonzero(hit)


def cone_cover(ra, dec, radius, depth: int | None = None) -> np.ndarray:
    """The cone as a MOC: sorted, merged, half-open order-29 ranges (``mocpy``'s
    ``to_depth29_ranges`` form) of the pixels at ``depth`` that may overlap it.

    ``depth`` defaults to the order whose pixels are about a tenth of the radius (at most
    29). The cover never misses a pixel the cone touches; pixels it adds lie within one
    pixel radius of the cone's edge.
    """
    from xmatch.kernels.healpix import PIXEL_SPACING, cone_cover_kernel

    ra_deg, dec_deg, radius_arcsec, _ = check_cone_arguments(ra, dec, radius, None, None)
    radius_rad = float(radius_arcsec[0]) * ARCSEC_TO_RAD
    if depth is None:
        depth = int(np.searchsorted(-PIXEL_SPACING, -radius_rad / 10))
        depth = min(max(depth, 0), MAX_ORDER)
    elif not (isinstance(depth, int | np.integer) and 0 <= depth <= MAX_ORDER):
        raise ValueError(f"depth = {depth!r} is not allowed; depth must be an integer "
                         f"0..{MAX_ORDER}")
    ranges = cone_cover_kernel(math.radians(ra_deg[0]), math.radians(dec_deg[0]), radius_rad,
                               int(depth))
    return ranges << (2 * (MAX_ORDER - int(depth)))


def moc_contains(ranges29, ra, dec) -> np.ndarray:
    """Boolean mask of the positions (degrees) inside a MOC given as order-29 ranges."""
    starts, stops = moc_ranges(ranges29)
    ra_deg, dec_deg, _ = coords.positions(ra, dec)
    pixels = np.empty(len(ra_deg), dtype=np.int64)
    search.radec_to_pixel_kernel(MAX_ORDER, np.radians(ra_deg), np.radians(dec_deg), pixels)
    out = np.empty(len(ra_deg), dtype=np.bool_)
    search.in_ranges_kernel(pixels, starts, stops, out)
    return out


def propagate(ra, dec, pmra, pmdec, from_epoch, to_epoch, parallax=None, radial_velocity=None):
    """Positions (ra_deg, dec_deg) moved from ``from_epoch`` to ``to_epoch`` (Julian years
    or astropy Time) with the model of :mod:`xmatch.kernels.motion`.

    ``pmra`` is mu_alpha* (mas/yr), ``pmdec`` mas/yr, ``parallax`` mas, ``radial_velocity``
    km/s; NaN proper motions leave a position where it is.
    """
    ra_deg, dec_deg, _ = coords.positions(ra, dec)
    n = len(ra_deg)
    import astropy.units as u

    values = {"pmra": (pmra, u.mas / u.yr), "pmdec": (pmdec, u.mas / u.yr),
              "parallax": (parallax, u.mas), "radial_velocity": (radial_velocity, u.km / u.s)}
    arrays = {}
    for name, (value, unit) in values.items():
        if value is None:
            continue
        array = np.asarray(value.to_value(unit) if hasattr(value, "unit") else value,
                           dtype=np.float64)
        array = np.full(n, float(array)) if array.ndim == 0 else array
        if array.shape != (n,):
            raise ValueError(length_mismatch({"positions": n, name: array.size}))
        arrays[name] = np.ascontiguousarray(array)
    motion = motion_arrays(ra_deg, dec_deg, arrays["pmra"], arrays["pmdec"],
                           arrays.get("parallax"), arrays.get("radial_velocity"))
    xyz = np.empty((n, 3))
    propagate_kernel(motion, coords.epochs(from_epoch, n), coords.epochs(to_epoch, n), xyz)
    return _radec_deg(xyz)


def _motion(ra_deg, dec_deg, pmra, pmdec, parallax, rv, epoch0) -> Motion:
    vectors = motion_arrays(ra_deg, dec_deg, pmra, pmdec, parallax, rv)
    mu = np.sqrt(np.sum(vectors[:, 3:6] ** 2, axis=1))
    epoch0 = np.ascontiguousarray(epoch0, dtype=np.float64)
    if not len(mu):
        return Motion(vectors, epoch0, 0.0, 0.0, (0.0, 0.0))
    return Motion(vectors, epoch0, float(mu.max()), float(np.abs(vectors[:, 6]).max()),
                  (float(epoch0.min()), float(epoch0.max())))


def _radec_deg(xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ra, dec) in degrees of unit vectors (n, 3)."""
    return (np.degrees(np.arctan2(xyz[:, 1], xyz[:, 0])) % 360.0,
            np.degrees(np.arcsin(np.clip(xyz[:, 2], -1.0, 1.0))))


def _as_arrow(table) -> pa.Table:
    if isinstance(table, pa.Table):
        return table
    if hasattr(table, "to_pandas") and hasattr(table, "colnames"):  # astropy Table
        return pa.table({name: np.asarray(table[name]) for name in table.colnames})
    return pa.table(table)


def _column(table: pa.Table, name: str, dtype=np.float64) -> np.ndarray:
    if name not in table.column_names:
        raise ValueError(f"column '{name}' is missing; columns present: "
                         f"{', '.join(table.column_names)}")
    column = table.column(name)
    if dtype == np.float64:
        column = column.cast(pa.float64())
        return np.ascontiguousarray(column.to_numpy(zero_copy_only=False), dtype=np.float64)
    return np.ascontiguousarray(column.to_numpy(zero_copy_only=False), dtype=dtype)


def match_ranks(query: np.ndarray) -> np.ndarray:
    """1-based rank of each match within its query (input grouped by query)."""
    if len(query) == 0:
        return np.empty(0, np.int64)
    starts = np.r_[0, np.flatnonzero(np.diff(query)) + 1]
    group_start = np.repeat(starts, np.diff(np.r_[starts, len(query)]))
    return np.arange(len(query)) - group_start + 1


def _left_join(n, query, pos, sep, angle, rank):
    """Add one unmatched row (pos -1) for each query without matches, keeping query order."""
    unmatched = np.setdiff1d(np.arange(n), query, assume_unique=False)
    if len(unmatched) == 0:
        return query, pos, sep, angle, rank
    query = np.concatenate([query, unmatched])
    pos = np.concatenate([pos, np.full(len(unmatched), -1)])
    sep = np.concatenate([sep, np.full(len(unmatched), np.nan)])
    angle = np.concatenate([angle, np.full(len(unmatched), np.nan)])
    rank = np.concatenate([rank, np.zeros(len(unmatched), np.int64)])
    order = np.argsort(query, kind="stable")
    return query[order], pos[order], sep[order], angle[order], rank[order]


def _flatten_nearest(pos, sep, angle):
    """(n, k) nearest results to one row per match; a query with no match keeps one row."""
    n, k = pos.shape
    keep = pos >= 0
    keep[:, 0] = True
    query = np.repeat(np.arange(n), k).reshape(n, k)[keep]
    rank = np.tile(np.arange(1, k + 1), n).reshape(n, k)[keep]
    return query, pos[keep], sep[keep], angle[keep], rank
