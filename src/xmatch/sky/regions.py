"""Regions of the sky to search, one object per kind: :class:`Cone`, :class:`Polygon`,
:class:`Ellipse`, :class:`Moc` and :class:`SkyMapRegion` (the credible region of a
gravitational-wave sky map).

Every search is two-phase (as LSDB's ``AbstractSearch``): a region names the partitions it
may touch (:meth:`Region.partitions`, from its cover of order-29 ranges), then the rows of
those partitions are filtered exactly. ``SkyIndex.search``, ``Catalog.search``, the
``Client`` and the ``Cone`` and ``RegionSearch`` RPCs all take these objects; none has a
search of its own. A region that needs an exact test beyond its cover (a polygon, an
ellipse) says so with :attr:`Region.exact_cover` False and answers
:meth:`Region.contains`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from xmatch.errors import InputError
from xmatch.sky import coords
from xmatch.sky.healpix import MAX_ORDER, npix_at

ARCSEC_TO_RAD = math.pi / (180.0 * 3600.0)
#: Depth of a polygon's cover: cells of about a hundredth of its size (a few hundred cells
#: along its edges, so thin polygons are covered tightly), at most this deep.
POLYGON_MAX_DEPTH = 16
POLYGON_CELLS_ACROSS = 100


def overlapping(starts: np.ndarray, stops: np.ndarray, ranges29) -> np.ndarray:
    """Indexes of the intervals ``[starts, stops)`` (partitions, say; sorted, disjoint)
    that overlap sorted, disjoint order-29 ranges (n, 2)."""
    ranges = np.asarray(ranges29, dtype=np.int64).reshape(-1, 2)
    if len(ranges) == 0 or len(starts) == 0:
        return np.empty(0, dtype=np.int64)
    # The first range ending after an interval starts overlaps it if it starts before the
    # interval ends.
    after = np.searchsorted(ranges[:, 1], starts, side="right")
    hit = after < len(ranges)
    hit[hit] = ranges[after[hit], 0] < stops[hit]
    return np.flatnonzero(hit)


def check_ranges29(ranges29) -> np.ndarray:
    """Sorted, disjoint, non-empty half-open order-29 ranges as an (n, 2) int64 array."""
    ranges = np.asarray(ranges29, dtype=np.int64)
    if ranges.size == 0:
        return np.empty((0, 2), np.int64)
    if ranges.ndim == 1 and ranges.size % 2 == 0:
        ranges = ranges.reshape(-1, 2)
    if ranges.ndim != 2 or ranges.shape[1] != 2:
        raise InputError("MOC ranges must be [start, stop) pairs of order-29 pixels, an (n, 2) "
                         f"array or an even count of values; got shape {ranges.shape}")
    starts, stops = ranges[:, 0], ranges[:, 1]
    if np.any(starts < 0) or np.any(stops > npix_at(MAX_ORDER)) or np.any(stops <= starts) \
            or np.any(starts[1:] < stops[:-1]):
        raise InputError("MOC ranges must be sorted, disjoint, non-empty [start, stop) "
                         f"ranges within 0..{npix_at(MAX_ORDER)}")
    return np.ascontiguousarray(ranges)


class Region:
    """A region of the sky: its cover (what partitions to read) and its exact test."""

    #: True when every row whose order-29 pixel lies in the cover is inside the region.
    exact_cover = True

    def cover29(self) -> np.ndarray:
        """Sorted, disjoint half-open order-29 ranges (n, 2) that hold every point of the
        region (exactly the region when :attr:`exact_cover`)."""
        raise NotImplementedError

    def partitions(self, starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
        """Indexes of the partitions (sorted, disjoint order-29 ranges) the region may
        touch: the coarse phase of every search."""
        return overlapping(starts, stops, self.cover29())

    def contains(self, ra_deg: np.ndarray, dec_deg: np.ndarray) -> np.ndarray:
        """Whether each position lies inside the region (the exact phase)."""
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError


@dataclass(frozen=True)
class Cone(Region):
    """The points within ``radius_arcsec`` of (``ra_deg``, ``dec_deg``). Build it with
    :meth:`of`, which takes any position and radius form."""

    ra_deg: float
    dec_deg: float
    radius_arcsec: float

    @classmethod
    def of(cls, ra, dec=None, radius_arcsec=None) -> Cone:
        """A cone from a position (``SkyCoord``, or ra and dec in any form
        :mod:`xmatch.sky.coords` reads) and a radius (arcsec, or an angle Quantity); after a
        ``SkyCoord`` the radius may come second: ``Cone.of(coord, 60)``."""
        if radius_arcsec is None and dec is not None and coords._is_skycoord(ra):
            dec, radius_arcsec = None, dec
        ra_deg, dec_deg, _ = coords.positions(ra, dec)
        if len(ra_deg) != 1:
            raise InputError(f"a cone has one centre, not {len(ra_deg)}; cross-match many "
                             "positions with crossmatch(..., mode='all')")
        if radius_arcsec is None:
            raise InputError("a cone needs its radius: radius_arcsec (arcsec, or an angle "
                             "Quantity)")
        return cls(float(ra_deg[0]), float(dec_deg[0]), coords.radius_arcsec(radius_arcsec))

    def widened(self, arcsec: float) -> Cone:
        """The same cone with its radius grown by ``arcsec`` (proper motions' reach)."""
        return Cone(self.ra_deg, self.dec_deg, min(self.radius_arcsec + arcsec,
                                                   coords.MAX_RADIUS_ARCSEC))

    def cover29(self, depth: int | None = None) -> np.ndarray:
        """The cells at ``depth`` (default: about a tenth of the radius) that may overlap
        the cone, as order-29 ranges; cells it adds lie within one cell of the edge."""
        from xmatch.kernels.healpix import PIXEL_SPACING, cone_cover_kernel

        radius_rad = self.radius_arcsec * ARCSEC_TO_RAD
        if depth is None:
            depth = int(np.searchsorted(-PIXEL_SPACING, -radius_rad / 10))
            depth = min(max(depth, 0), MAX_ORDER)
        ranges = cone_cover_kernel(math.radians(self.ra_deg), math.radians(self.dec_deg),
                                   radius_rad, int(depth))
        return ranges << (2 * (MAX_ORDER - int(depth)))

    def partitions(self, starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
        """The partitions the cone's nine seed pixels overlap: the rule the router applies
        to every cone of a batch (:func:`xmatch.kernels.routing.cone_groups_kernel`)."""
        from xmatch.kernels.routing import cone_groups_kernel

        if len(starts) == 0:
            return np.empty(0, np.int64)
        _, touched = cone_groups_kernel(
            np.array([math.radians(self.ra_deg)]), np.array([math.radians(self.dec_deg)]),
            np.array([self.radius_arcsec * ARCSEC_TO_RAD]), starts, stops,
            np.arange(len(starts), dtype=np.int64), len(starts))
        return np.sort(touched)

    def contains(self, ra_deg, dec_deg) -> np.ndarray:
        ra, dec = np.radians(ra_deg), np.radians(dec_deg)
        ra0, dec0 = math.radians(self.ra_deg), math.radians(self.dec_deg)
        chord2 = ((np.cos(dec) * np.cos(ra) - math.cos(dec0) * math.cos(ra0)) ** 2
                  + (np.cos(dec) * np.sin(ra) - math.cos(dec0) * math.sin(ra0)) ** 2
                  + (np.sin(dec) - math.sin(dec0)) ** 2)
        return chord2 <= (2 * math.sin(0.5 * self.radius_arcsec * ARCSEC_TO_RAD)) ** 2

    def describe(self) -> str:
        return (f"cone of {self.radius_arcsec:g} arcsec around ({self.ra_deg:.6f}, "
                f"{self.dec_deg:+.6f})")


@dataclass(frozen=True)
class Ellipse(Region):
    """The points within an ellipse: semi-axes in arcsec, position angle of the major axis
    in degrees east of north, defined in the azimuthal equidistant projection at its centre
    (:mod:`xmatch.kernels.regions`), so that an ellipse with equal axes is exactly a cone.
    Build it with :meth:`of`."""

    ra_deg: float
    dec_deg: float
    semi_major_arcsec: float
    semi_minor_arcsec: float
    pa_deg: float
    exact_cover = False

    @classmethod
    def of(cls, ra, dec=None, semi_major_arcsec=None, semi_minor_arcsec=None,
           pa_deg=None) -> Ellipse:
        """An ellipse from its centre (``SkyCoord``, or ra and dec in any form
        :mod:`xmatch.sky.coords` reads), semi-axes (arcsec, or angle Quantities) and the
        position angle of its major axis (deg east of north, or an angle Quantity)."""
        from xmatch.index.region_index import check_shapes

        if coords._is_skycoord(ra) and semi_major_arcsec is None:
            raise InputError("an ellipse needs its semi-major axis: semi_major_arcsec=")
        ra_deg, dec_deg, _ = coords.positions(ra, dec)
        if len(ra_deg) != 1:
            raise InputError(f"an ellipse has one centre, not {len(ra_deg)}")
        if semi_major_arcsec is None or semi_minor_arcsec is None or pa_deg is None:
            raise InputError("an ellipse needs semi_major_arcsec, semi_minor_arcsec and pa_deg "
                             "(position angle of the major axis, deg east of north)")
        a = coords.radius_arcsec(semi_major_arcsec)
        b = coords.radius_arcsec(semi_minor_arcsec)
        pa = coords.position_angle_deg(pa_deg)
        check_shapes(a, b, pa, 1, "ellipse")
        return cls(float(ra_deg[0]), float(dec_deg[0]), a, b, pa)

    @property
    def _bounding_cone(self) -> Cone:
        return Cone(self.ra_deg, self.dec_deg, self.semi_major_arcsec)

    def cover29(self) -> np.ndarray:
        return self._bounding_cone.cover29()

    def partitions(self, starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
        return self._bounding_cone.partitions(starts, stops)

    def distance(self, ra_deg, dec_deg) -> np.ndarray:
        """Normalised distance of each position: its separation from the centre divided by
        the ellipse's radius in its direction (1 on the boundary)."""
        from xmatch.index.region_index import region_distances

        ra_deg = np.asarray(ra_deg, np.float64).reshape(-1)
        return region_distances(self.ra_deg, self.dec_deg, self.semi_major_arcsec,
                                self.semi_minor_arcsec, self.pa_deg, ra_deg,
                                np.asarray(dec_deg, np.float64).reshape(-1))[0]

    def contains(self, ra_deg, dec_deg) -> np.ndarray:
        return self.distance(ra_deg, dec_deg) <= 1.0

    def contains_vectors(self, xyz: np.ndarray) -> np.ndarray:
        from xmatch.index.region_index import vector_distances

        return vector_distances(self, np.ascontiguousarray(xyz))[0] <= 1.0

    def describe(self) -> str:
        return (f"ellipse of {self.semi_major_arcsec:g} x {self.semi_minor_arcsec:g} arcsec at "
                f"PA {self.pa_deg:g} deg around ({self.ra_deg:.6f}, {self.dec_deg:+.6f})")


@dataclass(frozen=True)
class Polygon(Region):
    """A spherical polygon: great-circle edges between consecutive vertices (the last joins
    the first), smaller than a hemisphere. Build it with :meth:`of`."""

    ra_deg: tuple
    dec_deg: tuple
    exact_cover = False
    _vectors: np.ndarray = field(default=None, compare=False, repr=False)
    _centre: np.ndarray = field(default=None, compare=False, repr=False)

    @classmethod
    def of(cls, ra, dec=None) -> Polygon:
        """A polygon from its vertices in order (a ``SkyCoord``, or ra and dec in any form
        :mod:`xmatch.sky.coords` reads), at least 3, all in one hemisphere."""
        ra_deg, dec_deg, _ = coords.positions(ra, dec)
        if len(ra_deg) < 3:
            raise InputError(f"a polygon needs at least 3 vertices, got {len(ra_deg)}")
        vectors = _unit_vectors(ra_deg, dec_deg)
        if np.any(np.all(np.isclose(vectors, np.roll(vectors, 1, axis=0), rtol=0,
                                    atol=1e-15), axis=1)):
            raise InputError("a polygon's consecutive vertices must differ")
        centre = vectors.sum(axis=0)
        norm = float(np.linalg.norm(centre))
        if norm < 1e-12 or np.any(vectors @ (centre / norm) <= 1e-9):
            raise InputError("a polygon must lie within one hemisphere (its vertices within "
                             "90 deg of their mean direction); split larger regions")
        return cls(tuple(float(r) for r in ra_deg), tuple(float(d) for d in dec_deg),
                   np.ascontiguousarray(vectors), np.ascontiguousarray(centre / norm))

    def __post_init__(self):
        if self._vectors is None:  # built directly: check it as :meth:`of` does
            checked = Polygon.of(np.asarray(self.ra_deg), np.asarray(self.dec_deg))
            object.__setattr__(self, "_vectors", checked._vectors)
            object.__setattr__(self, "_centre", checked._centre)

    def cover29(self) -> np.ndarray:
        return self._cover

    @cached_property
    def _cover(self) -> np.ndarray:
        from xmatch.sky.healpix import polygon_cover29

        size_rad = float(np.max(np.arccos(np.clip(self._vectors @ self._centre, -1, 1))))
        depth = int(np.clip(math.floor(math.log2(math.sqrt(math.pi / 3) / max(
            size_rad / POLYGON_CELLS_ACROSS, 1e-9))), 0, POLYGON_MAX_DEPTH))
        return polygon_cover29(np.asarray(self.ra_deg), np.asarray(self.dec_deg), depth)

    def contains(self, ra_deg, dec_deg) -> np.ndarray:
        from xmatch.kernels.regions import polygon_contains_kernel

        xyz = _unit_vectors(np.asarray(ra_deg, np.float64), np.asarray(dec_deg, np.float64))
        out = np.empty(len(xyz), dtype=np.bool_)
        polygon_contains_kernel(self._vectors, self._centre, xyz, out)
        return out

    def contains_vectors(self, xyz: np.ndarray) -> np.ndarray:
        from xmatch.kernels.regions import polygon_contains_kernel

        out = np.empty(len(xyz), dtype=np.bool_)
        polygon_contains_kernel(self._vectors, self._centre, np.ascontiguousarray(xyz), out)
        return out

    def describe(self) -> str:
        return f"polygon of {len(self.ra_deg)} vertices"


@dataclass(frozen=True, eq=False)
class Moc(Region):
    """The cells of a MOC (IVOA MOC 2.0), as order-29 ranges. Build it with :meth:`of`,
    which reads every MOC form."""

    ranges: np.ndarray
    max_order: int = MAX_ORDER
    name: str = "MOC"

    @classmethod
    def of(cls, moc, name: str | None = None) -> Moc:
        """A MOC region from a ``mocpy.MOC``, an IVOA ASCII string (``"3/1-5 4/120"``), JSON
        text, FITS bytes, the path of a MOC file (:func:`xmatch.sky.moc.moc_from`), or
        order-29 ranges (an (n, 2) integer array)."""
        if isinstance(moc, Moc):
            return moc
        if isinstance(moc, np.ndarray) and moc.dtype.kind in "iu":
            return cls(check_ranges29(moc))
        from xmatch.sky.moc import moc_from

        found = moc_from(moc)
        label = name or (str(moc) if not isinstance(moc, bytes | str) or len(str(moc)) < 40
                         else "MOC")
        return cls(np.ascontiguousarray(found.to_depth29_ranges, dtype=np.int64),
                   int(found.max_order), label)

    def cover29(self) -> np.ndarray:
        return self.ranges

    def contains(self, ra_deg, dec_deg) -> np.ndarray:
        from xmatch.kernels.search import in_ranges_kernel
        from xmatch.sky.healpix import radec_to_healpix29

        pixels = radec_to_healpix29(np.asarray(ra_deg, np.float64),
                                    np.asarray(dec_deg, np.float64))
        out = np.empty(len(pixels), dtype=np.bool_)
        in_ranges_kernel(pixels, np.ascontiguousarray(self.ranges[:, 0]),
                         np.ascontiguousarray(self.ranges[:, 1]), out)
        return out

    @property
    def sky_fraction(self) -> float:
        return float((self.ranges[:, 1] - self.ranges[:, 0]).sum()) / npix_at(MAX_ORDER)

    def describe(self) -> str:
        return f"MOC {self.name} (max order {self.max_order})"


@dataclass(frozen=True, eq=False)
class SkyMapRegion(Region):
    """The credible region at ``level`` of a gravitational-wave sky map
    (:class:`xmatch.sky.skymap.SkyMap`). Rows found in it carry the map's values at their
    position (``probdensity``, ``searched_prob``, ``searched_area``, ``probdensity_vol``)
    and may be ranked by one of them."""

    skymap: object
    level: float = 0.9

    def __post_init__(self):
        from xmatch.sky.skymap import check_level

        object.__setattr__(self, "level", check_level(self.level))

    @classmethod
    def of(cls, skymap, level: float = 0.9) -> SkyMapRegion:
        """From a :class:`~xmatch.sky.skymap.SkyMap`, or the path or bytes of a sky map
        file."""
        from xmatch.sky.skymap import SkyMap

        if not isinstance(skymap, SkyMap):
            skymap = SkyMap.read(skymap)
        return cls(skymap, level)

    def cover29(self) -> np.ndarray:
        return self._cover

    @cached_property
    def _cover(self) -> np.ndarray:
        return self.skymap.region_ranges(self.level)

    def contains(self, ra_deg, dec_deg) -> np.ndarray:
        from xmatch.sky.healpix import radec_to_healpix29

        pixels = radec_to_healpix29(np.asarray(ra_deg, np.float64),
                                    np.asarray(dec_deg, np.float64))
        inside = np.zeros(len(self.skymap.uniq), bool)
        inside[self.skymap.region_pixels(self.level)] = True
        found = self.skymap.pixel_of_cell(pixels)
        return (found >= 0) & inside[np.maximum(found, 0)]

    def values(self, healpix29, distance_mpc=None) -> dict[str, np.ndarray]:
        """The map's values at order-29 cells (see ``SkyMap.values_at``)."""
        return self.skymap.values_at(healpix29, distance_mpc)

    def describe(self) -> str:
        return f"{100 * self.level:g}% credible region of {self.skymap.name}"


def _unit_vectors(ra_deg: np.ndarray, dec_deg: np.ndarray) -> np.ndarray:
    ra, dec = np.radians(ra_deg), np.radians(dec_deg)
    return np.stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)], axis=1)
