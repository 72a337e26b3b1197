"""HEALPix (NESTED, orders 0–29) in numba: positions → pixels, pixel geometry, neighbours,
and the cover of a cone as order-29 ranges.

The formulas follow the HEALPix paper (Górski et al. 2005, ApJ 622, 759). A base pixel
(face) ``f`` carries local coordinates ``(ix, iy)``; ``ix`` grows to the north-east and
``iy`` to the north-west, so ``(0, 0)`` is the face's south corner and ``(N-1, N-1)`` its
north corner. The nested number interleaves the bits of ``ix`` (even) and ``iy`` (odd).

Pixel numbers of catalog rows come from the store's ``_healpix_29`` column (cdshealpix for
xmatch's loads, as hats; healpy for catalogs loaded by earlier versions). These kernels
reproduce healpy's arithmetic step by step, so they agree with both except for points within
a rounding error of a pixel edge; every search widens its radius by ``EDGE_MARGIN_RAD`` so
such a point is never missed either way.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from xmatch.kernels.jit import jit, parallel_jit
from xmatch.sky.healpix import MAX_ORDER, max_pixel_radius_rad

HALF_PI = 0.5 * math.pi
TWO_THIRDS = 2.0 / 3.0

# Ring of the face's south corner (in units of nside) and longitude of its centre in
# units of pi/4, for faces 0-3 (north), 4-7 (equator), 8-11 (south).
FACE_RING = np.array([2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4], dtype=np.int64)
FACE_LON = np.array([1, 3, 5, 7, 0, 2, 4, 6, 1, 3, 5, 7], dtype=np.int64)

#: Upper bound of the angular distance from a pixel's centre to any point of it, per order
#: (HEALPix's corner distance, widened by 10 % because pixel edges are curves, not arcs).
MAX_PIXEL_RADIUS = np.array([1.1 * max_pixel_radius_rad(o) for o in range(MAX_ORDER + 1)])

#: Mean pixel spacing per order: sqrt(4 pi / npix).
PIXEL_SPACING = np.array([math.sqrt(math.pi / 3.0) / (1 << o) for o in range(MAX_ORDER + 1)])

#: Widening of every search radius so that points a rounding error away from a pixel edge,
#: or from the cone boundary, are always examined (about 2e-7 arcsec).
EDGE_MARGIN_RAD = 1e-12

#: A cone of radius at most NEIGHBOURHOOD_FRACTION * PIXEL_SPACING[d] centred in a pixel at
#: order d lies inside that pixel and its neighbours. Measured against cdshealpix's exact
#: cone cover: true up to 0.6, first failures at 0.7 (near base-pixel corners); we keep a
#: factor of two (tests/kernels/test_healpix_kernels.py).
NEIGHBOURHOOD_FRACTION = 0.3


@jit
def chord2_of_angle(angle_rad):
    """Squared chord between unit vectors ``angle_rad`` apart (4 at and beyond pi).

    Distances are compared as squared chords: unlike cosines they keep full relative
    precision for separations down to 1e-8 arcsec.
    """
    if angle_rad >= math.pi:
        return 4.0
    half = math.sin(0.5 * angle_rad)
    return 4.0 * half * half


@jit
def chord2(x1, y1, z1, x2, y2, z2):
    dx = x1 - x2
    dy = y1 - y2
    dz = z1 - z2
    return dx * dx + dy * dy + dz * dz


@jit
def _spread_bits(v):
    """Move bit i of a 32-bit value to bit 2i."""
    v = (v | (v << 16)) & 0x0000FFFF0000FFFF
    v = (v | (v << 8)) & 0x00FF00FF00FF00FF
    v = (v | (v << 4)) & 0x0F0F0F0F0F0F0F0F
    v = (v | (v << 2)) & 0x3333333333333333
    v = (v | (v << 1)) & 0x5555555555555555
    return v


@jit
def _compact_bits(v):
    """Inverse of ``_spread_bits``: gather the even bits."""
    v = v & 0x5555555555555555
    v = (v | (v >> 1)) & 0x3333333333333333
    v = (v | (v >> 2)) & 0x0F0F0F0F0F0F0F0F
    v = (v | (v >> 4)) & 0x00FF00FF00FF00FF
    v = (v | (v >> 8)) & 0x0000FFFF0000FFFF
    v = (v | (v >> 16)) & 0x00000000FFFFFFFF
    return v


@jit
def _xyf_to_nest(order, ix, iy, face):
    return (np.int64(face) << (2 * order)) + _spread_bits(np.int64(ix)) \
        + (_spread_bits(np.int64(iy)) << 1)


@jit
def _nest_to_xyf(order, pixel):
    face = pixel >> (2 * order)
    local = pixel & ((np.int64(1) << (2 * order)) - 1)
    return _compact_bits(local), _compact_bits(local >> 1), face


@jit
def _loc_to_nest(order, z, phi, sth, have_sth):
    """Pixel of the point at cos(colatitude) ``z`` and longitude ``phi`` (radians).

    ``sth`` = sin(colatitude) keeps precision near the poles where 1 - |z| underflows.
    """
    nside = np.int64(1) << order
    za = abs(z)
    tt = phi / HALF_PI
    tt = tt - 4.0 * math.floor(tt / 4.0)
    if tt >= 4.0:
        tt = 0.0
    if za <= TWO_THIRDS:
        temp1 = nside * (0.5 + tt)
        temp2 = nside * (z * 0.75)
        jp = np.int64(temp1 - temp2)  # index of the ascending edge line
        jm = np.int64(temp1 + temp2)  # index of the descending edge line
        ifp = jp >> order
        ifm = jm >> order
        if ifp == ifm:
            face = ifp | 4
        elif ifp < ifm:
            face = ifp
        else:
            face = ifm + 8
        ix = jm & (nside - 1)
        iy = nside - (jp & (nside - 1)) - 1
        return _xyf_to_nest(order, ix, iy, face)
    ntt = min(np.int64(tt), 3)
    tp = tt - ntt
    if za < 0.99 or not have_sth:
        tmp = nside * math.sqrt(3.0 * (1.0 - za))
    else:
        tmp = nside * sth / math.sqrt((1.0 + za) / 3.0)
    jp = min(np.int64(tp * tmp), nside - 1)
    jm = min(np.int64((1.0 - tp) * tmp), nside - 1)
    if z >= 0:
        return _xyf_to_nest(order, nside - jm - 1, nside - jp - 1, ntt)
    return _xyf_to_nest(order, jp, jm, ntt + 8)


@jit
def radec_to_pixel(order, ra_rad, dec_rad):
    """Pixel of (ra, dec) in radians, computed as healpy does for ``lonlat=True``."""
    theta = HALF_PI - dec_rad
    return _loc_to_nest(order, math.cos(theta), ra_rad, math.sin(theta),
                        theta < 0.01 or theta > math.pi - 0.01)


@jit
def trig_to_pixel(order, ra_rad, sin_dec, cos_dec):
    """Pixel of a point given its right ascension and the sine and cosine of its
    declination (already at hand for a query: saves the trigonometry)."""
    return _loc_to_nest(order, sin_dec, ra_rad, cos_dec, True)


@jit
def vector_to_pixel(order, x, y, z):
    """Pixel of the direction (x, y, z) (need not be normalised)."""
    norm = math.sqrt(x * x + y * y + z * z)
    phi = math.atan2(y, x)
    if phi < 0.0:
        phi += 2.0 * math.pi
    return _loc_to_nest(order, z / norm, phi, math.sqrt(x * x + y * y) / norm, True)


@jit
def face_point_to_vector(face, fx, fy):
    """Unit vector of the point at continuous face coordinates (fx, fy) in [0, 1]^2."""
    t = FACE_RING[face] - fx - fy  # distance from the north pole in ring units (0..4)
    s = fx - fy  # east-west offset from the face's central meridian
    if t < 1.0:  # north polar cap
        z = 1.0 - t * t / 3.0
        sth = t * math.sqrt((2.0 - t * t / 3.0) / 3.0)
        phi = 0.25 * math.pi * (FACE_LON[face] + (s / t if t > 0.0 else 0.0))
    elif t > 3.0:  # south polar cap
        u = 4.0 - t
        z = u * u / 3.0 - 1.0
        sth = u * math.sqrt((2.0 - u * u / 3.0) / 3.0)
        phi = 0.25 * math.pi * (FACE_LON[face] + (s / u if u > 0.0 else 0.0))
    else:
        z = (2.0 - t) * TWO_THIRDS
        sth = math.sqrt((1.0 - z) * (1.0 + z))
        phi = 0.25 * math.pi * (FACE_LON[face] + s)
    return sth * math.cos(phi), sth * math.sin(phi), z


@jit
def pixel_center(order, pixel):
    """Unit vector of a pixel's centre."""
    ix, iy, face = _nest_to_xyf(order, pixel)
    inv_nside = 1.0 / (np.int64(1) << order)
    return face_point_to_vector(face, (ix + 0.5) * inv_nside, (iy + 0.5) * inv_nside)


