"""Two-body places against skyfield's Kepler orbits (astrometric, light-time corrected,
topocentric), on real MPC orbits; element/state round trips; magnitudes."""

from __future__ import annotations

import gzip
import io

import numpy as np
import pyarrow as pa
import pytest
from astropy.coordinates import angular_separation

from conftest import shared_file
from xmatch.kernels.orbits import (
    GM_SUN,
    drift,
    elements_to_state,
    hg_magnitude,
    kepler_drift,
    state_to_elements,
    two_body,
)
from xmatch.sso.ephemeris import positions
from xmatch.sso.mpc.readers import read_orbits
from xmatch.sso.observers import observatory

skyfield_api = pytest.importorskip("skyfield.api")
mpc = pytest.importorskip("skyfield.data.mpc")

TOLERANCE_ARCSEC = 0.1
GM_SUN_KM3_S2 = pytest.importorskip("skyfield.constants").GM_SUN_Pitjeva_2005_km3_s2


@pytest.fixture(scope="module")
def skyfield_world():
    from skyfield.api import Loader
    from skyfield_data import get_skyfield_data_path

    with _quiet():  # skyfield-data warns that its bundled IERS file has aged
        load = Loader(get_skyfield_data_path(), verbose=False)
        ts = load.timescale(builtin=True)
    planets = load("de421.bsp")
    yield ts, planets["sun"], planets["earth"]
    planets.close()


class _quiet:
    """Silence warnings (skyfield's own, about its data files) inside a block."""

    def __enter__(self):
        import warnings

        self._catch = warnings.catch_warnings()
        self._catch.__enter__()
        warnings.simplefilter("ignore")

    def __exit__(self, *exc):
        self._catch.__exit__(*exc)


def _skyfield_observer(earth, code):
    from skyfield.toposlib import ITRSPosition
    from skyfield.units import Distance

    site = observatory(code)
    return earth if site.geocentric else earth + ITRSPosition(Distance(km=site.itrs_km))


def _skyfield_places(bodies, observer, t):
    ra, dec = [], []
    for body in bodies:
        r, d, _ = observer.at(t).observe(body).radec()
        ra.append(r.radians)
        dec.append(d.radians)
    return np.array(ra), np.array(dec)


def _sample(table: pa.Table, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(table.num_rows, min(n, table.num_rows), replace=False))


@pytest.mark.parametrize("relative", ["mpcorb_excerpt_K25BL.dat.gz", "NEA.txt.gz"])
def test_two_body_places_equal_skyfield(skyfield_world, relative):
    """Every sampled asteroid, at three instants within 30 days of the element epoch, from
    three sites: within 0.1 arcsec of skyfield (in practice about a milliarcsecond)."""
    ts, sun, earth = skyfield_world
    path = shared_file(f"sso/{relative}")
    orbits = read_orbits(path)
    lines = gzip.open(path).read().splitlines(keepends=True)
    # The excerpt's one-line custom header would be read as an orbit by skyfield.
    body = b"".join(line for line in lines if not line.startswith(b"Des'n"))
    frame = mpc.load_mpcorb_dataframe(io.BytesIO(body))
    rows = _sample(orbits, 60, seed=6)
    # The extremes too: the most eccentric and most inclined orbits.
    e = orbits.column("e").to_numpy()
    inc = orbits.column("inc_deg").to_numpy()
    rows = np.unique(np.r_[rows, np.argmax(e), np.argmax(inc)])
    chosen = orbits.take(rows)
    assert chosen.column("designation").to_pylist() == \
        frame.designation_packed.iloc[rows].tolist()
    with _quiet():
        bodies = [sun + mpc.mpcorb_orbit(frame.iloc[int(i)], ts, GM_SUN_KM3_S2) for i in rows]
    epoch_tt = chosen.column("epoch_mjd_tt").to_numpy()[0]
    worst = 0.0
    for days, code in [(0.37, "I41"), (14.6, "X05"), (29.9, "500")]:
        t = ts.tt_jd(epoch_tt + 2400000.5 + days)
        ours = positions(chosen, t.tt - 2400000.5, code, scale="tt")
        ra, dec = _skyfield_places(bodies, _skyfield_observer(earth, code), t)
        separation = np.degrees(angular_separation(
            np.radians(ours.column("ra_deg").to_numpy()),
            np.radians(ours.column("dec_deg").to_numpy()), ra, dec)) * 3600.0
        worst = max(worst, separation.max())
    assert worst <= TOLERANCE_ARCSEC, f"{relative}: worst {worst:.4f} arcsec"


