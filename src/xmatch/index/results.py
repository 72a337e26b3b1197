"""The one builder of search answers: cross-match left joins and cone/region rows, with their
units, ranks and merges.

A cross-match answer is a *left join*: one row per match, grouped by query and closest first
(``match_rank`` 1, 2, ...), and one row with null match columns for a query without a match.
Its columns are ``query_index``, the query table's columns (when one is given), ``match_rank``,
the payload columns of the matched rows, ``separation_arcsec`` and ``position_angle_deg``.
Sky indexes, nightly solar-system caches and the router's merge of shard answers all build
it here, so the three agree column for column.

A search answer (cone, region) carries its rows, closest first for a cone, and in its schema
metadata how many rows the search found before any limit (:func:`rows_found`).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

SEPARATION_COLUMN = "separation_arcsec"
POSITION_ANGLE_COLUMN = "position_angle_deg"
QUERY_COLUMN = "query_index"
RANK_COLUMN = "match_rank"
#: Where matched rows with proper motions are at the query epoch.
MOVED_COLUMNS = ("ra_at_epoch", "dec_at_epoch")
#: Schema metadata of a search answer: the rows found before a limit cut it.
ROWS_FOUND_KEY = b"xmatch.rows_found"

UNITS = {SEPARATION_COLUMN: "arcsec", POSITION_ANGLE_COLUMN: "deg", MOVED_COLUMNS[0]: "deg",
         MOVED_COLUMNS[1]: "deg"}


def match_ranks(query: np.ndarray) -> np.ndarray:
    """1-based rank of each match within its query (input grouped by query)."""
    if len(query) == 0:
        return np.empty(0, np.int64)
    starts = np.r_[0, np.flatnonzero(np.diff(query)) + 1]
    group_start = np.repeat(starts, np.diff(np.r_[starts, len(query)]))
    return np.arange(len(query)) - group_start + 1


def with_units(field: pa.Field) -> pa.Field:
    """The field with its unit (separation, position angle) in its metadata."""
    unit = UNITS.get(field.name)
    return field.with_metadata({**(field.metadata or {}), b"unit": unit}) if unit else field


class Nulls:
    """Where the match columns of a left join are null (the rows of queries without a
    match): one Arrow validity bitmap (Arrow packs booleans as bits) shared by every match
    column, so numeric columns are wrapped without a copy."""

    def __init__(self, matched: np.ndarray):
        self.matched = None if bool(matched.all()) else matched
        self.bitmap = None if self.matched is None else pa.array(matched).buffers()[1]
        self.count = 0 if self.matched is None else int(len(matched) - matched.sum())

    def safe(self, rows: np.ndarray) -> np.ndarray:
        """``rows`` (-1 where unmatched) made valid indices: unmatched rows point at row 0."""
        return rows if self.matched is None else np.maximum(rows, 0)

    def wrap(self, values: np.ndarray, arrow_type: pa.DataType) -> pa.Array:
        """Fixed-width ``values`` of ``arrow_type`` as an Arrow array, null where unmatched."""
        values = np.ascontiguousarray(values, dtype=arrow_type.to_pandas_dtype())
        return pa.Array.from_buffers(arrow_type, len(values),
                                     [self.bitmap, pa.py_buffer(values)], self.count)


def left_join(query: np.ndarray, rank: np.ndarray | None, payload: list[tuple[str, pa.Array]],
              separation: np.ndarray, angle: np.ndarray, nulls: Nulls,
              queries: pa.Table | None = None) -> pa.Table:
    """The left-join table from its rows, already in answer order (by query, closest first,
    unmatched queries in place): on the rows of queries without a match (``nulls``) the
    rank, payload, separation and angle are null. ``payload`` are ``(name, array)`` pairs
    aligned with the rows; ``queries`` (one row per query) lead."""
    names, arrays = [QUERY_COLUMN], [pa.array(query, pa.int64())]
    if queries is not None:
        query_rows = queries.take(pa.array(query, pa.int64()))
        names += queries.column_names
        arrays += query_rows.columns
    if rank is not None:
        names.append(RANK_COLUMN)
        arrays.append(nulls.wrap(rank, pa.int32()))
    for name, values in payload:
        names.append(name)
        arrays.append(values)
    names += [SEPARATION_COLUMN, POSITION_ANGLE_COLUMN]
    arrays += [nulls.wrap(separation, pa.float64()), nulls.wrap(angle, pa.float64())]
    fields = [with_units(pa.field(name, array.type))
              for name, array in zip(names, arrays, strict=True)]
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def take_payload(column: pa.ChunkedArray, safe_rows: np.ndarray, nulls: Nulls) -> pa.Array:
    """``column[safe_rows]`` (rows from :meth:`Nulls.safe`), null where ``nulls`` says:
    numpy's take for plain numeric columns (several times faster than Arrow's take with
    null indices), Arrow's otherwise."""
    if len(column) == 0:  # an empty catalog: nothing matched
        return pa.nulls(len(safe_rows), column.type)
    if column.null_count == 0 and (pa.types.is_integer(column.type)
                                   or pa.types.is_floating(column.type)):
        return nulls.wrap(np.take(column.to_numpy(), safe_rows), column.type)
    matched = nulls.matched
    indices = pa.array(safe_rows) if matched is None else pa.array(safe_rows, mask=~matched)
    return column.take(indices).combine_chunks()


