"""Answering a planned ADQL query (:mod:`xmatch.vo.adql`) with the gRPC searches: a cone or
polygon search for a catalog query, a cross-match stream for an upload join; predicates,
ordering, TOP and MAXREC applied to the rows found."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from xmatch.index.results import QUERY_COLUMN, RANK_COLUMN, SEPARATION_COLUMN, rows_found
from xmatch.io.tables import described
from xmatch.sky.regions import Cone, Moc, Polygon
from xmatch.vo.adql import (
    CatalogQuery,
    Circle,
    Resolver,
    TapError,
    UploadJoin,
    keep,
    wide_name,
)
from xmatch.vo.backend import WHOLE_SKY, Backend

#: The wide table's column of the DISTANCE the constraint measures (degrees).
DISTANCE = "distance"
DISTANCE_FIELD_METADATA = {b"unit": b"deg", b"ucd": b"pos.angDistance",
                           b"description": b"angular distance between the positions the "
                                           b"query's constraint compares"}


async def run(plan, backend: Backend, catalogs: dict, uploads: dict, maxrec: int,
              metadata) -> tuple[pa.Table, bool]:
    """The answer of a catalog query or upload join, and whether MAXREC cut it short."""
    if isinstance(plan, CatalogQuery):
        wide, complete = await _catalog_rows(plan, backend, catalogs, maxrec, metadata)
        resolver = Resolver([plan.table])
    else:
        wide = await _join_rows(plan, backend, uploads[plan.upload], metadata)
        complete, resolver = None, Resolver(plan.refs)
    if complete is None:  # every row found is here: filter, order, then TOP and MAXREC
        wide = _ordered(keep(wide, plan.where, resolver), plan.order)
        wanted = wide.num_rows if plan.top is None else min(plan.top, wide.num_rows)
        overflow = wanted > maxrec
        wide = wide.slice(0, min(wanted, maxrec))
    else:
        overflow = complete
    return _projected(wide, plan, catalogs), overflow


async def _catalog_rows(q: CatalogQuery, backend: Backend, catalogs: dict, maxrec: int,
                        metadata) -> tuple[pa.Table, bool | None]:
    """The rows of a catalog query as a wide table, and — when TOP and MAXREC went to the
    server (no predicate, no ordering the server does not already give) — whether MAXREC
    cut them (None: the caller cuts)."""
    info = catalogs[q.catalog]
    columns = _with_positions(q.needed, info)
    region = q.region
    closest_first = isinstance(region, Circle)
    pushed = q.where is None and (not q.order or (closest_first and q.order == [
        (DISTANCE, False)]))
    wanted = math.inf if q.top is None else q.top
    limit = 0
    if pushed and (wanted < math.inf or maxrec < math.inf):
        limit = int(min(wanted, maxrec)) or 1  # 0 would mean "no limit": cut below
    if isinstance(region, Circle):
        cone = Cone.of(region.ra_deg % 360.0, region.dec_deg, region.radius_deg * 3600.0)
        table = await backend.cone(q.catalog, cone, columns, limit, metadata)
    elif region is not None:
        table = await backend.region(q.catalog, Polygon.of(region.ra_deg, region.dec_deg),
                                     columns, limit, metadata)
    else:
        table = await backend.region(q.catalog, Moc.of(WHOLE_SKY.reshape(1, 2)), columns,
                                     limit, metadata)
    wide = _wide(table, q.table, info.columns)
    if not pushed:
        return wide, None
    found = rows_found(table)
    wide = wide.slice(0, int(min(wanted, maxrec, wide.num_rows)))
    return wide, maxrec < wanted and found > maxrec


def _with_positions(needed: list[str], info) -> list[str]:
    """The columns to ask for (never none: an empty list would ask for every column)."""
    return list(dict.fromkeys([*needed] or [info.id_column]))


def _wide(table: pa.Table, ref, columns: list[str]) -> pa.Table:
    """The answer's columns under their wide names, and the distance in degrees."""
    arrays, fields = [], []
    for i, f in enumerate(table.schema):
        if f.name in columns:
            arrays.append(table.column(i))
            fields.append(f.with_name(wide_name(ref, f.name)))
    if SEPARATION_COLUMN in table.column_names:
        arrays.append(pc.divide(table[SEPARATION_COLUMN], 3600.0))
        fields.append(pa.field(DISTANCE, pa.float64(), metadata=DISTANCE_FIELD_METADATA))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


