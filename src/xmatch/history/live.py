"""The in-memory state of the alert history: objects, the grid that finds them, the alert
ids seen (the arrays of :mod:`xmatch.kernels.history`, grown here), and what each alert
of a batch became.

Memory per object and per detection is fixed (see :meth:`LiveObjects.nbytes`): detections
themselves live in the write-ahead log and the compacted catalog, not here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from xmatch.errors import InputError
from xmatch.kernels import healpix as hpk
from xmatch.kernels import history as kernels
from xmatch.kernels.search import unit_vectors_kernel

ARCSEC_TO_RAD = math.pi / (180.0 * 3600.0)
#: Survey codes are bits of a 32-bit mask; 0 marks an empty slot of the alert-id set.
MAX_SURVEYS = 30
#: ZTF's own association radius for its objectId (1.5"), the default for every survey pair.
DEFAULT_RADIUS_ARCSEC = 1.5
MAX_RADIUS_ARCSEC = 60.0
GRID_LOAD = 0.5
SEEN_LOAD = 0.6


@dataclass(frozen=True)
class Association:
    """How detections join objects: a radius for every pair of surveys, and exceptions per
    (unordered) pair such as ``{("LSST", "ZTF"): 1.0}``."""

    radius_arcsec: float = DEFAULT_RADIUS_ARCSEC
    pair_radius_arcsec: dict = field(default_factory=dict)

    def __post_init__(self):
        pairs = {}
        for pair, radius in dict(self.pair_radius_arcsec).items():
            if isinstance(pair, str):
                pair = tuple(pair.split("-"))
            if len(pair) != 2 or not all(isinstance(s, str) and s for s in pair):
                raise InputError(f"association pair {pair!r}: name two surveys, as "
                                 "'ZTF-LSST'")
            pairs[tuple(sorted(pair))] = _radius(radius, f"association radius of {pair[0]}"
                                                        f"-{pair[1]}")
        object.__setattr__(self, "pair_radius_arcsec", pairs)
        object.__setattr__(self, "radius_arcsec", _radius(self.radius_arcsec,
                                                          "association radius"))

    def radius_of(self, survey_a: str, survey_b: str) -> float:
        return self.pair_radius_arcsec.get(tuple(sorted((survey_a, survey_b))),
                                           self.radius_arcsec)

    @property
    def widest_arcsec(self) -> float:
        return max([self.radius_arcsec, *self.pair_radius_arcsec.values()])

    def to_dict(self) -> dict:
        return {"radius_arcsec": self.radius_arcsec,
                "pair_radius_arcsec": {f"{a}-{b}": r for (a, b), r in
                                       sorted(self.pair_radius_arcsec.items())}}


def _radius(value, what: str) -> float:
    try:
        radius = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{what}: {value!r} is not a number of arcsec") from None
    if not 0.0 < radius <= MAX_RADIUS_ARCSEC:
        raise InputError(f"{what}: {radius} arcsec is not allowed; it is > 0 and <= "
                         f"{MAX_RADIUS_ARCSEC:g} arcsec")
    return radius


@dataclass
class Recorded:
    """What a batch of alerts became, per alert: the object index (-1: not recorded), the
    status (kernels.NEW, KNOWN, DUPLICATE; -1: not recorded), the separation from the
    object's reference position, and the object's previous detection in the alert's band."""

    objects: np.ndarray
    status: np.ndarray
    separation_arcsec: np.ndarray
    previous_mag: np.ndarray
    previous_mjd: np.ndarray