@jit
def _neighbour(order, ix, iy, face, dx, dy):
    """Nested pixel next to (ix, iy, face) in direction (dx, dy), or -1 where none exists
    (at the eight base-pixel corners where only three faces meet).

    Crossing an edge between two faces of the same row rotates the local coordinates by a
    quarter turn about the pole; crossing to the next row translates them by one face.
    """
    nside = np.int64(1) << order
    x = ix + dx
    y = iy + dy
    x_out = -1 if x < 0 else (1 if x >= nside else 0)
    y_out = -1 if y < 0 else (1 if y >= nside else 0)
    if x_out == 0 and y_out == 0:
        return _xyf_to_nest(order, x, y, face)
    row = face >> 2  # 0 north, 1 equator, 2 south
    col = face & 3
    last = 2 * nside - 1
    if row == 0:
        if x_out == 1 and y_out == 0:      # north-east edge: next polar face
            return _xyf_to_nest(order, y, last - x, (col + 1) & 3)
        if x_out == 0 and y_out == 1:      # north-west edge: previous polar face
            return _xyf_to_nest(order, last - y, x, (col + 3) & 3)
        if x_out == 1 and y_out == 1:      # across the pole: opposite polar face
            return _xyf_to_nest(order, last - x, last - y, (col + 2) & 3)
        if x_out == -1 and y_out == 0:     # south-west edge
            return _xyf_to_nest(order, x + nside, y, 4 + col)
        if x_out == 0 and y_out == -1:     # south-east edge
            return _xyf_to_nest(order, x, y + nside, 4 + ((col + 1) & 3))
        if x_out == -1 and y_out == -1:    # south corner: four faces meet there
            return _xyf_to_nest(order, x + nside, y + nside, 8 + col)
        return -1
    if row == 1:
        if x_out == 1 and y_out == 0:
            return _xyf_to_nest(order, x - nside, y, col)
        if x_out == 0 and y_out == 1:
            return _xyf_to_nest(order, x, y - nside, (col + 3) & 3)
        if x_out == -1 and y_out == 0:
            return _xyf_to_nest(order, x + nside, y, 8 + ((col + 3) & 3))
        if x_out == 0 and y_out == -1:
            return _xyf_to_nest(order, x, y + nside, 8 + col)
        if x_out == 1 and y_out == -1:     # east corner, on the equator
            return _xyf_to_nest(order, x - nside, y + nside, 4 + ((col + 1) & 3))
        if x_out == -1 and y_out == 1:     # west corner, on the equator
            return _xyf_to_nest(order, x + nside, y - nside, 4 + ((col + 3) & 3))
        return -1
    if x_out == 1 and y_out == 0:
        return _xyf_to_nest(order, x - nside, y, 4 + ((col + 1) & 3))
    if x_out == 0 and y_out == 1:
        return _xyf_to_nest(order, x, y - nside, 4 + col)
    if x_out == 1 and y_out == 1:          # north corner: four faces meet there
        return _xyf_to_nest(order, x - nside, y - nside, col)
    if x_out == -1 and y_out == 0:         # south-west edge: previous polar face
        return _xyf_to_nest(order, y, -1 - x, 8 + ((col + 3) & 3))
    if x_out == 0 and y_out == -1:         # south-east edge: next polar face
        return _xyf_to_nest(order, -1 - y, x, 8 + ((col + 1) & 3))
    if x_out == -1 and y_out == -1:        # across the south pole
        return _xyf_to_nest(order, -1 - x, -1 - y, 8 + ((col + 2) & 3))
    return -1


