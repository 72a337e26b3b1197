"""Proper motions of indexed rows: what is needed to move each row to another epoch, and how
far any row of a catalog (or partition) can move, which widens searches and routing.

The bounds (:class:`MotionBounds`) are three numbers per partition, computed when the
catalog is loaded and kept in its metadata, so a router or a cone over a store catalog
never reads the rows to know them. The per-row model is :mod:`xmatch.kernels.motion`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from xmatch.errors import length_mismatch
from xmatch.kernels.motion import (
    AU_KM_YEAR_PER_S,
    MAS_TO_RAD,
    max_drift_rad,
    motion_arrays,
    propagate_kernel,
)
from xmatch.sky import coords


@dataclass(frozen=True)
class MotionBounds:
    """The fastest rows of a set: largest total proper motion and largest |radial proper
    motion| (rad/yr), and the range of their reference epochs (Julian years)."""

    mu_max: float
    mu_r_max: float
    epoch0_range: tuple

    @classmethod
    def of(cls, pmra, pmdec, parallax, radial_velocity, epoch0) -> MotionBounds:
        """Bounds of rows given in the catalog's units (mas/yr, mas, km/s, Julian years),
        with the kernel's conventions: a missing proper motion is none, a missing or
        non-positive parallax or missing radial velocity no radial motion."""
        pmra = np.asarray(pmra, np.float64)
        pmdec = np.asarray(pmdec, np.float64)
        epoch0 = np.asarray(epoch0, np.float64)
        if len(pmra) == 0:
            return cls(0.0, 0.0, (math.nan, math.nan))
        mu = np.hypot(pmra, pmdec) * MAS_TO_RAD
        mu = np.where(np.isfinite(mu), mu, 0.0)
        mu_r = np.zeros(len(pmra))
        if parallax is not None and radial_velocity is not None:
            plx = np.asarray(parallax, np.float64)
            rv = np.asarray(radial_velocity, np.float64)
            usable = np.isfinite(plx) & (plx > 0) & np.isfinite(rv)
            mu_r[usable] = np.abs(rv[usable] * plx[usable] * MAS_TO_RAD / AU_KM_YEAR_PER_S)
        known = epoch0[np.isfinite(epoch0)]
        return cls(float(mu.max()), float(mu_r.max()),
                   (float(known.min()), float(known.max())) if len(known)
                   else (math.nan, math.nan))

    @classmethod
    def union(cls, bounds) -> MotionBounds | None:
        bounds = [b for b in bounds if b is not None]
        if not bounds:
            return None
        lows = [b.epoch0_range[0] for b in bounds if np.isfinite(b.epoch0_range[0])]
        highs = [b.epoch0_range[1] for b in bounds if np.isfinite(b.epoch0_range[1])]
        return cls(max(b.mu_max for b in bounds), max(b.mu_r_max for b in bounds),
                   (min(lows), max(highs)) if lows else (math.nan, math.nan))

    def to_dict(self) -> dict:
        return {"mu_max_rad_yr": self.mu_max, "mu_r_max_rad_yr": self.mu_r_max,
                "epoch0_range_jyear": list(self.epoch0_range)}

    @classmethod
    def from_dict(cls, data: dict) -> MotionBounds:
        return cls(float(data["mu_max_rad_yr"]), float(data["mu_r_max_rad_yr"]),
                   tuple(float(v) for v in data["epoch0_range_jyear"]))

    def drift_rad(self, epoch_jyear, indexed_range=None) -> np.ndarray:
        """Upper bound of how far any row moves between its indexed position (at an epoch
        within ``indexed_range``, default its own epoch) and ``epoch_jyear`` (array or
        scalar)."""
        epoch_jyear = np.asarray(epoch_jyear, dtype=np.float64)
        if epoch_jyear.ndim == 1 and len(epoch_jyear) > 1 and \
                epoch_jyear.min() == epoch_jyear[0] == epoch_jyear.max():  # a batch's epoch
            return np.full(len(epoch_jyear),
                           float(self.drift_rad(epoch_jyear[0], indexed_range)))
        e0_lo, e0_hi = self.epoch0_range
        if not np.isfinite(e0_lo):  # no row: nothing moves
            return np.zeros_like(epoch_jyear)
        lo, hi = indexed_range if indexed_range is not None else self.epoch0_range
        span = np.maximum(np.abs(epoch_jyear - lo), np.abs(epoch_jyear - hi))
        tau = np.maximum.reduce([np.abs(epoch_jyear - e0_lo), np.abs(epoch_jyear - e0_hi),
                                 np.full_like(epoch_jyear, max(abs(hi - e0_lo),
                                                               abs(lo - e0_hi)))])
        return max_drift_rad(self.mu_max, self.mu_r_max, tau, span)

    def drift_arcsec(self, epoch_jyear: float) -> float:
        """How far any row can move between its own epoch and ``epoch_jyear``."""
        return float(self.drift_rad(float(epoch_jyear))) * 180.0 * 3600.0 / math.pi


#: Rows per block where every row's motion is computed a block at a time.
BLOCK_ROWS = 1 << 20


@dataclass(frozen=True)
class Motion:
    """What is needed to move each indexed row to another epoch."""

    vectors: np.ndarray      # (n, 7): unit vector and motion at epoch0, rad and rad/yr
    epoch0: np.ndarray       # (n,) Julian years of each row's astrometry
    bounds: MotionBounds

    @classmethod
    def of(cls, ra_deg, dec_deg, pmra, pmdec, parallax, radial_velocity, epoch0) -> Motion:
        return cls.from_vectors(
            motion_arrays(ra_deg, dec_deg, pmra, pmdec, parallax, radial_velocity), epoch0)

    @classmethod
    def from_vectors(cls, vectors: np.ndarray, epoch0) -> Motion:
        """The motion of rows whose ``motion[n, 7]`` is made (:func:`motion_arrays`); the
        bounds are taken a block of rows at a time, without temporaries of every row."""
        epoch0 = np.ascontiguousarray(epoch0, dtype=np.float64)
        if not len(vectors):
            return cls(vectors, epoch0, MotionBounds(0.0, 0.0, (0.0, 0.0)))
        mu_max = mu_r_max = 0.0
        for start in range(0, len(vectors), BLOCK_ROWS):
            block = vectors[start:start + BLOCK_ROWS]
            mu_max = max(mu_max, float(np.sqrt(np.sum(block[:, 3:6] ** 2, axis=1)).max()))
            mu_r_max = max(mu_r_max, float(np.abs(block[:, 6]).max()))
        return cls(vectors, epoch0, MotionBounds(
            mu_max, mu_r_max, (float(epoch0.min()), float(epoch0.max()))))

    def take(self, rows: np.ndarray) -> Motion:
        return replace(self, vectors=np.ascontiguousarray(self.vectors[rows]),
                       epoch0=np.ascontiguousarray(self.epoch0[rows]))

    def drift_rad(self, epoch_jyear, indexed_range) -> np.ndarray:
        return self.bounds.drift_rad(epoch_jyear, indexed_range)


def propagate(ra, dec, pmra, pmdec, from_epoch, to_epoch, parallax=None, radial_velocity=None):
    """Positions (ra_deg, dec_deg) moved from ``from_epoch`` to ``to_epoch`` (Julian years
    or astropy Time) with the model of :mod:`xmatch.kernels.motion`.

    ``pmra`` is mu_alpha* (mas/yr), ``pmdec`` mas/yr, ``parallax`` mas, ``radial_velocity``
    km/s (numbers in those units, or Quantities); NaN proper motions leave a position where
    it is.
    """
    ra_deg, dec_deg, _ = coords.positions(ra, dec)
    n = len(ra_deg)
    import astropy.units as u

    values = {"pmra": (pmra, u.mas / u.yr), "pmdec": (pmdec, u.mas / u.yr),
              "parallax": (parallax, u.mas), "radial_velocity": (radial_velocity, u.km / u.s)}
    arrays = {}
    for name, (value, unit) in values.items():
        if value is None:
            continue
        array = np.asarray(value.to_value(unit) if getattr(value, "unit", None) is not None
                           else value, dtype=np.float64)
        array = np.full(n, float(array)) if array.ndim == 0 else array
        if array.shape != (n,):
            from xmatch.errors import InputError

            raise InputError(length_mismatch({"positions": n, name: array.size}))
        arrays[name] = np.ascontiguousarray(array)
    motion = motion_arrays(ra_deg, dec_deg, arrays["pmra"], arrays["pmdec"],
                           arrays.get("parallax"), arrays.get("radial_velocity"))
    xyz = np.empty((n, 3))
    propagate_kernel(motion, coords.epochs(from_epoch, n), coords.epochs(to_epoch, n), xyz)
    return radec_deg(xyz)


def radec_deg(xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ra, dec) in degrees of unit vectors (n, 3)."""
    return (np.degrees(np.arctan2(xyz[:, 1], xyz[:, 0])) % 360.0,
            np.degrees(np.arcsin(np.clip(xyz[:, 2], -1.0, 1.0))))
