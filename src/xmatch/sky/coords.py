"""Positions, radii and epochs from what users hand us (numpy, astropy ``SkyCoord``,
``Quantity``, ``Time``), validated once, here, with messages that say what is allowed."""

from __future__ import annotations

import numpy as np

from xmatch.errors import length_mismatch, out_of_range

MAX_RADIUS_ARCSEC = 180.0 * 3600.0
RA_ALLOWED = "finite and within 0..360 deg"
DEC_ALLOWED = "finite and within -90..90 deg"
RADIUS_ALLOWED = "finite and within 0..180 deg (0..648000 arcsec)"
EPOCH_ALLOWED = "a finite Julian year (e.g. 2016.0) or an astropy Time"


def _first_bad(values: np.ndarray, good: np.ndarray):
    """(first bad value, its position; None for a scalar)."""
    index = int(np.flatnonzero(np.atleast_1d(~good))[0])
    return values.flat[index].item(), (index if values.ndim > 0 and values.size > 1 else None)


def _degrees(values) -> np.ndarray:
    """Plain float64 degrees from numbers (taken as degrees) or angle Quantities."""
    if hasattr(values, "unit"):
        import astropy.units as u

        values = values.to_value(u.deg)
    return np.atleast_1d(np.asarray(values, dtype=np.float64))


def check_radec(ra: np.ndarray, dec: np.ndarray) -> None:
    if ra.shape != dec.shape:
        raise ValueError(length_mismatch({"ra": len(ra), "dec": len(dec)}))
    good = np.isfinite(ra) & (ra >= 0) & (ra <= 360)
    if not good.all():
        raise ValueError(out_of_range("ra", *_first_bad(ra, good), RA_ALLOWED))
    good = np.isfinite(dec) & (np.abs(dec) <= 90)
    if not good.all():
        raise ValueError(out_of_range("dec", *_first_bad(dec, good), DEC_ALLOWED))


def positions(coords, dec=None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(ra_deg, dec_deg, epoch_jyear or None) of query positions.

    ``coords`` is a ``SkyCoord`` (any frame, converted to ICRS; its ``obstime`` becomes the
    epoch), or right ascensions with ``dec`` given separately (numbers in degrees or angle
    Quantities, scalars or arrays).
    """
    epoch = None
    if dec is None:
        from astropy.coordinates import SkyCoord

        if not isinstance(coords, SkyCoord):
            raise TypeError("give positions as a SkyCoord, or as ra and dec (degrees or "
                            "angle Quantities)")
        if coords.obstime is not None:
            epoch = epochs(coords.obstime, coords.size if not coords.isscalar else 1)
        icrs = coords.icrs
        ra, dec = _degrees(icrs.ra), _degrees(icrs.dec)
    else:
        ra, dec = _degrees(coords), _degrees(dec)
    if ra.ndim != 1 or dec.ndim != 1:
        raise ValueError("positions must be scalars or one-dimensional arrays")
    check_radec(ra, dec)
    return np.ascontiguousarray(ra), np.ascontiguousarray(dec), epoch


def radii_arcsec(radius, n: int) -> np.ndarray:
    """Per-query radii in arcsec from a number (arcsec), an angle Quantity, or an array."""
    if hasattr(radius, "unit"):
        import astropy.units as u

        radius = radius.to_value(u.arcsec)
    values = np.asarray(radius, dtype=np.float64)
    if values.ndim != 0 and values.shape != (n,):
        raise ValueError(length_mismatch({"positions": n, "radius": values.size}))
    good = np.isfinite(values) & (values >= 0) & (values <= MAX_RADIUS_ARCSEC)
    if not good.all():
        raise ValueError(out_of_range("radius", *_first_bad(values, good), RADIUS_ALLOWED))
    return np.full(n, float(values)) if values.ndim == 0 else values


def epochs(epoch, n: int) -> np.ndarray | None:
    """Per-query epochs in Julian years (None stays None) from numbers or astropy Time."""
    if epoch is None:
        return None
    if hasattr(epoch, "jyear"):
        epoch = epoch.tdb.jyear
    values = np.asarray(epoch, dtype=np.float64)
    if values.ndim != 0 and values.shape != (n,):
        raise ValueError(length_mismatch({"positions": n, "epoch": values.size}))
    good = np.isfinite(values)
    if not good.all():
        raise ValueError(out_of_range("epoch", *_first_bad(values, good), EPOCH_ALLOWED))
    return np.full(n, float(values)) if values.ndim == 0 else values