@jit
def neighbour_pixels(order, pixel):
    """The neighbours of ``pixel`` in healpy's order (SW, W, NW, N, NE, E, SE, S), -1 where
    a neighbour does not exist. A tuple, not an array: no allocation, no reference count."""
    ix, iy, face = _nest_to_xyf(order, pixel)
    last = (np.int64(1) << order) - 1
    if 0 < ix < last and 0 < iy < last:  # inside its face: no edge crossing
        return (_xyf_to_nest(order, ix - 1, iy, face),
                _xyf_to_nest(order, ix - 1, iy + 1, face),
                _xyf_to_nest(order, ix, iy + 1, face),
                _xyf_to_nest(order, ix + 1, iy + 1, face),
                _xyf_to_nest(order, ix + 1, iy, face),
                _xyf_to_nest(order, ix + 1, iy - 1, face),
                _xyf_to_nest(order, ix, iy - 1, face),
                _xyf_to_nest(order, ix - 1, iy - 1, face))
    return (_neighbour(order, ix, iy, face, -1, 0),
            _neighbour(order, ix, iy, face, -1, 1),
            _neighbour(order, ix, iy, face, 0, 1),
            _neighbour(order, ix, iy, face, 1, 1),
            _neighbour(order, ix, iy, face, 1, 0),
            _neighbour(order, ix, iy, face, 1, -1),
            _neighbour(order, ix, iy, face, 0, -1),
            _neighbour(order, ix, iy, face, -1, -1))


