"""Two-body orbits: element/state conversion, universal-variable propagation, and astrometric
positions as an observer sees them (light-time iterated, topocentric).

Units are AU, days and AU^3/day^2; times are TDB MJD; states are heliocentric ICRS
``[x, y, z, vx, vy, vz]``. Orbital elements are referred to the J2000 ecliptic, as the MPC
publishes them. Universal variables (Stumpff functions) serve every eccentricity: elliptic,
parabolic and hyperbolic orbits go through the same code.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from xmatch.kernels.jit import jit, parallel_jit

#: Gaussian gravitational constant squared (k^2), the Sun's GM in AU^3/day^2, as the MPC and
#: skyfield's MPC orbits use it.
GM_SUN = 2.9591220828559115e-04
#: Speed of light in AU/day (IAU 2012: c = 299792.458 km/s, au = 149597870.7 km).
C_AU_PER_DAY = 173.14463267424034
#: Obliquity of the J2000 ecliptic (IAU 1976, 84381.448 arcsec), the frame of MPC elements.
OBLIQUITY_J2000_RAD = math.radians(84381.448 / 3600.0)
_COS_EPS = math.cos(OBLIQUITY_J2000_RAD)
_SIN_EPS = math.sin(OBLIQUITY_J2000_RAD)

_MAX_ITERATIONS = 60
_LAGUERRE_N = 5.0


@jit
def _stumpff(z):
    """Stumpff functions C(z), S(z); a series near zero, where the closed forms cancel."""
    if abs(z) < 0.1:
        # Taylor terms up to z^6: error below 1e-17 for |z| < 0.1.
        c = 0.5
        s = 1.0 / 6.0
        term_c = 0.5
        term_s = 1.0 / 6.0
        for k in range(1, 8):
            term_c *= -z / ((2 * k + 1) * (2 * k + 2))
            term_s *= -z / ((2 * k + 2) * (2 * k + 3))
            c += term_c
            s += term_s
        return c, s
    if z > 0:
        w = math.sqrt(z)
        return (1.0 - math.cos(w)) / z, (w - math.sin(w)) / (w * z)
    w = math.sqrt(-z)
    return (math.cosh(w) - 1.0) / (-z), (math.sinh(w) - w) / (w * -z)


@jit
def kepler_drift(x, y, z, vx, vy, vz, dt, gm):
    """The state ``dt`` days later on the two-body orbit about a body of ``gm``.

    Solves the universal Kepler equation for the universal anomaly with Laguerre's method
    (Conway 1986), which converges from a rough start for every conic, then applies the
    Lagrange f and g functions. Elliptic orbits are first reduced by whole periods.
    """
    if dt == 0.0:
        return x, y, z, vx, vy, vz
    r0 = math.sqrt(x * x + y * y + z * z)
    v2 = vx * vx + vy * vy + vz * vz
    sqrt_gm = math.sqrt(gm)
    rv = (x * vx + y * vy + z * vz) / sqrt_gm
    alpha = 2.0 / r0 - v2 / gm
    if alpha > 0:
        period = 2.0 * math.pi / math.sqrt(gm * alpha ** 3)
        dt = dt - period * round(dt / period)
        chi = sqrt_gm * dt * alpha
    elif alpha < -1e-12:
        # Hyperbolic start (Vallado, Fundamentals of Astrodynamics, Algorithm 8): close to
        # the root even for many e-foldings of the hyperbolic anomaly.
        a = 1.0 / alpha
        sign = 1.0 if dt > 0 else -1.0
        rdotv = x * vx + y * vy + z * vz
        chi = sign * math.sqrt(-a) * math.log(
            (-2.0 * gm * alpha * dt)
            / (rdotv + sign * math.sqrt(-gm * a) * (1.0 - r0 * alpha)))
    else:
        chi = sqrt_gm * dt / r0
    target = sqrt_gm * dt
    one_minus_ar = 1.0 - alpha * r0
    c = 0.5
    s = 1.0 / 6.0
    for _ in range(_MAX_ITERATIONS):
        chi2 = chi * chi
        zz = alpha * chi2
        c, s = _stumpff(zz)
        f = rv * chi2 * c + one_minus_ar * chi2 * chi * s + r0 * chi - target
        df = rv * chi * (1.0 - zz * s) + one_minus_ar * chi2 * c + r0
        ddf = rv * (1.0 - zz * c) + one_minus_ar * chi * (1.0 - zz * s)
        root = math.sqrt(abs((_LAGUERRE_N - 1.0) ** 2 * df * df
                             - _LAGUERRE_N * (_LAGUERRE_N - 1.0) * f * ddf))
        step = _LAGUERRE_N * f / (df + root if df >= 0 else df - root)
        chi -= step
        if abs(step) <= 1e-15 * max(abs(chi), 1e-10):
            break
    chi2 = chi * chi
    zz = alpha * chi2
    c, s = _stumpff(zz)
    f_lag = 1.0 - chi2 / r0 * c
    g_lag = dt - chi2 * chi * s / sqrt_gm
    nx = f_lag * x + g_lag * vx
    ny = f_lag * y + g_lag * vy
    nz = f_lag * z + g_lag * vz
    r = math.sqrt(nx * nx + ny * ny + nz * nz)
    fdot = sqrt_gm / (r * r0) * (zz * chi * s - chi)
    gdot = 1.0 - chi2 / r * c
    return (nx, ny, nz,
            fdot * x + gdot * vx, fdot * y + gdot * vy, fdot * z + gdot * vz)


@jit
def _ecliptic_to_icrs(x, y, z):
    return x, _COS_EPS * y - _SIN_EPS * z, _SIN_EPS * y + _COS_EPS * z


@jit
def _icrs_to_ecliptic(x, y, z):
    return x, _COS_EPS * y + _SIN_EPS * z, -_SIN_EPS * y + _COS_EPS * z


@parallel_jit
def _elements_to_state_kernel(q, e, inc, node, argperi, tp, epoch, gm, out):
    for k in numba.prange(q.shape[0]):
        ci, si = math.cos(inc[k]), math.sin(inc[k])
        cn, sn = math.cos(node[k]), math.sin(node[k])
        cw, sw = math.cos(argperi[k]), math.sin(argperi[k])
        # Unit vectors towards perihelion (p) and 90 degrees ahead of it in the orbit (w).
        px = cn * cw - sn * sw * ci
        py = sn * cw + cn * sw * ci
        pz = sw * si
        wx = -cn * sw - sn * cw * ci
        wy = -sn * sw + cn * cw * ci
        wz = cw * si
        speed = math.sqrt(gm * (1.0 + e[k]) / q[k])
        state = kepler_drift(q[k] * px, q[k] * py, q[k] * pz,
                             speed * wx, speed * wy, speed * wz, epoch[k] - tp[k], gm)
        out[k, 0], out[k, 1], out[k, 2] = _ecliptic_to_icrs(state[0], state[1], state[2])
        out[k, 3], out[k, 4], out[k, 5] = _ecliptic_to_icrs(state[3], state[4], state[5])


def elements_to_state(q_au, e, inc_deg, node_deg, argperi_deg, tp_mjd, epoch_mjd,
                      gm: float = GM_SUN) -> np.ndarray:
    """Heliocentric ICRS states (n, 6) at ``epoch_mjd`` from cometary elements.

    The state at perihelion is built in the orbital plane and carried to the epoch by
    :func:`kepler_drift`, so the same path serves every eccentricity.
    """
    arrays = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in
                                   (q_au, e, inc_deg, node_deg, argperi_deg, tp_mjd, epoch_mjd)))
    q, ecc, inc, node, argperi, tp, epoch = (np.ascontiguousarray(a).ravel() for a in arrays)
    out = np.empty((q.shape[0], 6))
    _elements_to_state_kernel(q, ecc, np.radians(inc), np.radians(node), np.radians(argperi),
                              tp, epoch, float(gm), out)
    return out


@jit
def _time_from_perihelion(e, q, nu, gm):
    """Time since perihelion (days) at true anomaly ``nu`` for any eccentricity."""
    if abs(e - 1.0) < 1e-9:
        d = math.tan(nu / 2.0)
        return math.sqrt(2.0 * q ** 3 / gm) * (d + d ** 3 / 3.0)
    a = q / (1.0 - e)
    n = math.sqrt(gm / abs(a) ** 3)
    if e < 1.0:
        big_e = 2.0 * math.atan2(math.sqrt(1.0 - e) * math.sin(nu / 2.0),
                                 math.sqrt(1.0 + e) * math.cos(nu / 2.0))
        return (big_e - e * math.sin(big_e)) / n
    big_f = 2.0 * math.atanh(math.sqrt((e - 1.0) / (e + 1.0)) * math.tan(nu / 2.0))
    return (e * math.sinh(big_f) - big_f) / n


@parallel_jit
def _state_to_elements_kernel(states, epoch, gm, out):
    for k in numba.prange(states.shape[0]):
        x, y, z = _icrs_to_ecliptic(states[k, 0], states[k, 1], states[k, 2])
        vx, vy, vz = _icrs_to_ecliptic(states[k, 3], states[k, 4], states[k, 5])
        r = math.sqrt(x * x + y * y + z * z)
        hx, hy, hz = y * vz - z * vy, z * vx - x * vz, x * vy - y * vx
        h = math.sqrt(hx * hx + hy * hy + hz * hz)
        # Eccentricity vector: (v x h)/gm - r/|r|.
        ex = (vy * hz - vz * hy) / gm - x / r
        ey = (vz * hx - vx * hz) / gm - y / r
        ez = (vx * hy - vy * hx) / gm - z / r
        e = math.sqrt(ex * ex + ey * ey + ez * ez)
        inc = math.acos(min(1.0, max(-1.0, hz / h)))
        node = math.atan2(hx, -hy) if math.hypot(hx, hy) > 1e-14 * h else 0.0
        # Angles in the orbital plane are measured from the ascending node.
        nx, ny = math.cos(node), math.sin(node)
        # In-plane axis 90 degrees ahead of the node: h x n / |h|.
        mx = (-hz * ny) / h
        my = (hz * nx) / h
        mz = (hx * ny - hy * nx) / h
        u = math.atan2(x * mx + y * my + z * mz, x * nx + y * ny)  # argument of latitude
        if e > 1e-12:
            argperi = math.atan2(ex * mx + ey * my + ez * mz, ex * nx + ey * ny)
        else:
            argperi = 0.0  # circular: perihelion undefined, measure from the node
        nu = u - argperi
        nu = math.atan2(math.sin(nu), math.cos(nu))
        q = h * h / (gm * (1.0 + e))
        out[k, 0] = q
        out[k, 1] = e
        out[k, 2] = math.degrees(inc)
        out[k, 3] = math.degrees(node) % 360.0
        out[k, 4] = math.degrees(argperi) % 360.0
        out[k, 5] = epoch[k] - _time_from_perihelion(e, q, nu, gm)


def state_to_elements(states, epoch_mjd, gm: float = GM_SUN) -> dict[str, np.ndarray]:
    """Cometary elements (J2000 ecliptic) of heliocentric ICRS states at ``epoch_mjd``.

    Returns arrays ``q_au``, ``e``, ``inc_deg``, ``node_deg``, ``argperi_deg`` and ``tp_mjd``
    (the perihelion passage nearest the epoch for elliptic orbits).
    """
    states = np.ascontiguousarray(states, dtype=np.float64).reshape(-1, 6)
    epoch = np.ascontiguousarray(np.broadcast_to(np.asarray(epoch_mjd, dtype=np.float64),
                                                 (states.shape[0],)))
    out = np.empty((states.shape[0], 6))
    _state_to_elements_kernel(states, epoch, float(gm), out)
    return {name: out[:, i].copy() for i, name in
            enumerate(("q_au", "e", "inc_deg", "node_deg", "argperi_deg", "tp_mjd"))}


@parallel_jit
def _propagate_kernel(states, epoch, target, gm, out):
    for k in numba.prange(states.shape[0]):
        s = kepler_drift(states[k, 0], states[k, 1], states[k, 2], states[k, 3], states[k, 4],
                         states[k, 5], target[k] - epoch[k], gm)
        for j in range(6):
            out[k, j] = s[j]


def two_body(states, epoch_mjd, target_mjd, gm: float = GM_SUN) -> np.ndarray:
    """States (n, 6) carried from ``epoch_mjd`` to ``target_mjd`` on two-body orbits."""
    states = np.ascontiguousarray(states, dtype=np.float64).reshape(-1, 6)
    n = states.shape[0]
    epoch = np.ascontiguousarray(np.broadcast_to(np.asarray(epoch_mjd, np.float64), (n,)))
    target = np.ascontiguousarray(np.broadcast_to(np.asarray(target_mjd, np.float64), (n,)))
    out = np.empty((n, 6))
    _propagate_kernel(states, epoch, target, float(gm), out)
    return out


@jit
def apparent_one(states, k, dt, observer, observer_velocity, sun, sun_velocity, gm, out):
    """Astrometric place of object ``k`` seen from ``observer`` (barycentric ICRS position,
    AU, and velocity, AU/day) ``dt`` days after the state epoch. The object is where it was
    when the light left it (light time iterated to convergence); the Sun's barycentric
    position at that moment is extrapolated linearly, exact to far below a metre over a
    light time. No aberration or light deflection: this is the place catalog-calibrated
    astrometry measures.

    Writes into ``out``: the unit vector (0:3), the distance from the observer (3), the
    distance from the Sun (4), the cosine of the phase angle (5) and the rate of change of
    the unit vector (6:9, per day).
    """
    x, y, z, vx, vy, vz = kepler_drift(states[k, 0], states[k, 1], states[k, 2],
                                       states[k, 3], states[k, 4], states[k, 5], dt, gm)
    light_time = 0.0
    hx, hy, hz, hvx, hvy, hvz = x, y, z, vx, vy, vz
    px = py = pz = distance = 0.0
    for _ in range(10):
        px = sun[0] - sun_velocity[0] * light_time + hx - observer[0]
        py = sun[1] - sun_velocity[1] * light_time + hy - observer[1]
        pz = sun[2] - sun_velocity[2] * light_time + hz - observer[2]
        distance = math.sqrt(px * px + py * py + pz * pz)
        new_light_time = distance / C_AU_PER_DAY
        if abs(new_light_time - light_time) < 1e-13:
            break
        light_time = new_light_time
        hx, hy, hz, hvx, hvy, hvz = kepler_drift(x, y, z, vx, vy, vz, -light_time, gm)
    ux, uy, uz = px / distance, py / distance, pz / distance
    r = math.sqrt(hx * hx + hy * hy + hz * hz)
    out[0], out[1], out[2] = ux, uy, uz
    out[3] = distance
    out[4] = r
    out[5] = (hx * px + hy * py + hz * pz) / (r * distance)
    # Relative velocity across the line of sight, divided by the distance.
    rvx = hvx + sun_velocity[0] - observer_velocity[0]
    rvy = hvy + sun_velocity[1] - observer_velocity[1]
    rvz = hvz + sun_velocity[2] - observer_velocity[2]
    radial = rvx * ux + rvy * uy + rvz * uz
    out[6] = (rvx - radial * ux) / distance
    out[7] = (rvy - radial * uy) / distance
    out[8] = (rvz - radial * uz) / distance


#: Number of values :func:`apparent_one` writes per object and time.
APPARENT_SIZE = 9


@parallel_jit
def _apparent_kernel(states, epoch, t, observer, observer_velocity, sun, sun_velocity, gm,
                     out):
    for k in numba.prange(states.shape[0]):
        apparent_one(states, k, t - epoch[k], observer, observer_velocity, sun, sun_velocity,
                     gm, out[k])


def apparent(states, epoch_mjd, t_tdb_mjd: float, observer, observer_velocity, sun,
             sun_velocity, gm: float = GM_SUN) -> np.ndarray:
    """Astrometric places (n, APPARENT_SIZE) of two-body objects at one TDB instant; see
    :func:`apparent_one` for the columns. Positions and velocities are barycentric ICRS."""
    states = np.ascontiguousarray(states, dtype=np.float64).reshape(-1, 6)
    n = states.shape[0]
    epoch = np.ascontiguousarray(np.broadcast_to(np.asarray(epoch_mjd, np.float64), (n,)))
    vectors = [np.ascontiguousarray(v, dtype=np.float64).reshape(3)
               for v in (observer, observer_velocity, sun, sun_velocity)]
    out = np.empty((n, APPARENT_SIZE))
    _apparent_kernel(states, epoch, float(t_tdb_mjd), *vectors, float(gm), out)
    return out
