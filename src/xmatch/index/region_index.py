"""Rows that are regions of the sky (circles and ellipses): which of them contain a position.

A catalog of error regions (Fermi 4FGL's 95 % ellipses), of galaxies with shapes, or of bright
stars with their halos is a set of ellipses (a circle is an ellipse with equal axes). For a
position, :meth:`RegionIndex.containing` finds every region whose *normalised distance* from
it (the separation divided by the region's radius in the direction of the position; see
:mod:`xmatch.kernels.regions` for the exact definition) is at most the region's *reach*: 1
for "inside", 5 for "within five directional light radii of a galaxy".

Each region is filed under the few HEALPix cells (at the order that matches its size) that its
bounding cone may touch; a position looks up its own cell at each order in use and tests the
regions found there exactly, so a one-degree galaxy and a one-arcsecond error circle are
found by the same lookup at the same cost.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from xmatch.errors import InputError
from xmatch.index.results import QUERY_COLUMN, SEPARATION_COLUMN
from xmatch.kernels import regions as kernels
from xmatch.kernels import search
from xmatch.sky import coords
from xmatch.sky.healpix import MAX_ORDER

ARCSEC_TO_RAD = math.pi / (180.0 * 3600.0)
RAD_TO_ARCSEC = 1.0 / ARCSEC_TO_RAD
#: Column of :meth:`RegionIndex.containing`: the region's row in the indexed table.
ROW_COLUMN = "row"
#: Column of :meth:`RegionIndex.containing`: the normalised distance (1 on the boundary).
DISTANCE_COLUMN = "region_distance"

_LAUNCH = threading.Lock()


def inverse_form(semi_major_rad, semi_minor_rad, pa_rad) -> np.ndarray:
    """The inverse form (ixx, ixy, iyy) of ellipses (semi-axes in radians, position angle
    of the major axis east of north in radians), as an (n, 3) array: see
    :mod:`xmatch.kernels.regions`."""
    sin_pa, cos_pa = np.sin(pa_rad), np.cos(pa_rad)
    inv_a2, inv_b2 = 1.0 / np.square(semi_major_rad), 1.0 / np.square(semi_minor_rad)
    return np.ascontiguousarray(np.stack(
        [sin_pa ** 2 * inv_a2 + cos_pa ** 2 * inv_b2,
         sin_pa * cos_pa * (inv_a2 - inv_b2),
         cos_pa ** 2 * inv_a2 + sin_pa ** 2 * inv_b2], axis=1))


def check_shapes(semi_major_arcsec, semi_minor_arcsec, pa_deg, n: int, what: str = "region"
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Semi-axes (arcsec) and position angles (deg) of ``n`` ellipses as float arrays, or an
    ``InputError`` naming the first bad row. A missing minor axis makes circles, a missing
    position angle is 0 only for circles."""
    a = np.broadcast_to(np.asarray(semi_major_arcsec, np.float64), (n,))
    b = a if semi_minor_arcsec is None else np.broadcast_to(
        np.asarray(semi_minor_arcsec, np.float64), (n,))
    if pa_deg is None:
        if semi_minor_arcsec is not None and np.any(b != a):
            raise InputError(f"{what}: an ellipse needs the position angle of its major axis")
        pa = np.zeros(n)
    else:
        pa = np.broadcast_to(np.asarray(pa_deg, np.float64), (n,))
    def where(row: int) -> str:
        return f"{what} row {row}" if n > 1 else what

    for values, name in ((a, "semi-major axis"), (b, "semi-minor axis")):
        bad = ~(np.isfinite(values) & (values > 0) & (values <= coords.MAX_RADIUS_ARCSEC))
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise InputError(f"{where(row)}: {name} {float(values[row])!r} arcsec is not a "
                             f"number in (0, {coords.MAX_RADIUS_ARCSEC:g}]")
    bad = b > a
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise InputError(f"{where(row)}: semi-minor axis {b[row]:g} arcsec is larger than the "
                         f"semi-major axis {a[row]:g} arcsec")
    bad = ~np.isfinite(pa)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise InputError(f"{where(row)}: position angle {float(pa[row])!r} deg is not a "
                         "number")
    return a, b, pa


