"""Exact membership tests of region kinds whose cover is only an approximation.

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

from xmatch.kernels.jit import parallel_jit


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
