"""Distance layers of LVK sky maps: the per-pixel distance ansatz of Singer et al. (2016,
ApJL 829, L15), p(r | pixel) = DISTNORM * r**2 * N(r; DISTMU, DISTSIGMA) for r > 0.

With a = mu / sigma and the moments I_n = int_0^inf t**n phi(t - a) dt of the unit normal
(I_2 = (a**2 + 1) Phi(a) + a phi(a), I_3 = (a**3 + 3a) Phi(a) + (a**2 + 2) phi(a)), the
conditional mean distance is sigma * I_3 / I_2.
"""

from __future__ import annotations

import math

import numpy as np

from xmatch.kernels.jit import jit

SQRT_2PI = math.sqrt(2 * math.pi)
#: ligo.skymap's distance grid: this many steps up to DISTANCE_GRID_REACH mean distances.
DISTANCE_GRID_STEPS = 1000
DISTANCE_GRID_REACH = 6.0


@jit
def conditional_mean_distance_kernel(distmu, distsigma, out):
    """``out[i]``: mean distance of pixel i under the ansatz (NaN where mu or sigma is not
    finite or sigma is not positive)."""
    for i in range(distmu.shape[0]):
        mu, sigma = distmu[i], distsigma[i]
        if not (math.isfinite(mu) and math.isfinite(sigma) and sigma > 0):
            out[i] = np.nan
            continue
        a = mu / sigma
        cdf = 0.5 * math.erfc(-a / math.sqrt(2.0))
        pdf = math.exp(-0.5 * a * a) / SQRT_2PI
        second = (a * a + 1) * cdf + a * pdf
        third = (a * a * a + 3 * a) * cdf + (a * a + 2) * pdf
        out[i] = sigma * third / second


@jit
def volume_density_kernel(pixel, distance, probdensity, distmu, distsigma, distnorm,
                          grid_reach, out):
    """``out[j]``: probability per Mpc**3 of row j (in map pixel ``pixel[j]``, at
    ``distance[j]`` Mpc), evaluated as ligo.skymap's crossmatch does: at the point of its
    distance grid (DISTANCE_GRID_STEPS steps up to ``max(grid_reach, distance)``) at or below
    the distance. NaN for rows outside the map or without a positive finite distance."""
    steps = DISTANCE_GRID_STEPS
    for j in range(pixel.shape[0]):
        p, d = pixel[j], distance[j]
        if p < 0 or not (math.isfinite(d) and d > 0):
            out[j] = np.nan
            continue
        step = max(grid_reach, d) / steps
        k = min(int(math.floor(d / step)), steps - 1)  # grid: step * k, k = 1 .. steps - 1
        while k > 0 and step * k > d:
            k -= 1
        while k < steps - 1 and step * (k + 1) <= d:
            k += 1
        r = step * max(k, 1)
        mu, sigma = distmu[p], distsigma[p]
        value = (math.exp(-0.5 * ((r - mu) / sigma) ** 2)
                 * (probdensity[p] * distnorm[p] / (sigma * SQRT_2PI)))
        out[j] = 0.0 if math.isnan(value) else value
