"""Regions of the sky to search: IVOA MOC 2.0 (ASCII, JSON, FITS), NUNIQ lists, cones and
polygons, and the credible regions of LVK gravitational-wave sky maps.

Every region becomes a :class:`mocpy.MOC`, whose ``to_depth29_ranges`` is what
:meth:`xmatch.SkyIndex.rows_in_moc` and the ``RegionSearch`` RPC take.

Sky maps (:class:`SkyMap`) are read as LVK publishes them: multi-order FITS (``UNIQ``,
``PROBDENSITY`` and optionally ``DISTMU``, ``DISTSIGMA``, ``DISTNORM``) or flat HEALPix
FITS (``PROB`` ..., NESTED or RING), gzipped or not. A flat map becomes a multi-order one
at its single order. The credible level of a pixel (its "searched probability") is the
probability of every pixel at least as dense, itself included, as
``ligo.skymap.postprocess.crossmatch`` computes it; the credible region at level L holds the
pixels whose credible level is at most L.
"""

from __future__ import annotations

import gzip
import io
import json
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from xmatch.kernels.skymap import (
    DISTANCE_GRID_REACH,
    conditional_mean_distance_kernel,
    volume_density_kernel,
)

#: Deepest HEALPix order of the IVOA MOC standard.
MAX_ORDER = 29
#: How far the probabilities of a sky map may sum from 1 before the map is refused.
NORMALISATION_TOLERANCE = 1e-3
#: The distance layers of an LVK sky map (Singer et al. 2016), all or none.
DISTANCE_COLUMNS = ("DISTMU", "DISTSIGMA", "DISTNORM")
_ORDER_PATTERN = re.compile(r"(\d+)\s*/")


def moc_from(value):
    """A :class:`mocpy.MOC` from a MOC; an IVOA MOC 2.0 ASCII string (``"3/1-5 4/120"``);
    MOC JSON text (``'{"3": [1, 2]}'``); FITS bytes; or the path of a FITS, ASCII or JSON
    MOC file. Malformed input raises ``ValueError`` saying what was wrong."""
    from mocpy import MOC

    if isinstance(value, MOC):
        return value
    if isinstance(value, bytes):
        return _moc_from_fits(value, "the FITS bytes")
    if isinstance(value, Path) or (isinstance(value, str) and _looks_like_path(value)):
        path = Path(value)
        if not path.is_file():
            raise ValueError(f"MOC file {path} does not exist")
        data = path.read_bytes()
        if data[:6] == b"SIMPLE":
            return _moc_from_fits(data, str(path))
        return _moc_from_text(data.decode("utf-8", errors="replace"), str(path))
    if isinstance(value, str):
        return _moc_from_text(value, "the MOC string")
    raise ValueError(f"a MOC is given as a MOC, ASCII or JSON text, FITS bytes or a path, "
                     f"not {type(value).__name__}")


def _looks_like_path(text: str) -> bool:
    stripped = text.strip()
    return bool(stripped) and not stripped[0].isdigit() and stripped[0] != "{"


def _moc_from_text(text: str, where: str):
    from mocpy import MOC

    stripped = text.strip()
    if not stripped:
        raise ValueError(f"{where} is empty; an ASCII MOC looks like '3/1-5 4/120'")
    kind = "json" if stripped.startswith("{") else "ascii"
    if kind == "json":
        try:
            orders = json.loads(stripped)
        except json.JSONDecodeError as error:
            raise ValueError(f"{where} is not valid MOC JSON: {error}") from None
        if not isinstance(orders, dict):
            raise ValueError(f"{where}: MOC JSON maps orders to lists of cells, e.g. "
                             '{"3": [1, 2]}')
        _check_orders([int(k) for k in orders if str(k).isdigit()], where)
        bad = [k for k in orders if not str(k).isdigit()]
        if bad:
            raise ValueError(f"{where}: MOC JSON key {bad[0]!r} is not an order")
        for order, cells in orders.items():
            if not (isinstance(cells, list) and all(isinstance(c, int) for c in cells)):
                raise ValueError(f"{where}: MOC JSON maps orders to lists of cells, e.g. "
                                 f'{{"3": [1, 2]}}; order {order} has {cells!r}')
            for cell in cells:
                _check_cells(int(order), cell, cell, where)
    else:
        _check_orders([int(m) for m in _ORDER_PATTERN.findall(stripped)], where)
        _check_ascii_cells(stripped, where)
    try:
        return MOC.from_string(stripped, format=kind)
    except (OSError, ValueError) as error:  # mocpy's parser reports through OSError
        detail = str(error).strip().splitlines()[0]
        raise ValueError(f"{where} is not a valid {kind.upper()} MOC ({detail}); an ASCII "
                         "MOC looks like '3/1-5 4/120'") from None


