"""LVK gravitational-wave sky maps: multi-order FITS (``UNIQ``, ``PROBDENSITY`` and optionally
``DISTMU``, ``DISTSIGMA``, ``DISTNORM``) or flat HEALPix FITS (``PROB`` ..., NESTED or RING),
gzipped or not. A flat map becomes a multi-order one as ligo.skymap reads it. The credible
level of a pixel (its "searched probability") is the probability of every pixel at least as
dense, itself included, as ``ligo.skymap.postprocess.crossmatch`` computes it; the credible
region at level L holds the pixels whose credible level is at most L
(:class:`xmatch.sky.regions.SkyMapRegion`).
"""

from __future__ import annotations

import gzip
import io
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from xmatch.errors import InputError
from xmatch.kernels.skymap import (
    DISTANCE_GRID_REACH,
    conditional_mean_distance_kernel,
    volume_density_kernel,
)
from xmatch.sky.healpix import MAX_ORDER, order_of_npix, radec_to_healpix29
from xmatch.sky.moc import uniq_to_nested

#: How far the probabilities of a sky map may sum from 1 before the map is refused.
NORMALISATION_TOLERANCE = 1e-3
#: The distance layers of an LVK sky map (Singer et al. 2016), all or none.
DISTANCE_COLUMNS = ("DISTMU", "DISTSIGMA", "DISTNORM")


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
    file_bytes: bytes | None = None  # the file as read (what a client sends a server)

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
        not); ``InputError`` names what is missing or wrong (the map as ``name``)."""
        from astropy.io import fits

        name = name or (str(source) if not isinstance(source, bytes) else "the sky map bytes")
        data = skymap_bytes(source)
        original = data
        if data[:2] == b"\x1f\x8b":
            try:
                data = gzip.decompress(data)
            except (OSError, EOFError) as error:
                raise InputError(f"{name} is not a readable gzip file: {error}") from None
        try:
            with fits.open(io.BytesIO(data)) as hdus:
                if len(hdus) < 2 or not hasattr(hdus[1], "columns"):
                    raise InputError(f"{name}: no table extension; an LVK sky map has its "
                                     "pixels in the first extension")
                header, table = hdus[1].header, hdus[1].data
                names = {c.upper(): c for c in hdus[1].columns.names}
                columns = list(names.values())
                if "UNIQ" in names:
                    needed = ("UNIQ", "PROBDENSITY")
                elif "PROB" in names:
                    needed = ("PROB",)
                else:
                    raise InputError(
                        f"{name} is not an LVK sky map: it has no UNIQ and PROBDENSITY "
                        f"columns (multi-order) or PROB column (flat); its columns are "
                        f"{', '.join(columns) or 'none'}")
                missing = [c for c in needed if c not in names]
                if missing:
                    raise InputError(f"{name}: a multi-order sky map needs UNIQ and "
                                     f"PROBDENSITY columns; it has {', '.join(columns)}")
                wanted = [*needed, *[c for c in DISTANCE_COLUMNS if c in names]]
                values = {c: _numeric_column(table[names[c]], c, name) for c in wanted}
        except (OSError, TypeError) as error:
            raise InputError(f"{name} is not a readable FITS file: {error}") from None
        distance = [values.get(c) for c in DISTANCE_COLUMNS]
        if any(d is None for d in distance):
            distance = [None, None, None]
        if "UNIQ" in values:
            uniq, density = values["UNIQ"].astype(np.int64), values["PROBDENSITY"]
        else:
            uniq, density, *distance = _flat_to_multiorder(values, header, columns, name,
                                                           distance)
        skymap = cls(uniq, density, *distance, name=name)
        skymap.check()
        skymap.file_bytes = original
        return skymap

    def check(self) -> None:
        """Refuse maps with negative or non-finite densities, or not normalised."""
        bad = ~np.isfinite(self.probdensity) | (self.probdensity < 0)
        if bad.any():
            raise InputError(f"{self.name}: {int(bad.sum())} pixel(s) have a negative or "
                             "non-finite probability density")
        total = float(self.prob.sum())
        if abs(total - 1.0) > NORMALISATION_TOLERANCE:
            raise InputError(f"{self.name}: the probabilities sum to {total:.6g}, not 1 (within "
                             f"{NORMALISATION_TOLERANCE:g}); the map is not normalised")

    def multiorder_fits(self, date_obs: str | None = None) -> bytes:
        """This map as a multi-order FITS file (what an IGWN notice carries): ``UNIQ``,
        ``PROBDENSITY`` and the distance layers, in ligo.skymap's units and header keys
        (``DATE-OBS``: the event time, ISO 8601 UTC without a zone, if given)."""
        from astropy.io import fits

        columns = [fits.Column("UNIQ", "K", array=self.uniq),
                   fits.Column("PROBDENSITY", "D", unit="sr-1", array=self.probdensity)]
        if self.has_distance:
            columns += [fits.Column("DISTMU", "D", unit="Mpc", array=self.distmu),
                        fits.Column("DISTSIGMA", "D", unit="Mpc", array=self.distsigma),
                        fits.Column("DISTNORM", "D", unit="Mpc-2", array=self.distnorm)]
        table = fits.BinTableHDU.from_columns(columns)
        table.header["PIXTYPE"] = "HEALPIX"
        table.header["ORDERING"] = "NUNIQ"
        table.header["COORDSYS"] = "C"
        table.header["MOCORDER"] = int(self.order.max())
        if date_obs is not None:
            table.header["DATE-OBS"] = date_obs
        buffer = io.BytesIO()
        fits.HDUList([fits.PrimaryHDU(), table]).writeto(buffer)
        return buffer.getvalue()

    @property
    def has_distance(self) -> bool:
        return self.distmu is not None

    @cached_property
    def distmean(self) -> float:
        """Mean distance (Mpc) over the whole sky, as ligo.skymap's
        ``distance.parameters_to_marginal_moments`` gives it."""
        if not self.has_distance:
            raise InputError(f"{self.name} has no distance layers (DISTMU, DISTSIGMA, "
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
        return self.pixel_of_cell(radec_to_healpix29(np.asarray(ra_deg, np.float64),
                                                     np.asarray(dec_deg, np.float64)))

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
    by it (``None``: no ranking); ``InputError`` says why not."""
    if not rank_by:
        return None
    if rank_by not in RANKINGS:
        raise InputError(f"rank_by = {rank_by!r} is not allowed; rank by "
                         f"{' or '.join(RANKINGS)}")
    if skymap is None:
        raise InputError("ranking needs a sky map: a plain MOC gives no probabilities")
    if rank_by == "probdensity_vol":
        if not skymap.has_distance:
            raise InputError(f"{skymap.name} has no distance layers (DISTMU, DISTSIGMA, "
                             "DISTNORM), so no 3-D density to rank by")
        if distance_column is None:
            raise InputError("the catalog has no distance column (columns.distance in its "
                             "spec), so no 3-D density to rank by")
    return rank_by