def left_join_of_matches(matches: pa.Table, query: np.ndarray, n: int,
                         k: int | None = None, unique: str | None = None,
                         rank_by: str = SEPARATION_COLUMN) -> pa.Table:
    """The left join over ``n`` queries from the rows of their matches in any order
    (``matches``: a left-join table's columns, its ``query_index`` and ``match_rank`` ignored,
    ``query`` the query of each row): per query the ``k`` closest (every one when ``k`` is
    None; closest in the column ``rank_by``), ranked, and a null row for each query without
    a match. ``unique``: a column naming the same source found more than once (by several
    shards): kept once per query."""
    ranked = np.lexsort((matches.column(rank_by).to_numpy(), query))
    if unique is not None and len(ranked):
        names = pc.index_in(matches.column(unique), value_set=pc.unique(matches.column(unique)))
        pairs = query * matches.num_rows + names.to_numpy(zero_copy_only=False)
        _, first = np.unique(pairs[ranked], return_index=True)
        ranked = ranked[np.sort(first)]
    query = query[ranked]
    rank = match_ranks(query)
    if k is not None:
        keep = rank <= k
        ranked, query, rank = ranked[keep], query[keep], rank[keep]
    has_match = np.zeros(n, dtype=bool)
    has_match[query] = True
    unmatched = np.flatnonzero(~has_match)
    # Matched rows then one placeholder row per unmatched query, put in query ranked.
    everyone = np.r_[query, unmatched]
    by_query = np.argsort(everyone, kind="stable")
    row = np.r_[ranked, np.full(len(unmatched), -1)][by_query]
    nulls = Nulls(row >= 0)
    payload_names = [name for name in matches.column_names
                     if name not in (QUERY_COLUMN, RANK_COLUMN, SEPARATION_COLUMN,
                                     POSITION_ANGLE_COLUMN)]  # moved positions included
    safe = nulls.safe(row)
    payload = [(name, take_payload(matches.column(name), safe, nulls))
               for name in payload_names]
    full_rank = np.r_[rank, np.zeros(len(unmatched), np.int64)][by_query]
    separation = matches.column(SEPARATION_COLUMN).to_numpy(zero_copy_only=False)
    angle = matches.column(POSITION_ANGLE_COLUMN).to_numpy(zero_copy_only=False)
    return left_join(everyone[by_query], full_rank, payload,
                     separation[safe] if len(separation) else np.full(len(row), np.nan),
                     angle[safe] if len(angle) else np.full(len(row), np.nan), nulls)


def merge_matches(pieces: list[tuple[pa.Table, np.ndarray]], n: int, k: int | None,
                  unique: str | None = None) -> pa.Table:
    """One left join over ``n`` queries from the left joins of several shards, each over
    the queries ``rows`` it was sent (see :func:`left_join_of_matches`)."""
    if len(pieces) == 1 and len(pieces[0][1]) == n:
        return pieces[0][0]  # one shard saw every query, in order
    matched, query = [], []
    for table, rows in pieces:
        found = table.filter(pc.is_valid(table.column(RANK_COLUMN)))
        matched.append(found)
        query.append(rows[found.column(QUERY_COLUMN).to_numpy()])
    table = pa.concat_tables(matched).unify_dictionaries().combine_chunks()
    merged = left_join_of_matches(table, np.concatenate(query), n, k, unique)
    return merged.cast(pieces[0][0].schema)


def merge_rows(tables: list[pa.Table], limit: int | None, unique: str | None = None
               ) -> pa.Table:
    """Several shards' cone answers as one, closest first, at most ``limit`` rows, with the
    rows found before the limit summed. ``unique``: a column naming a source that several
    shards may find (kept once, closest)."""
    table = pa.concat_tables(tables).unify_dictionaries()
    closest = np.argsort(table.column(SEPARATION_COLUMN).to_numpy(), kind="stable")
    found = sum(rows_found(t) for t in tables)
    if unique is not None and len(closest):
        keys = table.column(unique).to_numpy(zero_copy_only=False)[closest]
        _, first = np.unique(keys, return_index=True)
        closest = closest[np.sort(first)]
        found = len(closest)
    return with_rows_found(table.take(closest[:limit]), found)


def with_rows_found(table: pa.Table, found: int) -> pa.Table:
    """``table`` marked with the number of rows its search found before a limit."""
    return table.replace_schema_metadata({**(table.schema.metadata or {}),
                                          ROWS_FOUND_KEY: str(int(found))})


def rows_found(table: pa.Table) -> int:
    """The rows a search found before its limit (the table's own rows if unmarked)."""
    value = (table.schema.metadata or {}).get(ROWS_FOUND_KEY)
    return int(value) if value is not None else table.num_rows
