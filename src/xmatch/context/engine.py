"""Context of positions: each layer's candidates (rows of a catalog whose region, halo or
galaxy reaches the position), their states, and the class the rules give.

Every layer turns its catalog's rows into regions (:class:`~xmatch.index.RegionIndex`) and
asks which reach each position:

* ``bright_star``: a circle of the halo radius r(m) around each star (at the positions'
  epoch, with proper motions); the distance is the separation in units of r;
* ``variable_star``, ``agn``: a circle of ``radius_arcsec``; distance = separation / radius;
* ``host_galaxy``: the galaxy's ellipse out to ``max_dlr`` directional light radii; the
  distance is in DLR. A galaxy with a major axis but no minor axis or position angle is a
  circle of its semi-major axis; one without a size, a circle of ``fixed_radius_kpc`` at its
  distance (distance then in units of that radius);
* ``error_region``: each row's own circle or ellipse out to ``reach``; distance in region
  units, and in Gaussian sigma where the catalog gives the region's confidence level.

Candidates of a position come closest first (in that distance). The class is the first rule
that holds; otherwise ``orphan`` when every layer a rule uses answered "no match", else
``unclear`` (a layer failed, had no coverage there, or has a candidate no rule takes).
"""

from __future__ import annotations

import functools
import logging
import math
import threading
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from xmatch.context.config import KINDS, ORPHAN, UNCLEAR, ContextConfig, Layer
from xmatch.errors import CatalogNotFoundError, InputError
from xmatch.index.region_index import (
    DISTANCE_COLUMN,
    ROW_COLUMN,
    QueryPositions,
    RegionIndex,
)
from xmatch.index.results import QUERY_COLUMN, SEPARATION_COLUMN

log = logging.getLogger("xmatch.context")

MATCHED, NO_MATCH, OUTSIDE_COVERAGE, FAILED = "matched", "no_match", "outside_coverage", "failed"
ID_COLUMN = "id"
#: Extra per-candidate columns of each kind (beyond id, distance and separation).
EXTRA_COLUMNS = {
    "bright_star": {"mag": pa.float64(), "halo_radius_arcsec": pa.float64()},
    "variable_star": {"type": pa.string()},
    "agn": {"type": pa.string()},
    "host_galaxy": {"offset_kpc": pa.float64(), "distance_mpc": pa.float64(),
                    "distance_source": pa.string(), "shape": pa.string()},
    "error_region": {"sigma": pa.float64()},
}
#: Epochs of bright-star positions are rounded to this (years): stars move less than a
#: halo's width in that time, and each epoch builds its own index.
EPOCH_STEP_JYEAR = 0.5


@dataclass(frozen=True)
class LayerIndex:
    """A layer's regions, with the id and extra fields of each (one row per region)."""

    layer: Layer
    regions: RegionIndex
    fields: pa.Table          # id and the kind's extra columns, one row per region
    unplaced: int             # catalog rows that could not be made a region (and why)
    unplaced_reason: str = ""


def _float_column(table: pa.Table, name: str) -> np.ndarray:
    column = table.column(name)
    if not (pa.types.is_floating(column.type) or pa.types.is_integer(column.type)):
        raise InputError(f"column {name} holds {column.type}, not numbers")
    return np.asarray(column.to_numpy(zero_copy_only=False), np.float64)  # nulls: NaN


def _strings(column) -> pa.Array:
    return pc.cast(column, pa.string()).combine_chunks() if isinstance(
        column, pa.ChunkedArray) else pc.cast(column, pa.string())