@jit
def cone_start_order(radius_rad):
    """Deepest order whose pixel neighbourhood is sure to contain a cone of this radius."""
    if radius_rad <= NEIGHBOURHOOD_FRACTION * PIXEL_SPACING[MAX_ORDER]:
        return MAX_ORDER
    # PIXEL_SPACING[d] = PIXEL_SPACING[0] / 2**d: the answer is a logarithm; the loop only
    # corrects its rounding.
    order = min(MAX_ORDER, max(0, int(math.log2(
        NEIGHBOURHOOD_FRACTION * PIXEL_SPACING[0] / radius_rad))))
    while order > 0 and radius_rad > NEIGHBOURHOOD_FRACTION * PIXEL_SPACING[order]:
        order -= 1
    while order < MAX_ORDER and radius_rad <= NEIGHBOURHOOD_FRACTION * PIXEL_SPACING[order + 1]:
        order += 1
    return order


@jit
def cone_seed_order(radius_rad):
    """Order of the nine seed pixels of a cone (see ``cone_seeds``), or -1 for cones too
    wide for a pixel neighbourhood: search all twelve base pixels."""
    if radius_rad > NEIGHBOURHOOD_FRACTION * PIXEL_SPACING[0]:
        return -1
    return cone_start_order(radius_rad)


@jit
def cone_seeds(centre29, order):
    """Nine pixels at ``order`` (from ``cone_seed_order``) that together contain the cone
    around the point in order-29 pixel ``centre29``: its own pixel first, then its
    neighbours, -1 where none. The eight neighbours are distinct (checked against healpy at
    every pixel of orders 0-4 in the tests), so no seed is searched twice."""
    centre = centre29 >> (2 * (MAX_ORDER - order))
    n = neighbour_pixels(order, centre)
    return (centre, n[0], n[1], n[2], n[3], n[4], n[5], n[6], n[7])


