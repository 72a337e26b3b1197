"""Requests checked at the service boundary, the same way by the embedded server, the shard
servers and the router: limits, radii, row counts, regions, modes, times and tokens.

Values are checked by :mod:`xmatch.sky.coords` and :mod:`xmatch.timescales` like every other
face's; what is here is what only a server has: its :class:`Limits`, and the protobuf forms
of the requests.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xmatch.errors import InputError, LimitExceededError
from xmatch.sky import coords
from xmatch.sky.moc import check_coverage_order
from xmatch.sky.regions import Ellipse, Moc, Polygon, SkyMapRegion, check_ranges29
from xmatch.timescales import check_scale
from xmatch.v1 import xmatch_pb2

MODES = {xmatch_pb2.MATCH_MODE_UNSPECIFIED: "nearest", xmatch_pb2.MATCH_MODE_NEAREST: "nearest",
         xmatch_pb2.MATCH_MODE_K_NEAREST: "k", xmatch_pb2.MATCH_MODE_ALL: "all"}
#: The credible level of a sky-map search that does not give one.
DEFAULT_CREDIBLE_LEVEL = 0.9


@dataclass(frozen=True)
class Limits:
    """What one request may ask for. Over a limit: RESOURCE_EXHAUSTED."""

    max_radius_arcsec: float = 10 * 3600.0
    max_rows: int = 1_000_000            # rows in one answer (cone, batch, region batch)
    max_batch: int = 1_000_000           # positions in one cross-match batch
    max_message_bytes: int = 64 * 2**20  # gRPC send and receive limit
    region_batch_rows: int = 100_000     # default rows per RegionSearch batch
    skymaps_kept: int = 4                # sky maps kept read, for the pages of a search

    def radius(self, radius_arcsec, where: str = "") -> None:
        """One radius or one per position: finite, > 0 and within the limit."""
        if isinstance(radius_arcsec, float) and 0 < radius_arcsec <= self.max_radius_arcsec:
            return  # the common case, without numpy's per-call cost
        values = np.atleast_1d(np.asarray(radius_arcsec, dtype=np.float64))
        bad = ~(np.isfinite(values) & (values > 0))
        if bad.any():
            raise InputError(f"{where}radius_arcsec = {float(values[bad][0])!r} is not "
                             "allowed; it must be finite and > 0")
        if values.size and values.max() > self.max_radius_arcsec:
            raise LimitExceededError(
                f"{where}radius_arcsec = {values.max():g} is over this server's limit of "
                f"{self.max_radius_arcsec:g} arcsec")

    def limit(self, requested: int) -> int | None:
        """A request's row limit (0: none). Limits past the server's own answer alike (too
        many rows), so they are capped there: numbers up to 2**64 - 1 stay in range."""
        return min(int(requested), self.max_rows + 1) or None

    def rows(self, rows: int, what: str) -> None:
        if rows > self.max_rows:
            raise LimitExceededError(
                f"{what} would return {rows:,} rows; this server returns at most "
                f"{self.max_rows:,} per answer: set a limit or a smaller region")

    def count(self, n: int, what: str) -> None:
        if n > self.max_batch:
            raise LimitExceededError(f"a batch of {n:,} {what} is over this server's "
                                     f"limit of {self.max_batch:,}")

    def batch(self, batch) -> int:
        """The number of positions of a cross-match batch, checked against the limit."""
        n = len(batch.ra_deg)
        self.count(n, "positions")
        if len(batch.dec_deg) != n:
            raise InputError(f"batch {batch.batch_id}: {n} ra_deg but {len(batch.dec_deg)} "
                             "dec_deg values; they must pair up")
        if len(batch.radius_arcsec):
            if len(batch.radius_arcsec) != n:
                raise InputError(f"batch {batch.batch_id}: {len(batch.radius_arcsec)} "
                                 f"radius_arcsec values for {n} positions; give one per "
                                 "position, or none")
            self.radius(batch.radius_arcsec, f"batch {batch.batch_id}: ")
        if len(batch.epoch_jyear) and len(batch.epoch_jyear) != n:
            raise InputError(f"batch {batch.batch_id}: {len(batch.epoch_jyear)} epoch_jyear "
                             f"values for {n} positions; give one per position, or none")
        return n

    def message(self, size: int, what: str, instead: str) -> None:
        """Refuse an answer of ``size`` bytes larger than a gRPC message may be (``what``
        it is; what to ask ``instead``), before gRPC fails it without saying why."""
        if size > self.max_message_bytes:
            raise LimitExceededError(
                f"{what} takes {size / 2**20:,.1f} MiB, over this server's message limit of "
                f"{self.max_message_bytes / 2**20:,.1f} MiB: {instead}")

    def batch_rows(self, requested: int) -> int:
        rows = int(requested) or self.region_batch_rows
        if rows > self.max_rows:
            raise LimitExceededError(f"batch_rows = {rows:,} is over this server's limit of "
                                     f"{self.max_rows:,}")
        return rows


def batch_positions(batch) -> tuple[np.ndarray, np.ndarray]:
    """The checked positions of a cross-match batch (the batch named in errors)."""
    try:
        ra, dec, _ = coords.positions(np.asarray(batch.ra_deg, dtype=np.float64),
                                      np.asarray(batch.dec_deg, dtype=np.float64))
    except InputError as error:
        raise InputError(f"batch {batch.batch_id}: {error}") from None
    return ra, dec


def batch_epochs(batch, default) -> np.ndarray | float | None:
    if not len(batch.epoch_jyear):
        return default
    try:
        return coords.epochs(np.asarray(batch.epoch_jyear), len(batch.ra_deg))
    except InputError as error:
        raise InputError(f"batch {batch.batch_id}: {error}") from None


def cone_position(request) -> tuple[float, float]:
    """The checked centre of a Cone or SsoCone request."""
    ra, dec, _ = coords.positions(request.ra_deg, request.dec_deg)
    return float(ra[0]), float(dec[0])


def epoch_of(message) -> float | None:
    """A request's ``epoch_jyear`` (None when unset), checked."""
    if not message.HasField("epoch_jyear"):
        return None
    return float(coords.epochs(message.epoch_jyear, 1)[0])


