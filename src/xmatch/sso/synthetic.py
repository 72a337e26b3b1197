"""A deterministic synthetic asteroid population, for tests and benchmarks: the orbit table
of :data:`xmatch.sso.mpc.readers.ORBIT_SCHEMA` with realistic element and magnitude
distributions, every row flagged ``synthetic``."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from xmatch.errors import InputError
from xmatch.sso.mpc.readers import DEFAULT_G, orbit_table, tp_from_mean_anomaly

#: Population fractions of :func:`synthetic_orbits`.
SYNTHETIC_POPULATIONS = {"main belt": 0.90, "hungaria": 0.03, "outer main belt": 0.03,
                         "near-earth": 0.02, "jupiter trojan": 0.015, "hilda": 0.005}
#: Main-belt semimajor-axis ranges (AU) and their relative densities: the Kirkwood gaps of the
#: 3:1 (2.50 AU), 5:2 (2.82 AU) and 7:3 (2.95 AU) resonances with Jupiter hold 5 %.
_MAIN_BELT_A = np.array([2.1, 2.48, 2.52, 2.805, 2.845, 2.94, 2.97, 3.3])
_MAIN_BELT_DENSITY = np.array([1.0, 0.05, 1.0, 0.05, 1.0, 0.05, 1.0])


def _rayleigh(rng, sigma: float, upper: float, size: int) -> np.ndarray:
    """Rayleigh(sigma) truncated to [0, upper), by inverting its distribution function."""
    u = rng.random(size)
    return sigma * np.sqrt(-2.0 * np.log1p(-u * -np.expm1(-upper**2 / (2.0 * sigma**2))))


def _jupiter_mean_longitude(epoch_mjd_tt: float) -> float:
    """Jupiter's mean longitude (deg, J2000 ecliptic) from the linear elements of Standish's
    "Keplerian Elements for Approximate Positions of the Major Planets" (JPL, 1800-2050
    table: L = 34.39644051 + 3034.74612775 T, T in Julian centuries from J2000): good to a
    fraction of a degree, plenty for placing synthetic Trojans near L4 and L5."""
    centuries = (epoch_mjd_tt - 51544.5) / 36525.0
    return (34.39644051 + 3034.74612775 * centuries) % 360.0


def synthetic_orbits(n: int, seed: int = 0, epoch_mjd_tt: float = 61000.0) -> pa.Table:
    """A synthetic asteroid population with realistic element and magnitude distributions.

    Populations (:data:`SYNTHETIC_POPULATIONS`): main belt 90 % (a 2.1-3.3 AU with the
    Kirkwood gaps depleted, e Rayleigh sigma 0.08 below 0.35, i Rayleigh sigma 8 deg),
    Hungarias 3 % (a 1.78-2.0, i 16-34 deg), outer main belt 3 % (a 3.3-3.7), near-Earth
    objects 2 % (a 0.8-3.0 AU with q < 1.3 AU, e up to 0.8, i Rayleigh sigma 12 deg),
    Jupiter Trojans 1.5 % (a 5.1-5.3, e < 0.15, i < 35 deg, mean longitude 60 deg ahead of
    or behind Jupiter's, spread 10 deg) and Hildas 0.5 % (a near 3.97 AU, the 3:2
    resonance). Node, argument of perihelion and mean anomaly are uniform (Trojans: the mean
    longitude sets the anomaly). H follows a cumulative power law, N(<H) ~ 10^(0.3 H),
    between 8 and 22; G is 0.15.

    Parameters
    ----------
    n : int
        Number of objects.
    seed : int
        Seed of ``numpy.random.default_rng``: the same seed gives the same table.
    epoch_mjd_tt : float
        Osculation epoch of every orbit (default 61000.0: 2025-11-21, the K25BL epoch).

    Returns
    -------
    pyarrow.Table
        :data:`~xmatch.sso.mpc.readers.ORBIT_SCHEMA`; designations ``S0000001``...,
        ``synthetic`` true, ``source`` ``synthetic``, ``name`` null.
    """
    if n < 0:
        raise InputError(f"n = {n!r} is not allowed; n must be >= 0")
    rng = np.random.default_rng(seed)
    names = list(SYNTHETIC_POPULATIONS)
    population = rng.choice(len(names), size=n, p=list(SYNTHETIC_POPULATIONS.values()))
    a, e, inc = np.empty(n), np.empty(n), np.empty(n)
    node = rng.uniform(0.0, 360.0, n)
    argperi = rng.uniform(0.0, 360.0, n)
    mean_anomaly = rng.uniform(0.0, 360.0, n)

    def fill(name, draw):
        rows = population == names.index(name)
        a[rows], e[rows], inc[rows] = draw(int(rows.sum()))
        return rows

    def main_belt(k):
        widths = np.diff(_MAIN_BELT_A)
        weights = widths * _MAIN_BELT_DENSITY
        piece = rng.choice(len(widths), size=k, p=weights / weights.sum())
        return (_MAIN_BELT_A[piece] + rng.random(k) * widths[piece],
                _rayleigh(rng, 0.08, 0.35, k), _rayleigh(rng, 8.0, 40.0, k))

    def near_earth(k):
        semimajor = rng.uniform(0.8, 3.0, k)
        # q = a (1 - e) < 1.3 AU: e above 1 - 1.3 / a, and at least 0.1.
        low = np.maximum(0.1, 1.0 - 1.3 / semimajor)
        return semimajor, rng.uniform(low, 0.8), _rayleigh(rng, 12.0, 70.0, k)

    fill("main belt", main_belt)
    fill("hungaria", lambda k: (rng.uniform(1.78, 2.0, k), _rayleigh(rng, 0.07, 0.18, k),
                                   rng.uniform(16.0, 34.0, k)))
    fill("outer main belt", lambda k: (rng.uniform(3.3, 3.7, k),
                                          _rayleigh(rng, 0.07, 0.25, k),
                                          _rayleigh(rng, 6.0, 30.0, k)))
    fill("near-earth", near_earth)
    fill("hilda", lambda k: (np.clip(rng.normal(3.97, 0.02, k), 3.9, 4.05),
                                rng.uniform(0.05, 0.3, k), _rayleigh(rng, 8.0, 20.0, k)))
    trojans = fill("jupiter trojan", lambda k: (rng.uniform(5.1, 5.3, k),
                                                   _rayleigh(rng, 0.06, 0.15, k),
                                                   _rayleigh(rng, 12.0, 35.0, k)))
    k = int(trojans.sum())
    longitude = (_jupiter_mean_longitude(epoch_mjd_tt) + rng.choice([60.0, -60.0], k)
                 + rng.normal(0.0, 10.0, k))
    mean_anomaly[trojans] = np.mod(longitude - node[trojans] - argperi[trojans], 360.0)

    alpha, h_min, h_max = 0.3, 8.0, 22.0
    u = rng.random(n)
    h = np.log10(10 ** (alpha * h_min) + u * (10 ** (alpha * h_max) - 10 ** (alpha * h_min)))
    h /= alpha

    width = max(7, len(str(n)))
    numbers = pc.cast(pa.array(np.arange(1, n + 1, dtype=np.int64)), pa.string())
    designation = pc.binary_join_element_wise("S", pc.utf8_lpad(numbers, width, "0"), "")
    epoch = np.full(n, float(epoch_mjd_tt))
    columns = {
        "designation": designation, "name": pa.nulls(n, pa.string()), "epoch_mjd_tt": epoch,
        "q_au": a * (1.0 - e), "e": e, "inc_deg": inc, "node_deg": node,
        "argperi_deg": argperi, "tp_mjd_tt": tp_from_mean_anomaly(epoch, mean_anomaly, a),
        "h_mag": h, "g_slope": np.full(n, DEFAULT_G), "comet_k": np.full(n, math.nan),
        "kind": "asteroid", "synthetic": True, "source": "synthetic",
    }
    return orbit_table(columns, n)
