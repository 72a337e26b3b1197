"""Packed MPC designations and dates: what the Minor Planet Center's files and Rubin's
alerts write, and the readable forms people use.

The packing rules are those of the MPC's "Packed Provisional and Permanent Designations"
(numbered objects, provisional designations with the extended scheme for cycle counts of
620 and more, the Palomar-Leiden and Trojan surveys, comets and their fragments) and the
packed dates of the orbit files' epochs.
"""

from __future__ import annotations

import re

import numpy as np

from xmatch.errors import InputError

_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_B62_VALUE = {c: i for i, c in enumerate(_B62)}
_CENTURY = {"I": 1800, "J": 1900, "K": 2000}
_SECOND_LETTERS = "ABCDEFGHJKLMNOPQRSTUVWXYZ"      # I is not used: 25 letters a cycle
#: Comet orbit types: periodic, non-periodic, defunct, uncertain, interstellar, asteroidal.
COMET_TYPES = "PCDXIA"
_SURVEYS = {"PL": "P-L", "T1": "T-1", "T2": "T-2", "T3": "T-3"}

#: Pattern of a numbered minor planet: ``00001``, ``A0001`` (100001), ``~0000`` (620000).
NUMBERED = r"[0-9A-Za-z]\d{4}|~[0-9A-Za-z]{4}"
# Century, year, half-month, cycle count (2 chars), then the second letter (asteroids),
# 0 (comet order number) or a lower-case fragment letter (split comets).
_PROVISIONAL = r"[IJK]\d\d[A-HJ-Y][0-9A-Za-z]\d[A-HJ-Za-z0]"
_EXTENDED = r"_[0-9A-Za-z][A-HJ-Y][0-9A-Za-z]{4}"
_SURVEY = r"(?:PL|T1|T2|T3)S\d{4}"
#: Any packed minor-planet designation: numbered, provisional, extended or survey.
ASTEROID_DESIGNATION = re.compile(
    rf"^(?:{NUMBERED}|[IJK]\d\d[A-HJ-Y][0-9A-Za-z]\d[A-HJ-Z]|{_EXTENDED}|{_SURVEY})$")
#: Any packed comet designation, without its blanks. A numbered comet may carry a fragment
#: (``0073Pbt``) or its provisional designation.
COMET_DESIGNATION = re.compile(
    rf"^(?:\d{{4}}[{COMET_TYPES}](?:[a-z]{{1,2}}|{_PROVISIONAL})?"
    rf"|[{COMET_TYPES}](?:{_PROVISIONAL}|{_EXTENDED}))$")


def _b62(text: str) -> int:
    value = 0
    for char in text:
        value = value * 62 + _B62_VALUE[char]
    return value


def _unpack_provisional(packed: str) -> str:
    """Seven-character provisional designation, asteroid or comet style."""
    if packed[0] == "_":  # extended scheme: cycle counts of 620 and more
        year = 2000 + _B62_VALUE[packed[1]]
        number = _b62(packed[3:7])
        cycle, letter = 620 + number // 25, _SECOND_LETTERS[number % 25]
        return f"{year} {packed[2]}{letter}{cycle}"
    year = _CENTURY[packed[0]] + int(packed[1:3])
    cycle = _B62_VALUE[packed[4]] * 10 + int(packed[5])
    last = packed[6]
    if last == "0":      # comet style: order number within the half-month
        return f"{year} {packed[3]}{cycle}"
    if last.islower():   # a fragment of a split comet
        return f"{year} {packed[3]}{cycle}-{last.upper()}"
    return f"{year} {packed[3]}{last}{cycle or ''}"