def build_layer(layer: Layer, index, spec, id_column: str, epoch_jyear: float | None
                ) -> LayerIndex:
    """The regions of ``layer`` from a catalog's :class:`~xmatch.index.SkyIndex` (every
    row and column) and its spec's context roles."""
    from xmatch.context.cosmology import angular_diameter_distance_mpc

    check_layer(layer, spec)
    roles = spec.context_roles
    table = index.table
    ra, dec = positions_at(index, epoch_jyear if layer.kind == "bright_star" else None)
    keep = np.ones(len(ra), bool)
    a = b = pa_deg = None
    reach = 1.0
    extra: dict[str, np.ndarray | pa.Array] = {}
    reason = ""
    if layer.kind == "bright_star":
        mag = _float_column(table, roles.magnitudes[layer.band])
        keep = np.isfinite(mag) & (mag <= layer.max_mag)
        reason = f"no {layer.band} magnitude" + (
            f" or fainter than {layer.max_mag:g}" if math.isfinite(layer.max_mag) else "")
        a = layer.halo_radius_arcsec(np.where(keep, mag, 99.0))
        extra = {"mag": mag, "halo_radius_arcsec": a}
    elif layer.kind in ("variable_star", "agn"):
        a = np.full(len(ra), layer.radius_arcsec)
        extra = {"type": (_strings(table.column(roles.object_type)) if roles.object_type
                          else pa.nulls(len(ra), pa.string()))}
    elif layer.kind == "error_region":
        axes = roles.error_region
        a = _float_column(table, axes.semi_major) * axes.arcsec_per_unit
        if axes.semi_minor or axes.axis_ratio:
            b = (_float_column(table, axes.semi_minor) * axes.arcsec_per_unit
                 if axes.semi_minor else a * _float_column(table, axes.axis_ratio))
            pa_deg = _float_column(table, axes.position_angle)
        keep = np.isfinite(a) & (a > 0)
        if b is not None:
            keep &= np.isfinite(b) & (b > 0) & (b <= a) & np.isfinite(pa_deg)
        reason = ("no usable error region (a missing or non-positive axis, a minor axis "
                  "longer than the major one, or no position angle)")
        reach = layer.reach
        sigma = roles.sigma_per_unit
        extra = {"sigma": np.full(len(ra), np.nan if sigma is None else sigma)}
    else:  # host_galaxy
        a, b, pa_deg, shape = _galaxy_shapes(table, roles)
        distance_mpc, source = _galaxy_distances(table, roles)
        d_a = angular_diameter_distance_mpc(distance_mpc, source)
        fixed = ~np.isfinite(a)
        if layer.fixed_radius_kpc is not None:
            radius = np.degrees(layer.fixed_radius_kpc / 1000.0 / d_a) * 3600.0
            use = fixed & np.isfinite(radius) & (radius > 0)
            a = np.where(use, radius, a)
            b = np.where(use, radius, b)
            pa_deg = np.where(use, 0.0, pa_deg)
            shape = np.where(use, "fixed_kpc", shape)
        keep = np.isfinite(a) & (a > 0)
        reason = ("no size" + (" and no distance" if layer.fixed_radius_kpc is not None
                               else " (no fixed_radius_kpc for galaxies without one)"))
        # Fixed-size circles are reached at 1 radius; shapes out to max_dlr.
        reach = np.where(shape == "fixed_kpc", 1.0, layer.max_dlr)
        extra = {"d_a_mpc": d_a, "distance_mpc": distance_mpc,
                 "distance_source": pa.array(source, pa.string()), "shape": shape}
    rows = np.flatnonzero(keep)
    ids = _strings(table.column(id_column)).take(pa.array(rows))
    regions = RegionIndex.from_arrays(
        ra[rows], dec[rows], a[rows], None if b is None else b[rows],
        None if pa_deg is None else pa_deg[rows],
        reach=reach[rows] if isinstance(reach, np.ndarray) else reach, name=layer.name)
    fields = {ID_COLUMN: ids}
    for name, values in extra.items():
        fields[name] = (values.take(pa.array(rows)) if isinstance(values, pa.Array)
                        else pa.array(values[rows]))
    unplaced = int(len(keep) - keep.sum())
    if unplaced:
        log.info("context layer %s: %d of %d rows of %s have %s and are left out",
                 layer.name, unplaced, len(keep), spec.name, reason)
    return LayerIndex(layer, regions, pa.table(fields), unplaced, reason if unplaced else "")


def positions_at(index, epoch_jyear: float | None) -> tuple[np.ndarray, np.ndarray]:
    """Right ascension and declination (deg) of every row of a SkyIndex's table, moved to
    ``epoch_jyear`` when the catalog has proper motions."""
    if epoch_jyear is None or index.motion is None:
        return (np.asarray(index.table.column(index.ra_column).to_numpy(
            zero_copy_only=False), np.float64),
            np.asarray(index.table.column(index.dec_column).to_numpy(zero_copy_only=False),
                       np.float64))
    moved = index.at_epoch(epoch_jyear)
    xyz = np.empty_like(moved.xyz)
    xyz[moved.rows] = moved.xyz
    ra = np.degrees(np.arctan2(xyz[:, 1], xyz[:, 0])) % 360.0
    dec = np.degrees(np.arcsin(np.clip(xyz[:, 2], -1.0, 1.0)))
    return ra, dec


