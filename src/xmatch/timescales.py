"""Times, in one place: UTC, TAI, TT and TDB instants, Julian-year epochs, and the checks
at the boundary.

Alert times come in their own scale (ZTF ``jd`` in UTC, Rubin ``midpointMjdTai`` in TAI) and
are converted explicitly; ephemerides run on TDB; proper-motion epochs are Julian years
(TDB). astropy does the leap seconds and the relativistic terms.
"""

from __future__ import annotations

import datetime
import warnings
from contextlib import contextmanager

import numpy as np

from xmatch.errors import InputError

TIME_SCALES = ("utc", "tai", "tt", "tdb")
#: MJDs a time may take: the span of DE421 (every solar-system position depends on it).
MJD_RANGE = (14864.0, 71184.0)
#: 1960-01-01: UTC (with leap seconds) starts here.
UTC_START_MJD = 36934.0
#: TT - TAI, seconds.
TT_MINUS_TAI_S = 32.184
EPOCH_ALLOWED = "a finite Julian year (e.g. 2016.0) or an astropy Time"


def check_scale(name: str | None) -> str:
    """A time scale named by a user (empty or None: UTC), checked."""
    scale = (name or "").strip().lower() or "utc"
    if scale not in TIME_SCALES:
        raise InputError(f"time scale {name!r} is not allowed; use one of "
                         f"{', '.join(TIME_SCALES)}")
    return scale


def to_time(value, scale: str = "utc"):
    """An astropy ``Time`` from a ``Time``, an ISO string (in ``scale``) or an MJD number
    (in ``scale``); scalar or array. MJDs outside DE421's span, and UTC before 1960, are
    refused."""
    from astropy.time import Time

    if isinstance(value, Time):
        return value
    scale = check_scale(scale)
    if isinstance(value, str) or (isinstance(value, list | tuple | np.ndarray)
                                  and len(value) and isinstance(np.ravel(value)[0], str)):
        try:
            with future_utc():
                value = Time(value, scale=scale).mjd
        except ValueError:
            raise InputError(f"time {value!r} is not an ISO date and time "
                             "(2026-12-03 or 2026-12-03T04:05:06)") from None
    values = np.asarray(value, dtype=np.float64)
    bad = ~((values >= MJD_RANGE[0]) & (values <= MJD_RANGE[1]))  # NaN counts as bad
    if bad.any():
        index = int(np.flatnonzero(bad.ravel())[0])
        where = f" (at position {index})" if values.ndim else ""
        raise InputError(f"MJD {float(values.ravel()[index])!r}{where} is not allowed: it "
                         f"must lie between {MJD_RANGE[0]:g} and {MJD_RANGE[1]:g} (1899-07-29 "
                         "to 2053-10-09, the span of DE421 every solar-system position rests "
                         "on)")
    if scale == "utc" and (values < UTC_START_MJD).any():
        raise InputError(f"MJD {float(values.min())!r} UTC is before 1960-01-01 (MJD "
                         f"{UTC_START_MJD:g}), where UTC begins; give earlier times in TT or "
                         "TDB")
    return Time(values, format="mjd", scale=scale)


def tdb_mjd(value, scale: str = "utc") -> np.ndarray | float:
    """TDB MJD of a time given as ``Time``, ISO string or MJD in ``scale``."""
    t = to_time(value, scale)
    with future_utc():
        return t.tdb.mjd


def tdb_time(tdb_mjd_values):
    """An astropy ``Time`` of TDB MJDs."""
    from astropy.time import Time

    return Time(np.asarray(tdb_mjd_values, np.float64), format="mjd", scale="tdb")


def utc_iso(t_tdb) -> str:
    """A TDB MJD as an ISO UTC date and time (for messages)."""
    with future_utc():
        return tdb_time(t_tdb).utc.isot


def utc_datetime(t_tdb: float) -> datetime.datetime:
    """A TDB MJD as a naive UTC ``datetime``, for calendar arithmetic (which night holds an
    instant). A leap second, which ``datetime`` cannot hold, reads as the first second of
    the next day."""
    with future_utc():
        return tdb_time(float(t_tdb)).utc.to_datetime(leap_second_strict="silent")


@contextmanager
def future_utc():
    """ERFA calls UTC past its leap-second table "dubious"; without a newer table there is
    no better answer than assuming no new leap second, which is what it computes."""
    from erfa import ErfaWarning

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*dubious year", category=ErfaWarning)
        yield


def tai_mjd(value, scale: str = "utc") -> np.ndarray:
    """TAI MJDs of times in any form :func:`to_time` reads (a ``Time``, ISO strings, MJDs
    in ``scale``), as an array."""
    with future_utc():
        return np.atleast_1d(np.asarray(to_time(value, scale).tai.mjd, np.float64))


def jyear_of_tai_mjd(mjd_tai: np.ndarray) -> np.ndarray:
    """Julian-year epochs of TAI MJDs, for proper motions (TT = TAI + 32.184 s; TDB - TT
    stays under 2 ms, far below what a proper motion can show)."""
    return 2000.0 + (mjd_tai + TT_MINUS_TAI_S / 86400.0 - 51544.5) / 365.25


def tai_mjd_of_utc_jd(jd_utc: np.ndarray) -> np.ndarray:
    """TAI MJDs of UTC Julian dates (ZTF's ``jd``), with astropy's leap seconds."""
    from astropy.time import Time

    whole = np.floor(jd_utc)
    with future_utc():
        return Time(whole, jd_utc - whole, format="jd", scale="utc").tai.mjd


def epoch_jyear_of_text(text: str) -> float:
    """A user's epoch: '2016.0', 'J2016.0' (Julian year) or an ISO time (UTC)."""
    cleaned = text.strip().removeprefix("J")
    try:
        value = float(cleaned)
    except ValueError:
        from astropy.time import Time

        try:
            with future_utc():
                return float(Time(text.strip(), scale="utc").tdb.jyear)
        except ValueError:
            raise InputError(f"'{text}' is not an epoch; write a Julian year (2016.0, J2016.0) "
                             "or an ISO time (2026-11-21T03:00:00, UTC)") from None
    if not np.isfinite(value):
        raise InputError(f"epoch {text!r} is not allowed; the epoch must be {EPOCH_ALLOWED}")
    return value
