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

from xmatch.kernels.healpix import cone_cover_kernel, cone_seed_order
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


#: Regions are filed this many orders below the order whose 3 x 3 neighbourhood holds
#: their bounding cone: cells nearer the size of the region, so a lookup scans fewer
#: entries of regions that do not reach it. Measured on 1 M ellipses of 1" to 2 deg: 1
#: scans 2.9 times fewer entries than 0 for 1.4 times the entries kept; 2 scans 2.5 times
#: fewer again for 1.6 times more entries, and looks up barely faster.
FILING_DEPTH = 1


@parallel_jit
def region_cells_kernel(centre, bound_rad, counting, offsets, out_count, out_key, out_row):
    """The cells each region (unit vector ``centre[i]``, bounding radius ``bound_rad[i]``)
    is filed under: FILING_DEPTH orders below the order where a cone of that radius fits
    in a pixel's 3 x 3 neighbourhood (order 0 for the widest; at most 29), the cells the
    cone may touch (:func:`cone_cover_kernel`), as NUNIQ keys ``4 * 4**order + pixel``.
    ``counting``: write each region's cell count; else write its cells to
    ``out_key/out_row[offsets[i]:offsets[i + 1]]``."""
    for i in numba.prange(centre.shape[0]):
        radius = bound_rad[i]
        order = min(max(cone_seed_order(radius), 0) + FILING_DEPTH, MAX_ORDER)
        cx, cy, cz = centre[i, 0], centre[i, 1], centre[i, 2]
        ra = math.atan2(cy, cx)
        dec = math.asin(max(-1.0, min(1.0, cz)))
        cells = cone_cover_kernel(ra, dec, radius, order)
        base = np.int64(4) << (2 * order)
        n = 0
        for c in range(cells.shape[0]):
            for pixel in range(cells[c, 0], cells[c, 1]):
                if not counting:
                    out_key[offsets[i] + n] = base + pixel
                    out_row[offsets[i] + n] = i
                n += 1
        if counting:
            out_count[i] = n


#: Columns of the region table of ``containing_kernel``: the centre's unit vector, the
#: inverse form and the squared reach (the largest normalised distance reported).
REGION_FIELDS = 7
#: Each cell entry carries its region's centre and bounding chord in float32 (16 bytes read
#: in sequence while a cell's entries are scanned), so the many candidates outside a
#: region's bounding cone are dropped without touching the region table (a cache miss
#: each). The float32 chord is widened by this much (radians) to stay conservative.
ENTRY_CHORD_MARGIN = 2e-7


@jit
def _containing_task(first, last, q_h29, q_xyz, q_slot, orders, order_start, keys,
                     entries, entry_row, regions, offsets, counting, out_count, out_row,
                     out_rho, out_sep):
    # Queries come sorted by pixel, so each order's next key lies at or after the last one
    # found: a galloping search from there replaces a binary search over the whole order.
    cursor = order_start[:-1].copy()
    for i in range(first, last):
        x, y, z = q_xyz[i, 0], q_xyz[i, 1], q_xyz[i, 2]
        base = 0 if counting else offsets[q_slot[i]]
        n = 0
        for k in range(orders.shape[0]):
            order = orders[k]
            key = (np.int64(4) << (2 * order)) + (q_h29[i] >> (2 * (MAX_ORDER - order)))
            end = order_start[k + 1]
            lo = cursor[k]
            step = 1
            while lo + step < end and keys[lo + step] < key:
                lo += step
                step *= 2
            j = _lower_bound(keys, lo, min(lo + step + 1, end), key)
            cursor[k] = j
            while j < end and keys[j] == key:
                dx = x - entries[j, 0]
                dy = y - entries[j, 1]
                dz = z - entries[j, 2]
                if dx * dx + dy * dy + dz * dz > entries[j, 3]:
                    j += 1
                    continue  # outside the bounding cone: most candidates end here
                r = entry_row[j]
                j += 1
                rho2, separation = ellipse_rho2(regions[r, 0], regions[r, 1], regions[r, 2],
                                                regions[r, 3], regions[r, 4], regions[r, 5],
                                                x, y, z)
                if rho2 > regions[r, 6]:
                    continue
                if not counting:
                    # Insertion in order of (distance, row): the lists are short.
                    rho = math.sqrt(rho2)
                    at = base + n
                    while at > base and (out_rho[at - 1] > rho or (
                            out_rho[at - 1] == rho and out_row[at - 1] > r)):
                        out_rho[at] = out_rho[at - 1]
                        out_row[at] = out_row[at - 1]
                        out_sep[at] = out_sep[at - 1]
                        at -= 1
                    out_rho[at] = rho
                    out_row[at] = r
                    out_sep[at] = separation
                n += 1
        if counting:
            out_count[q_slot[i]] = n


@parallel_jit
def containing_kernel(q_h29, q_xyz, q_slot, orders, order_start, keys, entries, entry_row,
                      regions, offsets, counting, out_count, out_row, out_rho, out_sep):
    """Regions whose normalised distance from each query is at most their reach, in two
    passes over the same code (as ``within_kernel``): ``counting`` writes the count of
    query i to ``out_count[q_slot[i]]``; else its regions go to
    ``out_*[offsets[q_slot[i]]:...]``, closest first (ties by region).

    ``keys`` (sorted NUNIQ cell keys, one slice per order of ``orders`` between
    ``order_start[k]`` and ``order_start[k + 1]``), ``entries`` (float32 centre and squared
    bounding chord of the entry's region) and ``entry_row`` come from
    ``region_cells_kernel``; ``regions`` has REGION_FIELDS columns. A query looks up its
    own cell at each order, so a region is met at most once. Callers sort queries by pixel
    (cache locality); ``q_slot`` is each query's place in the caller's order."""
    n_queries = q_h29.shape[0]
    for task in numba.prange((n_queries + QUERIES_PER_TASK - 1) // QUERIES_PER_TASK):
        _containing_task(task * QUERIES_PER_TASK,
                         min(n_queries, (task + 1) * QUERIES_PER_TASK), q_h29, q_xyz, q_slot,
                         orders, order_start, keys, entries, entry_row, regions, offsets,
                         counting, out_count, out_row, out_rho, out_sep)


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