def _galaxy_shapes(table: pa.Table, roles):
    """Semi-axes (arcsec), position angle (deg) and shape kind of each galaxy: an ellipse,
    a circle of its semi-major axis (no minor axis or position angle, or a minor axis
    longer than the major one), or none (NaN)."""
    n = table.num_rows
    shape = np.full(n, "none", dtype=object)
    axes = roles.shape
    if axes is None:
        return np.full(n, np.nan), np.full(n, np.nan), np.zeros(n), shape
    a = _float_column(table, axes.semi_major) * axes.arcsec_per_unit
    if axes.semi_minor:
        b = _float_column(table, axes.semi_minor) * axes.arcsec_per_unit
    elif axes.axis_ratio:
        b = a * _float_column(table, axes.axis_ratio)
    else:
        b = np.full(n, np.nan)
    angle = (_float_column(table, axes.position_angle) if axes.position_angle
             else np.full(n, np.nan))
    sized = np.isfinite(a) & (a > 0)
    ellipse = sized & np.isfinite(b) & (b > 0) & (b <= a) & np.isfinite(angle)
    b = np.where(ellipse, b, a)
    angle = np.where(ellipse, angle, 0.0)
    shape[ellipse] = "ellipse"
    shape[sized & ~ellipse] = "circle"
    a = np.where(sized, a, np.nan)
    return a, b, angle, shape


def _galaxy_distances(table: pa.Table, roles):
    """Distance (luminosity distance in Mpc, or the redshift) of each galaxy and where it
    comes from: ``luminosity_mpc`` first (redshift-independent distances of nearby galaxies
    beat redshifts, which peculiar velocities dominate there), then ``spec_z``, then
    ``photo_z``; ``None`` where none is usable."""
    n = table.num_rows
    value = np.full(n, np.nan)
    source = np.full(n, None, dtype=object)
    for role, label in ((roles.luminosity_mpc, "luminosity_mpc"), (roles.spec_z, "spec_z"),
                        (roles.photo_z, "photo_z")):
        if role is None:
            continue
        given = _float_column(table, role)
        use = np.isnan(value) & np.isfinite(given) & (given > 0)
        value[use] = given[use]
        source[use] = label
    return value, source


@dataclass(frozen=True)
class ContextCatalog:
    """A catalog as a context layer needs it: its spec (the roles), id column, coverage
    (a region, or None) and, loaded on first use, its whole index."""

    spec: object
    id_column: str
    coverage: object
    load_index: object  # () -> SkyIndex


