"""The one module that calls an external HEALPix library (cdshealpix, as hats does).

Everything is NESTED. ``order`` is the HEALPix depth (nside = 2**order); order 29 is the
finest, the resolution of the ``_healpix_29`` index column. Pixel arithmetic that needs no
library (ranges, parents, counts) is here too, so callers have one place to look.
"""

from __future__ import annotations

import math

import numpy as np

MAX_ORDER = 29


def order_to_nside(order: int) -> int:
    return 1 << order


def npix_at(order: int) -> int:
    return 12 * (1 << (2 * order))


def order_of_npix(npix: int) -> int | None:
    """The order whose sky has ``npix`` pixels (None if no order has)."""
    if npix < 12 or npix % 12:
        return None
    order = int(round(math.log2(npix // 12) / 2))
    return order if npix_at(order) == npix else None


def max_pixel_radius_rad(order: int) -> float:
    """Largest angular distance from a pixel centre to its corners at ``order``: the
    distance from the centre of the pixel at z = 2/3 next to the first meridian to its
    polar corner, where pixels are most stretched (HEALPix C++ ``max_pixrad``)."""
    nside = order_to_nside(order)

    def vector(z, phi):
        s = math.sqrt((1.0 - z) * (1.0 + z))
        return np.array([s * math.cos(phi), s * math.sin(phi), z])

    t = (1.0 - 1.0 / nside) ** 2
    a, b = vector(2.0 / 3.0, math.pi / (4 * nside)), vector(1.0 - t / 3.0, 0.0)
    return float(math.atan2(np.linalg.norm(np.cross(a, b)), float(a @ b)))


def radec_to_healpix29(ra_deg: np.ndarray, dec_deg: np.ndarray) -> np.ndarray:
    """NESTED order-29 pixel of each (ra, dec) in degrees, as int64 (callers validate the
    coordinates first; ra 360 is ra 0)."""
    return radec_to_pixels(MAX_ORDER, ra_deg, dec_deg)


def radec_to_pixels(order: int, ra_deg, dec_deg) -> np.ndarray:
    """NESTED pixel at ``order`` of each (ra, dec) in degrees, as int64."""
    import astropy.units as u
    from astropy.coordinates import Latitude, Longitude
    from cdshealpix.nested import lonlat_to_healpix

    ra = np.asarray(ra_deg, dtype=np.float64)
    if ra.size == 0:
        return np.empty(0, np.int64)
    return lonlat_to_healpix(Longitude(ra, u.deg), Latitude(np.asarray(dec_deg, np.float64),
                                                             u.deg), order).astype(np.int64)


def pixel_centres_deg(order: int, pixels) -> tuple[np.ndarray, np.ndarray]:
    """(ra, dec) in degrees of the centres of NESTED ``pixels`` at ``order``."""
    import astropy.units as u
    from cdshealpix.nested import healpix_to_lonlat

    pixels = np.asarray(pixels, dtype=np.uint64)
    if pixels.size == 0:
        return np.empty(0), np.empty(0)
    lon, lat = healpix_to_lonlat(pixels, order)
    return lon.to_value(u.deg), lat.to_value(u.deg)


def degrade(pixels29: np.ndarray, order: int) -> np.ndarray:
    """Pixel at ``order`` containing each order-29 pixel."""
    return pixels29 >> (2 * (MAX_ORDER - order))


def pixel_range29(order: int, pixel) -> tuple:
    """Half-open order-29 range ``[lo, hi)`` covered by ``pixel`` at ``order``."""
    shift = 2 * (MAX_ORDER - order)
    return np.int64(pixel) << shift, (np.int64(pixel) + 1) << shift


def cells_to_ranges29(orders: np.ndarray, pixels: np.ndarray) -> np.ndarray:
    """Cells of mixed orders as sorted, merged half-open order-29 ranges, shape (n, 2)."""
    orders = np.asarray(orders, np.int64)
    pixels = np.asarray(pixels, np.int64)
    if pixels.size == 0:
        return np.empty((0, 2), np.int64)
    shift = 2 * (MAX_ORDER - orders)
    starts, stops = pixels << shift, (pixels + 1) << shift
    by_start = np.argsort(starts, kind="stable")
    starts, stops = starts[by_start], stops[by_start]
    stops = np.maximum.accumulate(stops)
    new = np.r_[True, starts[1:] > stops[:-1]]  # a gap before: a range of its own
    last = np.r_[np.flatnonzero(new)[1:] - 1, len(starts) - 1]
    return np.stack([starts[new], stops[last]], axis=1)


def occupied_ranges29(pixels29: np.ndarray, order: int) -> np.ndarray:
    """Order-29 ranges, shape (n, 2), of the cells at ``order`` holding at least one of the
    sorted order-29 ``pixels29`` (an index's ``h29``), runs of adjacent cells merged: the
    coverage of the rows at ``order``. Vectorised: a few passes over the pixels."""
    shift = 2 * (MAX_ORDER - order)
    cells = np.asarray(pixels29, dtype=np.int64) >> shift  # sorted, as the pixels are
    if cells.size == 0:
        return np.empty((0, 2), np.int64)
    cells = cells[np.r_[True, cells[1:] != cells[:-1]]]  # each cell once
    first = np.flatnonzero(np.r_[True, cells[1:] != cells[:-1] + 1])  # each run's first
    last = np.r_[first[1:] - 1, len(cells) - 1]
    return np.stack([cells[first] << shift, (cells[last] + 1) << shift], axis=1)


def union_ranges29(parts) -> np.ndarray:
    """The union of several sets of sorted, disjoint order-29 ranges (each (n, 2)), as
    sorted, disjoint ranges with touching ones merged: exact, no cell added or lost."""
    ranges = np.concatenate([np.asarray(p, dtype=np.int64).reshape(-1, 2) for p in parts]
                            or [np.empty((0, 2), np.int64)])
    if len(ranges) == 0:
        return np.empty((0, 2), np.int64)
    ranges = ranges[np.argsort(ranges[:, 0], kind="stable")]
    starts, stops = ranges[:, 0], np.maximum.accumulate(ranges[:, 1])
    first = np.flatnonzero(np.r_[True, starts[1:] > stops[:-1]])  # a gap before it
    last = np.r_[first[1:] - 1, len(starts) - 1]
    return np.stack([starts[first], stops[last]], axis=1)


def polygon_cover29(ra_deg: np.ndarray, dec_deg: np.ndarray, order: int) -> np.ndarray:
    """Order-29 ranges of the cells at ``order`` (or coarser, merged) that overlap the
    polygon of great-circle edges through the vertices: a cover that never misses a point
    inside (cdshealpix ``polygon_search``)."""
    import astropy.units as u
    from astropy.coordinates import Latitude, Longitude
    from cdshealpix.nested import polygon_search

    pixels, orders, _ = polygon_search(Longitude(ra_deg, u.deg), Latitude(dec_deg, u.deg),
                                       order)
    return cells_to_ranges29(orders.astype(np.int64), pixels.astype(np.int64))