class LiveObjects:
    """The objects of a history and the alert ids seen, in memory."""

    def __init__(self, association: Association, surveys: list[str] | None = None):
        self.association = association
        self.surveys: list[str] = list(surveys or [])
        radius = association.widest_arcsec * ARCSEC_TO_RAD
        self.grid_order = int(hpk.cone_start_order(radius))
        self.counts = np.zeros(3, np.int64)  # objects, grid cells, alerts seen
        self._allocate_objects(1024)
        self.grid_keys, self.grid_head = _grid(1024)
        self.seen_id, self.seen_survey, self.seen_object = _seen(1024)

    # ------------------------------------------------------------------ sizes

    @property
    def n_objects(self) -> int:
        return int(self.counts[0])

    @property
    def n_detections(self) -> int:
        return int(self.counts[2])

    def nbytes(self) -> dict:
        """Bytes held: by the objects (their arrays and grid) and by the alert-id set."""
        objects = sum(a.nbytes for a in self._object_arrays()) + \
            self.grid_keys.nbytes + self.grid_head.nbytes
        seen = self.seen_id.nbytes + self.seen_survey.nbytes + self.seen_object.nbytes
        return {"objects": objects, "alert_ids": seen}

    def _object_arrays(self):
        return (self.obj_xyz, self.obj_sum, self.obj_next, self.obj_home, self.obj_surveys,
                self.obj_count, self.obj_first, self.obj_last, self.obj_peak_mag,
                self.obj_peak_mjd, self.obj_peak_band, self.obj_band_mag, self.obj_band_mjd)

    def _allocate_objects(self, capacity: int) -> None:
        nb = len(kernels.BANDS)
        self.obj_xyz = np.empty((capacity, 3))
        self.obj_sum = np.empty((capacity, 3))
        self.obj_next = np.empty(capacity, np.int64)
        self.obj_home = np.empty(capacity, np.int8)
        self.obj_surveys = np.empty(capacity, np.int32)
        self.obj_count = np.empty(capacity, np.int32)
        self.obj_first = np.empty(capacity)
        self.obj_last = np.empty(capacity)
        self.obj_peak_mag = np.empty(capacity, np.float32)
        self.obj_peak_mjd = np.empty(capacity)
        self.obj_peak_band = np.empty(capacity, np.int8)
        self.obj_band_mag = np.empty((capacity, nb), np.float32)
        self.obj_band_mjd = np.empty((capacity, nb))

    def _ensure(self, n_new: int) -> None:
        """Room for ``n_new`` more objects, cells and alert ids."""
        need = self.n_objects + n_new
        if need > len(self.obj_xyz):
            capacity = max(need, 2 * len(self.obj_xyz))
            n = self.n_objects
            old = self._object_arrays()
            self._allocate_objects(capacity)
            for new, was in zip(self._object_arrays(), old, strict=True):
                new[:n] = was[:n]
        if self.counts[1] + n_new > GRID_LOAD * len(self.grid_keys):
            size = _power_of_two((self.counts[1] + n_new) / GRID_LOAD)
            self.grid_keys, self.grid_head = _grid(size)
            self.counts[1] = kernels.refile_kernel(self.grid_order, self.n_objects,
                                                   self.obj_sum, self.obj_next,
                                                   self.grid_keys, self.grid_head)
        if self.counts[2] + n_new > SEEN_LOAD * len(self.seen_id):
            old = self.seen_id, self.seen_survey, self.seen_object
            self.seen_id, self.seen_survey, self.seen_object = _seen(
                _power_of_two((self.counts[2] + n_new) / SEEN_LOAD))
            kernels.reseen_kernel(*old, self.seen_id, self.seen_survey, self.seen_object)

    # ------------------------------------------------------------------ recording

    def survey_codes(self, surveys: np.ndarray) -> np.ndarray:
        """Codes of survey names (new names registered in order of first appearance;
        a code is a bit of the objects' survey mask, from 1)."""
        names, inverse = np.unique(surveys.astype(str), return_inverse=True)
        codes = np.empty(len(names), np.int8)
        for k, name in enumerate(names.tolist()):
            if name not in self.surveys:
                if len(self.surveys) >= MAX_SURVEYS:
                    raise InputError(f"survey {name!r}: a history holds at most "
                                     f"{MAX_SURVEYS} surveys")
                self.surveys.append(name)
            codes[k] = self.surveys.index(name) + 1
        return codes[inverse].reshape(surveys.shape)

    def _cos_radius(self) -> np.ndarray:
        size = MAX_SURVEYS + 2
        cos = np.full((size, size), 2.0)  # codes not in use match nothing
        for a, name_a in enumerate(self.surveys, start=1):
            for b, name_b in enumerate(self.surveys, start=1):
                cos[a, b] = math.cos(self.association.radius_of(name_a, name_b)
                                     * ARCSEC_TO_RAD)
        return cos

    def record(self, ra_deg, dec_deg, survey_codes, alert_ids, mjd_tai, band_codes,
               mag, usable) -> Recorded:
        """Associate a batch (arrays, one entry per alert; ``usable`` marks the alerts to
        record) and update the objects."""
        n = len(ra_deg)
        self._ensure(n)
        xyz = np.empty((n, 3))
        unit_vectors_kernel(np.radians(np.nan_to_num(ra_deg)),
                            np.radians(np.nan_to_num(dec_deg)), xyz)
        out_object = np.empty(n, np.int64)
        out_status = np.empty(n, np.int8)
        out_dot = np.empty(n)
        previous_mag = np.empty(n, np.float32)
        previous_mjd = np.empty(n)
        kernels.associate_kernel(
            self.grid_order, xyz, np.ascontiguousarray(survey_codes, np.int8),
            np.ascontiguousarray(alert_ids, np.int64), np.ascontiguousarray(mjd_tai, float),
            np.ascontiguousarray(band_codes, np.int8), np.ascontiguousarray(mag, np.float32),
            np.ascontiguousarray(usable, np.bool_), self._cos_radius(), self.counts,
            self.obj_xyz, self.obj_sum, self.obj_next, self.obj_home, self.obj_surveys,
            self.obj_count, self.obj_first, self.obj_last, self.obj_peak_mag,
            self.obj_peak_mjd, self.obj_peak_band, self.obj_band_mag, self.obj_band_mjd,
            self.grid_keys, self.grid_head, self.seen_id, self.seen_survey, self.seen_object,
            self.counts, out_object, out_status, out_dot, previous_mag, previous_mjd)
        separation = np.degrees(np.arccos(np.clip(out_dot, -1.0, 1.0))) * 3600.0
        return Recorded(out_object, out_status, separation, previous_mag, previous_mjd)

    # ------------------------------------------------------------------ reading

    def survey_names(self, masks: np.ndarray) -> list[str | None]:
        """The surveys of each mask, comma-separated, sorted."""
        order = sorted(range(len(self.surveys)), key=lambda k: self.surveys[k])
        out = []
        cache = {}
        for mask in masks.tolist():
            if mask not in cache:
                cache[mask] = ",".join(self.surveys[k] for k in order
                                       if mask & (1 << (k + 1))) or None
            out.append(cache[mask])
        return out

    def objects_table(self, indexes: np.ndarray | None = None) -> pa.Table:
        """The objects (all, or those at ``indexes``) as a table: id, position (the mean of
        its detections) and that of its first detection, surveys, detections, first/last
        time, peak."""
        n = self.n_objects
        take = np.arange(n) if indexes is None else np.asarray(indexes, np.int64)
        ref = self.obj_xyz[take]
        mean = self.obj_sum[take]
        norm = np.linalg.norm(mean, axis=1)
        norm[norm == 0] = 1.0
        mean = mean / norm[:, None]
        band = self.obj_peak_band[take]
        bands = np.array([*kernels.BANDS, None], dtype=object)
        return pa.table({
            "object_id": pa.array(take + 1, pa.int64()),
            "ra_deg": _ra_of(mean), "dec_deg": _dec_of(mean),
            "ra_first_deg": _ra_of(ref), "dec_first_deg": _dec_of(ref),
            "surveys": pa.array(self.survey_names(self.obj_surveys[take]), pa.string()),
            "detections": pa.array(self.obj_count[take], pa.int32()),
            "first_mjd_tai": self.obj_first[take], "last_mjd_tai": self.obj_last[take],
            "peak_mag": pa.array(self.obj_peak_mag[take].astype(np.float64),
                                 from_pandas=True),
            "peak_band": pa.array(bands[np.where(band < 0, len(kernels.BANDS), band)],
                                  pa.string()),
            "peak_mjd_tai": pa.array(self.obj_peak_mjd[take], from_pandas=True),
        })


def _ra_of(xyz: np.ndarray) -> np.ndarray:
    return np.degrees(np.arctan2(xyz[:, 1], xyz[:, 0])) % 360.0


def _dec_of(xyz: np.ndarray) -> np.ndarray:
    return np.degrees(np.arcsin(np.clip(xyz[:, 2], -1.0, 1.0)))


def _power_of_two(n: float) -> int:
    return 1 << max(10, math.ceil(math.log2(max(n, 1.0))))


def _grid(size: int):
    return np.full(size, kernels.EMPTY, np.int64), np.empty(size, np.int64)


def _seen(size: int):
    return np.empty(size, np.int64), np.zeros(size, np.int8), np.empty(size, np.int32)


def band_codes(bands) -> np.ndarray:
    """Codes of band names (:data:`xmatch.kernels.history.BANDS`; -1 for others and null)."""
    names = np.asarray(bands, dtype=object)
    codes = np.full(len(names), -1, np.int8)
    for code, band in enumerate(kernels.BANDS):
        codes[names == band] = code
    return codes