@dataclass(frozen=True, eq=False)
class QueryPositions:
    """Positions as a lookup takes them, worked out once for several indexes: their
    order-29 pixels and unit vectors sorted by pixel, and each one's place in the input."""

    pixels: np.ndarray
    xyz: np.ndarray
    by_pixel: np.ndarray

    @classmethod
    def of(cls, ra, dec=None) -> QueryPositions:
        if isinstance(ra, QueryPositions):
            return ra
        ra_deg, dec_deg, _ = coords.positions(ra, dec)
        pixels = np.empty(len(ra_deg), np.int64)
        search.radec_to_pixel_kernel(MAX_ORDER, np.radians(ra_deg), np.radians(dec_deg),
                                     pixels)
        by_pixel = np.argsort(pixels, kind="stable")
        xyz = np.empty((len(ra_deg), 3))
        search.unit_vectors_kernel(np.radians(ra_deg[by_pixel]), np.radians(dec_deg[by_pixel]),
                                   xyz)
        return cls(np.ascontiguousarray(pixels[by_pixel]), xyz, by_pixel)

    def __len__(self) -> int:
        return len(self.pixels)

    def inside(self, ranges29: np.ndarray) -> np.ndarray:
        """Whether each position (in input order) lies in sorted order-29 ranges."""
        inside = np.empty(len(self), bool)
        found = np.empty(len(self), bool)
        search.in_ranges_kernel(self.pixels, np.ascontiguousarray(ranges29[:, 0]),
                                np.ascontiguousarray(ranges29[:, 1]), found)
        inside[self.by_pixel] = found
        return inside


@dataclass(frozen=True, eq=False)
class RegionIndex:
    """Circles and ellipses filed by HEALPix cell, for "which regions contain this position".

    Attributes
    ----------
    regions : numpy.ndarray
        One row per region (:data:`xmatch.kernels.regions.REGION_FIELDS`): the unit vector
        of its centre, its inverse form and its squared reach (the largest normalised
        distance reported).
    orders, order_start, keys, entries, entry_row : numpy.ndarray
        The cell files (see :func:`xmatch.kernels.regions.containing_kernel`).
    """

    regions: np.ndarray
    orders: np.ndarray
    order_start: np.ndarray
    keys: np.ndarray
    entries: np.ndarray
    entry_row: np.ndarray
    name: str = "region"

    @classmethod
    def from_arrays(cls, ra_deg, dec_deg, semi_major_arcsec, semi_minor_arcsec=None,
                    pa_deg=None, *, reach=1.0, name: str = "region") -> RegionIndex:
        """Index ellipses (or circles, without ``semi_minor_arcsec``) centred at
        (``ra_deg``, ``dec_deg``) with their semi-axes in arcsec and the position angle of
        the major axis in degrees east of north. ``reach`` (a number, or one per region):
        report positions up to this normalised distance."""
        ra = np.ascontiguousarray(ra_deg, np.float64).reshape(-1)
        dec = np.ascontiguousarray(dec_deg, np.float64).reshape(-1)
        if ra.shape != dec.shape:
            raise InputError(f"{len(ra)} right ascensions for {len(dec)} declinations")
        coords.check_radec(ra, dec)
        n = len(ra)
        a, b, pa = check_shapes(semi_major_arcsec, semi_minor_arcsec, pa_deg, n, name)
        reach = np.broadcast_to(np.asarray(reach, np.float64), (n,))
        if not np.all(np.isfinite(reach) & (reach > 0)):
            raise InputError(f"{name}: the reach of a region must be a number > 0")
        bound = np.ascontiguousarray(a * reach * ARCSEC_TO_RAD)
        if np.any(bound > math.pi):
            row = int(np.flatnonzero(bound > math.pi)[0])
            raise InputError(f"{name} row {row}: semi-major axis times reach exceeds 180 deg")
        centre = np.empty((n, 3))
        search.unit_vectors_kernel(np.radians(ra), np.radians(dec), centre)
        counts = np.empty(n, np.int64)
        nothing = np.empty(0, np.int64)
        kernels.region_cells_kernel(centre, bound, True, nothing, counts, nothing, nothing)
        offsets = np.r_[0, np.cumsum(counts)].astype(np.int64)
        keys = np.empty(offsets[-1], np.int64)
        entry_row = np.empty(offsets[-1], np.int32 if n < 2**31 else np.int64)
        kernels.region_cells_kernel(centre, bound, False, offsets, counts, keys, entry_row)
        by_key = np.argsort(keys, kind="stable")
        keys, entry_row = keys[by_key], entry_row[by_key]
        # NUNIQ keys sort by order first; the keys of order o lie in [4**(o+1), 4**(o+2)).
        bounds = np.searchsorted(keys, np.int64(4) << (2 * np.arange(MAX_ORDER + 2)))
        orders = np.flatnonzero(bounds[1:] > bounds[:-1])
        order_start = np.r_[bounds[orders], bounds[orders[-1] + 1] if len(orders) else 0]
        regions = np.empty((n, kernels.REGION_FIELDS))
        regions[:, :3] = centre
        regions[:, 3:6] = inverse_form(a * ARCSEC_TO_RAD, b * ARCSEC_TO_RAD, np.radians(pa))
        regions[:, 6] = np.square(reach)
        entries = np.empty((len(keys), 4), np.float32)
        entries[:, :3] = centre[entry_row]
        chord = 2 * np.sin(np.minimum(bound, np.pi) / 2) + kernels.ENTRY_CHORD_MARGIN
        entries[:, 3] = np.square(chord)[entry_row]
        return cls(regions, orders, order_start.astype(np.int64), np.ascontiguousarray(keys),
                   entries, np.ascontiguousarray(entry_row), name)

    def __len__(self) -> int:
        return len(self.regions)

    def __repr__(self) -> str:
        return (f"<RegionIndex {self.name!r}: {len(self)} regions in {len(self.keys)} cells "
                f"at orders {self.orders.tolist()}>")

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.regions, self.keys, self.entries, self.entry_row))

    def containing(self, ra, dec=None) -> pa.Table:
        """Every (position, region) pair within the region's reach: columns
        ``query_index``, ``row`` (the region), ``region_distance`` (normalised: 1 on the
        boundary) and ``separation_arcsec`` (from the region's centre), grouped by position
        and closest first (in normalised distance; ties by row). Positions in any form
        :mod:`xmatch.sky.coords` reads, or :class:`QueryPositions`."""
        queries = QueryPositions.of(ra, dec)
        n = len(queries)
        arrays = (queries.pixels, queries.xyz, queries.by_pixel, self.orders,
                  self.order_start, self.keys, self.entries, self.entry_row, self.regions)
        counts = np.empty(n, np.int64)
        none_i, none_f = np.empty(0, np.int64), np.empty(0)
        self._run(n, *arrays, none_i, True, counts, none_i, none_f, none_f)
        offsets = np.r_[0, np.cumsum(counts)].astype(np.int64)
        total = int(offsets[-1])
        row, rho, sep = np.empty(total, np.int64), np.empty(total), np.empty(total)
        self._run(n, *arrays, offsets, False, counts, row, rho, sep)
        return pa.table({QUERY_COLUMN: np.repeat(np.arange(n, dtype=np.int64), counts),
                         ROW_COLUMN: row, DISTANCE_COLUMN: rho,
                         SEPARATION_COLUMN: sep * RAD_TO_ARCSEC})

    @staticmethod
    def _run(n, *args):
        if n <= search.QUERIES_PER_TASK:
            kernels._containing_task(0, n, *args)
        else:
            with _LAUNCH:
                kernels.containing_kernel(*args)


