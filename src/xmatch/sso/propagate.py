"""N-body propagation of small-body states among the DE421 planets.

:func:`propagate_states` carries heliocentric ICRS states (AU, AU/day) from their epochs to
one target time with the Wisdom-Holman integrator of :mod:`xmatch.kernels.nbody`: Kepler
drifts about the Sun, kicks from Mercury, Venus, the Earth, the Moon, Mars and the Jupiter to
Neptune system barycentres (positions and GMs from DE421, :mod:`xmatch.sso.planets`).
Newtonian point masses only: no relativity, no asteroid perturbers, no non-gravitational
forces.

Accuracy (``benchmarks/check_nbody.py``, 3 years, against REBOUND/IAS15 started from the
same states and planets, angles seen from the geocentre): with the default 2-day step, the
22,304 orbits of the MPCORB excerpt differ by at most 0.075" (median 0.002"); 1-day steps
give 0.02", 4-day steps 0.3". No symplectic corrector is needed at that level.

Encounters. A fixed step cannot follow a close planetary encounter, so a particle whose step
exceeded 1/1000 of a planet's dynamical time sqrt(d^3 / GM_p) at its closest approach d
(0.15 AU from the Earth, 0.07 AU from Mars, 1.0 AU from Jupiter with 2-day steps) is
integrated again, from its epoch, with a step 16 times shorter, and once more 16 times
shorter still if that pass also came that close. Of the 20,060 NEAs, six then differ from
REBOUND by more than 1" (at most 6"): five passed within 0.03 AU of a planet and agree with
our own 1/256-day integration to 0.02", so REBOUND's planets (which drift some 150 km from
DE421 for the Earth and Moon in three years) make the difference; one is a 1.06" step error
seen from 0.34 AU. A particle that passed closer than ``close_approach_au`` (0.01 AU) to a
perturber is flagged: such orbits are chaotic enough that the initial orbit, more than the
integrator, limits them.

Refinement integrates the whole span again with the shorter step instead of substepping the
encounter alone, because changing a Wisdom-Holman step in mid-flight moves the particle from
one shadow orbit of the map to another: substepping 16-fold only while within 0.073 AU of
Mars (a passage at 0.065 AU, 2-day steps) left a main-belt orbit 280 km off after 2.3 years,
against 0.1 km with either step kept throughout. The price is the whole span again for the
particles concerned: over 3 years 2,603 of the 20,060 NEAs are refined once and 118 twice
(the NEA run takes about 5 times as long as without refinement), 21 of 22,304 main-belt
orbits once. The number refined grows with the span, so the cost of refinement grows as
its square.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from xmatch.errors import InputError, bad_epochs, bad_states, not_finite, out_of_range
from xmatch.kernels.nbody import _wh_kernel
from xmatch.sso.planets import Planets, planets

#: Default step (days). See ``benchmarks/check_nbody.py`` for its accuracy against REBOUND.
DEFAULT_STEP_DAYS = 2.0
#: Default close-approach radius (AU) of the returned flag, the same for every perturber.
DEFAULT_CLOSE_AU = 0.01
#: Encounter refinement: a particle whose step exceeded REFINE_TIDAL_FRACTION of
#: sqrt(d^3 / GM_p) at its closest approach d to a perturber p is integrated again with a step
#: REFINE_FACTOR times shorter, at most REFINE_LEVELS times. See :func:`_integrate`.
REFINE_TIDAL_FRACTION = 1e-3
REFINE_FACTOR = 16
REFINE_LEVELS = 2
#: Particles integrated per pass (the unit of progress reporting and of the working memory).
CHUNK_SIZE = 65536
#: Longest stretch of steps one kernel call covers (its perturber table: 240 bytes a step).
MAX_TABLE_ROWS = 1 << 16
#: Most particles handed to a thread at a time.
_PARALLEL_BATCH = 256


def propagate_states(states, epoch_tdb_mjd, target_tdb_mjd: float, *,
                     step_days: float = DEFAULT_STEP_DAYS,
                     close_approach_au: float = DEFAULT_CLOSE_AU,
                     progress: bool = False,
                     ephemeris: Planets | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Carry heliocentric states to ``target_tdb_mjd`` under the Sun and the planets.

    Parameters
    ----------
    states : array_like, shape (n, 6)
        Heliocentric ICRS ``[x, y, z, vx, vy, vz]`` (AU, AU/day) at the epochs.
    epoch_tdb_mjd : float or array_like, shape (n,)
        Epoch (TDB MJD) of each state, or one epoch for all.
    target_tdb_mjd : float
        Target time (TDB MJD); before or after the epochs.
    step_days : float, optional
        Integrator step. A particle whose epoch is not on the grid ``target + k * step_days``
        takes one shorter first step onto it. Particles that pass close to a planet are
        integrated again with steps 16 and 256 times shorter (see the module notes).
    close_approach_au : float, optional
        A particle passing closer than this to a perturber is flagged.
    progress : bool, optional
        Show a progress bar (tqdm) over chunks of particles.
    ephemeris : Planets, optional
        The planetary ephemeris; by default the bundled DE421 (:func:`planets`).

    Returns
    -------
    states_at_target : ndarray, shape (n, 6)
        Heliocentric ICRS states at ``target_tdb_mjd``.
    close_approach : ndarray of bool, shape (n,)
        Whether the particle came within ``close_approach_au`` of a perturber (in its
        finest integration, the relative position interpolated linearly between kicks). The
        integration itself is refined for such encounters; the flag says that the orbit
        went through one, which amplifies any error of the initial orbit and of the model.

    Raises
    ------
    ValueError
        Wrong shapes, non-finite values, a non-positive step, or a time outside DE421.
    """
    eph = planets() if ephemeris is None else ephemeris
    states = np.asarray(states, dtype=np.float64)
    if states.ndim != 2 or states.shape[1] != 6:
        raise InputError(bad_states(states.shape))
    n = states.shape[0]
    epoch = np.asarray(epoch_tdb_mjd, dtype=np.float64)
    if epoch.ndim == 0:
        epoch = np.full(n, float(epoch))
    elif epoch.shape != (n,):
        raise InputError(bad_epochs(epoch.shape, n))
    if not (isinstance(step_days, int | float | np.floating | np.integer)
            and math.isfinite(step_days) and step_days > 0):
        raise InputError(out_of_range("step_days", step_days, None, "a finite number > 0"))
    if not (isinstance(close_approach_au, int | float | np.floating | np.integer)
            and math.isfinite(close_approach_au) and close_approach_au >= 0):
        raise InputError(out_of_range("close_approach_au", close_approach_au, None,
                                      "a finite number >= 0"))
    finite = np.isfinite(states).all(axis=1)
    if not finite.all():
        raise InputError(not_finite("states", int(np.flatnonzero(~finite)[0])))
    eph.check_times(epoch)
    target = float(eph.check_times(float(target_tdb_mjd)))
    if n == 0:
        return np.empty((0, 6)), np.zeros(0, dtype=bool)

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=n, unit="orbit", desc="n-body")
    try:
        return _integrate(states, epoch, target, float(step_days), float(close_approach_au),
                          eph, bar)
    finally:
        if bar is not None:
            bar.close()


