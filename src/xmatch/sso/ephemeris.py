"""Astrometric positions of solar-system objects at an instant, seen from an MPC site.

Two-body orbits about the Sun (universal variables), light time iterated, topocentric; no
aberration or deflection, so positions compare with catalog-calibrated astrometry (MPC and
JPL 'astrometric' places). Magnitudes: the IAU H, G system for asteroids, H + 5 log delta +
2.5 K log r for comets (MPC CometEls convention).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from xmatch.kernels.orbits import GM_SUN, apparent, elements_to_state
from xmatch.sso.observers import MJD_RANGE, observer_posvel, sun_posvel, tdb_mjd
from xmatch.sso.observers import observatory as find_observatory

RAD_PER_DAY_TO_ARCSEC_PER_HOUR = np.degrees(1.0) * 3600.0 / 24.0

#: Columns of every SSO answer (direct positions, cache queries, annotation).
PLACE_SCHEMA = pa.schema([
    ("designation", pa.string()),
    ("name", pa.string()),
    ("ra_deg", pa.float64()),
    ("dec_deg", pa.float64()),
    ("distance_au", pa.float64()),
    ("helio_distance_au", pa.float64()),
    ("phase_angle_deg", pa.float64()),
    ("v_mag", pa.float64()),
    ("rate_ra_arcsec_h", pa.float64()),
    ("rate_dec_arcsec_h", pa.float64()),
])


def orbit_states(orbits: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """Heliocentric ICRS states (n, 6) of ``orbits`` at their own epochs, and those epochs
    in TDB MJD (MPC epochs are TT; each distinct epoch is converted once)."""
    def column(name):
        return orbits.column(name).to_numpy(zero_copy_only=False).astype(np.float64)

    epoch_tt = column("epoch_mjd_tt")
    tp_tt = column("tp_mjd_tt")
    if len(epoch_tt) == 0:
        return np.empty((0, 6)), np.empty(0)
    outside = np.flatnonzero(~((epoch_tt >= MJD_RANGE[0]) & (epoch_tt <= MJD_RANGE[1])))
    if len(outside):
        row = int(outside[0])
        raise ValueError(f"orbit {orbits.column('designation')[row].as_py()} (row {row}): "
                         f"epoch MJD {epoch_tt[row]:g} TT is outside {MJD_RANGE[0]:g} to "
                         f"{MJD_RANGE[1]:g}, the span of DE421 the propagation needs")
    unique, inverse = np.unique(epoch_tt, return_inverse=True)
    # TDB - TT is below 2 ms and varies slowly: the offset at the epoch serves tp too.
    offset = (tdb_mjd(unique, "tt") - unique)[inverse]
    epoch = epoch_tt + offset
    states = elements_to_state(column("q_au"), column("e"), column("inc_deg"),
                               column("node_deg"), column("argperi_deg"), tp_tt + offset,
                               epoch)
    return states, epoch


def hg_magnitude(h, g, r_au, delta_au, phase_rad):
    """Apparent V of the IAU H, G system (Bowell et al. 1989)."""
    tan_half = np.tan(np.asarray(phase_rad) / 2.0)
    phi1 = np.exp(-3.33 * tan_half ** 0.63)
    phi2 = np.exp(-1.87 * tan_half ** 1.22)
    return (h + 5.0 * np.log10(r_au * delta_au)
            - 2.5 * np.log10((1.0 - g) * phi1 + g * phi2))


def place_table(objects: pa.Table, places: np.ndarray) -> pa.Table:
    """The answer table (``PLACE_SCHEMA``) from :func:`xmatch.kernels.orbits.apparent`
    output rows and the objects' identities and magnitude parameters (a table with
    ``designation``, ``name``, ``kind``, ``h_mag``, ``g_slope`` and ``comet_k``)."""
    def column(name):
        return objects.column(name).to_numpy(zero_copy_only=False)

    ux, uy, uz = places[:, 0], places[:, 1], places[:, 2]
    ra = np.degrees(np.arctan2(uy, ux)) % 360.0
    dec = np.degrees(np.arcsin(np.clip(uz, -1.0, 1.0)))
    delta, r = places[:, 3], places[:, 4]
    phase = np.arccos(np.clip(places[:, 5], -1.0, 1.0))
    # Rates along the local east and north unit vectors (east includes cos dec).
    ra_rad = np.radians(ra)
    dec_rad = np.radians(dec)
    east = np.stack([-np.sin(ra_rad), np.cos(ra_rad), np.zeros_like(ra_rad)], axis=1)
    north = np.stack([-np.sin(dec_rad) * np.cos(ra_rad), -np.sin(dec_rad) * np.sin(ra_rad),
                      np.cos(dec_rad)], axis=1)
    rate = places[:, 6:9]
    h_mag = column("h_mag").astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        asteroid_v = hg_magnitude(h_mag, column("g_slope").astype(np.float64), r, delta,
                                  phase)
        comet_v = h_mag + 5.0 * np.log10(delta) + 2.5 * column("comet_k").astype(
            np.float64) * np.log10(r)
    v_mag = np.where(column("kind") == "comet", comet_v, asteroid_v)
    return pa.Table.from_arrays([
        objects.column("designation").cast(pa.string()),
        objects.column("name").cast(pa.string()),
        pa.array(ra), pa.array(dec), pa.array(delta), pa.array(r),
        pa.array(np.degrees(phase)), pa.array(v_mag, from_pandas=True),
        pa.array(np.einsum("ij,ij->i", rate, east) * RAD_PER_DAY_TO_ARCSEC_PER_HOUR),
        pa.array(np.einsum("ij,ij->i", rate, north) * RAD_PER_DAY_TO_ARCSEC_PER_HOUR),
    ], schema=PLACE_SCHEMA)


def positions(orbits: pa.Table, time, observatory: str = "500", *, scale: str = "utc"
              ) -> pa.Table:
    """Astrometric places of every orbit in ``orbits`` at one instant from one MPC site,
    by two-body propagation from each orbit's epoch (accurate within weeks of the epoch;
    use a nightly cache, which integrates the planets' pull, for later nights).

    Parameters
    ----------
    orbits : pyarrow.Table
        As :func:`xmatch.sso.orbits.read_orbits` returns.
    time : astropy.time.Time, str or float
        The instant: a ``Time``, an ISO string or an MJD, in ``scale``.
    observatory : str
        MPC observatory code.
    """
    site = find_observatory(observatory)
    t = float(np.ravel(tdb_mjd(time, scale))[0])
    states, epoch = orbit_states(orbits)
    observer, observer_velocity = observer_posvel(site, t)
    sun, sun_velocity = sun_posvel(t)
    places = apparent(states, epoch, t, observer[0], observer_velocity[0], sun[0],
                      sun_velocity[0], GM_SUN)
    return place_table(orbits, places)