def _check_ascii_cells(text: str, where: str) -> None:
    """Refuse cells of an ASCII MOC outside their order, or ranges running backwards (mocpy
    would accept some and fail later, or quietly drop them); syntax errors are left to
    mocpy's parser."""
    order = None
    for token in re.split(r"[\s,]+", text):
        if "/" in token:
            head, _, token = token.partition("/")
            if not head.isdigit():
                return
            order = int(head)
        if not token:
            continue
        first, dash, last = token.partition("-")
        if order is None or not first.isdigit() or (dash and not last.isdigit()):
            return
        _check_cells(order, int(first), int(last) if dash else int(first), where)


def _check_cells(order: int, first: int, last: int, where: str) -> None:
    cells = 12 * 4 ** order
    if first < 0 or last >= cells:
        raise ValueError(f"{where}: cell {last if last >= cells else first} is not a cell of "
                         f"order {order}, whose cells run from 0 to {cells - 1}")
    if first > last:
        raise ValueError(f"{where}: cell range {first}-{last} at order {order} runs backwards")


def _moc_from_fits(data: bytes, where: str):
    from astropy.io import fits
    from mocpy import MOC

    try:
        with fits.open(io.BytesIO(data)) as hdus:
            names = (hdus[1].columns.names or []) if len(hdus) > 1 and hasattr(
                hdus[1], "columns") else []
            if "UNIQ" in names:  # MOC 1.x and 2.0 ORDERING = NUNIQ
                return moc_from_nuniq(np.asarray(hdus[1].data["UNIQ"], np.int64), where)
            if "RANGE" in names:  # MOC 2.0 ORDERING = RANGE: order-29 [start, stop) pairs
                ranges = np.asarray(hdus[1].data["RANGE"], np.int64).reshape(-1, 2)
                depth = int(hdus[1].header.get("MOCORD_S", MAX_ORDER))
                _check_orders([depth], where)
                if len(ranges) and not (0 <= ranges.min() and ranges.max() <= 12 * 4 ** 29
                                        and (ranges[:, 0] < ranges[:, 1]).all()):
                    raise ValueError(f"{where}: RANGE values must be increasing order-29 "
                                     "pairs within the sphere")
                return MOC.from_depth29_ranges(depth, ranges)
            raise ValueError(f"{where}: a FITS MOC has a UNIQ or RANGE column in its first "
                             f"extension; this file has {', '.join(names) or 'none'}")
    except OSError as error:
        raise ValueError(f"{where} is not a readable FITS file: {error}") from None


def _check_orders(orders: list[int], where: str) -> None:
    deep = [o for o in orders if o > MAX_ORDER]
    if deep:
        raise ValueError(f"{where}: order {deep[0]} is not allowed; MOC orders run from 0 to "
                         f"{MAX_ORDER}")


def moc_from_nuniq(uniq, where: str = "the NUNIQ list"):
    """A MOC from NUNIQ cell numbers (4 * 4**order + ipix)."""
    from mocpy import MOC

    uniq = np.atleast_1d(np.asarray(uniq))
    if uniq.dtype.kind not in "iu":
        raise ValueError(f"{where}: NUNIQ numbers are integers, got {uniq.dtype}")
    uniq = uniq.astype(np.int64)
    order, ipix = uniq_to_nested(uniq, where)
    return MOC.from_healpix_cells(ipix, order, max_depth=int(order.max()) if len(order) else 0)