def region_distances(centre_ra_deg, centre_dec_deg, semi_major_arcsec, semi_minor_arcsec,
                     pa_deg, ra_deg, dec_deg) -> tuple[np.ndarray, np.ndarray]:
    """Normalised distance and separation (arcsec) of each position from its own ellipse
    (one ellipse for all, or one per position: pairs already made)."""
    ra = np.asarray(ra_deg, np.float64).reshape(-1)
    n = len(ra)
    a, b, pa = check_shapes(semi_major_arcsec, semi_minor_arcsec, pa_deg, n, "ellipse")
    centre = np.empty((n, 3))
    search.unit_vectors_kernel(np.radians(np.broadcast_to(centre_ra_deg, (n,)).astype(float)),
                               np.radians(np.broadcast_to(centre_dec_deg, (n,)).astype(float)),
                               centre)
    xyz = np.empty((n, 3))
    search.unit_vectors_kernel(np.radians(ra),
                               np.radians(np.asarray(dec_deg, np.float64).reshape(-1)), xyz)
    form = inverse_form(a * ARCSEC_TO_RAD, b * ARCSEC_TO_RAD, np.radians(pa))
    rho, sep = np.empty(n), np.empty(n)
    kernels.ellipse_rho_kernel(centre, form, xyz, rho, sep)
    return rho, sep * RAD_TO_ARCSEC