def unpack_designation(packed: str) -> str:
    """The readable form of a packed MPC designation.

    Parameters
    ----------
    packed : str
        Numbered minor planet (``00001``, ``A0001``, ``~0000``), provisional (``K13L24L``,
        extended ``_QC0000``), survey (``PLS2040``, ``T1S3138``) or comet designation
        (``0001P``, ``0073Pbt``, ``CJ95O010``, ``PK13R03a``); blanks are ignored, so the
        12-character comet form of CometEls.txt is accepted as it stands.

    Returns
    -------
    str
        ``(1)``, ``(100001)``, ``(620000)``, ``2013 LL24``, ``2026 CA620``, ``2040 P-L``,
        ``3138 T-1``, ``1P``, ``73P-BT``, ``C/1995 O1``, ``P/2013 R3-A``.

    Raises
    ------
    ValueError
        When ``packed`` is none of these forms.
    """
    text = packed.replace(" ", "")
    if ASTEROID_DESIGNATION.match(text):
        if len(text) == 5:
            if text[0] == "~":
                return f"({620000 + _b62(text[1:])})"
            return f"({_B62_VALUE[text[0]] * 10000 + int(text[1:])})"
        if text[2] == "S" and text[:2] in _SURVEYS:
            return f"{text[3:]} {_SURVEYS[text[:2]]}"
        return _unpack_provisional(text)
    if re.fullmatch(_PROVISIONAL, text):  # a comet's, without its orbit type
        return _unpack_provisional(text)
    if COMET_DESIGNATION.match(text):
        if text[0].isdigit():
            fragment = text[5:].upper() if len(text) <= 7 else ""
            return f"{int(text[:4])}{text[4]}" + (f"-{fragment}" if fragment else "")
        return f"{text[0]}/{_unpack_provisional(text[1:])}"
    raise InputError(f"{packed!r} is not a packed MPC designation (number such as 00001 or "
                     "A0001, provisional such as K13L24L, survey such as PLS2040, comet such "
                     "as 0001P or CJ95O010)")


def pack_provisional(readable: str) -> str | None:
    """``2013 LL24`` -> ``K13L24L`` (plain provisional designations only; None otherwise)."""
    match = re.fullmatch(r"(1[89]|20)(\d\d) ([A-HJ-Y])([A-HJ-Z])(\d*)", readable.strip())
    if not match:
        return None
    century, year, half, letter, cycle = match.groups()
    cycle = int(cycle or 0)
    if cycle >= 620:
        return None
    return f"{'IJK'[int(century) - 18]}{year}{half}{_B62[cycle // 10]}{cycle % 10}{letter}"


def mjd_from_calendar(year, month, day):
    """TT MJD of a proleptic Gregorian date (``day`` may carry a fraction); vectorized."""
    year = np.asarray(year, dtype=np.int64)
    month = np.asarray(month, dtype=np.int64)
    a = (14 - month) // 12
    y = year + 4800 - a
    m = month + 12 * a - 3
    day0 = (153 * m + 2) // 5 + 365 * y + y // 4 - y // 100 + y // 400 - 32045
    return (day0 - 2400001) + np.asarray(day, dtype=np.float64)


def unpack_epoch(packed: str) -> float:
    """TT MJD of a packed MPC date (``.0 TT``): ``K25BL`` is 2025-11-21, MJD 61000.0.

    Parameters
    ----------
    packed : str
        Century letter (I = 1800, J = 1900, K = 2000), two digits of year, month and day
        as one character each (1-9, then A = 10 ... V = 31).

    Returns
    -------
    float

    Raises
    ------
    ValueError
        When ``packed`` is not a valid packed date.
    """
    match = re.fullmatch(r"([IJK])(\d\d)([1-9A-C])([1-9A-V])", packed.strip())
    if not match:
        raise InputError(f"{packed!r} is not a packed date such as 'K25BL' (2025-11-21)")
    year = _CENTURY[match[1]] + int(match[2])
    month, day = _B62_VALUE[match[3]], _B62_VALUE[match[4]]
    mjd = float(mjd_from_calendar(year, month, day))
    # A 31st of a 30-day month would silently become the 1st of the next.
    if float(mjd_from_calendar(year, month, 1)) + day - 1 >= float(
            mjd_from_calendar(year + month // 12, month % 12 + 1, 1)):
        raise InputError(f"{packed!r} is not a date: month {month} of {year} has no day {day}")
    return mjd

