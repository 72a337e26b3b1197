"""Positions of the Sun, Moon and planets from JPL's DE421, and their masses.

DE421 (Folkner, Williams & Boggs 2008, JPL IOM 343R-08-003) is read with ``jplephem`` from
the copy ``skyfield-data`` ships, opened once per process (:func:`planets`). Its frame is the
ICRS, its time argument TDB; the file stores kilometres and kilometres per day, converted
here to AU (IAU 2012: 1 au = 149 597 870.7 km, the value skyfield uses too) and AU/day.

Bodies are named in lower case: ``sun``, ``mercury``, ``venus``, ``earth``, ``moon``,
``mars``, ``jupiter``, ``saturn``, ``uranus``, ``neptune``. Mercury, Venus and Mars to
Neptune are the barycentres of their systems (DE421 segments 1, 2, 4 ... 8), as their GMs
are system masses; the Earth (399) and the Moon (301) are separate bodies.
"""

from __future__ import annotations

import atexit
import functools
import importlib.util
from pathlib import Path

import numpy as np
from jplephem.spk import SPK

from xmatch.errors import InputError, out_of_span, unknown_body
from xmatch.kernels.orbits import GM_SUN

#: Kilometres per astronomical unit (IAU 2012 Resolution B2).
AU_KM = 149597870.7
#: MJD = JD - MJD_OFFSET.
MJD_OFFSET = 2400000.5

# GM values of DE421 in AU^3/day^2, as its header constants GM1 ... GM8, GMB and EMRAT give
# them (Folkner et al. 2008, IOM 343R-08-003; the same numbers appear in the DE421 header
# tables of LanlGeoMag's Lgm_JPLeph.h and of Moshier's aa/kep.c). GMS is k^2, equal to
# xmatch.kernels.orbits.GM_SUN. The header's AU is 149597870.6996262 km, 2.5e-12 smaller
# (relatively) than the IAU au used for positions here: a 7e-12 relative change of the GMs,
# far below anything measured.
_GM_EARTH_MOON = 8.997011408268049e-10  # GMB
_EMRAT = 81.3005690699153  # Earth/Moon mass ratio
#: GM (AU^3/day^2) of every body this module knows, DE421's values.
GM = {
    "sun": GM_SUN,
    "mercury": 4.91254957186794e-11,
    "venus": 7.243452332698441e-10,
    "earth": _GM_EARTH_MOON * _EMRAT / (1.0 + _EMRAT),
    "moon": _GM_EARTH_MOON / (1.0 + _EMRAT),
    "mars": 9.54954869562239e-11,
    "jupiter": 2.82534584085505e-07,
    "saturn": 8.459706073308478e-08,
    "uranus": 1.29202482579265e-08,
    "neptune": 1.52435910924974e-08,
}

#: The bodies whose pull on small bodies the n-body integrator includes, in the order of the
#: ``n_planets`` axis of :meth:`Planets.heliocentric_planets` and of :attr:`Planets.gm`.
PERTURBERS = ("mercury", "venus", "earth", "moon", "mars", "jupiter", "saturn", "uranus",
              "neptune")
BODIES = ("sun", *PERTURBERS)

# Each body as a chain of DE421 segments (center, target) summed from the barycentre.
_CHAINS = {
    "sun": ((0, 10),),
    "mercury": ((0, 1),),
    "venus": ((0, 2),),
    "earth": ((0, 3), (3, 399)),
    "moon": ((0, 3), (3, 301)),
    "mars": ((0, 4),),
    "jupiter": ((0, 5),),
    "saturn": ((0, 6),),
    "uranus": ((0, 7),),
    "neptune": ((0, 8),),
}


def de421_path() -> Path:
    """The DE421 file of the installed ``skyfield-data`` package.

    Found without importing the package: ``skyfield_data.get_skyfield_data_path()`` warns
    about its (unused here) Earth-orientation file having expired.
    """
    spec = importlib.util.find_spec("skyfield_data")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the skyfield-data package (which ships de421.bsp) is not "
                                "installed")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "de421.bsp"


