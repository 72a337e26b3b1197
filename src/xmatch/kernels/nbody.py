"""Wisdom-Holman integration of massless small bodies among planets that follow an ephemeris.

Each particle moves in heliocentric coordinates under the Sun and the perturbers, with the
Hamiltonian split as

    H = [v^2/2 - GM_sun/r]  +  sum_p GM_p [ r . r_p / |r_p|^3 - 1/|r - r_p| ]
        (Kepler, solved exactly)    (interaction: depends on position and time only)

The second term is the direct pull of each perturber and the indirect term (the Sun's own
acceleration towards the planets, felt as a fictitious force in the heliocentric frame).
For test particles these heliocentric "mixed variables" are canonical, so the kick-drift-kick
leapfrog below is the Wisdom & Holman (1991) map: drift = exact Kepler motion about the Sun
(:func:`xmatch.kernels.orbits.kepler_drift`), kick = the interaction acceleration, with the
perturbers at the kick time. Its error per unit time is O(GM_p/GM_sun * dt^2) away from
encounters; near a planet the step must be short compared with sqrt(d^3/GM_p), so the kernel
reports each particle's closest distance to each perturber and the caller
(:mod:`xmatch.sso.propagate`) integrates those that came close again with a shorter step.

Times: every particle ends at one target time T, walking a shared grid T + j * dt. A particle
whose epoch is off the grid first takes one partial step onto it; the perturber positions
and the indirect term at the grid times and at the distinct epochs come precomputed, in one
table (``planet_pos``, ``indirect``). Consecutive half kicks at a grid point are merged, so
each step costs one drift and one acceleration.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from xmatch.kernels.jit import jit, parallel_jit
from xmatch.kernels.orbits import kepler_drift


@jit
def _segment_min_distance2(ax, ay, az, bx, by, bz):
    """Smallest squared length of a + u (b - a) over 0 <= u <= 1."""
    dx, dy, dz = bx - ax, by - ay, bz - az
    dd = dx * dx + dy * dy + dz * dz
    u = 0.0
    if dd > 0.0:
        u = min(1.0, max(0.0, -(ax * dx + ay * dy + az * dz) / dd))
    px, py, pz = ax + u * dx, ay + u * dy, az + u * dz
    return px * px + py * py + pz * pz


@jit
def _kick(x, y, z, vx, vy, vz, w, row, planet_pos, indirect, gm, rel, first, closest):
    """Velocity after a kick of ``w`` days with the perturbers of table row ``row``.

    Keeps the particle-to-planet vectors of the previous kick in ``rel`` (n_planets, 3) and
    lowers ``closest[p]`` (squared distances, AU^2) to the smallest squared distance to
    planet p along the straight segment between the two kicks (at this kick if ``first``).
    """
    ax = -indirect[row, 0]
    ay = -indirect[row, 1]
    az = -indirect[row, 2]
    for p in range(gm.shape[0]):
        dx = planet_pos[row, p, 0] - x
        dy = planet_pos[row, p, 1] - y
        dz = planet_pos[row, p, 2] - z
        d2 = dx * dx + dy * dy + dz * dz
        f = gm[p] / (d2 * math.sqrt(d2))
        ax += f * dx
        ay += f * dy
        az += f * dz
        if first:
            closest[p] = d2
        else:
            closest[p] = min(closest[p], _segment_min_distance2(rel[p, 0], rel[p, 1],
                                                                rel[p, 2], dx, dy, dz))
        rel[p, 0] = dx
        rel[p, 1] = dy
        rel[p, 2] = dz
    return vx + w * ax, vy + w * ay, vz + w * az


@jit
def _wh_particle(state, start_row, first_step, n_steps, step, zero_row, planet_pos, indirect,
                 gm, gm_sun, rel, out, closest):
    """Integrate one particle: a partial step ``first_step`` from its epoch (table row
    ``start_row``) onto the grid, then ``n_steps`` steps of ``step`` (signed) to the grid
    point ``zero_row``. Writes the final state into ``out`` and the squared closest
    distance to each planet into ``closest``.
    """
    x, y, z, vx, vy, vz = state[0], state[1], state[2], state[3], state[4], state[5]
    direction = 1 if step > 0.0 else -1
    vx, vy, vz = _kick(x, y, z, vx, vy, vz, 0.5 * first_step, start_row, planet_pos, indirect,
                       gm, rel, True, closest)
    x, y, z, vx, vy, vz = kepler_drift(x, y, z, vx, vy, vz, first_step, gm_sun)
    previous = first_step
    for k in range(n_steps):
        row = zero_row - direction * (n_steps - k)
        vx, vy, vz = _kick(x, y, z, vx, vy, vz, 0.5 * (previous + step), row, planet_pos,
                           indirect, gm, rel, False, closest)
        x, y, z, vx, vy, vz = kepler_drift(x, y, z, vx, vy, vz, step, gm_sun)
        previous = step
    vx, vy, vz = _kick(x, y, z, vx, vy, vz, 0.5 * previous, zero_row, planet_pos, indirect, gm,
                       rel, False, closest)
    out[0], out[1], out[2], out[3], out[4], out[5] = x, y, z, vx, vy, vz


@parallel_jit
def _wh_kernel(states, start_row, first_step, n_steps, step, zero_row, planet_pos, indirect,
               gm, gm_sun, out, closest):
    """Wisdom-Holman integration of every row of ``states`` (n, 6), heliocentric ICRS.

    Parameters
    ----------
    states : (n, 6) float64
        Heliocentric states at each particle's epoch.
    start_row : (n,) int64
        Row of ``planet_pos`` / ``indirect`` holding the perturbers at the particle's epoch.
    first_step : (n,) float64
        Signed length (days) of the partial step from the epoch onto the grid (may be 0).
    n_steps : (n,) int64
        Number of whole steps after it.
    step : (n,) float64
        Signed whole step (days): +dt forwards, -dt backwards.
    zero_row : int
        Row of the target time; grid point j (time T + j dt) is row ``zero_row + j``.
    planet_pos : (m, n_planets, 3) float64
        Heliocentric perturber positions (AU).
    indirect : (m, 3) float64
        sum_p GM_p r_p / |r_p|^3 at the same times (AU/day^2).
    gm : (n_planets,) float64
        Perturber GMs (AU^3/day^2).
    gm_sun : float
        The Sun's GM, the centre of the Kepler drifts.
    out : (n, 6) float64
        States at the target time.
    closest : (n, n_planets) float64
        Smallest distance (AU) to each perturber, the relative position interpolated along
        a straight line between consecutive kicks (so that a fast flyby between two kicks is
        still seen).
    """
    n_planets = gm.shape[0]
    for i in numba.prange(states.shape[0]):
        rel = np.empty((n_planets, 3))
        _wh_particle(states[i], start_row[i], first_step[i], n_steps[i], step[i], zero_row,
                     planet_pos, indirect, gm, gm_sun, rel, out[i], closest[i])
        for p in range(n_planets):
            closest[i, p] = math.sqrt(closest[i, p])
