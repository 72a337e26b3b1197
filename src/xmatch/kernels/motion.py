"""Epoch propagation of positions with proper motion, parallax and radial velocity.

Model: rigorous uniform space motion (ESA 1997, *The Hipparcos and Tycho Catalogues*,
Vol. 1, §1.5.5; the model the Gaia DR3 documentation gives for propagating its astrometry).
A star at unit vector r0 with proper motion vector mu (tangent to the sphere, |mu| the
total proper motion) and radial proper motion mu_r = v_r * parallax / A moves to

    r(tau) = [r0 (1 + mu_r tau) + mu tau] / sqrt(1 + 2 mu_r tau + (mu^2 + mu_r^2) tau^2)

after tau Julian years. Without a usable parallax (null, zero or negative) or radial
velocity, mu_r = 0 and the star moves along a great circle with its angle growing as
atan(mu tau). A null proper motion means no motion. Light time is neglected, as in the
Hipparcos and Gaia catalogues; erfa's ``pmsafe`` (astropy ``apply_space_motion``) includes
it, and the two agree to the figure measured in ``tests/kernels/test_motion.py``.

A propagated row is carried as ``motion[j] = (x0, y0, z0, mu_x, mu_y, mu_z, mu_r)`` in
radians per Julian year, with its own reference epoch ``epoch0[j]``.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from xmatch.kernels.jit import jit, parallel_jit

MAS_TO_RAD = math.pi / (180.0 * 3600.0 * 1000.0)
#: Astronomical unit in km times seconds per Julian year: v[km/s] = A * mu[rad/yr] / parallax[rad].
AU_KM_YEAR_PER_S = 149597870.7 / (365.25 * 86400.0)

MOTION_WIDTH = 7


@parallel_jit
def motion_kernel(ra_rad, dec_rad, pmra_masyr, pmdec_masyr, parallax_mas, rv_kms, out):
    """Fill ``out[n, 7]`` with (x0, y0, z0, mu_x, mu_y, mu_z, mu_r).

    ``pmra`` is mu_alpha* = mu_alpha cos(dec). NaN proper motions count as zero; NaN or
    non-positive parallax, or NaN radial velocity, leave mu_r = 0.
    """
    for j in numba.prange(ra_rad.shape[0]):
        sin_a = math.sin(ra_rad[j])
        cos_a = math.cos(ra_rad[j])
        sin_d = math.sin(dec_rad[j])
        cos_d = math.cos(dec_rad[j])
        mu_a = pmra_masyr[j] * MAS_TO_RAD
        mu_d = pmdec_masyr[j] * MAS_TO_RAD
        if not (math.isfinite(mu_a) and math.isfinite(mu_d)):
            mu_a = 0.0
            mu_d = 0.0
        mu_r = 0.0
        plx = parallax_mas[j]
        rv = rv_kms[j]
        if math.isfinite(plx) and plx > 0.0 and math.isfinite(rv):
            mu_r = rv * plx * MAS_TO_RAD / AU_KM_YEAR_PER_S
        out[j, 0] = cos_d * cos_a
        out[j, 1] = cos_d * sin_a
        out[j, 2] = sin_d
        # mu = mu_a* p + mu_d q with p = (-sin a, cos a, 0), q = (-sin d cos a, -sin d sin a, cos d)
        out[j, 3] = -sin_a * mu_a - sin_d * cos_a * mu_d
        out[j, 4] = cos_a * mu_a - sin_d * sin_a * mu_d
        out[j, 5] = cos_d * mu_d
        out[j, 6] = mu_r


@jit
def position_at(x0, y0, z0, mx, my, mz, mu_r, tau):
    """Unit vector, ``tau`` Julian years later, of a star at (x0, y0, z0) with proper motion
    vector (mx, my, mz) and radial proper motion ``mu_r`` (a row of ``motion``)."""
    mu2 = mx * mx + my * my + mz * mz
    scale = 1.0 + mu_r * tau
    f = 1.0 / math.sqrt(1.0 + 2.0 * mu_r * tau + (mu2 + mu_r * mu_r) * tau * tau)
    return (x0 * scale + mx * tau) * f, (y0 * scale + my * tau) * f, (z0 * scale + mz * tau) * f


@parallel_jit
def propagate_kernel(motion, epoch0, epoch, out):
    """Fill ``out[n, 3]`` with each row's unit vector at ``epoch[j]`` (Julian years)."""
    for j in numba.prange(motion.shape[0]):
        x, y, z = position_at(motion[j, 0], motion[j, 1], motion[j, 2], motion[j, 3],
                              motion[j, 4], motion[j, 5], motion[j, 6], epoch[j] - epoch0[j])
        out[j, 0] = x
        out[j, 1] = y
        out[j, 2] = z


def max_drift_rad(mu_max, mu_r_max, tau_max, span):
    """Upper bound of the angle a row moves between two epochs ``span`` years apart, both
    within ``tau_max`` years of its reference epoch (arrays or scalars).

    The angle along the path is atan(mu tau / (1 + mu_r tau)); its rate is at most
    mu / (1 - |mu_r| tau)^2. Returns pi (search everything) where that bound breaks down.
    """
    damping = 1.0 - mu_r_max * np.asarray(tau_max, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        drift = mu_max * np.asarray(span, dtype=np.float64) / (damping * damping)
    return np.where(damping < 0.5, math.pi, np.minimum(drift, math.pi))


def motion_arrays(ra_deg, dec_deg, pmra, pmdec, parallax=None, rv=None) -> np.ndarray:
    """``motion[n, 7]`` from astrometry in the usual units (deg, mas/yr, mas, km/s)."""
    n = len(ra_deg)
    nan = np.full(n, np.nan)
    out = np.empty((n, MOTION_WIDTH))
    motion_kernel(np.radians(np.asarray(ra_deg, dtype=np.float64)),
                  np.radians(np.asarray(dec_deg, dtype=np.float64)),
                  np.ascontiguousarray(pmra, dtype=np.float64),
                  np.ascontiguousarray(pmdec, dtype=np.float64),
                  nan if parallax is None else np.ascontiguousarray(parallax, dtype=np.float64),
                  nan if rv is None else np.ascontiguousarray(rv, dtype=np.float64), out)
    return out