def _refine_radius_au(gm: np.ndarray, step: float) -> np.ndarray:
    """Per perturber, the distance within which a step of ``step`` days is too coarse:
    where the step exceeds REFINE_TIDAL_FRACTION of the planet's dynamical time
    sqrt(d^3 / GM_p) at distance d."""
    return np.cbrt(gm * (step / REFINE_TIDAL_FRACTION) ** 2)


def _integrate(states, epoch, target, dt, close_au, eph, bar=None):
    """Everything behind :func:`propagate_states`, on validated input.

    A first pass with step ``dt``; particles that came within :func:`_refine_radius_au` of a
    perturber are integrated again from their epochs with a step ``REFINE_FACTOR`` times
    shorter, up to ``REFINE_LEVELS`` times. Returns the states at ``target`` and the
    close-approach flags (distance below ``close_au`` in the finest pass of the particle).
    """
    n = states.shape[0]
    gm = np.ascontiguousarray(eph.gm, dtype=np.float64)
    out = np.empty((n, 6))
    close = np.zeros(n, dtype=bool)
    refine = np.zeros(n, dtype=bool)
    for lo in range(0, n, CHUNK_SIZE):
        hi = min(n, lo + CHUNK_SIZE)
        out[lo:hi], closest = _integrate_segments(states[lo:hi], epoch[lo:hi], target, dt, eph)
        close[lo:hi] = (closest < close_au).any(axis=1)
        refine[lo:hi] = (closest < _refine_radius_au(gm, dt)).any(axis=1)
        if bar is not None:
            bar.update(hi - lo)
    step = dt
    which = np.arange(n)
    for _ in range(REFINE_LEVELS):
        which = which[refine[which]]
        if which.shape[0] == 0:
            break
        step /= REFINE_FACTOR
        if bar is not None:
            bar.total += which.shape[0]
            bar.refresh()
        for lo in range(0, which.shape[0], CHUNK_SIZE):
            rows = which[lo:lo + CHUNK_SIZE]
            out[rows], closest = _integrate_segments(states[rows], epoch[rows], target, step,
                                                     eph)
            close[rows] = (closest < close_au).any(axis=1)
            refine[rows] = (closest < _refine_radius_au(gm, step)).any(axis=1)
            if bar is not None:
                bar.update(rows.shape[0])
    return out, close