class Planets:
    """DE421 positions and velocities of the Sun, Moon and planets.

    Parameters
    ----------
    path : path-like, optional
        A DE421 SPK file; by default the one ``skyfield-data`` ships.

    Notes
    -----
    Every method takes TDB MJD as a scalar or an array and returns arrays of shape
    ``np.shape(tdb_mjd) + (3,)`` (or with an extra planet axis); times outside the file's
    span raise ``ValueError``.
    """

    def __init__(self, path=None):
        self.path = Path(path) if path is not None else de421_path()
        self._kernel = SPK.open(str(self.path))
        segments = [self._kernel[pair] for chain in _CHAINS.values() for pair in chain]
        # The span every segment covers (all DE421 segments share one).
        self.start_mjd = max(s.start_jd for s in segments) - MJD_OFFSET
        self.end_mjd = min(s.end_jd for s in segments) - MJD_OFFSET
        #: GM (AU^3/day^2) of each of :data:`PERTURBERS`, in that order.
        self.gm = np.array([GM[name] for name in PERTURBERS])
        self.gm_sun = GM["sun"]

    def close(self) -> None:
        self._kernel.close()

    def check_times(self, tdb_mjd) -> np.ndarray:
        """``tdb_mjd`` as a float64 array, or ``ValueError`` naming the first time that is not
        finite or outside the span."""
        t = np.asarray(tdb_mjd, dtype=np.float64)
        bad = ~((t >= self.start_mjd) & (t <= self.end_mjd))  # NaN counts as bad
        if bad.any():
            index = int(np.flatnonzero(bad.ravel())[0])
            value = float(t.ravel()[index])
            raise InputError(out_of_span(value, index if t.ndim else None, self.start_mjd,
                                         self.end_mjd))
        return t

    def _posvel_km(self, body: str, t: np.ndarray, velocity: bool):
        try:
            chain = _CHAINS[body]
        except (KeyError, TypeError):
            raise InputError(unknown_body(body, BODIES)) from None
        flat = t.ravel()
        position = np.zeros((3, flat.shape[0]))
        speed = np.zeros((3, flat.shape[0])) if velocity else None
        for pair in chain:
            segment = self._kernel[pair]
            # Whole and fractional parts of the JD kept apart: full precision in the time.
            if velocity:
                p, v = segment.compute_and_differentiate(MJD_OFFSET, flat)
                speed += v
            else:
                p = segment.compute(MJD_OFFSET, flat)
            position += p
        return position, speed

    def barycentric(self, body: str, tdb_mjd) -> np.ndarray:
        """Barycentric ICRS position (AU) of ``body`` at ``tdb_mjd``."""
        t = self.check_times(tdb_mjd)
        position, _ = self._posvel_km(body, t, velocity=False)
        return (position.T / AU_KM).reshape(t.shape + (3,))

    def barycentric_posvel(self, body: str, tdb_mjd) -> tuple[np.ndarray, np.ndarray]:
        """Barycentric ICRS position (AU) and velocity (AU/day) of ``body`` at ``tdb_mjd``."""
        t = self.check_times(tdb_mjd)
        position, speed = self._posvel_km(body, t, velocity=True)
        return ((position.T / AU_KM).reshape(t.shape + (3,)),
                (speed.T / AU_KM).reshape(t.shape + (3,)))

    def earth_barycentric_posvel(self, tdb_mjd) -> tuple[np.ndarray, np.ndarray]:
        """Barycentric ICRS position (AU) and velocity (AU/day) of the geocentre."""
        return self.barycentric_posvel("earth", tdb_mjd)

    def heliocentric_planets(self, tdb_mjd) -> np.ndarray:
        """Positions (AU) of the :data:`PERTURBERS` relative to the Sun, shape
        ``np.shape(tdb_mjd) + (len(PERTURBERS), 3)``."""
        t = self.check_times(tdb_mjd)
        flat = t.ravel()
        sun = self._kernel[_CHAINS["sun"][0]].compute(MJD_OFFSET, flat)
        out = np.empty((flat.size, len(PERTURBERS), 3))
        # Bodies reached through the Earth-Moon barycentre share its segment: read it once.
        cache = {}
        for j, body in enumerate(PERTURBERS):
            position = np.zeros_like(sun)
            for pair in _CHAINS[body]:
                if pair not in cache:
                    cache[pair] = self._kernel[pair].compute(MJD_OFFSET, flat)
                position += cache[pair]
            out[:, j, :] = ((position - sun) / AU_KM).T
        return out.reshape(t.shape + (len(PERTURBERS), 3))


@functools.cache
def planets() -> Planets:
    """The process-wide :class:`Planets` reading the bundled DE421 (opened on first use,
    closed at exit)."""
    ephemeris = Planets()
    atexit.register(ephemeris.close)
    return ephemeris
