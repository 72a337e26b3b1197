"""Positions, radii and epochs from whatever users hand us, validated once, here.

Every face (Python API, CLI, server, router, regions, alert decoding, table readers) reads
positions through this module, so a value is accepted or refused the same way everywhere:

* positions: numbers in degrees; numpy arrays, lists, astropy ``Column`` / ``MaskedColumn``
  (with or without a unit), ``Quantity``, ``Angle``, ``SkyCoord`` (any frame, converted to
  ICRS; its ``obstime`` becomes the epoch), pandas ``Series``, pyarrow arrays; strings in
  degrees or sexagesimal (right ascension in hours when written ``hh:mm:ss`` or ``hh mm
  ss``, as catalogs write it; any explicit unit such as ``10h20m`` or ``12d30m``).
  A missing value (null, masked, NaN, empty string) or one outside 0..360 / -90..90 is an
  :class:`~xmatch.errors.InputError` naming its position: never a default.
* radii: numbers in arcsec (the parameter is named ``radius_arcsec``) or angle Quantities;
  finite and > 0. From text (the CLI), a unit is required: ``2arcsec``, ``1.5arcmin``.
* epochs: Julian years or astropy ``Time``.
"""

from __future__ import annotations

import math
import re

import numpy as np

from xmatch.errors import InputError, length_mismatch, missing_value, out_of_range

MAX_RADIUS_ARCSEC = 180.0 * 3600.0
RA_ALLOWED = "finite and within 0..360 deg"
DEC_ALLOWED = "finite and within -90..90 deg"
RADIUS_ALLOWED = "finite, above 0 and at most 180 deg (648000 arcsec)"
EPOCH_ALLOWED = "a finite Julian year (e.g. 2016.0) or an astropy Time"
ANGLE_EXAMPLES = "e.g. 5arcsec, 1.5arcmin, 0.1deg"

#: A sexagesimal string without units: "12:34:56.7", "-12 34 56", "12 34".
_SEXAGESIMAL = re.compile(r"^\s*[+-]?\d+(?:[:\s]+\d+(?:\.\d*)?){1,2}\s*$")


def _first_bad(values: np.ndarray, good: np.ndarray):
    """(first bad value, its position; None for a scalar)."""
    index = int(np.flatnonzero(np.atleast_1d(~good))[0])
    return values.flat[index].item(), (index if values.ndim > 0 and values.size > 1 else None)


def _module(value) -> str:
    return type(value).__module__.split(".")[0]


def parse_angles(values, kind: str) -> tuple[np.ndarray, np.ndarray, list]:
    """Degrees of ``values`` (``kind`` ``'ra'`` or ``'dec'``: how unitless sexagesimal is
    read, hours for ra), with the mask of values that are missing or cannot be read, and
    the text of each (for messages). Range is not checked here."""
    module = _module(values)
    if module == "pyarrow":
        import pyarrow as pa

        if isinstance(values, pa.ChunkedArray):
            values = values.combine_chunks()
        missing = values.is_null().to_numpy(zero_copy_only=False)
        if pa.types.is_floating(values.type) or pa.types.is_integer(values.type) or \
                pa.types.is_decimal(values.type):
            degrees = values.cast(pa.float64()).fill_null(np.nan).to_numpy(zero_copy_only=False)
            return _finite_or_missing(degrees, missing)
        values = np.array(values.to_pylist(), dtype=object)
        return _parse_objects(values, kind, missing)
    if module == "pandas":
        import pandas as pd

        missing = np.asarray(pd.isna(values))
        values = values.to_numpy(dtype=object)
        return _parse_objects(values, kind, missing)
    if module == "astropy" and hasattr(values, "unit"):  # Quantity, Angle, Column
        import astropy.units as u

        mask = np.ma.getmaskarray(values) if np.ma.isMaskedArray(values) else None
        unit = values.unit
        if unit is not None and unit != u.dimensionless_unscaled:
            try:
                data = (values.quantity if hasattr(values, "quantity") else values)
                degrees = np.asarray(np.ma.getdata(data.to_value(u.deg)), np.float64)
            except u.UnitsError:
                raise InputError(f"{kind} has unit {unit}, not an angle") from None
            return _finite_or_missing(np.atleast_1d(degrees), mask)
        values = np.ma.getdata(values) if mask is not None else values
        array = np.atleast_1d(np.asarray(values))
        if mask is None:
            mask = np.zeros(array.shape, bool)
        return _parse_array(array, kind, np.atleast_1d(mask))
    if np.ma.isMaskedArray(values):
        return _parse_array(np.atleast_1d(np.ma.getdata(values)), kind,
                            np.atleast_1d(np.ma.getmaskarray(values)))
    array = np.atleast_1d(np.asarray(values, dtype=object if isinstance(values, list)
                                     and any(isinstance(v, str) for v in values) else None))
    return _parse_array(array, kind, np.zeros(array.shape, bool))


