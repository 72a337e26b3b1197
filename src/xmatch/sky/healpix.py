"""The one module that calls an external HEALPix library.

Everything is NESTED. ``order`` is the HEALPix depth (nside = 2**order); order 29 is the
finest, the resolution of the ``_healpix_29`` index column.
"""

from __future__ import annotations

import healpy
import numpy as np

MAX_ORDER = 29


def order_to_nside(order: int) -> int:
    return 1 << order


def npix_at(order: int) -> int:
    return 12 * (1 << (2 * order))


def order_of_npix(npix: int) -> int:
    order = int(round(np.log2(npix // 12) / 2))
    if npix_at(order) != npix:
        raise ValueError(f"{npix} is not the pixel count of a HEALPix order")
    return order


def max_pixel_radius_rad(order: int) -> float:
    """Largest angular distance from a pixel centre to its corners at ``order``."""
    return float(healpy.max_pixrad(order_to_nside(order)))


def radec_to_healpix29(ra_deg: np.ndarray, dec_deg: np.ndarray) -> np.ndarray:
    """NESTED order-29 pixel of each (ra, dec) in degrees, as int64.

    Callers validate coordinates first; healpy treats RA modulo 360.
    """
    return np.asarray(
        healpy.ang2pix(1 << MAX_ORDER, ra_deg, dec_deg, nest=True, lonlat=True),
        dtype=np.int64,
    )


def degrade(pixels29: np.ndarray, order: int) -> np.ndarray:
    """Pixel at ``order`` containing each order-29 pixel."""
    return pixels29 >> (2 * (MAX_ORDER - order))


def pixel_range29(order: int, pixel) -> tuple:
    """Half-open order-29 range ``[lo, hi)`` covered by ``pixel`` at ``order``."""
    shift = 2 * (MAX_ORDER - order)
    return np.int64(pixel) << shift, (np.int64(pixel) + 1) << shift


def cone_pixels(order: int, ra_deg: float, dec_deg: float, radius_deg: float) -> np.ndarray:
    """Every pixel at ``order`` that may overlap the cone (a superset, never a miss)."""
    vec = healpy.ang2vec(ra_deg, dec_deg, lonlat=True)
    return healpy.query_disc(
        order_to_nside(order), vec, np.radians(radius_deg), inclusive=True, nest=True, fact=4
    ).astype(np.int64)
