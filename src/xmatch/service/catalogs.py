"""Catalogs as a server holds them: in-memory indexes of the partitions it serves, their
description for ``ListCatalogs`` / ``DescribeCatalog``, and the sky maps requests send."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from xmatch.errors import CatalogNotFoundError, InputError
from xmatch.v1 import xmatch_pb2

log = logging.getLogger("xmatch.service")


@dataclass(frozen=True)
class ServedCatalog:
    """A catalog as served: its metadata and in-memory indexes of the partitions held here,
    one per slice (embedded mode holds one slice, ``""``, with every partition)."""

    name: str
    slices: dict
    summary: xmatch_pb2.CatalogSummary
    description: xmatch_pb2.CatalogDescription
    night: object = None  # the Night of a nightly solar-system ephemeris cache
    spec: object = None   # the catalog's spec (its context roles)
    # Coverage answers by (slice, order). A served catalog never changes: serving another
    # version of it (XmatchServicer.serve_catalogs) makes a new ServedCatalog, whose cache
    # starts empty, and the old one goes with its answers.
    _coverage: dict = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_catalog(cls, catalog, slices: dict[str, list] | None = None) -> ServedCatalog:
        """Index each slice's partitions of a store catalog (default: one slice ``""``
        holding every partition) and describe the catalog."""
        from xmatch.index import SkyIndex
        from xmatch.sso.nightly import NightIndex, is_night_cache, night_of

        started = time.perf_counter()
        slices = {"": catalog.partitions} if slices is None else slices
        index_type = NightIndex if is_night_cache(catalog) else SkyIndex
        indexes = {name: index_type.from_catalog(catalog, partitions=partitions)
                   for name, partitions in slices.items()}
        summary, description = describe(catalog)
        log.info("serving %s: %d rows in %d slice(s) indexed in %.2f s", catalog.name,
                 sum(len(index) for index in indexes.values()), len(indexes),
                 time.perf_counter() - started)
        return cls(catalog.name, indexes, summary, description, night_of(catalog), catalog.spec)

    def memory_bytes(self) -> int:
        """Bytes the indexes of this catalog's slices hold (index arrays and payload
        buffers; see :meth:`xmatch.index.SkyIndex.memory_bytes`), for the
        ``xmatch_index_bytes{catalog}`` gauge."""
        from xmatch.index.sky_index import held_bytes

        total = 0
        for index in self.slices.values():
            measure = getattr(index, "memory_bytes", None)
            total += measure() if measure is not None else held_bytes(vars(index).values())
        return total

    @property
    def index(self):
        """The index of a catalog served whole (embedded mode)."""
        return self.slices[""]

    def slice_index(self, name: str):
        index = self.slices.get(name)
        if index is not None:
            return index
        if name:
            raise CatalogNotFoundError(f"slice {name!r} of {self.name} is not held here; "
                                       f"this server holds {', '.join(sorted(self.slices))}")
        raise InputError(f"this shard server holds slices {', '.join(sorted(self.slices))} of "
                         f"{self.name}, not the whole catalog: ask the cluster's router")

    def coverage(self, slice_name: str, order: int) -> tuple[xmatch_pb2.CoverageResponse, int]:
        """The ``Coverage`` answer of a slice (``""``: the whole catalog) at a checked
        ``order`` and its size in bytes: the cells at ``order`` that hold its rows (at their
        catalog positions), from the index's sorted order-29 pixels, made once (a message
        of a million values takes half a second to build)."""
        from xmatch.sky.healpix import occupied_ranges29

        kept = self._coverage.get((slice_name, order))
        if kept is None:
            index = self.slice_index(slice_name)
            answer = coverage_response(occupied_ranges29(index.h29, order), order, len(index))
            kept = self._coverage[(slice_name, order)] = (answer, answer.ByteSize())
        return kept


def coverage_response(ranges29: np.ndarray, order: int,
                      rows: int) -> xmatch_pb2.CoverageResponse:
    """A Coverage answer of (n, 2) order-29 ranges (from a list: upb reads one several
    times faster than a numpy array)."""
    return xmatch_pb2.CoverageResponse(ranges29=np.asarray(ranges29).ravel().tolist(),
                                       order=order, rows_counted=rows)


def describe(catalog) -> tuple[xmatch_pb2.CatalogSummary, xmatch_pb2.CatalogDescription]:
    """The summary and full description of a store catalog (from its metadata and the
    Parquet footers)."""
    from xmatch.sky.moc import coverage_moc_ascii

    spec = catalog.spec
    summary = xmatch_pb2.CatalogSummary(
        name=catalog.name, title=spec.title, rows=catalog.num_rows,
        default_radius_arcsec=spec.default_radius_arcsec,
        proper_motions=catalog.has_proper_motions,
        synthetic=bool(catalog.provenance.get("synthetic", spec.synthetic)))
    if spec.epoch_jyear is not None:
        summary.epoch_jyear = spec.epoch_jyear
    counts = partition_rows(catalog)
    description = xmatch_pb2.CatalogDescription(
        summary=summary, arrow_schema=catalog.schema.serialize().to_pybytes(),
        id_column=spec.id or "", ra_column=spec.ra, dec_column=spec.dec,
        key_columns=list(spec.key),
        partitions=[xmatch_pb2.Partition(order=p.order, pixel=p.pixel, rows=counts[p])
                    for p in catalog.partitions],
        coverage_moc=coverage_moc_ascii([p.order for p in catalog.partitions],
                                        [p.pixel for p in catalog.partitions],
                                        spec.coverage_dec_min_deg, spec.coverage_dec_max_deg),
        provenance_json=json.dumps(catalog.provenance, default=str),
        distance_column=catalog.distance_column or "")
    return summary, description


def partition_rows(catalog) -> dict:
    """Rows of each partition, from the Parquet footers (HATS' partition_info has none)."""
    import pyarrow.parquet as pq

    return {p: pq.read_metadata(catalog.partition_path(p)).num_rows for p in catalog.partitions}


class SkyMaps:
    """Sky maps read from request bytes, kept by digest: each page of a search resends its
    map, which is then read once."""

    def __init__(self, kept: int):
        self.kept = kept
        self._maps: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def read(self, data: bytes):
        from xmatch.sky.skymap import SkyMap

        key = hashlib.sha256(data).digest()
        with self._lock:
            if key in self._maps:
                self._maps.move_to_end(key)
                return self._maps[key]
        skymap = SkyMap.read(data, name="skymap.fits")
        with self._lock:
            self._maps[key] = skymap
            while len(self._maps) > self.kept:
                self._maps.popitem(last=False)
        return skymap


def partition_ranges(partitions) -> tuple[np.ndarray, np.ndarray]:
    ranges = np.array([p.range29() for p in partitions], dtype=np.int64).reshape(-1, 2)
    return np.ascontiguousarray(ranges[:, 0]), np.ascontiguousarray(ranges[:, 1])
