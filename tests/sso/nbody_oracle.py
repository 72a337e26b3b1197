"""Independent references for the n-body tests and ``benchmarks/check_nbody.py``: a
REBOUND/IAS15 integration of the same initial states under the same planets, and the angle
between two heliocentric positions as seen from the geocentre."""

from __future__ import annotations

import numpy as np

from xmatch.sso.planets import GM, PERTURBERS, planets


def geocentric_arcsec(a, b, t_tdb):
    """Angle (arcsec) between heliocentric positions ``a`` and ``b`` seen from the geocentre
    at ``t_tdb`` (geometric: no light time)."""
    eph = planets()
    offset = eph.barycentric("sun", t_tdb) - eph.barycentric("earth", t_tdb)
    ua = a[:, :3] + offset
    ub = b[:, :3] + offset
    ua /= np.linalg.norm(ua, axis=1)[:, None]
    ub /= np.linalg.norm(ub, axis=1)[:, None]
    return np.degrees(2 * np.arcsin(np.linalg.norm(ua - ub, axis=1) / 2)) * 3600


def rebound_reference(states, epoch, stops):
    """REBOUND/IAS15 (G = 1, masses = GM in AU^3/day^2, days): the Sun and PERTURBERS from
    DE421 at ``epoch`` plus ``states`` (heliocentric) as test particles; heliocentric
    (planets, particles) states at each time of ``stops``."""
    import rebound

    eph = planets()
    sim = rebound.Simulation()
    sim.G = 1.0
    sim.integrator = "ias15"
    sun_p, sun_v = eph.barycentric_posvel("sun", epoch)
    sim.add(m=GM["sun"], x=sun_p[0], y=sun_p[1], z=sun_p[2],
            vx=sun_v[0], vy=sun_v[1], vz=sun_v[2])
    for body in PERTURBERS:
        p, v = eph.barycentric_posvel(body, epoch)
        sim.add(m=GM[body], x=p[0], y=p[1], z=p[2], vx=v[0], vy=v[1], vz=v[2])
    sim.N_active = sim.N
    sim.testparticle_type = 0
    for s in states:
        sim.add(x=sun_p[0] + s[0], y=sun_p[1] + s[1], z=sun_p[2] + s[2],
                vx=sun_v[0] + s[3], vy=sun_v[1] + s[4], vz=sun_v[2] + s[5])
    sim.t = epoch
    results = []
    for stop in stops:
        sim.integrate(stop, exact_finish_time=1)
        xyz = np.array([[p.x, p.y, p.z, p.vx, p.vy, p.vz] for p in sim.particles])
        helio = xyz - xyz[0]
        results.append((helio[1:1 + len(PERTURBERS)], helio[1 + len(PERTURBERS):]))
    return results