def uniq_to_nested(uniq: np.ndarray, where: str = "UNIQ") -> tuple[np.ndarray, np.ndarray]:
    """(order, nested pixel) of NUNIQ numbers, checked."""
    uniq = np.asarray(uniq, dtype=np.int64)
    bad = np.flatnonzero(uniq < 4)
    if len(bad):
        raise ValueError(f"{where}: {int(uniq[bad[0]])} (at position {int(bad[0])}) is not a "
                         "NUNIQ number; they are 4 * 4**order + pixel, so at least 4")
    deep = np.flatnonzero(uniq >= np.int64(4) << (2 * (MAX_ORDER + 1)))
    if len(deep):
        raise ValueError(f"{where}: {int(uniq[deep[0]])} (at position {int(deep[0])}) is a cell "
                         f"deeper than order {MAX_ORDER}, the deepest a MOC has")
    order = (np.floor(np.log2(uniq)).astype(np.int64) - 2) // 2
    # log2 can round up just below a power of 4: fix the few it gets wrong.
    order -= (uniq < (np.int64(4) << (2 * order))).astype(np.int64)
    order += (uniq >= (np.int64(4) << (2 * np.minimum(order + 1, MAX_ORDER + 1)))).astype(
        np.int64)
    return order, uniq - (np.int64(4) << (2 * order))


def cone_moc(ra_deg: float, dec_deg: float, radius_arcsec: float, order: int = 14):
    """The MOC of a cone, at ``order`` (cells overlapping the cone are kept whole)."""
    import astropy.units as u
    from mocpy import MOC

    _check_order(order)
    if not (np.isfinite(ra_deg) and np.isfinite(dec_deg) and abs(dec_deg) <= 90
            and np.isfinite(radius_arcsec) and radius_arcsec > 0):
        raise ValueError(f"cone ({ra_deg!r}, {dec_deg!r}, radius {radius_arcsec!r} arcsec) is "
                         "not allowed: finite ra, |dec| <= 90 and a radius > 0")
    return MOC.from_cone(lon=ra_deg * u.deg, lat=dec_deg * u.deg,
                         radius=radius_arcsec * u.arcsec, max_depth=order)


def polygon_moc(ra_deg, dec_deg, order: int = 14):
    """The MOC of a polygon given by its vertices (degrees, in order), at ``order``."""
    import astropy.units as u
    from mocpy import MOC

    _check_order(order)
    ra, dec = np.asarray(ra_deg, np.float64), np.asarray(dec_deg, np.float64)
    if ra.shape != dec.shape or ra.ndim != 1 or len(ra) < 3:
        raise ValueError("a polygon needs at least 3 vertices, as equal-length ra and dec")
    if not (np.isfinite(ra).all() and np.isfinite(dec).all() and (np.abs(dec) <= 90).all()):
        raise ValueError("polygon vertices must be finite with |dec| <= 90")
    return MOC.from_polygon(ra * u.deg, dec * u.deg, max_depth=order)


def _check_order(order: int) -> None:
    if not (isinstance(order, int | np.integer) and 0 <= order <= MAX_ORDER):
        raise ValueError(f"order = {order!r} is not allowed; MOC orders run from 0 to "
                         f"{MAX_ORDER}")


# ------------------------------------------------------------------------- sky maps


