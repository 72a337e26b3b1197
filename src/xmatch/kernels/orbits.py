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
#: Below this eccentricity, elements become states through Kepler's equation directly.
_ELLIPTIC_FAST_E = 0.9
#: Largest (gm / r^3 + v^2 / r^2) dt^2 for which :func:`drift` uses the f and g series.
_SERIES_LIMIT = 2e-4


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
def drift(x, y, z, vx, vy, vz, dt, gm):
    """:func:`kepler_drift`, faster over short times (a light time, an hour of a night):
    the Lagrange f and g series to dt^5 while s = (gm / r^3 +
    v^2 / r^2) dt^2 is below :data:`_SERIES_LIMIT`, where the terms left out are of order
    s^3 r (below 1e-11 r); the full solution otherwise."""
    r2 = x * x + y * y + z * z
    r = math.sqrt(r2)
    u = gm / (r2 * r)
    t2 = dt * dt
    speed2 = (vx * vx + vy * vy + vz * vz) / r2
    if (u + speed2) * t2 > _SERIES_LIMIT:
        return kepler_drift(x, y, z, vx, vy, vz, dt, gm)
    p = (x * vx + y * vy + z * vz) / r2
    q = speed2 - u
    t3 = t2 * dt
    t4 = t2 * t2
    a4 = u * (u - 15.0 * p * p + 3.0 * q) / 24.0
    a5 = u * p * (7.0 * p * p - 3.0 * q - u) / 8.0
    b5 = u * (9.0 * q - 45.0 * p * p + u) / 120.0
    f = 1.0 - 0.5 * u * t2 + 0.5 * u * p * t3 + a4 * t4 + a5 * t4 * dt
    g = dt - u * t3 / 6.0 + 0.25 * u * p * t4 + b5 * t4 * dt
    fdot = -u * dt + 1.5 * u * p * t2 + 4.0 * a4 * t3 + 5.0 * a5 * t4
    gdot = 1.0 - 0.5 * u * t2 + u * p * t3 + 5.0 * b5 * t4
    return (f * x + g * vx, f * y + g * vy, f * z + g * vz,
            fdot * x + gdot * vx, fdot * y + gdot * vy, fdot * z + gdot * vz)


@jit
def _ecliptic_to_icrs(x, y, z):
    return x, _COS_EPS * y - _SIN_EPS * z, _SIN_EPS * y + _COS_EPS * z


@jit
def _icrs_to_ecliptic(x, y, z):
    return x, _COS_EPS * y + _SIN_EPS * z, -_SIN_EPS * y + _COS_EPS * z