def _parse_array(array: np.ndarray, kind: str, missing: np.ndarray):
    if array.dtype.kind in "fiub":
        return _finite_or_missing(array.astype(np.float64, copy=False), missing)
    return _parse_objects(array.astype(object), kind, missing)


def _finite_or_missing(degrees: np.ndarray, missing: np.ndarray | None):
    degrees = np.asarray(degrees, np.float64)
    bad = ~np.isfinite(degrees)
    if missing is not None:
        bad |= missing
        degrees = np.where(missing, np.nan, degrees)
    return degrees, bad, degrees


def _parse_objects(values: np.ndarray, kind: str, missing: np.ndarray):
    """Numbers, numeric strings and sexagesimal strings (row by row only for the strings
    that are not plain numbers)."""
    degrees = np.full(values.shape, np.nan)
    bad = missing.copy()
    for i in np.flatnonzero(~missing):
        value = values[i]
        if isinstance(value, bytes):
            value = value.decode("utf-8", errors="replace")
        if isinstance(value, str):
            degrees[i] = _angle_of_text(value, kind)
        elif value is None:
            bad[i] = True
        else:
            try:
                degrees[i] = float(value)
            except (TypeError, ValueError):
                degrees[i] = np.nan
        bad[i] = bad[i] or not np.isfinite(degrees[i])
    return degrees, bad, values


def _angle_of_text(text: str, kind: str) -> float:
    """Degrees of one string: a plain number (degrees), unitless sexagesimal (hours for ra,
    degrees for dec), or an angle with units ('10h20m30s', '-12d30m', '12.5deg');
    NaN when it is none of these (empty, 'abc', 'nan')."""
    stripped = text.strip()
    if not stripped:
        return np.nan
    try:
        value = float(stripped)
        return value if np.isfinite(value) else np.nan
    except ValueError:
        pass
    from astropy.coordinates import Angle

    try:
        if _SEXAGESIMAL.match(stripped):
            import astropy.units as u

            unit = u.hourangle if kind == "ra" else u.deg
            return float(Angle(stripped.replace(" ", ":").replace("::", ":"),
                               unit=unit).deg)
        return float(Angle(stripped).deg)
    except (ValueError, TypeError, ArithmeticError):
        return np.nan
    except Exception:  # noqa: BLE001 (astropy's unit parser raises its own kinds)
        return np.nan


def angles(values, kind: str) -> np.ndarray:
    """Degrees of ``values`` (see :func:`parse_angles`), every one present and readable,
    else an :class:`InputError` naming the first that is not."""
    degrees, bad, raw = parse_angles(values, kind)
    if bad.any():
        index = int(np.flatnonzero(bad)[0])
        where = f" (at position {index})" if degrees.size > 1 else ""
        value = raw[index] if raw is not degrees else degrees[index]
        if _is_missing(value):
            raise InputError(f"{missing_value(kind)}{where}")
        if not isinstance(value, str | bytes):  # a number, not finite
            allowed = RA_ALLOWED if kind == "ra" else DEC_ALLOWED
            raise InputError(out_of_range(kind, float(value), index if degrees.size > 1
                                          else None, allowed))
        raise InputError(f"{kind} = {_shown(value)}{where} is not an angle; give degrees "
                         "(56.75) or sexagesimal ('03:47:00' hours for ra, '+24:07:00' "
                         "degrees for dec)")
    return degrees


def _is_missing(value) -> bool:
    if value is None:
        return True
    if isinstance(value, str | bytes):
        return not value.strip()
    try:
        return bool(np.isnan(value))
    except TypeError:
        return False


def _shown(value) -> str:
    if isinstance(value, np.generic):
        value = value.item()
    return repr(value)


def check_radec(ra: np.ndarray, dec: np.ndarray) -> None:
    if ra.shape != dec.shape:
        raise InputError(length_mismatch({"ra": len(ra), "dec": len(dec)}))
    good = np.isfinite(ra) & (ra >= 0) & (ra <= 360)
    if not good.all():
        raise InputError(out_of_range("ra", *_first_bad(ra, good), RA_ALLOWED))
    good = np.isfinite(dec) & (np.abs(dec) <= 90)
    if not good.all():
        raise InputError(out_of_range("dec", *_first_bad(dec, good), DEC_ALLOWED))


_NUMBERS = (float, int, np.floating, np.integer)


def _is_skycoord(value) -> bool:
    return _module(value) == "astropy" and hasattr(value, "icrs") and hasattr(value, "frame")


def _plain_number(value) -> bool:
    return isinstance(value, _NUMBERS) and not isinstance(value, bool | np.bool_)