@dataclass
class SkyMap:
    """An LVK sky map in multi-order form, its pixels sorted as ligo.skymap sorts them: by
    descending density, equal densities by descending UNIQ.

    ``searched_prob`` is each pixel's credible level: the probability of all pixels before
    it, itself included; ``searched_area`` (deg2) their area.
    """

    uniq: np.ndarray
    probdensity: np.ndarray  # per steradian
    distmu: np.ndarray | None = None  # Mpc
    distsigma: np.ndarray | None = None  # Mpc
    distnorm: np.ndarray | None = None  # Mpc**-2
    name: str = "sky map"

    def __post_init__(self):
        order = np.lexsort((self.uniq, self.probdensity))[::-1]
        for field in ("uniq", "probdensity", "distmu", "distsigma", "distnorm"):
            values = getattr(self, field)
            if values is not None:
                setattr(self, field, np.ascontiguousarray(values[order]))
        self.order, self.ipix = uniq_to_nested(self.uniq, self.name)
        self.area = np.ldexp(np.pi / 3, -2 * self.order)  # steradians
        self.prob = self.probdensity * self.area
        self.searched_prob = np.cumsum(self.prob)
        self.searched_area = np.cumsum(self.area) * np.square(180 / np.pi)

    @classmethod
    def read(cls, source, name: str | None = None) -> SkyMap:
        """Read a multi-order or flat LVK FITS sky map from a path or bytes (gzipped or
        not); ``ValueError`` names what is missing or wrong (the map as ``name``)."""
        from astropy.io import fits

        name = name or (str(source) if not isinstance(source, bytes) else "the sky map bytes")
        if not isinstance(source, bytes) and not Path(source).is_file():
            raise ValueError(f"sky map {name} does not exist")
        data = Path(source).read_bytes() if not isinstance(source, bytes) else source
        if data[:2] == b"\x1f\x8b":
            try:
                data = gzip.decompress(data)
            except (OSError, EOFError) as error:
                raise ValueError(f"{name} is not a readable gzip file: {error}") from None
        try:
            with fits.open(io.BytesIO(data)) as hdus:
                if len(hdus) < 2 or not hasattr(hdus[1], "columns"):
                    raise ValueError(f"{name}: no table extension; an LVK sky map has its "
                                     "pixels in the first extension")
                header, table = hdus[1].header, hdus[1].data
                columns = [c.upper() for c in hdus[1].columns.names]
                values = {c: np.asarray(table[n], dtype=np.float64 if c != "UNIQ" else np.int64)
                          .ravel() for c, n in zip(columns, hdus[1].columns.names, strict=True)}
        except (OSError, TypeError) as error:
            raise ValueError(f"{name} is not a readable FITS file: {error}") from None
        distance = [values.get(c) for c in DISTANCE_COLUMNS]
        if any(d is None for d in distance):
            distance = [None, None, None]
        if "UNIQ" in values:
            if "PROBDENSITY" not in values:
                raise ValueError(f"{name}: a multi-order sky map needs UNIQ and PROBDENSITY "
                                 f"columns; it has {', '.join(columns)}")
            uniq, density = values["UNIQ"], values["PROBDENSITY"]
        else:
            uniq, density, *distance = _flat_to_multiorder(values, header, columns, name,
                                                           distance)
        skymap = cls(uniq, density, *distance, name=name)
        skymap.check()
        return skymap

    def check(self) -> None:
        """Refuse maps with negative or non-finite densities, or not normalised."""
        bad = ~np.isfinite(self.probdensity) | (self.probdensity < 0)
        if bad.any():
            raise ValueError(f"{self.name}: {int(bad.sum())} pixel(s) have a negative or "
                             "non-finite probability density")
        total = float(self.prob.sum())
        if abs(total - 1.0) > NORMALISATION_TOLERANCE:
            raise ValueError(f"{self.name}: the probabilities sum to {total:.6g}, not 1 (within "
                             f"{NORMALISATION_TOLERANCE:g}); the map is not normalised")

    @property
    def has_distance(self) -> bool:
        return self.distmu is not None

    @cached_property
    def distmean(self) -> float:
        """Mean distance (Mpc) over the whole sky, as ligo.skymap's
        ``distance.parameters_to_marginal_moments`` gives it."""
        if not self.has_distance:
            raise ValueError(f"{self.name} has no distance layers (DISTMU, DISTSIGMA, "
                             "DISTNORM)")
        mean = np.empty(len(self.distmu))
        conditional_mean_distance_kernel(self.distmu, self.distsigma, mean)
        good = np.isfinite(self.prob) & np.isfinite(mean)
        return float((self.prob[good] * mean[good]).sum())

    def credible_region(self, level: float):
        """The pixels of the credible region at ``level`` (in (0, 1]), as a MOC."""
        from mocpy import MOC

        inside = self.region_pixels(level)
        order, ipix = self.order[inside], self.ipix[inside]
        if not len(order):
            return MOC.new_empty(MAX_ORDER)
        deepest = int(order.max())
        return MOC.from_healpix_cells(ipix, order, max_depth=deepest)

    def region_ranges(self, level: float) -> np.ndarray:
        """The credible region at ``level`` as sorted, disjoint order-29 ranges
        ``[start, stop)``, shape (n, 2): what ``rows_in_moc`` and RegionSearch take."""
        inside = np.zeros(len(self.uniq), dtype=bool)
        inside[self.region_pixels(level)] = True
        by_start, starts, stops = self._cells_in_sky_order
        starts, stops = starts[inside[by_start]], stops[inside[by_start]]
        if not len(starts):
            return np.empty((0, 2), dtype=np.int64)
        first = np.flatnonzero(np.r_[True, starts[1:] != stops[:-1]])  # after each gap
        last = np.r_[first[1:] - 1, len(starts) - 1]
        return np.stack([starts[first], stops[last]], axis=1).astype(np.int64)

    def region_pixels(self, level: float) -> np.ndarray:
        """Indexes of the pixels whose credible level is at most ``level`` (every pixel at
        level 1, whatever the rounding of the cumulative sum)."""
        if check_level(level) == 1.0:
            return np.arange(len(self.uniq))
        return np.flatnonzero(self.searched_prob <= level)

    def pixel_of(self, ra_deg, dec_deg) -> np.ndarray:
        """Index (into this map's arrays) of the pixel holding each position; -1 where the
        map has no pixel there (a partial map)."""
        import healpy

        cell = healpy.ang2pix(2 ** MAX_ORDER, np.asarray(ra_deg, np.float64),
                              np.asarray(dec_deg, np.float64), nest=True, lonlat=True)
        return self.pixel_of_cell(cell)

    def pixel_of_cell(self, healpix29) -> np.ndarray:
        """Index of the pixel holding each order-29 NESTED cell (-1: none)."""
        by_start, starts, stops = self._cells_in_sky_order
        cell = np.asarray(healpix29, dtype=np.int64)
        slot = np.searchsorted(starts, cell, side="right") - 1
        found = (slot >= 0) & (cell < stops[np.maximum(slot, 0)])
        return np.where(found, by_start[np.maximum(slot, 0)], -1)

    @cached_property
    def _cells_in_sky_order(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The pixels in NESTED order: their indexes, and their first and end order-29
        cells."""
        shift = 2 * (MAX_ORDER - self.order)
        first = self.ipix << shift
        by_start = np.argsort(first, kind="stable")
        return by_start, first[by_start], first[by_start] + (np.int64(1) << shift[by_start])

    def values_at(self, healpix29, distance_mpc=None) -> dict[str, np.ndarray]:
        """What ``ligo.skymap.postprocess.crossmatch`` gives each position (by its order-29
        cell): ``probdensity`` (per sr), ``searched_prob``, ``searched_area`` (deg2) and,
        when distances are given and the map has distance layers, ``probdensity_vol`` (per
        Mpc3; NaN where a distance is missing or not positive). NaN outside the map."""
        pixel = self.pixel_of_cell(healpix29)
        inside = pixel >= 0
        values = {}
        for name in ("probdensity", "searched_prob", "searched_area"):
            column = getattr(self, name)[pixel]
            values[name] = np.where(inside, column, np.nan)
        if distance_mpc is not None and self.has_distance:
            density = np.empty(len(pixel))
            volume_density_kernel(pixel, np.asarray(distance_mpc, np.float64),
                                  self.probdensity, self.distmu, self.distsigma,
                                  self.distnorm, DISTANCE_GRID_REACH * self.distmean, density)
            values["probdensity_vol"] = density
        return values


#: The columns a sky-map search adds to each row, with their units (ligo.skymap's names).
SKYMAP_COLUMNS = {"probdensity": "sr-1", "searched_prob": "", "searched_area": "deg2",
                  "probdensity_vol": "Mpc-3"}
#: What a sky-map search can rank rows by (highest first).
RANKINGS = ("probdensity", "probdensity_vol")


def with_skymap_values(table, values: dict[str, np.ndarray]):
    """``table`` (Arrow) with the sky-map values of its rows appended as columns (NaN
    values, where a row has no distance or lies outside the map, become nulls)."""
    import pyarrow as pa

    for name, unit in SKYMAP_COLUMNS.items():
        if name in values:
            column = values[name]
            field = pa.field(name, pa.float64(), metadata={"unit": unit} if unit else None)
            table = table.append_column(field, pa.array(column, pa.float64(),
                                                        mask=np.isnan(column)))
    return table


def check_rank(rank_by: str | None, skymap, distance_column: str | None) -> str | None:
    """``rank_by`` if a search of ``skymap`` over a catalog with ``distance_column`` can rank
    by it (``None``: no ranking); ``ValueError`` says why not."""
    if not rank_by:
        return None
    if rank_by not in RANKINGS:
        raise ValueError(f"rank_by = {rank_by!r} is not allowed; rank by "
                         f"{' or '.join(RANKINGS)}")
    if skymap is None:
        raise ValueError("ranking needs a sky map: a plain MOC gives no probabilities")
    if rank_by == "probdensity_vol":
        if not skymap.has_distance:
            raise ValueError(f"{skymap.name} has no distance layers (DISTMU, DISTSIGMA, "
                             "DISTNORM), so no 3-D density to rank by")
        if distance_column is None:
            raise ValueError("the catalog has no distance column (columns.distance in its "
                             "spec), so no 3-D density to rank by")
    return rank_by


def check_level(level) -> float:
    if not (isinstance(level, int | float | np.floating) and 0 < level <= 1):
        raise ValueError(f"level = {level!r} is not allowed; a credible level lies in (0, 1]")
    return float(level)


def _flat_to_multiorder(values: dict, header, columns: list[str], name: str, distance):
    """UNIQ, PROBDENSITY and distance layers (or Nones) of a flat HEALPix map (PROB per
    pixel, NESTED or RING), read as ligo.skymap's ``read_sky_map(moc=True)`` reads it: every
    block of pixels holding identical values becomes one pixel of a coarser order."""
    import healpy

    if "PROB" not in values:
        raise ValueError(f"{name}: a flat sky map needs a PROB column (or a multi-order map "
                         f"UNIQ and PROBDENSITY); it has {', '.join(columns)}")
    npix = len(values["PROB"])
    nside = healpy.npix2nside(npix) if healpy.isnpixok(npix) else None
    if nside is None:
        raise ValueError(f"{name}: {npix} pixels is not a HEALPix map (12 * nside**2)")
    ordering = str(header.get("ORDERING", "RING")).upper()
    if ordering not in ("RING", "NESTED"):
        raise ValueError(f"{name}: ORDERING {ordering!r} is neither RING nor NESTED")
    layers = [values["PROB"] * (npix / (4 * np.pi))] + [d for d in distance if d is not None]
    if ordering == "RING":
        to_nested = healpy.nest2ring(nside, np.arange(npix))
        layers = [layer[to_nested] for layer in layers]
    uniq, merged = _merge_uniform_blocks(int(np.log2(nside)), np.stack(layers, axis=1))
    density, *distance = merged.T if len(layers) == 4 else (merged[:, 0], None, None, None)
    return uniq, density, *distance


def _merge_uniform_blocks(order: int, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The pixels of a flat NESTED map at ``order`` (``values``: one row of layers per pixel)
    with each block of 4**k pixels whose rows are all identical (NaN equal to NaN) merged
    into one pixel, the coarsest such block winning: UNIQ and the values of each."""
    uniform = [np.ones(len(values), dtype=bool)]  # uniform[k]: blocks at order - k
    firsts = [values]  # first row of each block
    for _ in range(order):
        rows = firsts[-1].reshape(-1, 4, values.shape[1])
        lead = rows[:, :1]
        same = ((rows == lead) | (np.isnan(rows) & np.isnan(lead))).all(axis=(1, 2))
        uniform.append(uniform[-1].reshape(-1, 4).all(axis=1) & same)
        firsts.append(rows[:, 0])
    uniq, kept = [], []
    for k, block_order in enumerate(range(order, -1, -1)):
        leaf = uniform[k].copy()
        if k < order:  # a block inside a uniform parent is not a pixel of its own
            leaf &= ~np.repeat(uniform[k + 1], 4)
        ipix = np.flatnonzero(leaf)
        uniq.append((np.int64(4) << (2 * block_order)) + ipix)
        kept.append(firsts[k][ipix])
    return np.concatenate(uniq), np.concatenate(kept)