@jit
def _elliptic_state(q, e, dt, gm, px, py, pz, wx, wy, wz):
    """The state ``dt`` days after perihelion on an ellipse (perihelion direction p, and w
    90 degrees ahead): Kepler's equation by Newton's method, cheaper than the universal
    solution this path stands in for when e is well below 1."""
    a = q / (1.0 - e)
    mean_motion = math.sqrt(gm / (a * a * a))
    turns = mean_motion * dt / (2.0 * math.pi)
    mean_anomaly = 2.0 * math.pi * (turns - round(turns))  # in [-pi, pi]
    big_e = mean_anomaly + e * math.sin(mean_anomaly)
    for _ in range(_MAX_ITERATIONS):
        step = (big_e - e * math.sin(big_e) - mean_anomaly) / (1.0 - e * math.cos(big_e))
        big_e -= step
        if abs(step) < 1e-15:
            break
    cos_e, sin_e = math.cos(big_e), math.sin(big_e)
    root = math.sqrt(1.0 - e * e)
    along_p = a * (cos_e - e)
    along_w = a * root * sin_e
    speed = math.sqrt(gm * a) / (a * (1.0 - e * cos_e))
    v_p = -speed * sin_e
    v_w = speed * root * cos_e
    return (along_p * px + along_w * wx, along_p * py + along_w * wy,
            along_p * pz + along_w * wz, v_p * px + v_w * wx, v_p * py + v_w * wy,
            v_p * pz + v_w * wz)


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
        if e[k] < _ELLIPTIC_FAST_E:
            state = _elliptic_state(q[k], e[k], epoch[k] - tp[k], gm, px, py, pz, wx, wy, wz)
        else:
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
    x, y, z, vx, vy, vz = drift(states[k, 0], states[k, 1], states[k, 2],
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
        hx, hy, hz, hvx, hvy, hvz = drift(x, y, z, vx, vy, vz, -light_time, gm)
    ux, uy, uz = px / distance, py / distance, pz / distance
    r = math.sqrt(hx * hx + hy * hy + hz * hz)
    out[0], out[1], out[2] = ux, uy, uz
    out[3] = distance
    out[4] = r
    out[5] = (hx * px + hy * py + hz * pz) / (r * distance)
    # The rate of the observed direction: the object's barycentric velocity counts with the
    # factor 1 - d(light time)/dt (the emission time runs slower while the distance grows),
    # which matters where the observer's and the object's velocities nearly cancel.
    ax, ay, az = hvx + sun_velocity[0], hvy + sun_velocity[1], hvz + sun_velocity[2]
    object_radial = ax * ux + ay * uy + az * uz
    observer_radial = (observer_velocity[0] * ux + observer_velocity[1] * uy
                       + observer_velocity[2] * uz)
    slowing = 1.0 - (object_radial - observer_radial) / (C_AU_PER_DAY + object_radial)
    rvx = ax * slowing - observer_velocity[0]
    rvy = ay * slowing - observer_velocity[1]
    rvz = az * slowing - observer_velocity[2]
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


@jit
def _hg_phi(phase_rad, a, b, c):
    """One basis function of the IAU H, G phase curve (Bowell et al. 1989, eq. A4): a
    smooth blend of its small-angle (opposition surge) and large-angle forms."""
    sin_phase = math.sin(phase_rad)
    tan_half = math.tan(0.5 * phase_rad)
    weight = math.exp(-90.56 * tan_half * tan_half)
    small = 1.0 - c * sin_phase / (0.119 + 1.341 * sin_phase - 0.754 * sin_phase * sin_phase)
    large = math.exp(-a * tan_half ** b)
    return weight * small + (1.0 - weight) * large


@jit
def hg_magnitude(h, g, r_au, delta_au, phase_rad):
    """Apparent V of the IAU H, G system (Bowell et al. 1989, appendix)."""
    phi1 = _hg_phi(phase_rad, 3.332, 0.631, 0.986)
    phi2 = _hg_phi(phase_rad, 1.862, 1.218, 0.238)
    return h + 5.0 * math.log10(r_au * delta_au) - 2.5 * math.log10(
        (1.0 - g) * phi1 + g * phi2)


#: Columns :func:`place_columns` writes: RA, Dec, distance, heliocentric distance, phase
#: angle (deg), V, rates along east (with cos dec) and north (arcsec/hour).
PLACE_SIZE = 8
_RAD_PER_DAY_TO_ARCSEC_PER_HOUR = math.degrees(1.0) * 3600.0 / 24.0


@parallel_jit
def _place_columns_kernel(places, h, g, comet_k, comet, out):
    for i in numba.prange(places.shape[0]):
        ux, uy, uz = places[i, 0], places[i, 1], places[i, 2]
        ra = math.atan2(uy, ux)
        dec = math.asin(min(1.0, max(-1.0, uz)))
        delta, r = places[i, 3], places[i, 4]
        phase = math.acos(min(1.0, max(-1.0, places[i, 5])))
        if comet[i]:
            v = h[i] + 5.0 * math.log10(delta) + 2.5 * comet_k[i] * math.log10(r)
        else:
            v = hg_magnitude(h[i], g[i], r, delta, phase)
        sin_ra, cos_ra = math.sin(ra), math.cos(ra)
        sin_dec, cos_dec = math.sin(dec), math.cos(dec)
        rate_east = -sin_ra * places[i, 6] + cos_ra * places[i, 7]
        rate_north = (-sin_dec * (cos_ra * places[i, 6] + sin_ra * places[i, 7])
                      + cos_dec * places[i, 8])
        out[i, 0] = math.degrees(ra) % 360.0
        out[i, 1] = math.degrees(dec)
        out[i, 2] = delta
        out[i, 3] = r
        out[i, 4] = math.degrees(phase)
        out[i, 5] = v
        out[i, 6] = rate_east * _RAD_PER_DAY_TO_ARCSEC_PER_HOUR
        out[i, 7] = rate_north * _RAD_PER_DAY_TO_ARCSEC_PER_HOUR


def place_columns(places, h_mag, g_slope, comet_k, comet) -> np.ndarray:
    """The columns of :data:`PLACE_SIZE` from :func:`apparent` rows and each object's
    magnitude parameters (``comet``: True where H and K of a comet apply, else H and G)."""
    n = places.shape[0]
    out = np.empty((n, PLACE_SIZE))
    arrays = [np.ascontiguousarray(a, dtype=np.float64) for a in (h_mag, g_slope, comet_k)]
    _place_columns_kernel(np.ascontiguousarray(places), *arrays,
                          np.ascontiguousarray(comet, dtype=np.bool_), out)
    return out


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