def vector_distances(ellipse, xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Normalised distance and separation (arcsec) of unit vectors (n, 3) from one
    :class:`xmatch.sky.regions.Ellipse`."""
    n = len(xyz)
    centre = np.empty((1, 3))
    search.unit_vectors_kernel(np.radians([ellipse.ra_deg]), np.radians([ellipse.dec_deg]),
                               centre)
    form = inverse_form(np.array([ellipse.semi_major_arcsec]) * ARCSEC_TO_RAD,
                        np.array([ellipse.semi_minor_arcsec]) * ARCSEC_TO_RAD,
                        np.radians([ellipse.pa_deg]))
    rho, sep = np.empty(n), np.empty(n)
    kernels.ellipse_rho_kernel(np.repeat(centre, n, axis=0), np.repeat(form, n, axis=0),
                               xyz, rho, sep)
    return rho, sep * RAD_TO_ARCSEC


#: Column of :func:`sigma_crossmatch`: the sigma-distance (chi) of each match.
SIGMA_COLUMN = "sigma_distance"


def completeness_sigma(completeness: float) -> float:
    """The chi threshold k that keeps a fraction ``completeness`` of true counterparts of
    2-D Gaussian errors: 1 - exp(-k^2 / 2) = completeness (CDS XMatch's criterion)."""
    if not (isinstance(completeness, int | float) and 0 < completeness < 1):
        raise InputError(f"completeness {completeness!r} must be a fraction in (0, 1), e.g. "
                         "0.9973")
    return math.sqrt(-2.0 * math.log(1.0 - completeness))


def sigma_crossmatch(searcher, ra, dec, semi_major_arcsec, semi_minor_arcsec=None,
                     pa_deg=None, *, catalog_error_arcsec: float, completeness: float = 0.9973,
                     mode: str = "all", epoch=None, columns=None) -> pa.Table:
    """Positions with their own 1-sigma error ellipses matched to a catalog by
    sigma-distance, as CDS XMatch does: with the catalog's circular 1-sigma error s, the
    two errors' combined covariance is the ellipse of semi-axes sqrt(a^2 + s^2) and
    sqrt(b^2 + s^2) at the query's position angle, and a row matches when its normalised
    distance from the query in that ellipse (chi, ``sigma_distance``) is at most k, with
    1 - exp(-k^2 / 2) = ``completeness``. A left join like :meth:`SkyIndex.crossmatch`
    (every query kept), ranked by chi; ``mode`` ``all`` or ``nearest`` (smallest chi).

    ``searcher`` finds the candidates: a :class:`SkyIndex`, or a :class:`CatalogSearch` (a
    catalog behind a client: the cross-match stream of a server or a router, each position
    with its own radius). ``catalog_error_arcsec`` is required
    (0 for positions taken as exact): a catalog without a stated error gets none
    silently."""
    from xmatch.index.results import MOVED_COLUMNS, RANK_COLUMN, left_join_of_matches

    if mode not in ("all", "nearest"):
        raise InputError(f"mode {mode!r}: a sigma cross-match keeps all matches or the "
                         "nearest (smallest sigma-distance)")
    k = completeness_sigma(completeness)
    ra_deg, dec_deg, _ = coords.positions(ra, dec)
    n = len(ra_deg)
    a, b, angle = check_shapes(semi_major_arcsec, semi_minor_arcsec, pa_deg, n,
                               "error ellipse")
    error = float(catalog_error_arcsec)
    if not (math.isfinite(error) and error >= 0):
        raise InputError(f"catalog_error_arcsec {catalog_error_arcsec!r} must be a number "
                         ">= 0")
    big = np.sqrt(a ** 2 + error ** 2)
    small = np.sqrt(b ** 2 + error ** 2)
    ra_column, dec_column = searcher.ra_column, searcher.dec_column
    wanted = None if columns is None else list(dict.fromkeys([*columns, ra_column,
                                                              dec_column]))
    found = searcher.crossmatch(ra_deg, dec_deg, radius_arcsec=np.minimum(
        k * big, coords.MAX_RADIUS_ARCSEC), mode="all", epoch=epoch, columns=wanted)
    matched = found.filter(pc.is_valid(found.column(RANK_COLUMN)))
    query = matched.column(QUERY_COLUMN).to_numpy()
    row_ra = matched.column(ra_column).to_numpy(zero_copy_only=False)
    row_dec = matched.column(dec_column).to_numpy(zero_copy_only=False)
    if MOVED_COLUMNS[0] in matched.column_names:  # rows moved to the queries' epochs
        row_ra = np.asarray(matched.column(MOVED_COLUMNS[0]).to_numpy(zero_copy_only=False))
        row_dec = np.asarray(matched.column(MOVED_COLUMNS[1]).to_numpy(zero_copy_only=False))
    chi = (region_distances(ra_deg[query], dec_deg[query], big[query], small[query],
                            angle[query], row_ra, row_dec)[0] if len(query) else np.empty(0))
    keep = chi <= k
    matched = matched.filter(pa.array(keep)).append_column(SIGMA_COLUMN, pa.array(chi[keep]))
    extra = [] if columns is None else [c for c in wanted if c not in columns]
    return left_join_of_matches(matched.drop_columns(extra), query[keep], n,
                                k=1 if mode == "nearest" else None, rank_by=SIGMA_COLUMN)


@dataclass(frozen=True)
class CatalogSearch:
    """A served catalog as :func:`sigma_crossmatch` searches it: through a
    :class:`xmatch.Client`'s cross-match stream."""

    client: object
    catalog: str
    ra_column: str
    dec_column: str

    @classmethod
    def of(cls, client, catalog: str) -> CatalogSearch:
        described = client.describe(catalog)
        return cls(client, catalog, described["ra_column"], described["dec_column"])

    def crossmatch(self, ra, dec, *, radius_arcsec, mode, epoch, columns) -> pa.Table:
        return self.client.crossmatch(self.catalog, ra, dec, radius_arcsec=radius_arcsec,
                                      mode=mode, epoch=epoch, columns=columns, arrow=True)