def test_comets_parabolic_and_hyperbolic_equal_skyfield(skyfield_world):
    """Comets of every conic (e < 1, e = 1, e > 1) near their epoch, from Palomar."""
    ts, sun, earth = skyfield_world
    path = shared_file("sso/CometEls.txt.gz")
    orbits = read_orbits(path)
    with gzip.open(path) as handle:
        frame = mpc.load_comets_dataframe(handle)
    e = orbits.column("e").to_numpy()
    # A sample, the orbits nearest to parabolic, and hyperbolic ones.
    rows = np.unique(np.r_[_sample(orbits, 25, seed=7), np.argsort(np.abs(e - 1.0))[:5],
                           np.flatnonzero(e > 1.0)[:10]])
    assert (e[rows] > 1.0).any() and (e[rows] < 1.0).any()
    chosen = orbits.take(rows)
    assert chosen.column("name").to_pylist() == frame.designation.iloc[rows].tolist()
    with _quiet():
        bodies = [sun + mpc.comet_orbit(frame.iloc[int(i)], ts, GM_SUN_KM3_S2) for i in rows]
    t = ts.tt_jd(chosen.column("epoch_mjd_tt").to_numpy()[0] + 2400000.5 + 3.25)
    ours = positions(chosen, t.utc_iso(places=6).replace("Z", ""), "I41")
    ra, dec = _skyfield_places(bodies, _skyfield_observer(earth, "I41"), t)
    separation = np.degrees(angular_separation(
        np.radians(ours.column("ra_deg").to_numpy()),
        np.radians(ours.column("dec_deg").to_numpy()), ra, dec)) * 3600.0
    assert separation.max() <= TOLERANCE_ARCSEC


def test_elements_state_round_trip_every_conic():
    rng = np.random.default_rng(11)
    n = 3000
    e = np.r_[rng.uniform(0, 0.99, n - 600), np.ones(200), rng.uniform(1.001, 5, 400)]
    q = rng.uniform(0.05, 40, n)
    inc = np.r_[rng.uniform(0, 180, n - 2), 0.0, 180.0]
    node, argperi = rng.uniform(0, 360, n), rng.uniform(0, 360, n)
    tp = 60000 + rng.uniform(-2000, 2000, n)
    epoch = np.full(n, 60000.0)
    elements = state_to_elements(elements_to_state(q, e, inc, node, argperi, tp, epoch), epoch)
    np.testing.assert_allclose(elements["q_au"], q, rtol=1e-10)
    np.testing.assert_allclose(elements["e"], e, atol=1e-10)
    np.testing.assert_allclose(elements["inc_deg"], inc, atol=1e-8)
    # Node and perihelion are undefined at zero inclination: compare their sum there.
    tilted = (inc > 0) & (inc < 180)
    wrap = lambda a: (a + 180.0) % 360.0 - 180.0  # noqa: E731
    assert np.abs(wrap(elements["node_deg"] - node))[tilted].max() < 1e-7
    assert np.abs(wrap(elements["argperi_deg"] - argperi))[tilted].max() < 1e-6
    elliptic = e < 1
    period = 2 * np.pi / np.sqrt(GM_SUN / (q[elliptic] / (1 - e[elliptic])) ** 3)
    drift = elements["tp_mjd"][elliptic] - tp[elliptic]
    assert np.abs(drift - period * np.round(drift / period)).max() < 1e-5
    assert np.abs(elements["tp_mjd"][~elliptic] - tp[~elliptic]).max() < 1e-5