async def _join_rows(q: UploadJoin, backend: Backend, upload: pa.Table,
                     metadata) -> pa.Table:
    ra = _upload_angles(upload, q.upload_ra, q.upload)
    dec = _upload_angles(upload, q.upload_dec, q.upload)
    if q.radius_column is not None:
        radius = _upload_angles(upload, q.radius_column, q.upload) * 3600.0
    else:
        radius = np.full(len(ra), q.radius_deg * 3600.0)
    answer = await backend.crossmatch(q.catalog, ra, dec, radius, q.needed, metadata)
    if not q.outer:
        answer = answer.filter(pc.is_valid(answer[RANK_COLUMN]))
    rows = answer[QUERY_COLUMN]
    arrays, fields = [], []
    for f in upload.schema:
        arrays.append(upload[f.name].take(rows))
        fields.append(f.with_name(wide_name(q.upload_table, f.name)))
    catalog_part = _wide(answer, q.catalog_table, q.catalog_table.columns)
    arrays += catalog_part.columns
    fields += list(catalog_part.schema)
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def _upload_angles(upload: pa.Table, column: str, name: str) -> np.ndarray:
    values = upload[column]
    if not (pa.types.is_floating(values.type) or pa.types.is_integer(values.type)):
        raise TapError(f"TAP_UPLOAD.{name}.{column} holds {values.type}, not numbers in "
                       "degrees")
    if values.null_count:
        row = int(np.flatnonzero(values.is_null().to_numpy(zero_copy_only=False))[0])
        raise TapError(f"TAP_UPLOAD.{name}.{column} is empty in row {row + 1}: every "
                       "uploaded row needs a position (and radius)")
    numbers = values.to_numpy().astype(np.float64)
    bad = ~np.isfinite(numbers)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise TapError(f"TAP_UPLOAD.{name}.{column} = {numbers[row]!r} in row {row + 1} is "
                       "not a finite number")
    return numbers


def _ordered(wide: pa.Table, order: list[tuple[str, bool]]) -> pa.Table:
    if not order or wide.num_rows < 2:
        return wide
    keys = [(name, "descending" if descending else "ascending") for name, descending in order]
    return wide.take(pc.sort_indices(wide, sort_keys=keys))  # nulls last


def _projected(wide: pa.Table, plan, catalogs: dict) -> pa.Table:
    """The answer's columns, named as the query asked, with units and UCDs."""
    arrays, fields = [], []
    for output in plan.outputs:
        source = DISTANCE if output.distance else output.source
        f, values = wide.schema.field(source), wide[source]
        if output.scale != 1.0:
            values = pc.multiply(values, output.scale)
            unit = {3600.0: b"arcsec", 60.0: b"arcmin"}.get(output.scale)
            metadata = dict(f.metadata or {})
            if unit:
                metadata[b"unit"] = unit
            else:
                metadata.pop(b"unit", None)
            f = f.with_metadata(metadata)
        arrays.append(values)
        fields.append(f.with_name(output.name))
    table = pa.Table.from_arrays(arrays, schema=pa.schema(fields))
    catalog = catalogs[plan.catalog]
    ref = plan.table if isinstance(plan, CatalogQuery) else plan.catalog_table
    names = {o.source: o.name for o in plan.outputs if o.source}
    ra = names.get(wide_name(ref, catalog.ra_column))
    dec = names.get(wide_name(ref, catalog.dec_column))
    identifier = names.get(wide_name(ref, catalog.id_column))
    if isinstance(plan, CatalogQuery):
        return described(table, ra=ra, dec=dec, identifier=identifier)
    secondary = ((ra, dec),) if ra and dec else ()
    return described(table, secondary=secondary)
