"""Exact membership tests of region kinds whose cover is only an approximation, and the
lookup of rows that are regions (circles, ellipses) containing positions.

A spherical polygon here has great-circle edges between consecutive vertices and lies in the
open hemisphere around ``centre`` (the checked-in constructor of
:class:`xmatch.sky.regions.Polygon` guarantees it). A point P is inside when the polygon
winds around it: the signed angles that the edges subtend at P, measured in the plane
tangent at P, add up to +-2 pi, and 0 when it does not. The winding number only tells
whether P and its antipode lie on different sides of the boundary, so P must also lie in
the polygon's hemisphere.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from xmatch.kernels.healpix import (
    EDGE_MARGIN_RAD,
    MAX_PIXEL_RADIUS,
    chord2,
    chord2_of_angle,
    cone_seed_order,
    cone_seeds,
    pixel_center,
)
from xmatch.kernels.jit import jit, jit_inline, parallel_jit
from xmatch.kernels.search import QUERIES_PER_TASK, _lower_bound
from xmatch.sky.healpix import MAX_ORDER


@parallel_jit
def polygon_contains_kernel(vertices, centre, xyz, out):
    """``out[j]``: whether unit vector ``xyz[j]`` lies inside the polygon of unit-vector
    ``vertices`` (m, 3) in the hemisphere around unit vector ``centre``."""
    m = vertices.shape[0]
    for j in numba.prange(xyz.shape[0]):
        px, py, pz = xyz[j, 0], xyz[j, 1], xyz[j, 2]
        if px * centre[0] + py * centre[1] + pz * centre[2] <= 0.0:
            out[j] = False
            continue
        total = 0.0
        for i in range(m):
            ax, ay, az = vertices[i, 0], vertices[i, 1], vertices[i, 2]
            k = (i + 1) % m
            bx, by, bz = vertices[k, 0], vertices[k, 1], vertices[k, 2]
            # Signed angle at P from A to B: atan2(P . (A x B), A . B - (P . A)(P . B)).
            cx = ay * bz - az * by
            cy = az * bx - ax * bz
            cz = ax * by - ay * bx
            sine = px * cx + py * cy + pz * cz
            cosine = (ax * bx + ay * by + az * bz
                      - (px * ax + py * ay + pz * az) * (px * bx + py * by + pz * bz))
            total += math.atan2(sine, cosine)
        out[j] = abs(total) > math.pi


# ----------------------------------------------------------------------------- ellipses
#
# An ellipse on the sky is defined in the azimuthal equidistant projection at its centre:
# a point at separation s and position angle phi (east of north) from the centre sits at
# (xi, eta) = s (sin phi, cos phi) in that plane, and the ellipse is the set of points with
# (xi, eta) C^-1 (xi, eta)^T <= 1, where C = a^2 u u^T + b^2 v v^T is built from the
# semi-axes a >= b and the unit vectors u = (sin pa, cos pa) along the major axis and v
# across it. Along every direction the distance from the centre is the true angle, so a
# circle is exactly a cone, and the "normalised distance" rho = sqrt((xi, eta) C^-1 (...))
# is the separation divided by the ellipse's radius in the direction of the point (the
# directional light radius of a galaxy, the sigma-distance of a 1-sigma error ellipse).
# A region stores its centre's unit vector and the inverse form (ixx, ixy, iyy) of C.


@jit_inline
def ellipse_rho2(cx, cy, cz, ixx, ixy, iyy, x, y, z):
    """Squared normalised distance of unit vector (x, y, z) from the ellipse centred at unit
    vector (cx, cy, cz) with inverse form (ixx, ixy, iyy) (radians^-2; see above), and the
    separation in radians."""
    dx, dy, dz = x - cx, y - cy, z - cz
    d2 = dx * dx + dy * dy + dz * dz
    if d2 < 2.0:  # below 90 deg the chord form is exact
        separation = 2.0 * math.asin(0.5 * math.sqrt(d2))
    else:
        ux = cy * z - cz * y
        uy = cz * x - cx * z
        uz = cx * y - cy * x
        separation = math.atan2(math.sqrt(ux * ux + uy * uy + uz * uz),
                                cx * x + cy * y + cz * z)
    cos_d = math.sqrt(cx * cx + cy * cy)
    if cos_d > 0.0:
        sin_a, cos_a = cy / cos_d, cx / cos_d
    else:  # a centre exactly on a pole: right ascension 0 defines north
        sin_a, cos_a = 0.0, 1.0
    east = -sin_a * x + cos_a * y
    north = -cz * (cos_a * x + sin_a * y) + cos_d * z
    s2 = east * east + north * north
    if s2 == 0.0:  # the centre itself (or its antipode)
        return (0.0 if separation < 1.0 else math.inf), separation
    form = ixx * east * east + 2.0 * ixy * east * north + iyy * north * north
    return separation * separation * form / s2, separation


@jit
def region_cells_kernel(centre29, centre, bound_rad, counting, offsets, out_count, out_key,
                        out_row):
    """The cells each region is filed under: at the order where a cone of the region's
    bounding radius fits in a pixel's 3 x 3 neighbourhood, the neighbourhood pixels that
    may touch the cone (order 0, every base pixel that may, for the widest), as NUNIQ keys
    ``4 * 4**order + pixel``. ``counting``: write each region's cell count; else write its
    cells to ``out_key/out_row[offsets[i]:offsets[i + 1]]``."""
    for i in range(centre29.shape[0]):
        radius = bound_rad[i]
        order = cone_seed_order(radius)
        cx, cy, cz = centre[i, 0], centre[i, 1], centre[i, 2]
        seeds = np.full(12, -1, np.int64)
        if order < 0:
            order = 0
            for face in range(12):
                seeds[face] = face
        else:
            nine = cone_seeds(centre29[i], order)
            for s in range(9):
                seeds[s] = nine[s]
        reach2 = chord2_of_angle(radius + MAX_PIXEL_RADIUS[order] + EDGE_MARGIN_RAD)
        base = np.int64(4) << (2 * order)
        n = 0
        for s in range(12):
            if seeds[s] < 0:
                continue
            px, py, pz = pixel_center(order, seeds[s])
            if chord2(px, py, pz, cx, cy, cz) > reach2:
                continue
            if not counting:
                out_key[offsets[i] + n] = base + seeds[s]
                out_row[offsets[i] + n] = i
            n += 1
        if counting:
            out_count[i] = n


@jit
def _containing_task(first, last, q_h29, q_xyz, orders, order_start, keys, entry_row,
                     centre, form, reach2, offsets, counting, out_count, out_query, out_row,
                     out_rho, out_sep):
    for i in range(first, last):
        x, y, z = q_xyz[i, 0], q_xyz[i, 1], q_xyz[i, 2]
        n = 0
        for k in range(orders.shape[0]):
            order = orders[k]
            key = (np.int64(4) << (2 * order)) + (q_h29[i] >> (2 * (MAX_ORDER - order)))
            j = _lower_bound(keys, order_start[k], order_start[k + 1], key)
            while j < order_start[k + 1] and keys[j] == key:
                r = entry_row[j]
                rho2, separation = ellipse_rho2(centre[r, 0], centre[r, 1], centre[r, 2],
                                                form[r, 0], form[r, 1], form[r, 2], x, y, z)
                if rho2 <= reach2[r]:
                    if not counting:
                        at = offsets[i] + n
                        out_query[at] = i
                        out_row[at] = r
                        out_rho[at] = math.sqrt(rho2)
                        out_sep[at] = separation
                    n += 1
                j += 1
        if counting:
            out_count[i] = n


@parallel_jit
def containing_kernel(q_h29, q_xyz, orders, order_start, keys, entry_row, centre, form,
                      reach2, offsets, counting, out_count, out_query, out_row, out_rho,
                      out_sep):
    """Regions whose normalised distance from each query is at most their reach, in two
    passes over the same code (as ``within_kernel``): ``counting`` writes the count of
    query i to ``out_count[i]``, else its regions go to ``out_*[offsets[i]:offsets[i+1]]``.

    ``keys`` (sorted NUNIQ cell keys, one slice per order of ``orders`` between
    ``order_start[k]`` and ``order_start[k + 1]``) and ``entry_row`` come from
    ``region_cells_kernel``; a query looks up its own cell at each order, so a region is
    met at most once. Callers sort queries by pixel (cache locality)."""
    n_queries = q_h29.shape[0]
    for task in numba.prange((n_queries + QUERIES_PER_TASK - 1) // QUERIES_PER_TASK):
        _containing_task(task * QUERIES_PER_TASK,
                         min(n_queries, (task + 1) * QUERIES_PER_TASK), q_h29, q_xyz, orders,
                         order_start, keys, entry_row, centre, form, reach2, offsets,
                         counting, out_count, out_query, out_row, out_rho, out_sep)


@parallel_jit
def ellipse_rho_kernel(centre, form, xyz, out_rho, out_sep):
    """Normalised distance and separation (radians) of each unit vector ``xyz[j]`` from
    ellipse ``j`` (the exact test of searches that already paired them)."""
    for j in numba.prange(xyz.shape[0]):
        rho2, separation = ellipse_rho2(centre[j, 0], centre[j, 1], centre[j, 2], form[j, 0],
                                        form[j, 1], form[j, 2], xyz[j, 0], xyz[j, 1],
                                        xyz[j, 2])
        out_rho[j] = math.sqrt(rho2)
        out_sep[j] = separation