class ContextEngine:
    """The layers of a configuration over catalogs: ``catalog(name)`` gives a
    :class:`ContextCatalog`, or raises :class:`~xmatch.errors.CatalogNotFoundError`, which
    makes the layers of that catalog fail with the reason (they never vanish)."""

    def __init__(self, config: ContextConfig, catalog):
        self.config = config
        self._catalog = functools.lru_cache(maxsize=None)(catalog)  # found ones only
        self._indexes: dict = {}
        self._built: dict = {}
        self._lock = threading.Lock()

    def check(self) -> None:
        """Check each layer against its catalog's spec where the catalog is here (a
        configuration error is found at start, not at the first alert)."""
        for layer in self.config.layers:
            try:
                found = self._catalog(layer.catalog)
            except CatalogNotFoundError:
                continue
            check_layer(layer, found.spec)

    def layer_index(self, layer: Layer, epoch_jyear: float | None) -> LayerIndex:
        step = None
        if layer.kind == "bright_star" and epoch_jyear is not None:
            step = round(epoch_jyear / EPOCH_STEP_JYEAR) * EPOCH_STEP_JYEAR
        key = (layer.name, step)
        with self._lock:
            built = self._built.get(key)
            if built is None:
                found = self._catalog(layer.catalog)
                index = self._indexes.get(layer.catalog)
                if index is None:
                    index = self._indexes[layer.catalog] = found.load_index()
                built = build_layer(layer, index, found.spec, found.id_column, step)
                if len(self._built) >= 32:  # old epochs of a long-running server
                    self._built.pop(next(iter(self._built)))
                self._built[key] = built
        return built

    def candidates(self, layer: Layer, positions, epoch_jyear: float | None = None
                   ) -> pa.Table:
        """Every candidate of ``layer`` for each position (:class:`QueryPositions`;
        ``query_index``, ``id``, ``separation_arcsec``, ``distance``, the kind's extra
        columns), closest first."""
        built = self.layer_index(layer, epoch_jyear)
        found = built.regions.containing(positions)
        rows = found.column(ROW_COLUMN)
        table = {QUERY_COLUMN: found.column(QUERY_COLUMN),
                 ID_COLUMN: built.fields.column(ID_COLUMN).take(rows),
                 SEPARATION_COLUMN: found.column(SEPARATION_COLUMN),
                 "distance": found.column(DISTANCE_COLUMN)}
        for name in EXTRA_COLUMNS[layer.kind]:
            if name == "offset_kpc":
                d_a = built.fields.column("d_a_mpc").take(rows).to_numpy(zero_copy_only=False)
                sep = found.column(SEPARATION_COLUMN).to_numpy()
                table[name] = pa.array(np.radians(sep / 3600.0) * d_a * 1000.0)
            elif name == "sigma":
                table[name] = pc.multiply(found.column(DISTANCE_COLUMN),
                                          built.fields.column("sigma").take(rows))
            else:
                table[name] = built.fields.column(name).take(rows)
        return pa.table(table)

    def context(self, ra, dec, epoch_jyear: float | None = None) -> pa.Table:
        """The context table (:func:`context_table`) of positions (any form
        :mod:`xmatch.sky.coords` reads, checked there)."""
        positions = QueryPositions.of(ra, dec)
        n = len(positions)
        candidates, failures, outside = {}, {}, {}
        for layer in self.config.layers:
            try:
                found = self._catalog(layer.catalog)
                candidates[layer.name] = self.candidates(layer, positions, epoch_jyear)
            except (CatalogNotFoundError, InputError) as error:
                failures[layer.name] = np.full(n, f"{layer.catalog}: {error}", dtype=object)
                continue
            coverage = found.coverage
            if coverage is not None and coverage.sky_fraction < 1.0:
                outside[layer.name] = ~positions.inside(coverage.ranges)
        return context_table(self.config, n, candidates, failures, outside)


def check_layer(layer: Layer, spec) -> None:
    """That ``spec`` declares what ``layer`` asks of it (``InputError`` if not)."""
    roles = spec.context_roles
    purpose = KINDS[layer.kind]
    if purpose not in roles.purposes:
        raise InputError(f"context layer {layer.name!r}: catalog {spec.name} is not declared "
                         f"for {purpose} (its spec's context.purposes: "
                         f"{', '.join(roles.purposes) or 'none'})")
    if layer.kind == "bright_star" and layer.band not in roles.magnitudes:
        raise InputError(f"context layer {layer.name!r}: catalog {spec.name} has no "
                         f"magnitude band {layer.band!r} (its bands: "
                         f"{', '.join(roles.magnitudes) or 'none'})")


#: States as small integers while a table is built (an index into STATE_NAMES).
STATE_NAMES = pa.array([MATCHED, NO_MATCH, OUTSIDE_COVERAGE, FAILED], pa.string())
S_MATCHED, S_NO_MATCH, S_OUTSIDE, S_FAILED = range(4)


def _texts(texts: list[str], codes: np.ndarray) -> pa.Array:
    """Strings from a short list by code (-1: null), without a Python object per row."""
    return pa.array(texts, pa.string()).take(pa.array(codes, pa.int64(), mask=codes < 0))


