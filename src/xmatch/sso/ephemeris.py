"""Astrometric positions of solar-system objects at an instant, seen from an MPC site.

Two-body orbits about the Sun (universal variables), light time iterated, topocentric; no
aberration or deflection, so positions compare with catalog-calibrated astrometry (MPC and
JPL 'astrometric' places). Magnitudes: the IAU H, G system for asteroids, H + 5 log delta +
2.5 K log r for comets (MPC CometEls convention).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from xmatch.errors import InputError
from xmatch.kernels.orbits import (
    GM_SUN,
    PLACE_SIZE,
    apparent,
    elements_to_state,
    place_columns,
)
from xmatch.sso.observers import observatory as find_observatory
from xmatch.sso.observers import observer_posvel, sun_posvel
from xmatch.timescales import MJD_RANGE, tdb_mjd

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
        raise InputError(f"orbit {orbits.column('designation')[row].as_py()} (row {row}): "
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


def place_table(objects: pa.Table, places: np.ndarray) -> pa.Table:
    """The answer table (``PLACE_SCHEMA``) from :func:`xmatch.kernels.orbits.apparent`
    output rows and the objects' identities and magnitude parameters (a table with
    ``designation``, ``name``, ``kind``, ``h_mag``, ``g_slope`` and ``comet_k``)."""
    def column(name):
        return objects.column(name).to_numpy(zero_copy_only=False)

    comet = pc.equal(objects.column("kind"), "comet").to_numpy(zero_copy_only=False)
    values = place_columns(places, column("h_mag"), column("g_slope"), column("comet_k"),
                           comet)
    return pa.Table.from_arrays([
        objects.column("designation").cast(pa.string()),
        objects.column("name").cast(pa.string()),
        *(pa.array(values[:, i], from_pandas=True) for i in range(PLACE_SIZE)),
    ], schema=PLACE_SCHEMA)


def positions(orbits: pa.Table, time, observatory: str = "500", *, scale: str = "utc"
              ) -> pa.Table:
    """Astrometric places of every orbit in ``orbits`` at one instant from one MPC site,
    by two-body propagation from each orbit's epoch (accurate within weeks of the epoch;
    use a nightly cache, which integrates the planets' pull, for later nights).

    Parameters
    ----------
    orbits : pyarrow.Table
        As :func:`xmatch.sso.mpc.readers.read_orbits` returns.
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