def crossmatch_keep(options) -> int:
    """Matches kept per position: 1 (nearest), k (k nearest), 0 (all)."""
    if options.mode not in MODES:
        raise InputError(f"mode = {options.mode} is not allowed; use one of "
                         f"{', '.join(xmatch_pb2.MatchMode.keys())}")
    mode = MODES[options.mode]
    if mode == "k":
        if options.k < 1:
            raise InputError("k must be >= 1 for MATCH_MODE_K_NEAREST")
        return int(options.k)
    if options.k not in (0, 1):
        raise InputError(f"k = {options.k} applies to MATCH_MODE_K_NEAREST only")
    return 1 if mode == "nearest" else 0


def mode_name(keep: int) -> str:
    return {1: "nearest", 0: "all"}.get(keep, "k")


def night_options(options, night) -> dict:
    """What a cross-match stream needs to know of its catalog's time: the proper-motion
    epoch of a sky catalog, or the night and the time scale of a nightly cache."""
    epoch = epoch_of(options)
    if night is not None and epoch is not None:
        raise InputError(f"{options.catalog} is a nightly solar-system cache: epoch_jyear does "
                         "not apply; give each position's time in PositionBatch.mjd")
    if night is None and options.time_scale:
        raise InputError(f"time_scale is for nightly solar-system caches; {options.catalog} "
                         "takes epoch_jyear")
    return {"epoch": epoch, "night": night, "time_scale": check_scale(options.time_scale)}


def coverage_order(request) -> int:
    """The order of a Coverage request: required (0 is an order, so unset is not 0), an
    integer from 0 to :data:`~xmatch.sky.moc.COVERAGE_MAX_ORDER`."""
    return check_coverage_order(request.order if request.HasField("order") else None)


def columns_of(message) -> list[str] | None:
    columns = list(message.columns)
    return columns or None


def region_of(request, skymaps) -> tuple:
    """(region, rank_by) of a RegionSearch request: a MOC's ranges, a polygon, or a sky
    map's credible region (read through ``skymaps``, which keeps maps already read)."""
    given = [name for name, present in (("ranges29", len(request.ranges29) > 0),
                                        ("skymap", request.HasField("skymap")),
                                        ("polygon", request.HasField("polygon")),
                                        ("ellipse", request.HasField("ellipse"))) if present]
    if len(given) > 1:
        raise InputError("give one region: ranges29, skymap, polygon or ellipse, not "
                         f"{' and '.join(given)}")
    if given == ["skymap"]:
        from xmatch.sky.skymap import check_level

        wanted = request.skymap
        level = check_level(wanted.credible_level if wanted.HasField("credible_level")
                            else DEFAULT_CREDIBLE_LEVEL)
        if not wanted.fits:
            raise InputError("skymap.fits is empty; send the bytes of the sky map file")
        return SkyMapRegion(skymaps.read(wanted.fits), level), wanted.rank_by or None
    if given == ["polygon"]:
        polygon = request.polygon
        if len(polygon.ra_deg) != len(polygon.dec_deg):
            raise InputError(f"polygon: {len(polygon.ra_deg)} ra_deg but "
                             f"{len(polygon.dec_deg)} dec_deg values; they must pair up")
        return Polygon.of(np.asarray(polygon.ra_deg), np.asarray(polygon.dec_deg)), None
    if given == ["ellipse"]:
        wanted = request.ellipse
        return Ellipse.of(wanted.ra_deg, wanted.dec_deg, wanted.semi_major_arcsec,
                          wanted.semi_minor_arcsec, wanted.pa_deg), None
    ranges = np.asarray(request.ranges29, dtype=np.int64)
    if ranges.size % 2:
        raise InputError("ranges29 must hold start/stop pairs (an even count), got "
                         f"{ranges.size} values")
    return Moc(check_ranges29(ranges.reshape(-1, 2))), None


def clip_of(request) -> np.ndarray | None:
    if not len(request.clip29):
        return None
    clip = np.asarray(request.clip29, dtype=np.int64)
    if clip.size % 2:
        raise InputError("clip29 must hold start/stop pairs")
    return check_ranges29(clip.reshape(-1, 2))


def token_offset(token: str) -> int:
    if not token:
        return 0
    kind, _, value = token.partition(":")
    if kind != "offset" or not value.isdigit():
        raise InputError(f"continuation_token {token!r} is not one this server issued")
    return int(value)


def no_slice(value: str) -> None:
    if value:
        raise InputError("slice is set by a router for its shard servers; leave it empty")