def _integrate_segments(states, epoch, target, dt, eph):
    """:func:`_integrate_once`, in stretches of at most ``MAX_TABLE_ROWS`` steps so that the
    perturber table stays small however fine the step: particles stop at intermediate grid
    points (multiples of the stretch from ``target``) and go on from there. The result is
    the uninterrupted integration's, up to rounding (two half kicks at a stop instead of one
    whole kick)."""
    span = np.abs(target - epoch).max(initial=0.0)
    stretch = MAX_TABLE_ROWS * dt
    if span <= stretch:
        return _integrate_once(states, epoch, target, dt, eph)
    states = states.copy()
    epoch = epoch.copy()
    closest = np.full((states.shape[0], eph.gm.shape[0]), np.inf)
    for k in range(int(math.ceil(span / stretch)) - 1, 0, -1):
        for stop in (target - k * stretch, target + k * stretch):
            # Particles on the far side of this stop walk up to it.
            going = (epoch < stop) if stop < target else (epoch > stop)
            if going.any():
                rows = np.flatnonzero(going)
                states[rows], part = _integrate_once(states[rows], epoch[rows], stop, dt, eph)
                epoch[rows] = stop
                closest[rows] = np.minimum(closest[rows], part)
    out, part = _integrate_once(states, epoch, target, dt, eph)
    return out, np.minimum(closest, part)


def _integrate_once(states, epoch, target, dt, eph):
    """One call of the Wisdom-Holman kernel: states at ``target`` and the closest distance
    (AU) of each particle to each perturber."""
    n = states.shape[0]
    span = target - epoch
    direction = np.where(span < 0, -1.0, 1.0)
    n_steps = np.floor(np.abs(span) / dt).astype(np.int64)
    first_step = span - direction * n_steps * dt
    step = direction * dt

    # Grid point j (time target + j dt) is row zero_row + j; the distinct epochs follow.
    back = int(n_steps[direction > 0].max(initial=0))  # forwards: rows below zero_row
    ahead = int(n_steps[direction < 0].max(initial=0))
    zero_row = back
    grid = target + np.arange(-back, ahead + 1) * dt
    epochs, epoch_index = np.unique(epoch, return_inverse=True)
    planet_pos = np.ascontiguousarray(eph.heliocentric_planets(np.concatenate([grid, epochs])))
    gm = np.ascontiguousarray(eph.gm, dtype=np.float64)
    r3 = np.linalg.norm(planet_pos, axis=2) ** 3
    indirect = np.ascontiguousarray(np.einsum("p,tpk->tk", gm, planet_pos / r3[:, :, None]))
    start_row = (grid.shape[0] + epoch_index).astype(np.int64)

    out = np.empty((n, 6))
    closest = np.empty((n, gm.shape[0]))
    # Particles with different epochs take different numbers of steps: hand them out to the
    # threads in small batches rather than in static halves.
    batch = max(1, min(_PARALLEL_BATCH, n // (8 * numba.get_num_threads())))
    with numba.parallel_chunksize(batch):
        _wh_kernel(np.ascontiguousarray(states), start_row, first_step, n_steps, step,
                   zero_row, planet_pos, indirect, gm, float(eph.gm_sun), out, closest)
    return out, closest