def positions(ra, dec=None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(ra_deg, dec_deg, epoch_jyear or None) of query positions.

    ``ra`` is a ``SkyCoord`` (any frame, converted to ICRS; its ``obstime`` becomes the
    epoch) and ``dec`` None, or right ascensions with their declinations in ``dec`` (see
    the module docstring for what they may be).
    """
    if _plain_number(ra) and _plain_number(dec):  # one position in degrees: the cone case
        ra, dec = float(ra), float(dec)
        if 0.0 <= ra <= 360.0 and -90.0 <= dec <= 90.0:  # NaN fails both
            return np.array([ra]), np.array([dec]), None
    epoch = None
    if dec is not None and _is_skycoord(ra):
        raise InputError("positions are a SkyCoord alone or ra and dec, not a SkyCoord and "
                         "a declination")
    if dec is None:
        if _module(ra) == "astropy" and hasattr(ra, "icrs"):
            if ra.obstime is not None:
                epoch = epochs(ra.obstime, ra.size if not ra.isscalar else 1)
            icrs = ra.icrs
            ra_deg = angles(icrs.ra, "ra")
            dec_deg = angles(icrs.dec, "dec")
        else:
            raise InputError("give positions as a SkyCoord, or as ra and dec (degrees, "
                             "sexagesimal strings or angle Quantities)")
    else:
        ra_deg, dec_deg = angles(ra, "ra"), angles(dec, "dec")
    if ra_deg.ndim != 1 or dec_deg.ndim != 1:
        raise InputError("positions must be scalars or one-dimensional arrays")
    check_radec(ra_deg, dec_deg)
    return np.ascontiguousarray(ra_deg), np.ascontiguousarray(dec_deg), epoch


def radii_arcsec(radius, n: int) -> np.ndarray:
    """Per-query radii in arcsec from a number (arcsec), an angle Quantity, or one per
    query; each finite and above 0."""
    if hasattr(radius, "unit") and radius.unit is not None:
        import astropy.units as u

        try:
            radius = radius.to_value(u.arcsec)
        except u.UnitsError:
            raise InputError(f"radius has unit {radius.unit}, not an angle "
                             f"({ANGLE_EXAMPLES})") from None
    try:
        values = np.asarray(radius, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"radius = {radius!r} is not a number of arcsec or an angle "
                         f"Quantity ({ANGLE_EXAMPLES})") from None
    if values.ndim != 0 and values.shape != (n,):
        raise InputError(length_mismatch({"positions": n, "radius": values.size}))
    good = np.isfinite(values) & (values > 0) & (values <= MAX_RADIUS_ARCSEC)
    if not good.all():
        raise InputError(out_of_range("radius_arcsec", *_first_bad(values, good),
                                      RADIUS_ALLOWED))
    return np.full(n, float(values)) if values.ndim == 0 else values


def radius_arcsec(radius) -> float:
    """One radius in arcsec (see :func:`radii_arcsec`)."""
    if _plain_number(radius) and 0.0 < radius <= MAX_RADIUS_ARCSEC:  # NaN fails
        return float(radius)
    return float(radii_arcsec(radius, 1)[0])


def position_angle_deg(value) -> float:
    """A position angle in degrees east of north, from a number (degrees) or an angle
    Quantity."""
    if _plain_number(value) and math.isfinite(value):
        return float(value)
    if hasattr(value, "unit") and hasattr(value, "to_value"):
        import astropy.units as u

        try:
            degrees = float(value.to_value(u.deg))
        except (u.UnitsError, TypeError, ValueError):
            degrees = math.nan
        if math.isfinite(degrees):
            return degrees
    raise InputError(f"position angle {_shown(value)} is not an angle; give degrees east of "
                     "north (a number) or an angle Quantity")


def radius_of_text(text: str) -> float:
    """Arcsec of a radius written with its unit: '5arcsec', '1.5 arcmin', '0.1deg', '3"',
    "2'"; a bare number is refused (which unit would it be?)."""
    import astropy.units as u

    cleaned = text.strip().replace('"', "arcsec").replace("'", "arcmin")
    try:
        float(cleaned)
    except ValueError:
        pass
    else:
        raise InputError(f"radius '{text}' has no unit; write {text.strip()}arcsec, "
                         f"{text.strip()}arcmin or {text.strip()}deg")
    try:
        quantity = u.Quantity(cleaned)
        value = quantity.to_value(u.arcsec)
    except (ValueError, TypeError, u.UnitsError):
        raise InputError(f"radius '{text}' is not an angle; write {ANGLE_EXAMPLES}") from None
    return radius_arcsec(value)


def epochs(epoch, n: int) -> np.ndarray | None:
    """Per-query epochs in Julian years (None stays None) from numbers or astropy Time."""
    if epoch is None:
        return None
    if hasattr(epoch, "jyear"):
        epoch = epoch.tdb.jyear
    try:
        values = np.asarray(epoch, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"epoch = {epoch!r} is not allowed; the epoch must be "
                         f"{EPOCH_ALLOWED}") from None
    if values.ndim != 0 and values.shape != (n,):
        raise InputError(length_mismatch({"positions": n, "epoch": values.size}))
    good = np.isfinite(values)
    if not good.all():
        raise InputError(out_of_range("epoch", *_first_bad(values, good), EPOCH_ALLOWED))
    return np.full(n, float(values)) if values.ndim == 0 else values
