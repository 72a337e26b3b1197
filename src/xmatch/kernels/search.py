"""Cone search, batch cross-match and MOC filtering over a sorted HEALPix index.

The index (built by :class:`xmatch.index.SkyIndex`) is a set of parallel arrays over rows
sorted by their order-29 pixel:

* ``h29[n]`` — sorted order-29 pixels;
* the positions, in one of two forms: ``ra_deg[n]``, ``dec_deg[n]`` — the catalog's own
  right ascensions and declinations (degrees; usually the payload's columns themselves,
  not copies), whose unit vectors are computed as rows are tested, or ``xyz[n, 3]`` — unit
  vectors (an index moved to another epoch); the other form is an empty array;
* ``cell_start[12 * 4**cell_order + 1]`` — dense offsets: the rows of cell ``c`` at
  ``cell_order`` are ``cell_start[c]:cell_start[c + 1]``;
* optionally ``motion[n, 7]`` and ``epoch0[n]`` (see :mod:`xmatch.kernels.motion`): rows
  are then moved to each query's epoch before the distance test, and the search radius is
  widened by ``drift`` (the most any row can have moved from its indexed position).

A cone is covered by pixels (:func:`xmatch.kernels.healpix.cone_seeds`), each
pixel with more than ``REFINE_ROWS`` rows is split into its children that may touch the
cone, and the rows of the final pixels are tested exactly. Rows given by ``ra_deg``,
``dec_deg`` whose declination alone puts them outside the radius are skipped before their
unit vector is computed (``dec_band``). Distances are compared as squared chords;
separations are reported from 2 asin(chord / 2) below 90 deg and from atan2(|a x b|, a . b)
above, exact at every angle. Ties in distance are broken by index position, so results are
deterministic.
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
    neighbourhood_inside,
    pixel_center,
    radec_to_pixel,
    trig_to_pixel,
    vector_to_pixel,
)
from xmatch.kernels.jit import jit, jit_inline, parallel_jit
from xmatch.kernels.motion import position_at
from xmatch.sky.healpix import MAX_ORDER

#: A covering pixel with more rows than this is split into its children.
REFINE_ROWS = 24

RAD_TO_ARCSEC = 180.0 * 3600.0 / math.pi
#: The factor of ``numpy.radians`` (bit for bit: a row's unit vector computed here equals the
#: one computed with numpy from the same degrees).
DEG_TO_RAD = math.pi / 180.0

#: A row whose declination differs from the query's by more than the radius plus this
#: margin is outside the cone (the separation is at least the difference in declination).
#: The margin is far above the rounding of either test (~1e-15 rad); the band is used for
#: radii below DEC_BAND_MAX_RAD only, where the chord test's rounding stays that small.
DEC_BAND_MARGIN_RAD = 1e-12
DEC_BAND_MAX_RAD = 1.0


# ----------------------------------------------------------------------------- index lookup

STACK_SIZE = 12 + 4 * (MAX_ORDER + 1)

#: Queries handled by one task of a parallel loop. Work arrays are made once per task, and
#: each task runs in a serial function: the parallel loop body is a single call, which
#: keeps numba's loop transformations away from the search code (they miscompiled it).
QUERIES_PER_TASK = 256

# Reference counting: numba counts references (with atomic instructions) around calls that
# pass arrays to functions LLVM does not inline, which cost more than the search itself
# when done per row or per seed. So the large helper that takes arrays (``cone_ranges``)
# runs once per query, seeds and neighbours travel as tuples, and the per-row helper
# (``row_at``) is small enough to be inlined.


@jit
def _lower_bound(values, lo, hi, target):
    """First position in ``values[lo:hi]`` (sorted) whose value is >= target."""
    while lo < hi:
        mid = (lo + hi) >> 1
        if values[mid] < target:
            lo = mid + 1
        else:
            hi = mid
    return lo


@jit_inline
def cone_ranges(x, y, z, centre29, radius_rad, h29, cell_order, cell_start, ranges, stack):
    """Index ranges that hold every row within ``radius_rad`` of unit vector (x, y, z),
    whose order-29 pixel is ``centre29``.

    Writes ``ranges[:count]`` as (start, stop) pairs and returns ``count``; a count above
    ``len(ranges)`` means it was too small (the caller grows it and asks again). ``stack``
    is work space of shape ``(STACK_SIZE + 9, 2)``: (pixel, order) pairs still to visit,
    then the index cells already taken whole.
    """
    capacity = ranges.shape[0]
    count = 0
    depth = 0
    seed_order = cone_seed_order(radius_rad)
    if seed_order < 0:
        for face in range(12):
            stack[depth, 0] = face
            stack[depth, 1] = 0
            depth += 1
    elif seed_order > cell_order and neighbourhood_inside(
            seed_order, centre29 >> (2 * (MAX_ORDER - seed_order)), cell_order) and (
            cell_start[(centre29 >> (2 * (MAX_ORDER - cell_order))) + 1]
            - cell_start[centre29 >> (2 * (MAX_ORDER - cell_order))] <= REFINE_ROWS):
        # The common case for small cones: all nine seeds lie in the query's own index
        # cell, which holds few rows: that cell is the whole answer.
        cell = centre29 >> (2 * (MAX_ORDER - cell_order))
        if cell_start[cell + 1] > cell_start[cell]:
            if capacity > 0:
                ranges[0, 0] = cell_start[cell]
                ranges[0, 1] = cell_start[cell + 1]
            count = 1
    else:
        seeds = cone_seeds(centre29, seed_order)
        n_cells = 0
        for s in range(9):
            pixel = seeds[s]
            if pixel < 0:
                continue
            if seed_order > cell_order:
                # A seed finer than the cell table whose cell holds few rows is replaced by
                # the whole cell: scanning a few rows costs less than two binary searches.
                cell = pixel >> (2 * (seed_order - cell_order))
                lo = cell_start[cell]
                hi = cell_start[cell + 1]
                if hi - lo <= REFINE_ROWS:
                    seen = False
                    for c in range(n_cells):
                        seen = seen or stack[STACK_SIZE + c, 0] == cell
                    if not seen:
                        stack[STACK_SIZE + n_cells, 0] = cell
                        n_cells += 1
                        if hi > lo:
                            if count < capacity:
                                ranges[count, 0] = lo
                                ranges[count, 1] = hi
                            count += 1
                    continue
            stack[depth, 0] = pixel
            stack[depth, 1] = seed_order
            depth += 1
    while depth > 0:
        depth -= 1
        pixel = stack[depth, 0]
        order = stack[depth, 1]
        # The index rows of this pixel: straight from the cell table, or by binary search
        # inside its cell when the pixel is finer than the cells.
        if order <= cell_order:
            shift = 2 * (cell_order - order)
            lo = cell_start[pixel << shift]
            hi = cell_start[(pixel + 1) << shift]
        else:
            cell = pixel >> (2 * (order - cell_order))
            shift29 = 2 * (MAX_ORDER - order)
            lo = _lower_bound(h29, cell_start[cell], cell_start[cell + 1], pixel << shift29)
            hi = _lower_bound(h29, lo, cell_start[cell + 1], (pixel + 1) << shift29)
        if lo == hi:
            continue
        if hi - lo > REFINE_ROWS and order < MAX_ORDER:
            child_order = order + 1
            reach = chord2_of_angle(radius_rad + MAX_PIXEL_RADIUS[child_order] + EDGE_MARGIN_RAD)
            for child in range(4 * pixel, 4 * pixel + 4):
                cx, cy, cz = pixel_center(child_order, child)
                if chord2(cx, cy, cz, x, y, z) <= reach:
                    stack[depth, 0] = child
                    stack[depth, 1] = child_order
                    depth += 1
            continue
        if count < capacity:
            ranges[count, 0] = lo
            ranges[count, 1] = hi
        count += 1
    return count


@jit
def separation_and_angle(qx, qy, qz, sin_a, cos_a, x, y, z):
    """Separation (arcsec) and position angle (deg, east of north) of (x, y, z) seen from
    the query at unit vector (qx, qy, qz) with right ascension of sine ``sin_a`` and cosine
    ``cos_a`` (needed at the poles, where the vector does not define it)."""
    d2 = chord2(qx, qy, qz, x, y, z)
    if d2 < 2.0:  # below 90 deg the chord form is exact and cheaper
        separation = 2.0 * math.asin(0.5 * math.sqrt(d2))
    else:  # near 180 deg asin loses precision; atan2(|a x b|, a . b) does not
        cx = qy * z - qz * y
        cy = qz * x - qx * z
        cz = qx * y - qy * x
        separation = math.atan2(math.sqrt(cx * cx + cy * cy + cz * cz),
                                qx * x + qy * y + qz * z)
    cos_d = math.sqrt(qx * qx + qy * qy)
    east = -sin_a * x + cos_a * y
    north = -qz * (cos_a * x + sin_a * y) + cos_d * z
    angle = math.degrees(math.atan2(east, north))
    if angle < 0.0:
        angle += 360.0
    return separation * RAD_TO_ARCSEC, angle


@jit
def _query_vector(ra_rad, dec_rad):
    """Unit vector, sin(ra), cos(ra) and cos(dec) of a query."""
    cos_d = math.cos(dec_rad)
    sin_a = math.sin(ra_rad)
    cos_a = math.cos(ra_rad)
    return cos_d * cos_a, cos_d * sin_a, math.sin(dec_rad), sin_a, cos_a, cos_d


@jit
def unit_vector(ra_rad, dec_rad):
    """Unit vector of a position (radians): the same operations as ``_query_vector``, so
    the same bits."""
    cos_d = math.cos(dec_rad)
    return cos_d * math.cos(ra_rad), cos_d * math.sin(ra_rad), math.sin(dec_rad)


@jit_inline
def row_at(j, xyz, ra_deg, dec_deg, motion, epoch0, moving, epoch):
    """Unit vector of index row ``j`` for a query: moved to the query's ``epoch`` when
    ``moving``, else from the index's unit vectors, or computed from its right ascension and
    declination when it holds those instead (``xyz`` empty). Inlined by numba: called per
    row with arrays, it would otherwise add reference counting to each call (measured)."""
    if moving:
        return position_at(motion[j, 0], motion[j, 1], motion[j, 2], motion[j, 3],
                           motion[j, 4], motion[j, 5], motion[j, 6], epoch - epoch0[j])
    if xyz.shape[0] == 0:
        return unit_vector(ra_deg[j] * DEG_TO_RAD, dec_deg[j] * DEG_TO_RAD)
    return xyz[j, 0], xyz[j, 1], xyz[j, 2]


@jit
def dec_band(radius_rad, xyz):
    """Half-width (radians) of the declination band around a query outside which no row
    can be within ``radius_rad``; -1 where the band is not used (unit vectors held, or a
    radius too wide for the band to be safe). Callers do not use it for moved rows."""
    if xyz.shape[0] > 0 or radius_rad >= DEC_BAND_MAX_RAD:
        return -1.0
    return radius_rad + DEC_BAND_MARGIN_RAD


# ----------------------------------------------------------------------------- k nearest

@jit
def _nearest_block(first, last, q_ra, q_dec, q_radius, q_epoch, q_drift, k, h29, xyz,
                   ra_deg, dec_deg, cell_order, cell_start, motion, epoch0, has_motion, out_pos,
                   out_sep, out_pa, ranges, stack, best_d, best_j):
    """Answer queries ``first:last`` in turn; returns the index of the first query that
    needs a larger ``ranges`` (``last`` when all are done).

    Each query first searches the radius expected to hold 4k rows at the density of its
    index cell, and doubles it until it holds ``k`` rows or reaches the requested radius:
    the rows found within a radius are then certainly the nearest. ``best_*`` hold the
    current k best as (squared chord, index position), sorted; ties go to the lower
    position.
    """
    cell_area = 4.0 * math.pi / (cell_start.shape[0] - 1)
    last_radius = -1.0
    limit = 0.0
    band = -1.0
    for i in range(first, last):
        qx, qy, qz, sin_a, cos_a, cos_d = _query_vector(q_ra[i], q_dec[i])
        centre29 = trig_to_pixel(MAX_ORDER, q_ra[i], qz, cos_d)
        epoch = q_epoch[i]
        moving = has_motion and not math.isnan(epoch)
        cell = centre29 >> (2 * (MAX_ORDER - cell_order))
        in_cell = max(cell_start[cell + 1] - cell_start[cell], 1)
        radius = min(math.sqrt(4.0 * k * cell_area / (math.pi * in_cell)), q_radius[i])
        while True:
            if radius != last_radius:  # most queries share a radius: skip the sine
                last_radius = radius
                limit = chord2_of_angle(radius)
                band = dec_band(radius, xyz)
            count = cone_ranges(qx, qy, qz, centre29, radius + q_drift[i] + EDGE_MARGIN_RAD,
                                h29, cell_order, cell_start, ranges, stack)
            if count > ranges.shape[0]:
                return i
            kept = 0
            for r in range(count):
                for j in range(ranges[r, 0], ranges[r, 1]):
                    if band >= 0.0 and not moving and abs(
                            dec_deg[j] * DEG_TO_RAD - q_dec[i]) > band:
                        continue
                    x, y, z = row_at(j, xyz, ra_deg, dec_deg, motion, epoch0, moving, epoch)
                    d = chord2(qx, qy, qz, x, y, z)
                    if d > limit or (kept == k and (d > best_d[k - 1] or (
                            d == best_d[k - 1] and j > best_j[k - 1]))):
                        continue
                    at = kept if kept < k else k - 1  # insertion into the sorted k best
                    while at > 0 and (best_d[at - 1] > d or (best_d[at - 1] == d
                                                             and best_j[at - 1] > j)):
                        best_d[at] = best_d[at - 1]
                        best_j[at] = best_j[at - 1]
                        at -= 1
                    best_d[at] = d
                    best_j[at] = j
                    kept = min(kept + 1, k)
            if kept == k or radius >= q_radius[i]:
                break
            radius = min(2.0 * radius, q_radius[i])
        for m in range(k):
            if m < kept:
                j = best_j[m]
                x, y, z = row_at(j, xyz, ra_deg, dec_deg, motion, epoch0, moving, epoch)
                out_pos[i, m] = j
                out_sep[i, m], out_pa[i, m] = separation_and_angle(qx, qy, qz, sin_a, cos_a,
                                                                   x, y, z)
            else:
                out_pos[i, m] = -1
                out_sep[i, m] = np.nan
                out_pa[i, m] = np.nan
    return last


@jit
def _nearest_task(first, last, q_ra, q_dec, q_radius, q_epoch, q_drift, k, h29, xyz,
                  ra_deg, dec_deg, cell_order, cell_start, motion, epoch0, has_motion, out_pos,
                  out_sep, out_pa):
    """``nearest_kernel`` for queries ``first:last`` (one task, run serially)."""
    stack = np.empty((STACK_SIZE + 9, 2), dtype=np.int64)
    best_d = np.empty(k, dtype=np.float64)
    best_j = np.empty(k, dtype=np.int64)
    size = 256
    while first < last:
        first = _nearest_block(first, last, q_ra, q_dec, q_radius, q_epoch, q_drift, k, h29,
                               xyz, ra_deg, dec_deg, cell_order, cell_start, motion, epoch0,
                               has_motion, out_pos, out_sep, out_pa,
                               np.empty((size, 2), dtype=np.int64), stack, best_d, best_j)
        size *= 2


@parallel_jit
def nearest_kernel(q_ra, q_dec, q_radius, q_epoch, q_drift, k,
                   h29, xyz, ra_deg, dec_deg, cell_order, cell_start, motion, epoch0, has_motion,
                   out_pos, out_sep, out_pa):
    """The ``k`` nearest rows within ``q_radius[i]`` (radians) of each query, rows with
    proper motion moved to ``q_epoch[i]`` (NaN: not moved) and searched ``q_drift[i]``
    wider. Outputs ``out_pos[i, :]`` (index positions, -1 where fewer than k), separations
    in arcsec, position angles in degrees. Callers sort queries by pixel (cache locality).
    """
    n_queries = q_ra.shape[0]
    for task in numba.prange((n_queries + QUERIES_PER_TASK - 1) // QUERIES_PER_TASK):
        _nearest_task(task * QUERIES_PER_TASK,
                      min(n_queries, (task + 1) * QUERIES_PER_TASK), q_ra, q_dec, q_radius,
                      q_epoch, q_drift, k, h29, xyz, ra_deg, dec_deg, cell_order, cell_start,
                      motion, epoch0, has_motion, out_pos, out_sep, out_pa)


# ----------------------------------------------------------------------------- all within

@jit
def _within_block(first, last, q_ra, q_dec, q_radius, q_epoch, q_drift, offsets, counting,
                  h29, xyz, ra_deg, dec_deg, cell_order, cell_start, motion, epoch0, has_motion,
                  out_count, out_query, out_pos, out_sep, out_pa, ranges, stack, found_d,
                  found_j, found_v):
    """Answer queries ``first:last`` in turn (see ``within_kernel``). Returns ``last``
    when done, else ``i`` for query i that needs a larger ``ranges`` (``need`` = -1) or
    ``found_*`` with room for ``need`` rows, as ``(i, need)``. ``found_v`` keeps the unit
    vectors of the rows found (writing pass), which are not computed twice."""
    capacity = found_d.shape[0]
    last_radius = -1.0
    threshold = 0.0
    band = -1.0
    for i in range(first, last):
        if not counting and offsets[i + 1] == offsets[i]:
            continue
        qx, qy, qz, sin_a, cos_a, cos_d = _query_vector(q_ra[i], q_dec[i])
        epoch = q_epoch[i]
        moving = has_motion and not math.isnan(epoch)
        if q_radius[i] != last_radius:  # most queries share a radius: skip the sine
            last_radius = q_radius[i]
            threshold = chord2_of_angle(last_radius)
            band = dec_band(last_radius, xyz)
        count = cone_ranges(qx, qy, qz, trig_to_pixel(MAX_ORDER, q_ra[i], qz, cos_d),
                            q_radius[i] + q_drift[i] + EDGE_MARGIN_RAD, h29, cell_order,
                            cell_start, ranges, stack)
        if count > ranges.shape[0]:
            return i, -1
        found = 0
        for r in range(count):
            for j in range(ranges[r, 0], ranges[r, 1]):
                if band >= 0.0 and not moving and abs(
                        dec_deg[j] * DEG_TO_RAD - q_dec[i]) > band:
                    continue
                x, y, z = row_at(j, xyz, ra_deg, dec_deg, motion, epoch0, moving, epoch)
                d = chord2(qx, qy, qz, x, y, z)
                if d <= threshold:
                    if found < capacity:
                        found_d[found] = d
                        found_j[found] = j
                        if not counting:
                            found_v[found, 0] = x
                            found_v[found, 1] = y
                            found_v[found, 2] = z
                    found += 1
        if counting:
            out_count[i] = found
            continue
        if found > capacity:
            return i, found
        # Closest first, equal distances by index position: a stable sort by distance of
        # the candidates put in position order first.
        by_position = np.argsort(found_j[:found], kind="mergesort")
        by_distance = np.argsort(found_d[:found][by_position], kind="mergesort")
        base = offsets[i]
        for m in range(offsets[i + 1] - base):
            at = by_position[by_distance[m]]
            j = found_j[at]
            x, y, z = found_v[at, 0], found_v[at, 1], found_v[at, 2]
            out_query[base + m] = i
            out_pos[base + m] = j
            out_sep[base + m], out_pa[base + m] = separation_and_angle(qx, qy, qz, sin_a,
                                                                       cos_a, x, y, z)
    return last, 0


@jit
def _within_task(first, last, q_ra, q_dec, q_radius, q_epoch, q_drift, offsets, counting,
                 h29, xyz, ra_deg, dec_deg, cell_order, cell_start, motion, epoch0, has_motion,
                 out_count, out_query, out_pos, out_sep, out_pa):
    """``within_kernel`` for queries ``first:last`` (one task, run serially)."""
    stack = np.empty((STACK_SIZE + 9, 2), dtype=np.int64)
    ranges_size = 256
    found_size = 256
    while first < last:
        first, need = _within_block(
            first, last, q_ra, q_dec, q_radius, q_epoch, q_drift, offsets, counting, h29, xyz,
            ra_deg, dec_deg, cell_order, cell_start, motion, epoch0, has_motion, out_count,
            out_query, out_pos, out_sep, out_pa, np.empty((ranges_size, 2), dtype=np.int64),
            stack, np.empty(found_size, dtype=np.float64), np.empty(found_size, dtype=np.int64),
            np.empty((found_size, 3), dtype=np.float64))
        if need < 0:
            ranges_size *= 2
        else:
            found_size = max(found_size, need)


@parallel_jit
def within_kernel(q_ra, q_dec, q_radius, q_epoch, q_drift, offsets, counting,
                  h29, xyz, ra_deg, dec_deg, cell_order, cell_start, motion, epoch0, has_motion,
                  out_count, out_query, out_pos, out_sep, out_pa):
    """Rows within each query's radius, in two passes over the same code.

    ``counting``: write the number found for query i to ``out_count[i]``. Otherwise write
    the closest ``offsets[i + 1] - offsets[i]`` of them, closest first (equal distances
    by index position), to ``out_*[offsets[i]:offsets[i + 1]]``. Epochs and drifts as for
    ``nearest_kernel``; callers sort queries by pixel (cache locality).
    """
    n_queries = q_ra.shape[0]
    for task in numba.prange((n_queries + QUERIES_PER_TASK - 1) // QUERIES_PER_TASK):
        _within_task(task * QUERIES_PER_TASK, min(n_queries, (task + 1) * QUERIES_PER_TASK),
                     q_ra, q_dec, q_radius, q_epoch, q_drift, offsets, counting, h29, xyz,
                     ra_deg, dec_deg, cell_order, cell_start, motion, epoch0, has_motion,
                     out_count, out_query, out_pos, out_sep, out_pa)


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
def positions_valid_kernel(ra_deg, dec_deg):
    """True when every right ascension is in [0, 360] and every declination in [-90, 90]
    (NaN and infinities are not): ``coords.check_radec`` without its temporary arrays."""
    for i in range(ra_deg.shape[0]):
        if not (0.0 <= ra_deg[i] <= 360.0 and -90.0 <= dec_deg[i] <= 90.0):
            return False
    return True


@jit
def is_sorted_kernel(values):
    """True when ``values`` never decrease."""
    for i in range(1, values.shape[0]):
        if values[i] < values[i - 1]:
            return False
    return True


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


@jit
def unit_vectors_at_kernel(ra_deg, dec_deg, positions, out):
    """``out[i]``: unit vector of the row at ``positions[i]`` of ``ra_deg``, ``dec_deg``
    (the bits of ``row_at``). Serial: it runs in request threads, side by side."""
    for i in range(positions.shape[0]):
        j = positions[i]
        out[i, 0], out[i, 1], out[i, 2] = unit_vector(ra_deg[j] * DEG_TO_RAD,
                                                      dec_deg[j] * DEG_TO_RAD)


@parallel_jit
def unit_vectors_kernel(ra_rad, dec_rad, out):
    for i in numba.prange(ra_rad.shape[0]):
        x, y, z, _, _, _ = _query_vector(ra_rad[i], dec_rad[i])
        out[i, 0] = x
        out[i, 1] = y
        out[i, 2] = z
