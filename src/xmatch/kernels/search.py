"""Cone search, batch cross-match and MOC filtering over a sorted HEALPix index.

The index (built by :class:`xmatch.index.SkyIndex`) is a set of parallel arrays over rows
sorted by their order-29 pixel:

* ``h29[n]`` — sorted order-29 pixels;
* ``xyz[n, 3]`` — unit vectors at the index epoch;
* ``cell_start[12 * 4**cell_order + 1]`` — dense offsets: the rows of cell ``c`` at
  ``cell_order`` are ``cell_start[c]:cell_start[c + 1]``;
* optionally ``motion[n, 7]`` and ``epoch0[n]`` (see :mod:`xmatch.kernels.motion`): rows
  are then moved to each query's epoch before the distance test, and the search radius is
  widened by ``drift`` (the most any row can have moved from its indexed position).

A cone is covered by pixels (:func:`xmatch.kernels.healpix.cone_seed_pixels`), each
pixel with more than ``REFINE_ROWS`` rows is split into its children that may touch the
cone, and the rows of the final pixels are tested exactly. Distances are compared as
squared chords; separations are reported from atan2(|a x b|, a . b), exact at every angle.
Ties in distance are broken by index position, so results are deterministic.
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
    cone_seed_pixels,
    pixel_center,
    radec_to_pixel,
    vector_to_pixel,
)
from xmatch.kernels.jit import inline_jit, jit, parallel_jit
from xmatch.kernels.motion import position_at
from xmatch.sky.healpix import MAX_ORDER

#: A covering pixel with more rows than this is split into its children.
REFINE_ROWS = 24

RAD_TO_ARCSEC = 180.0 * 3600.0 / math.pi


# ----------------------------------------------------------------------------- index lookup

@inline_jit
def _lower_bound(values, lo, hi, target):
    """First position in ``values[lo:hi]`` (sorted) whose value is >= target."""
    while lo < hi:
        mid = (lo + hi) >> 1
        if values[mid] < target:
            lo = mid + 1
        else:
            hi = mid
    return lo


@inline_jit
def pixel_rows(order, pixel, h29, cell_order, cell_start):
    """Half-open range of index positions whose order-29 pixel lies in ``pixel``."""
    if order <= cell_order:
        shift = 2 * (cell_order - order)
        return cell_start[pixel << shift], cell_start[(pixel + 1) << shift]
    cell = pixel >> (2 * (order - cell_order))
    lo = cell_start[cell]
    hi = cell_start[cell + 1]
    if lo == hi:
        return lo, lo
    shift29 = 2 * (MAX_ORDER - order)
    first = _lower_bound(h29, lo, hi, pixel << shift29)
    return first, _lower_bound(h29, first, hi, (pixel + 1) << shift29)


STACK_SIZE = 12 + 4 * (MAX_ORDER + 1)

#: Queries handled by one task of a parallel loop (work arrays are made once per task).
QUERIES_PER_TASK = 256

# Helpers below take their work arrays as arguments and return only scalars: returning or
# packing arrays makes numba count references atomically, which cost more than the search.


@inline_jit
def cone_ranges(x, y, z, radius_rad, h29, cell_order, cell_start, ranges, stack_pixels,
                stack_orders, neighbours, seed_cells):
    """Index ranges that hold every row within ``radius_rad`` of unit vector (x, y, z).

    Writes ``ranges[:count]`` as (start, stop) pairs and returns ``count``, or -1 when
    ``ranges`` is too small (the caller grows it and asks again). ``stack_*`` need
    ``STACK_SIZE`` entries, ``neighbours`` 8 and ``seed_cells`` 12.
    """
    n_seeds = cone_seed_pixels(x, y, z, radius_rad, stack_pixels, stack_orders, neighbours)
    capacity = ranges.shape[0]
    # A seed finer than the cell table whose cell holds few rows is replaced by that whole
    # cell: scanning a handful of rows is cheaper than two binary searches per seed.
    count = 0
    n_cells = 0
    depth = 0
    for i in range(n_seeds):
        order = stack_orders[i]
        pixel = stack_pixels[i]
        if order > cell_order:
            cell = pixel >> (2 * (order - cell_order))
            lo = cell_start[cell]
            hi = cell_start[cell + 1]
            if hi - lo <= REFINE_ROWS:
                seen = False
                for c in range(n_cells):
                    seen = seen or seed_cells[c] == cell
                if not seen:
                    seed_cells[n_cells] = cell
                    n_cells += 1
                    if hi > lo:
                        if count == capacity:
                            return -1
                        ranges[count, 0] = lo
                        ranges[count, 1] = hi
                        count += 1
                continue
        stack_pixels[depth] = pixel
        stack_orders[depth] = order
        depth += 1
    while depth > 0:
        depth -= 1
        order = stack_orders[depth]
        pixel = stack_pixels[depth]
        lo, hi = pixel_rows(order, pixel, h29, cell_order, cell_start)
        if lo == hi:
            continue
        if hi - lo > REFINE_ROWS and order < MAX_ORDER:
            child_order = order + 1
            reach = chord2_of_angle(radius_rad + MAX_PIXEL_RADIUS[child_order] + EDGE_MARGIN_RAD)
            for child in range(4 * pixel, 4 * pixel + 4):
                cx, cy, cz = pixel_center(child_order, child)
                if chord2(cx, cy, cz, x, y, z) <= reach:
                    stack_pixels[depth] = child
                    stack_orders[depth] = child_order
                    depth += 1
            continue
        if count == capacity:
            return -1
        ranges[count, 0] = lo
        ranges[count, 1] = hi
        count += 1
    return count


@inline_jit
def _row_vector(j, xyz, motion, epoch0, has_motion, epoch):
    if has_motion and not math.isnan(epoch):
        return position_at(motion, j, epoch - epoch0[j])
    return xyz[j, 0], xyz[j, 1], xyz[j, 2]


@jit
def separation_and_angle(qx, qy, qz, ra_rad, x, y, z):
    """Separation (arcsec) and position angle (deg, east of north) of (x, y, z) seen from
    the query at unit vector (qx, qy, qz) with right ascension ``ra_rad``."""
    cx = qy * z - qz * y
    cy = qz * x - qx * z
    cz = qx * y - qy * x
    separation = math.atan2(math.sqrt(cx * cx + cy * cy + cz * cz), qx * x + qy * y + qz * z)
    sin_a = math.sin(ra_rad)
    cos_a = math.cos(ra_rad)
    cos_d = math.sqrt(qx * qx + qy * qy)
    east = -sin_a * x + cos_a * y
    north = -qz * (cos_a * x + sin_a * y) + cos_d * z
    angle = math.degrees(math.atan2(east, north))
    if angle < 0.0:
        angle += 360.0
    return separation * RAD_TO_ARCSEC, angle


@jit
def _query_vector(ra_rad, dec_rad):
    cos_d = math.cos(dec_rad)
    return cos_d * math.cos(ra_rad), cos_d * math.sin(ra_rad), math.sin(dec_rad)


# ----------------------------------------------------------------------------- k nearest

@jit
def _insert_best(best_d, best_j, kept, k, d, j):
    """Insert candidate (d, j) into the sorted top-k lists; returns the new length."""
    if kept == k and (d > best_d[k - 1] or (d == best_d[k - 1] and j > best_j[k - 1])):
        return kept
    pos = kept if kept < k else k - 1
    while pos > 0 and (best_d[pos - 1] > d or (best_d[pos - 1] == d and best_j[pos - 1] > j)):
        best_d[pos] = best_d[pos - 1]
        best_j[pos] = best_j[pos - 1]
        pos -= 1
    best_d[pos] = d
    best_j[pos] = j
    return kept + 1 if kept < k else k


@inline_jit
def _nearest_one(qx, qy, qz, max_radius, epoch, drift, k, radius, h29, xyz, cell_order,
                 cell_start, motion, epoch0, has_motion, best_d, best_j, ranges, stack_pixels,
                 stack_orders, neighbours, seed_cells):
    """Fill ``best_*[:kept]`` with the k nearest rows within ``max_radius`` of one query,
    searching from ``radius`` outwards; returns ``kept`` (-1: ``ranges`` too small)."""
    radius = min(radius, max_radius)
    while True:
        limit = chord2_of_angle(radius)
        count = cone_ranges(qx, qy, qz, radius + drift + EDGE_MARGIN_RAD, h29, cell_order,
                            cell_start, ranges, stack_pixels, stack_orders, neighbours,
                            seed_cells)
        if count < 0:
            return -1
        kept = 0
        for r in range(count):
            for j in range(ranges[r, 0], ranges[r, 1]):
                x, y, z = _row_vector(j, xyz, motion, epoch0, has_motion, epoch)
                d = chord2(qx, qy, qz, x, y, z)
                if d <= limit:
                    kept = _insert_best(best_d, best_j, kept, k, d, j)
        if kept == k or radius >= max_radius:
            return kept
        radius = min(2.0 * radius, max_radius)


@parallel_jit
def nearest_kernel(q_ra, q_dec, q_radius, q_epoch, q_drift, k,
                   h29, xyz, cell_order, cell_start, motion, epoch0, has_motion,
                   out_pos, out_sep, out_pa):
    """The ``k`` nearest rows within ``q_radius[i]`` (radians) of each query.

    Callers sort the queries by pixel, for cache locality. Each query first searches the
    radius expected to hold 4k rows at the density of its index cell, and doubles it until
    it holds ``k`` rows or reaches the requested radius: the rows found within a radius are
    then certainly the nearest. Outputs ``out_pos[i, :]`` (index
    positions, -1 where fewer than k), separations in arcsec, position angles in degrees.
    """
    n_queries = q_ra.shape[0]
    cell_area = 4.0 * math.pi / (cell_start.shape[0] - 1)
    for task in numba.prange((n_queries + QUERIES_PER_TASK - 1) // QUERIES_PER_TASK):
        stack_pixels = np.empty(STACK_SIZE, dtype=np.int64)
        stack_orders = np.empty(STACK_SIZE, dtype=np.int64)
        neighbours = np.empty(8, dtype=np.int64)
        seed_cells = np.empty(12, dtype=np.int64)
        ranges = np.empty((256, 2), dtype=np.int64)
        best_d = np.empty(k, dtype=np.float64)
        best_j = np.empty(k, dtype=np.int64)
        for i in range(task * QUERIES_PER_TASK, min(n_queries, (task + 1) * QUERIES_PER_TASK)):
            qx, qy, qz = _query_vector(q_ra[i], q_dec[i])
            cell = vector_to_pixel(cell_order, qx, qy, qz)
            in_cell = max(cell_start[cell + 1] - cell_start[cell], 1)
            start_radius = math.sqrt(4.0 * k * cell_area / (math.pi * in_cell))
            while True:
                kept = _nearest_one(qx, qy, qz, q_radius[i], q_epoch[i], q_drift[i], k,
                                    start_radius, h29, xyz, cell_order, cell_start, motion,
                                    epoch0, has_motion, best_d, best_j, ranges, stack_pixels,
                                    stack_orders, neighbours, seed_cells)
                if kept >= 0:
                    break
                ranges = np.empty((2 * ranges.shape[0], 2), dtype=np.int64)
            for m in range(k):
                if m < kept:
                    j = best_j[m]
                    x, y, z = _row_vector(j, xyz, motion, epoch0, has_motion, q_epoch[i])
                    out_pos[i, m] = j
                    out_sep[i, m], out_pa[i, m] = separation_and_angle(qx, qy, qz, q_ra[i],
                                                                       x, y, z)
                else:
                    out_pos[i, m] = -1
                    out_sep[i, m] = np.nan
                    out_pa[i, m] = np.nan


# ----------------------------------------------------------------------------- all within

@inline_jit
def _within_one(qx, qy, qz, radius, epoch, drift, h29, xyz, cell_order, cell_start, motion,
                epoch0, has_motion, found_d, found_j, ranges, stack_pixels, stack_orders,
                neighbours, seed_cells):
    """Collect every row within ``radius`` of one query into ``found_*``; returns how many,
    -1 when ``ranges`` is too small, or -2 - n when ``found_*`` need room for n rows."""
    threshold = chord2_of_angle(radius)
    count = cone_ranges(qx, qy, qz, radius + drift + EDGE_MARGIN_RAD, h29, cell_order,
                        cell_start, ranges, stack_pixels, stack_orders, neighbours, seed_cells)
    if count < 0:
        return -1
    capacity = found_d.shape[0]
    found = 0
    for r in range(count):
        for j in range(ranges[r, 0], ranges[r, 1]):
            x, y, z = _row_vector(j, xyz, motion, epoch0, has_motion, epoch)
            d = chord2(qx, qy, qz, x, y, z)
            if d <= threshold:
                if found < capacity:
                    found_d[found] = d
                    found_j[found] = j
                found += 1
    return found if found <= capacity else -2 - found


@parallel_jit
def within_kernel(q_ra, q_dec, q_radius, q_epoch, q_drift, offsets, counting,
                  h29, xyz, cell_order, cell_start, motion, epoch0, has_motion,
                  out_count, out_query, out_pos, out_sep, out_pa):
    """Rows within each query's radius, in two passes over the same code.

    ``counting``: write the number found for query i to ``out_count[i]``. Otherwise write
    the closest ``offsets[i + 1] - offsets[i]`` of them, closest first (equal distances
    by index position), to ``out_*[offsets[i]:offsets[i + 1]]``. Callers sort the queries
    by pixel, for cache locality.
    """
    n_queries = q_ra.shape[0]
    for task in numba.prange((n_queries + QUERIES_PER_TASK - 1) // QUERIES_PER_TASK):
        stack_pixels = np.empty(STACK_SIZE, dtype=np.int64)
        stack_orders = np.empty(STACK_SIZE, dtype=np.int64)
        neighbours = np.empty(8, dtype=np.int64)
        seed_cells = np.empty(12, dtype=np.int64)
        ranges = np.empty((256, 2), dtype=np.int64)
        found_d = np.empty(256, dtype=np.float64)
        found_j = np.empty(256, dtype=np.int64)
        for i in range(task * QUERIES_PER_TASK, min(n_queries, (task + 1) * QUERIES_PER_TASK)):
            if not counting and offsets[i + 1] == offsets[i]:
                continue
            qx, qy, qz = _query_vector(q_ra[i], q_dec[i])
            while True:
                found = _within_one(qx, qy, qz, q_radius[i], q_epoch[i], q_drift[i], h29, xyz,
                                    cell_order, cell_start, motion, epoch0, has_motion,
                                    found_d, found_j, ranges, stack_pixels, stack_orders,
                                    neighbours, seed_cells)
                if found >= 0:
                    break
                if found == -1:
                    ranges = np.empty((2 * ranges.shape[0], 2), dtype=np.int64)
                else:
                    found_d = np.empty(-found - 2, dtype=np.float64)
                    found_j = np.empty(-found - 2, dtype=np.int64)
            if counting:
                out_count[i] = found
                continue
            # Closest first, equal distances by index position: a stable sort by distance
            # of the candidates put in position order first.
            by_position = np.argsort(found_j[:found], kind="mergesort")
            by_distance = np.argsort(found_d[:found][by_position], kind="mergesort")
            base = offsets[i]
            for m in range(offsets[i + 1] - base):
                j = found_j[by_position[by_distance[m]]]
                x, y, z = _row_vector(j, xyz, motion, epoch0, has_motion, q_epoch[i])
                out_query[base + m] = i
                out_pos[base + m] = j
                out_sep[base + m], out_pa[base + m] = separation_and_angle(
                    qx, qy, qz, q_ra[i], x, y, z)


# ----------------------------------------------------------------------------- pixels, MOCs

@parallel_jit
def radec_to_pixel_kernel(order, ra_rad, dec_rad, out):
    for i in numba.prange(ra_rad.shape[0]):
        out[i] = radec_to_pixel(order, ra_rad[i], dec_rad[i])


@parallel_jit
def vector_to_pixel_kernel(order, xyz, out):
    for i in numba.prange(xyz.shape[0]):
        out[i] = vector_to_pixel(order, xyz[i, 0], xyz[i, 1], xyz[i, 2])


@jit
def pixel_order_kernel(pixels, npix):
    """Permutation sorting ``pixels`` (all < npix) ascending, stable: a counting sort."""
    counts = np.zeros(npix + 1, dtype=np.int64)
    for p in pixels:
        counts[p + 1] += 1
    for c in range(npix):
        counts[c + 1] += counts[c]
    order = np.empty(pixels.shape[0], dtype=np.int64)
    for i in range(pixels.shape[0]):
        order[counts[pixels[i]]] = i
        counts[pixels[i]] += 1
    return order


@parallel_jit
def in_ranges_kernel(pixels29, starts, stops, out):
    """``out[i]`` is True where ``pixels29[i]`` lies in one of the sorted, disjoint
    half-open ranges [starts, stops)."""
    for i in numba.prange(pixels29.shape[0]):
        r = np.searchsorted(starts, pixels29[i], side="right") - 1
        out[i] = r >= 0 and pixels29[i] < stops[r]


@jit
def sorted_rows_in_ranges_kernel(h29, starts, stops):
    """Positions of the sorted pixels ``h29`` that lie in the ranges, ascending."""
    first = np.searchsorted(h29, starts)
    last = np.searchsorted(h29, stops)
    total = 0
    for r in range(starts.shape[0]):
        total += last[r] - first[r]
    out = np.empty(total, dtype=np.int64)
    at = 0
    for r in range(starts.shape[0]):
        for j in range(first[r], last[r]):
            out[at] = j
            at += 1
    return out


@jit
def cell_offsets_kernel(h29, cell_order, out):
    """``out[c]`` = first position whose pixel at ``cell_order`` is >= c (h29 sorted)."""
    shift = 2 * (MAX_ORDER - cell_order)
    n_cells = out.shape[0] - 1
    j = 0
    n = h29.shape[0]
    for c in range(n_cells + 1):
        while j < n and (h29[j] >> shift) < c:
            j += 1
        out[c] = j


@parallel_jit
def unit_vectors_kernel(ra_rad, dec_rad, out):
    for i in numba.prange(ra_rad.shape[0]):
        x, y, z = _query_vector(ra_rad[i], dec_rad[i])
        out[i, 0] = x
        out[i, 1] = y
        out[i, 2] = z