@jit
def neighbourhood_inside(order, pixel, coarse_order):
    """True when ``pixel`` and its eight neighbours at ``order`` all lie inside the pixel
    containing them at ``coarse_order`` (< order): the pixel is not on its border."""
    ix, iy, _ = _nest_to_xyf(order, pixel)
    last = (np.int64(1) << (order - coarse_order)) - 1
    sub_x = ix & last
    sub_y = iy & last
    return 0 < sub_x < last and 0 < sub_y < last


@jit
def cone_cover_kernel(ra_rad, dec_rad, radius_rad, depth):
    """Pixels at ``depth`` that may overlap the cone, as sorted, merged half-open ranges of
    pixels at ``depth`` (an (n, 2) array). A superset of the exact cover: a pixel is dropped
    only when its centre is further than ``radius_rad`` plus its maximal radius."""
    cos_d = math.cos(dec_rad)
    x, y, z = cos_d * math.cos(ra_rad), cos_d * math.sin(ra_rad), math.sin(dec_rad)
    seed_order = cone_seed_order(radius_rad)
    stack = []
    if seed_order < 0:
        for face in range(12):
            stack.append((np.int64(face), np.int64(0)))
    else:
        order = min(seed_order, depth)
        seeds = cone_seeds(radec_to_pixel(MAX_ORDER, ra_rad, dec_rad), order)
        for s in range(9):
            if seeds[s] >= 0:
                stack.append((seeds[s], np.int64(order)))
    found = []
    while len(stack) > 0:
        pixel, order = stack.pop()
        cx, cy, cz = pixel_center(order, pixel)
        distance2 = chord2(cx, cy, cz, x, y, z)
        if distance2 > chord2_of_angle(radius_rad + MAX_PIXEL_RADIUS[order] + EDGE_MARGIN_RAD):
            continue
        inside = radius_rad - MAX_PIXEL_RADIUS[order]
        if order == depth or (inside > 0 and distance2 <= chord2_of_angle(inside)):
            shift = 2 * (depth - order)
            found.append((pixel << shift, (pixel + 1) << shift))
        else:
            for child in range(4 * pixel, 4 * pixel + 4):
                stack.append((child, order + 1))
    out = np.empty((len(found), 2), dtype=np.int64)
    for i in range(len(found)):
        out[i, 0], out[i, 1] = found[i]
    if len(found) == 0:
        return out
    out = out[np.argsort(out[:, 0])]
    merged = 0
    for i in range(1, out.shape[0]):
        if out[i, 0] <= out[merged, 1]:
            out[merged, 1] = max(out[merged, 1], out[i, 1])
        else:
            merged += 1
            out[merged] = out[i]
    return out[: merged + 1].copy()


@parallel_jit
def nest_to_ring_kernel(order, pixels, out):
    """RING number of each NESTED pixel at ``order`` (HEALPix C++ ``xyf2ring``): the ring
    ``jr`` of the pixel counted from the north pole, then its place ``jp`` along it."""
    nside = np.int64(1) << order
    nl4 = 4 * nside
    npix = 12 * nside * nside
    ncap = 2 * nside * (nside - 1)
    for j in numba.prange(pixels.shape[0]):
        ix, iy, face = _nest_to_xyf(order, pixels[j])
        jr = FACE_RING[face] * nside - ix - iy - 1
        if jr < nside:
            nr = jr
            before = 2 * nr * (nr - 1)
            shift = 0
        elif jr > 3 * nside:
            nr = nl4 - jr
            before = npix - 2 * (nr + 1) * nr
            shift = 0
        else:
            nr = nside
            before = ncap + (jr - nside) * nl4
            shift = (jr - nside) & 1
        jp = (FACE_LON[face] * nr + ix - iy + 1 + shift) // 2
        if jp > nl4:
            jp -= nl4
        elif jp < 1:
            jp += nl4
        out[j] = before + jp - 1
