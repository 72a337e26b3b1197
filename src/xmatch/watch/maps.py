"""Watchmaps: named regions of the sky (a MOC in any IVOA form, or the credible region of an
LVK sky map at a level), checked against every alert position and, when a map is added,
against the whole history of detections.

A watchmap is its region as sorted, disjoint order-29 ranges ``[start, stop)`` (the form
:mod:`xmatch.sky.regions` gives every region): a position is inside when its order-29
HEALPix pixel falls in a range. Detections that already carry their ``_healpix_29`` are
tested without computing a pixel (:meth:`Watchmap.contains_healpix29`); a batch of alerts
is tested against many maps with one sort of its pixels (:meth:`Watchmap.inside_sorted`).
An empty region (a MOC without cells) is allowed: it contains nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from xmatch.errors import InputError
from xmatch.kernels.search import in_ranges_kernel
from xmatch.sky import coords
from xmatch.sky.healpix import MAX_ORDER, npix_at, radec_to_healpix29
from xmatch.sky.regions import Moc, check_ranges29
from xmatch.sky.skymap import SkyMap, check_level
from xmatch.watch.lists import check_watch_name

_NPIX29 = npix_at(MAX_ORDER)


@dataclass(frozen=True, eq=False)
class Watchmap:
    """A named region of the sky as order-29 ranges.

    Build one with :meth:`from_moc` or :meth:`from_skymap`; the constructor checks the
    ranges too (copying them, read-only).

    Attributes
    ----------
    name : str
        The watch name (:func:`xmatch.watch.lists.check_watch_name`).
    ranges29 : numpy.ndarray
        Sorted, disjoint, non-empty ``[start, stop)`` order-29 ranges, shape (n, 2), int64.
    source : str
        Where the region came from: ``"moc FILE"``, ``"skymap FILE at 0.9"``.
    level : float or None
        The credible level of a sky map's region; None for a MOC.
    """

    name: str
    ranges29: np.ndarray
    source: str = ""
    level: float | None = None

    def __post_init__(self):
        check_watch_name(self.name)
        try:
            ranges = np.array(check_ranges29(self.ranges29), dtype=np.int64).reshape(-1, 2)
        except InputError as error:
            raise InputError(f"watchmap {self.name}: {error}") from None
        ranges.flags.writeable = False
        object.__setattr__(self, "ranges29", ranges)
        if self.level is not None:
            object.__setattr__(self, "level", check_level(self.level))
        if not isinstance(self.source, str):
            raise InputError(f"watchmap {self.name}: source must be a str, not "
                             f"{type(self.source).__name__}")

    @classmethod
    def from_moc(cls, name: str, value, source: str | None = None) -> Watchmap:
        """A watchmap of a MOC: a ``mocpy.MOC``, IVOA ASCII or JSON text, FITS bytes, the
        path of a FITS, ASCII or JSON MOC file (:func:`xmatch.sky.moc.moc_from`, strict),
        or order-29 ranges (an (n, 2) integer array). ``source`` defaults to ``"moc FILE"``
        for a file, else to the form given."""
        check_watch_name(name)
        ranges = Moc.of(value).ranges
        if source is None:
            source = f"moc {_moc_form(value)}"
        return cls(name, ranges, source)

    @classmethod
    def from_skymap(cls, name: str, skymap, level: float,
                    source: str | None = None) -> Watchmap:
        """A watchmap of the credible region at ``level`` (in (0, 1]) of an LVK sky map:
        a :class:`~xmatch.sky.skymap.SkyMap`, or the path or bytes of a multi-order or flat
        FITS sky map. ``source`` defaults to ``"skymap FILE at LEVEL"``."""
        check_watch_name(name)
        level = check_level(level)
        given = "(FITS bytes)" if isinstance(skymap, bytes) else None
        if not isinstance(skymap, SkyMap):
            skymap = SkyMap.read(skymap)
        if source is None:
            source = f"skymap {given or skymap.name} at {level:g}"
        return cls(name, skymap.region_ranges(level), source, level)

    # ------------------------------------------------------------------ using

    def __repr__(self) -> str:
        return (f"<Watchmap {self.name!r}: {len(self.ranges29)} ranges, sky fraction "
                f"{self.sky_fraction:.3g}, from {self.source or '?'}>")

    @property
    def sky_fraction(self) -> float:
        """The fraction of the sky inside (0 to 1)."""
        return float((self.ranges29[:, 1] - self.ranges29[:, 0]).sum()) / _NPIX29

    @property
    def max_order(self) -> int:
        """The deepest order the region needs: the coarsest order at which every range
        starts and stops on a cell boundary."""
        if not len(self.ranges29):
            return 0
        bits = np.bitwise_or.reduce(self.ranges29.reshape(-1))
        trailing = (int(bits) & -int(bits)).bit_length() - 1 if bits else 2 * MAX_ORDER
        return MAX_ORDER - min(trailing // 2, MAX_ORDER)

    def contains(self, ra_deg, dec_deg=None) -> np.ndarray:
        """Whether each position (any form :mod:`xmatch.sky.coords` reads) is inside."""
        ra, dec, _ = coords.positions(ra_deg, dec_deg)
        return self.contains_healpix29(radec_to_healpix29(ra, dec))

    def contains_healpix29(self, pixels) -> np.ndarray:
        """Whether each order-29 NESTED pixel (detections' ``_healpix_29``) is inside."""
        pixels = np.asarray(pixels)
        if pixels.dtype.kind not in "iu" or pixels.ndim != 1:
            raise InputError(f"watchmap {self.name}: order-29 pixels are a one-dimensional "
                             f"integer array, not {pixels.dtype} of shape {pixels.shape}")
        pixels = np.ascontiguousarray(pixels, dtype=np.int64)
        good = (pixels >= 0) & (pixels < _NPIX29)
        if not good.all():
            row = int(np.flatnonzero(~good)[0])
            raise InputError(f"watchmap {self.name}: pixel {int(pixels[row])} (at position "
                             f"{row}) is not an order-29 pixel; they run from 0 to "
                             f"{_NPIX29 - 1}")
        inside = np.zeros(len(pixels), dtype=np.bool_)
        if len(self.ranges29) and len(pixels):
            in_ranges_kernel(pixels, *self._ends, inside)
        return inside

    @cached_property
    def _ends(self) -> tuple[np.ndarray, np.ndarray]:
        """The range starts and stops, each contiguous (as the kernel takes them)."""
        return (np.ascontiguousarray(self.ranges29[:, 0]),
                np.ascontiguousarray(self.ranges29[:, 1]))

    def inside_sorted(self, sorted_pixels29: np.ndarray) -> np.ndarray:
        """Positions in ``sorted_pixels29`` (order-29 pixels sorted ascending, unchecked:
        the caller made them) of the pixels inside, ascending: one binary search per range
        end into the pixels (or per pixel among the ranges, when there are more ranges), so
        many maps against one batch cost one sort of the batch."""
        if 2 * len(self.ranges29) > len(sorted_pixels29):
            # More ranges than pixels (a MOC of many small cells): search each pixel among
            # the ranges instead (measured on 100 k pixels: 9 ms instead of 120 ms for 3 M
            # ranges; the other way is 40 times faster for 70 ranges). numpy, not the
            # parallel in_ranges_kernel: launching it per map cost twice as much.
            starts, stops = self._ends
            at = np.searchsorted(starts, sorted_pixels29, side="right") - 1
            return np.flatnonzero((at >= 0) & (sorted_pixels29 < stops[np.maximum(at, 0)]))
        lo = np.searchsorted(sorted_pixels29, self.ranges29[:, 0], side="left")
        hi = np.searchsorted(sorted_pixels29, self.ranges29[:, 1], side="left")
        counts = hi - lo
        kept = counts > 0
        lo, counts = lo[kept], counts[kept]
        total = int(counts.sum())
        if not total:
            return np.empty(0, np.int64)
        # The runs [lo, lo + count) laid end to end: each position steps by one from the
        # start of its run.
        starts = np.cumsum(counts) - counts
        return (np.arange(total, dtype=np.int64) + np.repeat(lo - starts, counts)).astype(
            np.int64)

    def moc(self):
        """The region as a ``mocpy.MOC`` (to write, ``.save(path, format="fits")``, or to
        list), at :attr:`max_order`."""
        from mocpy import MOC

        if not len(self.ranges29):
            return MOC.new_empty(MAX_ORDER)
        return MOC.from_depth29_ranges(self.max_order, self.ranges29.astype(np.uint64))


def _moc_form(value) -> str:
    """How a MOC was given, for :attr:`Watchmap.source`: its file, or its form (a string
    starting with a digit or ``{`` is MOC text, as :func:`xmatch.sky.moc.moc_from` reads
    it)."""
    if isinstance(value, str):
        text = value.lstrip()
        if text[:1] == "{":
            return "(JSON text)"
        return "(ASCII text)" if text[:1].isdigit() else value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, bytes):
        return "(FITS bytes)"
    if isinstance(value, np.ndarray):
        return "(order-29 ranges)"
    return f"({type(value).__name__})"