def test_fast_paths_equal_the_universal_solution():
    """The f and g series (short times) and Kepler's equation (elements of ellipses) agree
    with the universal-variable solution, for every conic and both directions of time."""
    rng = np.random.default_rng(13)
    n = 4000
    e = np.r_[rng.uniform(0, 0.95, n - 800), np.ones(100), rng.uniform(1.001, 3, 700)]
    q = np.r_[rng.uniform(0.05, 50, n - 1), 0.01]
    inc, node, argperi = rng.uniform(0, 180, n), rng.uniform(0, 360, n), rng.uniform(0, 360, n)
    tp = 60000 + rng.uniform(-5000, 5000, n)
    epoch = np.full(n, 60000.0)
    states = elements_to_state(q, e, inc, node, argperi, tp, epoch)
    series_used = 0
    for k in range(n):
        # Elements to state: Newton on Kepler's equation (e < 0.9) against a universal
        # drift from the perihelion state.
        at_perihelion = elements_to_state(q[k:k + 1], e[k:k + 1], inc[k:k + 1],
                                          node[k:k + 1], argperi[k:k + 1], epoch[:1], epoch[:1])
        universal = kepler_drift(*at_perihelion[0], epoch[k] - tp[k], GM_SUN)
        scale = np.linalg.norm(universal[:3])
        assert np.abs(np.array(universal[:3]) - states[k, :3]).max() < 1e-12 * max(scale, 1), k
        for dt in (rng.uniform(-0.6, 0.6), rng.uniform(-30, 30)):
            fast = np.array(drift(*states[k], dt, GM_SUN))
            exact = np.array(kepler_drift(*states[k], dt, GM_SUN))
            r = np.linalg.norm(states[k, :3])
            series_used += (GM_SUN / r ** 3 + (states[k, 3:] ** 2).sum() / r ** 2) * dt ** 2 \
                <= 2e-4
            assert np.abs(fast[:3] - exact[:3]).max() < 1e-11 * max(r, 1), (k, dt)
            assert np.abs(fast[3:] - exact[3:]).max() < 1e-9 * np.abs(exact[3:]).max()
    assert series_used > n  # (both paths were taken)


def test_two_body_conserves_energy_and_reverses():
    rng = np.random.default_rng(12)
    states = elements_to_state(rng.uniform(0.3, 30, 500), rng.uniform(0, 3, 500),
                               rng.uniform(0, 180, 500), rng.uniform(0, 360, 500),
                               rng.uniform(0, 360, 500), 60000 + rng.uniform(-500, 500, 500),
                               np.full(500, 60000.0))

    def energy(s):
        return 0.5 * (s[:, 3:] ** 2).sum(1) - GM_SUN / np.linalg.norm(s[:, :3], axis=1)

    later = two_body(states, 60000.0, 60000.0 + 4321.5)
    np.testing.assert_allclose(energy(later), energy(states), rtol=1e-9, atol=1e-14)
    back = two_body(later, 60000.0 + 4321.5, 60000.0)
    assert np.abs(back - states).max() < 1e-8
    assert np.array_equal(two_body(states, 60000.0, 60000.0), states)


