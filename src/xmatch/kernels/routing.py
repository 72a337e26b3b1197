"""Which partitions (or groups of partitions) a cone may touch: the router's fan-out.

Partitions are disjoint HEALPix cells of mixed orders, given as sorted half-open order-29
ranges ``starts[i]:stops[i]``; ``group_of[i]`` names the group (a slice of a cluster, or the
partition itself) partition ``i`` belongs to. A cone is covered by its nine seed pixels
(:func:`xmatch.kernels.healpix.cone_seeds`), so a partition is reported when a seed overlaps
it: never missed, at most one seed pixel (about three radii) too generous near an edge.
"""

from __future__ import annotations

import numpy as np

from xmatch.kernels.healpix import MAX_ORDER, cone_seed_order, cone_seeds, radec_to_pixel
from xmatch.kernels.jit import jit


@jit
def _groups_of_cone(ra_rad, dec_rad, radius_rad, starts, stops, group_of, seen, found):
    """Fill ``found`` with the distinct groups the cone may touch; return how many.
    ``seen`` is an all-False scratch array over the groups, left all-False again."""
    count = 0
    order = cone_seed_order(radius_rad)
    if order < 0:  # wider than any pixel neighbourhood: every partition
        for p in range(len(starts)):
            g = group_of[p]
            if not seen[g]:
                seen[g] = True
                found[count] = g
                count += 1
    else:
        seeds = cone_seeds(radec_to_pixel(MAX_ORDER, ra_rad, dec_rad), order)
        shift = 2 * (MAX_ORDER - order)
        for s in range(9):
            if seeds[s] < 0:
                continue
            first = np.searchsorted(stops, seeds[s] << shift, side="right")
            last = np.searchsorted(starts, (seeds[s] + 1) << shift, side="left")
            for p in range(first, last):
                g = group_of[p]
                if not seen[g]:
                    seen[g] = True
                    found[count] = g
                    count += 1
    for i in range(count):
        seen[found[i]] = False
    return count


@jit
def cone_groups_kernel(ra_rad, dec_rad, radius_rad, starts, stops, group_of, n_groups):
    """For each cone, the groups it may touch, as ``(offsets, groups)``: the groups of cone
    ``i`` are ``groups[offsets[i]:offsets[i + 1]]``."""
    n = len(ra_rad)
    seen = np.zeros(n_groups, dtype=np.bool_)
    found = np.empty(max(n_groups, 1), dtype=np.int64)
    offsets = np.empty(n + 1, dtype=np.int64)
    offsets[0] = 0
    for i in range(n):
        offsets[i + 1] = offsets[i] + _groups_of_cone(ra_rad[i], dec_rad[i], radius_rad[i],
                                                      starts, stops, group_of, seen, found)
    groups = np.empty(offsets[n], dtype=np.int64)
    for i in range(n):
        count = _groups_of_cone(ra_rad[i], dec_rad[i], radius_rad[i], starts, stops, group_of,
                                seen, found)
        groups[offsets[i]:offsets[i] + count] = found[:count]
    return offsets, groups


@jit
def seed_cells_kernel(cells, order, out):
    """The nine seed pixels at ``order`` (``cone_seeds``) of every cell of ``cells`` (pixels
    at ``order``) into ``out`` (nine per cell, -1 where a cell has fewer neighbours): the
    cells that hold every point within a cone radius of the cell, for a radius whose
    ``cone_seed_order`` is ``order`` or deeper."""
    shift = 2 * (MAX_ORDER - order)
    for i in range(len(cells)):
        seeds = cone_seeds(cells[i] << shift, order)
        for s in range(9):
            out[9 * i + s] = seeds[s]