def context_table(config: ContextConfig, n: int, candidates: dict[str, pa.Table],
                  failures: dict[str, np.ndarray], outside: dict[str, np.ndarray]
                  ) -> pa.Table:
    """The context of ``n`` positions: per layer its state, failure, count and nearest
    candidate; then the class and its evidence.

    ``candidates``: each answering layer's candidates (:meth:`ContextEngine.candidates`);
    ``failures``: per layer, why it could not answer each position (object array, None
    where it did); ``outside``: per layer, the positions outside its catalog's coverage."""
    columns: dict[str, pa.Array] = {}
    states, nearest = {}, {}
    for layer in config.layers:
        table = candidates.get(layer.name)
        failure = failures.get(layer.name)
        failed = (np.not_equal(failure, None) if failure is not None
                  else np.zeros(n, bool))
        if table is None:
            table = empty_candidates(layer)
        query = table.column(QUERY_COLUMN).to_numpy()
        count = np.bincount(query, minlength=n).astype(np.int32) if len(query) else \
            np.zeros(n, np.int32)
        first = np.r_[True, query[1:] != query[:-1]] if len(query) else np.empty(0, bool)
        take = np.full(n, -1, np.int64)
        take[query[first]] = np.flatnonzero(first)
        take[failed] = -1
        state = np.where(count > 0, S_MATCHED, S_NO_MATCH).astype(np.int8)
        if layer.name in outside:
            state[(count == 0) & outside[layer.name]] = S_OUTSIDE
        state[failed] = S_FAILED
        states[layer.name] = state
        nearest[layer.name] = table
        prefix = f"{layer.name}_"
        columns[prefix + "state"] = STATE_NAMES.take(pa.array(state))
        columns[prefix + "failure"] = (pa.array(failure, pa.string()) if failure is not None
                                       else pa.nulls(n, pa.string()))
        columns[prefix + "count"] = pa.array(count, pa.int32(), mask=failed)
        indices = pa.array(take, pa.int64(), mask=take < 0)
        for name in (ID_COLUMN, SEPARATION_COLUMN, "distance", *EXTRA_COLUMNS[layer.kind]):
            columns[prefix + name] = table.column(name).take(indices)
        if layer.kind == "host_galaxy":
            columns[prefix + "hostless"] = pa.array(
                state == S_NO_MATCH, pa.bool_(), mask=(state == S_FAILED) | (state == S_OUTSIDE))
    columns.update(_classes(config, n, states, nearest))
    return pa.table(columns)


def empty_candidates(layer: Layer) -> pa.Table:
    fields = [(QUERY_COLUMN, pa.int64()), (ID_COLUMN, pa.string()),
              (SEPARATION_COLUMN, pa.float64()), ("distance", pa.float64()),
              *EXTRA_COLUMNS[layer.kind].items()]
    return pa.schema(fields).empty_table()


def _classes(config: ContextConfig, n: int, states: dict, nearest: dict
             ) -> dict[str, pa.Array]:
    """Each position's class from the first rule that holds, and the evidence: classes,
    reasons and layers as codes into short lists, the evidence taken from the candidates
    tables (no Python object per position but for the unclear ones' reasons)."""
    rules = config.rules
    names = [layer.name for layer in config.layers]
    labels = [rule.klass for rule in rules] + [ORPHAN, UNCLEAR]
    reasons = ([rule.describe() for rule in rules]
               + [f"{rule.layer} failed, so the rule '{rule.describe()}' is undecided"
                  for rule in rules] + ["no layer a rule uses has a candidate"])
    klass = np.full(n, -1, np.int64)
    reason = np.full(n, -1, np.int64)
    layer_of = np.full(n, -1, np.int64)
    separation = np.full(n, np.nan)
    distance = np.full(n, np.nan)
    evidence = np.full(n, -1, np.int64)  # row in the concatenated evidence ids
    ids: list[pa.Array] = []
    held = 0
    open_ = np.ones(n, bool)
    for r, rule in enumerate(rules):
        state = states[rule.layer]
        # A layer that failed leaves its rule undecided: the class cannot be known.
        failed = open_ & (state == S_FAILED)
        klass[failed] = len(rules) + 1
        reason[failed] = len(rules) + r
        layer_of[failed] = names.index(rule.layer)
        open_ &= ~failed
        table = nearest[rule.layer]
        if table.num_rows == 0 or not open_.any():
            continue
        query = table.column(QUERY_COLUMN).to_numpy()
        ok = open_[query]
        if math.isfinite(rule.max_distance):
            ok &= table.column("distance").to_numpy() <= rule.max_distance
        if math.isfinite(rule.max_separation_arcsec):
            ok &= table.column(SEPARATION_COLUMN).to_numpy() <= rule.max_separation_arcsec
        if rule.types:
            ok &= pc.fill_null(pc.is_in(table.column("type"), pa.array(rule.types)),
                               False).to_numpy(zero_copy_only=False)
        rows = np.flatnonzero(ok)
        if not len(rows):
            continue
        hit_query = query[rows]
        first = np.r_[True, hit_query[1:] != hit_query[:-1]]
        rows, hit_query = rows[first], hit_query[first]
        klass[hit_query] = r
        reason[hit_query] = r
        layer_of[hit_query] = names.index(rule.layer)
        ids.extend(table.column(ID_COLUMN).take(pa.array(rows)).cast(pa.string()).chunks)
        evidence[hit_query] = held + np.arange(len(rows))
        held += len(rows)
        separation[hit_query] = table.column(SEPARATION_COLUMN).to_numpy()[rows]
        distance[hit_query] = table.column("distance").to_numpy()[rows]
        open_[hit_query] = False
    reason_array = None
    if open_.any():
        # Layers no rule uses are information only: they never keep a position from
        # being an orphan.
        used = list(dict.fromkeys(rule.layer for rule in rules))
        every = np.stack([states[name] for name in used]) if used else np.empty((0, n))
        quiet = np.all(every == S_NO_MATCH, axis=0)
        orphan = open_ & quiet
        klass[orphan] = len(rules)
        reason[orphan] = 2 * len(rules)
        rest = np.flatnonzero(open_ & ~quiet)
        klass[rest] = len(rules) + 1
        if len(rest):
            texts = _texts(reasons, reason).to_numpy(zero_copy_only=False)
            for i in rest:
                why = [f"{name} {STATE_NAMES[int(states[name][i])].as_py().replace('_', ' ')}"
                       for name in used if states[name][i] != S_NO_MATCH]
                texts[i] = "no rule holds; " + ", ".join(why)
            reason_array = pa.array(texts, pa.string())
    evidence_ids = (pa.chunked_array(ids, pa.string()).combine_chunks() if ids
                    else pa.array([], pa.string()))
    return {"class": _texts(labels, klass),
            "class_reason": reason_array if reason_array is not None
            else _texts(reasons, reason),
            "class_layer": _texts(names, layer_of),
            "class_catalog": _texts([layer.catalog for layer in config.layers], layer_of),
            "class_id": evidence_ids.take(pa.array(evidence, pa.int64(), mask=evidence < 0)),
            "class_separation_arcsec": pa.array(separation, pa.float64(),
                                                mask=np.isnan(separation)),
            "class_distance": pa.array(distance, pa.float64(), mask=np.isnan(distance))}