def check_level(level) -> float:
    if not (isinstance(level, int | float | np.floating) and 0 < level <= 1):
        raise InputError(f"level = {level!r} is not allowed; a credible level lies in (0, 1]")
    return float(level)


def skymap_bytes(source) -> bytes:
    """The bytes of a sky map file given as a path or as bytes."""
    if isinstance(source, bytes):
        return source
    path = Path(source)
    if not path.is_file():
        raise InputError(f"sky map {path} does not exist")
    try:
        return path.read_bytes()
    except OSError as error:
        raise InputError(f"sky map {path} cannot be read: {error.strerror}") from None


def _numeric_column(values, column: str, name: str) -> np.ndarray:
    """A sky-map column as numbers (UNIQ as int64), or an InputError naming it."""
    array = np.asarray(values)
    if array.dtype.kind not in "fiu":
        raise InputError(f"{name}: column {column} holds {array.dtype} values, not numbers; "
                         "is this an LVK sky map?")
    return array.astype(np.int64 if column == "UNIQ" else np.float64).ravel()


def _flat_to_multiorder(values: dict, header, columns: list[str], name: str, distance):
    """UNIQ, PROBDENSITY and distance layers (or Nones) of a flat HEALPix map (PROB per
    pixel, NESTED or RING), read as ligo.skymap's ``read_sky_map(moc=True)`` reads it: every
    block of pixels holding identical values becomes one pixel of a coarser order."""
    from xmatch.kernels.healpix import nest_to_ring_kernel

    npix = len(values["PROB"])
    order = order_of_npix(npix)
    if order is None:
        raise InputError(f"{name}: {npix} pixels is not a HEALPix map (12 * nside**2)")
    ordering = str(header.get("ORDERING", "RING")).upper()
    if ordering not in ("RING", "NESTED"):
        raise InputError(f"{name}: ORDERING {ordering!r} is neither RING nor NESTED")
    layers = [values["PROB"] * (npix / (4 * np.pi))] + [d for d in distance if d is not None]
    if ordering == "RING":
        ring_of_nested = np.empty(npix, dtype=np.int64)
        nest_to_ring_kernel(order, np.arange(npix, dtype=np.int64), ring_of_nested)
        layers = [layer[ring_of_nested] for layer in layers]
    uniq, merged = _merge_uniform_blocks(order, np.stack(layers, axis=1))
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