def test_rates_distances_and_phase_equal_skyfield(skyfield_world):
    """Sky-plane rates (finite differences of skyfield's places 2 minutes apart), distance
    from the observer and from the Sun (at light emission) and the phase angle."""
    ts, sun, earth = skyfield_world
    path = shared_file("sso/NEA.txt.gz")
    orbits = read_orbits(path)
    with gzip.open(path) as handle:
        frame = mpc.load_mpcorb_dataframe(handle)
    rows = _sample(orbits, 40, seed=9)
    chosen = orbits.take(rows)
    with _quiet():
        orbit_bodies = [mpc.mpcorb_orbit(frame.iloc[int(i)], ts, GM_SUN_KM3_S2) for i in rows]
    observer = _skyfield_observer(earth, "I41")
    t = ts.tt_jd(chosen.column("epoch_mjd_tt").to_numpy()[0] + 2400000.5 + 2.3)
    ours = positions(chosen, t.tt - 2400000.5, "I41", scale="tt").to_pylist()
    half = 60.0 / 86400.0
    for body, place in zip(orbit_bodies, ours, strict=True):
        astrometric = observer.at(t).observe(sun + body)
        before, after = (observer.at(ts.tt_jd(t.tt + d)).observe(sun + body).radec()
                         for d in (-half, half))
        dec = astrometric.radec()[1].radians
        d_ra = (after[0].radians - before[0].radians + np.pi) % (2 * np.pi) - np.pi
        rate_ra = np.degrees(d_ra * np.cos(dec)) * 3600 / (2 * half * 24)
        rate_dec = np.degrees(after[1].radians - before[1].radians) * 3600 / (2 * half * 24)
        speed = np.hypot(rate_ra, rate_dec)
        assert place["rate_ra_arcsec_h"] == pytest.approx(rate_ra, abs=1e-3 * speed + 1e-4)
        assert place["rate_dec_arcsec_h"] == pytest.approx(rate_dec, abs=1e-3 * speed + 1e-4)
        assert place["distance_au"] == pytest.approx(astrometric.distance().au, rel=1e-9)
        emitted = ts.tt_jd(t.tt - astrometric.light_time)
        heliocentric = body.at(emitted).position.au
        assert place["helio_distance_au"] == pytest.approx(np.linalg.norm(heliocentric),
                                                           rel=1e-9)
        to_sun, to_observer = -heliocentric, -astrometric.position.au
        phase = np.degrees(np.arccos(np.dot(to_sun, to_observer) / np.linalg.norm(to_sun)
                                     / np.linalg.norm(to_observer)))
        assert place["phase_angle_deg"] == pytest.approx(phase, abs=1e-5)


def test_v_magnitude_equals_sbpy_hg():
    """V of real MPCORB asteroids from their H, G and the computed geometry, against sbpy's
    IAU H, G model (reduced magnitude + 5 log10(r delta))."""
    photometry = pytest.importorskip("sbpy.photometry")
    import astropy.units as u

    orbits = read_orbits(shared_file("sso/mpcorb_excerpt_K25BL.dat.gz"))
    chosen = orbits.take(_sample(orbits, 300, seed=10))
    ours = positions(chosen, 61003.5, "X05", scale="tt")
    phase = ours.column("phase_angle_deg").to_numpy()
    assert phase.max() > 20  # a range of phases
    reduced = photometry.HG(H=chosen.column("h_mag").to_numpy() * u.mag,
                            G=chosen.column("g_slope").to_numpy())(np.radians(phase) * u.rad)
    expected = reduced.to_value(u.mag) + 5 * np.log10(
        ours.column("helio_distance_au").to_numpy() * ours.column("distance_au").to_numpy())
    np.testing.assert_allclose(ours.column("v_mag").to_numpy(), expected, atol=1e-9)


def test_hg_magnitude_at_opposition_and_phase():
    # At zero phase, 1 AU from Sun and observer: V = H exactly.
    assert hg_magnitude(15.0, 0.15, 1.0, 1.0, 0.0) == pytest.approx(15.0)
    # Phase darkens: monotonic in the phase angle.
    phases = np.radians([0, 5, 10, 20, 40, 80])
    assert np.all(np.diff([hg_magnitude(15.0, 0.15, 2.0, 1.0, p) for p in phases]) > 0)


def test_positions_validation():
    orbits = read_orbits(shared_file("sso/MPCORB.excerpt.DAT"))
    with pytest.raises(ValueError, match="not an MPC observatory code"):
        positions(orbits, "2020-01-01T00:00:00", "ZZZ")
    with pytest.raises(ValueError, match="no fixed site"):
        positions(orbits, "2020-01-01T00:00:00", "C51")
    with pytest.raises(ValueError, match="not an ISO"):
        positions(orbits, "yesterday", "500")
    with pytest.raises(ValueError, match="time scale"):
        positions(orbits, 60000.0, "500", scale="gps")
    empty = positions(orbits.slice(0, 0), "2020-01-01T00:00:00", "500")
    assert empty.num_rows == 0