def layer_columns(table: pa.Table) -> dict[str, list[str]]:
    """The layers of a context table, in order, with their columns (without the layer's
    prefix): each layer's columns run from its ``_state`` to the next layer's."""
    layers: dict[str, list[str]] = {}
    current = None
    for name in table.column_names:
        if name.startswith("class"):
            break
        if name.endswith("_state"):
            current = name.removesuffix("_state")
            layers[current] = []
        layers[current].append(name.removeprefix(current + "_"))
    return layers


def store_context_catalog(catalog) -> ContextCatalog:
    """A store catalog as a context layer reads it: whole, on first use."""
    from xmatch.index import SkyIndex
    from xmatch.sky.moc import coverage_moc_ascii
    from xmatch.sky.regions import Moc
    from xmatch.store.paths import ROW_ID_COLUMN

    spec = catalog.spec
    coverage = coverage_moc_ascii([p.order for p in catalog.partitions],
                                  [p.pixel for p in catalog.partitions],
                                  spec.coverage_dec_min_deg, spec.coverage_dec_max_deg)
    return ContextCatalog(spec, spec.id or ROW_ID_COLUMN,
                          Moc.of(coverage, name="coverage") if coverage else None,
                          lambda: SkyIndex.from_catalog(catalog))


def data_context_engine(data, config: ContextConfig | None = None) -> ContextEngine:
    """Context over the catalogs of a data directory, read as layers need them (the
    bundled default catalogs loaded first into an empty directory, as ``xmatch serve``
    does); ``config`` defaults to the bundled configuration."""
    from xmatch.context.config import read_context_config
    from xmatch.loading import ensure_default_catalogs
    from xmatch.store.catalog import open_catalog

    if not data.names():
        ensure_default_catalogs(data)

    def catalog(name: str) -> ContextCatalog:
        if name not in data.names():
            raise CatalogNotFoundError(f"catalog {name} is not in the data directory "
                                       f"{data.root}; load it with `xmatch load {name}`")
        return store_context_catalog(open_catalog(name, data))

    engine = ContextEngine(config or read_context_config(), catalog)
    engine.check()
    return engine
