"""ADQL, read into the searches the kernels answer.

A query is parsed by sqlglot (its T-SQL dialect knows ``TOP``; ADQL's geometry functions
arrive as plain function calls), then planned into one of three shapes:

* :class:`CatalogQuery`: one catalog, with at most one positional constraint in the WHERE
  clause (``CONTAINS(POINT, CIRCLE|POLYGON) = 1`` or ``DISTANCE(POINT, POINT) < r``) that
  becomes a cone or polygon search; other predicates filter the rows found;
* :class:`UploadJoin`: an uploaded table joined to a catalog ``ON`` such a constraint between
  their positions: a cross-match stream of "all within r", kept as a left or inner join;
* :class:`SchemaQuery`: a query on ``TAP_SCHEMA``, run as SQL on its small tables.

Anything else (aggregates, GROUP BY, sub-queries, joins of two catalogs, geometry the
kernels do not answer) is refused with a :class:`TapError` naming the construct.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from xmatch.errors import InputError

#: The schema the catalogs are published under (``xmatch.gaia_dr3``; ``gaia_dr3`` alone too).
CATALOG_SCHEMA = "xmatch"
UPLOAD_SCHEMA = "tap_upload"
METADATA_SCHEMA = "tap_schema"


class TapError(InputError):
    """A query that is not valid ADQL, or not one this service answers."""


@dataclass(frozen=True)
class TableRef:
    """A table of the FROM clause: what it is, and the alias its columns go by."""

    kind: str  # "catalog" or "upload"
    name: str
    alias: str
    columns: tuple[str, ...]

    def column(self, name: str, quoted: bool) -> str | None:
        if name in self.columns:
            return name
        if not quoted:
            folded = [c for c in self.columns if c.lower() == name.lower()]
            if len(folded) == 1:
                return folded[0]
        return None


@dataclass(frozen=True)
class Output:
    """One column of the answer: its name, and how it is computed from the wide table of
    the rows found (``source``: a wide column name; ``distance``: the separation)."""

    name: str
    source: str | None = None
    distance: bool = False
    scale: float = 1.0  # the distance in degrees times this (3600: arcsec)


@dataclass
class Circle:
    ra_deg: float
    dec_deg: float
    radius_deg: float


@dataclass
class PolygonShape:
    ra_deg: list[float]
    dec_deg: list[float]


@dataclass
class CatalogQuery:
    catalog: str
    table: TableRef
    region: Circle | PolygonShape | None
    outputs: list[Output]
    needed: list[str]           # catalog columns to ask the server for
    where: object | None        # sqlglot expression over wide columns, or None
    order: list[tuple[object, bool]] = field(default_factory=list)  # (key, descending)
    top: int | None = None


@dataclass
class UploadJoin:
    catalog: str
    upload: str
    refs: list[TableRef]        # in FROM order (``*`` lists their columns in it)
    catalog_table: TableRef
    upload_table: TableRef
    upload_ra: str
    upload_dec: str
    radius_deg: float | None    # a constant radius, or
    radius_column: str | None   # the upload column holding one per row (degrees)
    outer: bool
    outputs: list[Output]
    needed: list[str]
    where: object | None
    order: list[tuple[object, bool]] = field(default_factory=list)
    top: int | None = None


@dataclass
class SchemaQuery:
    sql: str
    top: int | None


def wide_name(table: TableRef, column: str) -> str:
    """The name a table's column has in the wide table of rows found."""
    return f"{table.alias}\x1f{column}"


# ------------------------------------------------------------------------------ parsing


def parse(query: str):
    """The sqlglot tree of one ADQL query (TapError when it is not one)."""
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import ParseError, TokenError

    if not query or not query.strip():
        raise TapError("QUERY is empty: give an ADQL query")
    try:
        trees = sqlglot.parse(query, read="tsql")
    except (ParseError, TokenError) as error:
        raise TapError(f"QUERY is not valid ADQL: {_parse_message(error)}") from None
    trees = [t for t in trees if t is not None]
    if len(trees) != 1:
        raise TapError(f"QUERY holds {len(trees)} statements; give one SELECT")
    tree = trees[0]
    if not isinstance(tree, exp.Select):
        first = query.split(None, 1)[0]
        if first.upper() == "SELECT":
            raise TapError(f"only plain SELECT queries are answered, not {tree.key.upper()}")
        raise TapError(f"QUERY is not valid ADQL: a query starts with SELECT, not {first!r}")
    return tree


def _parse_message(error) -> str:
    errors = getattr(error, "errors", None)
    if errors:
        first = errors[0]
        # sqlglot describes the token it met by its repr: keep the words before it
        description = first.get("description") or "syntax error"
        description = description.split(" but got <Token", 1)[0].split(". Line ", 1)[0]
        if description.startswith("Required keyword"):
            description = "an incomplete expression"
        return (f"{description} at line {first.get('line')}, column {first.get('col')} "
                f"(near {first.get('highlight')!r})")
    return str(error).splitlines()[0]


def plan(query: str, catalogs: dict, uploads: dict):
    """The plan of ``query``. ``catalogs``: name -> (column names, ra column, dec column);
    ``uploads``: name -> column names of each uploaded table (lower-case names)."""
    tree = parse(query)
    top = _top(tree)
    tables = _tables(tree)
    if any(_schema_of(t) == METADATA_SCHEMA for t in tables):
        if not all(_schema_of(t) == METADATA_SCHEMA for t in tables):
            raise TapError("TAP_SCHEMA tables cannot be joined to catalogs or uploads")
        return SchemaQuery(sql=_schema_sql(tree), top=top)  # SQL in full on its rows
    _refuse_unsupported(tree)
    refs = [_table_ref(t, catalogs, uploads) for t in tables]
    if len({r.alias.lower() for r in refs}) != len(refs):
        raise TapError("two tables of FROM go by the same name: give each an alias (AS)")
    kinds = sorted(r.kind for r in refs)
    if kinds == ["catalog"]:
        return _catalog_query(tree, refs[0], catalogs[refs[0].name], top)
    if kinds == ["catalog", "upload"]:
        return _upload_join(tree, refs, catalogs, top)
    if kinds == ["upload"]:
        raise TapError("a query on an uploaded table alone is not answered: join it to a "
                       "catalog ON CONTAINS(POINT, CIRCLE) or DISTANCE")
    if kinds == ["catalog", "catalog"]:
        raise TapError("joins of two catalogs are not answered by this TAP service; join an "
                       "uploaded table (TAP_UPLOAD) to a catalog")
    raise TapError(f"FROM holds {len(refs)} tables; give one catalog, or an upload joined "
                   "to one catalog")


def _refuse_unsupported(tree) -> None:
    from sqlglot import exp

    for key, what in (("group", "GROUP BY"), ("having", "HAVING"), ("offset", "OFFSET"),
                      ("distinct", "SELECT DISTINCT"), ("with_", "WITH"), ("with", "WITH")):
        if tree.args.get(key):
            raise TapError(f"{what} is not supported by this service")
    for node in tree.walk():
        if isinstance(node, exp.AggFunc):
            raise TapError(f"the aggregate function {node.sql_name()} is not supported by "
                           "this service")
        if isinstance(node, (exp.Subquery, exp.Union, exp.Intersect, exp.Except)) or (
                isinstance(node, exp.Select) and node is not tree):
            raise TapError("sub-queries and set operations (UNION, INTERSECT, EXCEPT) are "
                           "not supported by this service")


def _top(tree) -> int | None:
    limit = tree.args.get("limit")
    if limit is None:
        return None
    value = _constant(limit.expression)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise TapError(f"TOP must be a whole number >= 0, not {limit.expression.sql()}")
    return value


def _tables(tree) -> list:
    from sqlglot import exp

    source = tree.args.get("from_") or tree.args.get("from")
    if source is None:
        raise TapError("the query has no FROM clause")
    tables = [source.this]
    for join in tree.args.get("joins") or []:
        tables.append(join.this)
    for table in tables:
        if not isinstance(table, exp.Table):
            raise TapError(f"FROM takes table names, not {table.sql()}")
    return tables


def _schema_of(table) -> str:
    return (table.args.get("db").name.lower() if table.args.get("db") else "")


def _table_ref(table, catalogs: dict, uploads: dict) -> TableRef:
    schema, name = _schema_of(table), table.name
    alias = table.alias or name
    if schema == UPLOAD_SCHEMA:
        key = name.lower()
        if key not in uploads:
            known = ", ".join(sorted(uploads)) or "none"
            raise TapError(f"TAP_UPLOAD.{name} was not uploaded (uploads: {known}); send it "
                           f"with UPLOAD={name},param:{name} and the table as part '{name}'")
        return TableRef("upload", key, alias, tuple(uploads[key]))
    if schema not in ("", CATALOG_SCHEMA):
        raise TapError(f"unknown schema {schema!r} in {table.sql()}: the catalogs are in "
                       f"{CATALOG_SCHEMA!r}, uploads in TAP_UPLOAD, metadata in TAP_SCHEMA")
    matches = [c for c in catalogs if c == name or c.lower() == name.lower()]
    if not matches:
        raise TapError(f"unknown table {name!r}; the tables are "
                       f"{', '.join(f'{CATALOG_SCHEMA}.{c}' for c in sorted(catalogs))} "
                       "(see TAP_SCHEMA.tables)")
    return TableRef("catalog", matches[0], alias, tuple(catalogs[matches[0]][0]))


# ------------------------------------------------------------------------------ constants


def _constant(node):
    """The value of a constant expression (numbers, strings, + - * / and parentheses), or
    raise TapError. Integer division stays integer, as in SQL."""
    from sqlglot import exp

    if isinstance(node, exp.Paren):
        return _constant(node.this)
    if isinstance(node, exp.Literal):
        if node.is_string:
            return node.this
        text = node.this
        try:
            return int(text)
        except ValueError:
            return float(text)
    if isinstance(node, exp.Neg):
        return -_number(node.this)
    if isinstance(node, (exp.Add, exp.Sub, exp.Mul, exp.Div)):
        a, b = _number(node.this), _number(node.expression)
        if isinstance(node, exp.Add):
            return a + b
        if isinstance(node, exp.Sub):
            return a - b
        if isinstance(node, exp.Mul):
            return a * b
        if b == 0:
            raise TapError(f"division by zero in {node.sql()}")
        if isinstance(a, int) and isinstance(b, int):
            return int(a / b)  # SQL integer division truncates toward zero
        return a / b
    raise TapError(f"{node.sql()} must be a constant here (a number, or arithmetic on "
                   "numbers)")


def _number(node) -> int | float:
    value = _constant(node)
    if isinstance(value, str):
        raise TapError(f"{node.sql()} must be a number, not a string")
    return value


# ------------------------------------------------------------------------------ geometry


def _function(node) -> tuple[str, list] | None:
    """(upper-case name, arguments) of a geometry-looking function call, else None."""
    from sqlglot import exp

    if isinstance(node, exp.Contains):
        return "CONTAINS", [node.this, node.expression]
    if isinstance(node, exp.Anonymous):
        return node.name.upper(), list(node.expressions)
    if isinstance(node, exp.Func) and node.sql_name().upper() in GEOMETRY:
        return node.sql_name().upper(), [a for a in node.args.values() if a is not None]
    return None


GEOMETRY = {"POINT", "CIRCLE", "POLYGON", "BOX", "CONTAINS", "INTERSECTS", "DISTANCE",
            "AREA", "CENTROID", "COORD1", "COORD2", "COORDSYS", "REGION"}


def _system(args: list, what: str) -> list:
    """``args`` without a leading coordinate-system string, which must be ICRS (or empty)."""
    from sqlglot import exp

    if args and isinstance(args[0], exp.Literal) and args[0].is_string:
        system = args[0].this.strip().upper()
        if system not in ("", "ICRS") and not system.startswith("ICRS "):
            raise TapError(f"{what}: coordinate system {args[0].this!r} is not supported; "
                           "positions are ICRS ('ICRS' or '')")
        return args[1:]
    return args


def _point(node, what: str) -> tuple:
    """The two coordinate expressions of POINT(...)."""
    call = _function(node)
    if call is None or call[0] != "POINT":
        raise TapError(f"{what} takes a POINT here, not {node.sql()}")
    args = _system(call[1], "POINT")
    if len(args) != 2:
        raise TapError(f"POINT takes two coordinates, not {len(args)}: {node.sql()}")
    return args[0], args[1]


@dataclass
class Constraint:
    """A positional constraint: ``point`` (column expressions) within ``shape``.
    ``shape`` is ("circle", (ra, dec), radius) or ("polygon", [(ra, dec), ...]) with
    sqlglot expressions for coordinates and radius."""

    point: tuple
    shape: tuple


def _constraint(node) -> Constraint | None:
    """The positional constraint ``node`` states, None when it states none, TapError when
    it uses geometry in a way that is not answered."""
    from sqlglot import exp

    if isinstance(node, exp.Paren):
        return _constraint(node.this)
    if isinstance(node, exp.EQ):
        for call_side, value_side in ((node.this, node.expression),
                                      (node.expression, node.this)):
            call = _function(call_side)
            if call and call[0] in ("CONTAINS", "INTERSECTS"):
                if _constant(value_side) != 1:
                    raise TapError(f"{call[0]}(...) = {value_side.sql()} is not answered: "
                                   "only = 1 (inside) is")
                return _contains(call[0], call[1])
    if isinstance(node, (exp.LT, exp.LTE, exp.GT, exp.GTE)):
        left, right = node.this, node.expression
        if isinstance(node, (exp.GT, exp.GTE)):
            left, right = right, left
        call = _function(left)
        if call and call[0] == "DISTANCE":
            a, b = _distance_points(call[1])
            return Constraint(point=a, shape=("circle", b, right))
    if isinstance(node, exp.Func) or isinstance(node, exp.Anonymous):
        call = _function(node)
        if call and call[0] in ("CONTAINS", "INTERSECTS"):
            raise TapError(f"{call[0]}(...) must be compared: write {call[0]}(...) = 1")
    for inner in node.walk():
        call = _function(inner) if inner is not node else None
        if call and call[0] in GEOMETRY:
            raise TapError(f"{call[0]} is answered only in a constraint of the form "
                           "CONTAINS(POINT, CIRCLE|POLYGON) = 1 or DISTANCE(POINT, POINT) < r, "
                           f"joined to the rest of WHERE by AND; not in {node.sql()}")
    return None


def _distance_points(args: list) -> tuple[tuple, tuple]:
    if len(args) == 2:
        return _point(args[0], "DISTANCE"), _point(args[1], "DISTANCE")
    if len(args) == 4:
        return (args[0], args[1]), (args[2], args[3])
    raise TapError(f"DISTANCE takes two POINTs (or four coordinates), not {len(args)} "
                   "arguments")


def _contains(name: str, args: list) -> Constraint:
    if len(args) != 2:
        raise TapError(f"{name} takes two arguments, not {len(args)}")
    first, second = _function(args[0]), _function(args[1])
    if first and first[0] != "POINT" and second and second[0] == "POINT":
        if name == "CONTAINS":
            raise TapError("CONTAINS(shape, POINT) asks whether a shape lies in a point; "
                           "write CONTAINS(POINT, shape) = 1")
        args = args[::-1]
        first, second = second, first
    point = _point(args[0], name)
    if second is None:
        raise TapError(f"{name} takes a CIRCLE or POLYGON after the POINT, not "
                       f"{args[1].sql()}")
    shape_name, shape_args = second
    shape_args = _system(shape_args, shape_name)
    if shape_name == "CIRCLE":
        if len(shape_args) == 3:
            return Constraint(point, ("circle", (shape_args[0], shape_args[1]), shape_args[2]))
        if len(shape_args) == 2:
            return Constraint(point, ("circle", _point(shape_args[0], "CIRCLE"),
                                      shape_args[1]))
        raise TapError(f"CIRCLE takes a centre and a radius, not {args[1].sql()}")
    if shape_name == "POLYGON":
        if shape_args and _function(shape_args[0]) is not None:
            vertices = [_point(a, "POLYGON") for a in shape_args]
        else:
            if len(shape_args) % 2:
                raise TapError(f"POLYGON takes pairs of coordinates: {args[1].sql()}")
            vertices = list(zip(shape_args[::2], shape_args[1::2], strict=True))
        if len(vertices) < 3:
            raise TapError(f"POLYGON takes at least three vertices: {args[1].sql()}")
        return Constraint(point, ("polygon", vertices))
    if shape_name == "BOX":
        raise TapError("BOX is not supported (ADQL 2.1 deprecates it): use POLYGON")
    raise TapError(f"{shape_name} is not supported in {name}: use CIRCLE or POLYGON")


def _conjuncts(node) -> list:
    from sqlglot import exp

    if node is None:
        return []
    if isinstance(node, exp.Paren) and isinstance(node.this, exp.And):
        return _conjuncts(node.this)
    if isinstance(node, exp.And):
        return _conjuncts(node.this) + _conjuncts(node.expression)
    return [node]


def _and(nodes: list):
    from sqlglot import exp

    if not nodes:
        return None
    result = nodes[0]
    for node in nodes[1:]:
        result = exp.And(this=result, expression=node)
    return result


def _split_where(tree) -> tuple[list[Constraint], object | None]:
    where = tree.args.get("where")
    constraints, rest = [], []
    for node in _conjuncts(where.this if where is not None else None):
        constraint = _constraint(node)
        (constraints if constraint is not None else rest).append(
            constraint if constraint is not None else node)
    return constraints, _and(rest)


# ------------------------------------------------------------------------------ columns


class Resolver:
    """Column references of a query resolved to the tables of its FROM clause."""

    def __init__(self, refs: list[TableRef]):
        self.refs = refs

    def resolve(self, column) -> tuple[TableRef, str]:
        name = column.this.this if hasattr(column.this, "this") else column.name
        quoted = bool(getattr(column.this, "quoted", False))
        qualifier = column.table
        candidates = self.refs
        if qualifier:
            candidates = [r for r in self.refs if r.alias.lower() == qualifier.lower()
                          or r.name.lower() == qualifier.lower()]
            if not candidates:
                raise TapError(f"unknown table {qualifier!r} in {column.sql()}; the query's "
                               f"tables are {', '.join(r.alias for r in self.refs)}")
        found = [(r, r.column(name, quoted)) for r in candidates]
        found = [(r, c) for r, c in found if c is not None]
        if not found:
            where = candidates[0].name if len(candidates) == 1 else "any table of FROM"
            raise TapError(f"unknown column {column.sql()!r} in {where} (see TAP_SCHEMA.columns)")
        if len(found) > 1:
            raise TapError(f"column {name!r} is in more than one table: qualify it "
                           f"({', '.join(f'{r.alias}.{c}' for r, c in found)})")
        return found[0]

    def wide(self, column) -> str:
        ref, name = self.resolve(column)
        return wide_name(ref, name)


def _is_column(node) -> bool:
    from sqlglot import exp

    return isinstance(node, exp.Column) and not isinstance(node.this, exp.Star)


def _same_column(resolver: Resolver, node, ref: TableRef, column: str) -> bool:
    return _is_column(node) and resolver.resolve(node) == (ref, column)


def _outputs(tree, resolver: Resolver, measured: tuple | None) -> tuple[list[Output], dict]:
    """The answer's columns, and the SELECT aliases (name -> wide column or "distance") the
    ORDER BY may use. ``measured``: the two points (coordinate pairs) of a circle
    constraint, whose DISTANCE the answer can carry (None: no circle)."""
    from sqlglot import exp

    outputs, aliases = [], {}
    for item in tree.expressions:
        node, alias = (item.this, item.alias) if isinstance(item, exp.Alias) else (item, None)
        if isinstance(node, exp.Star):
            for ref in resolver.refs:
                outputs += [Output(c, wide_name(ref, c)) for c in ref.columns]
            continue
        if isinstance(node, exp.Column) and isinstance(node.this, exp.Star):
            refs = [r for r in resolver.refs if r.alias.lower() == node.table.lower()
                    or r.name.lower() == node.table.lower()]
            if not refs:
                raise TapError(f"unknown table {node.table!r} in {node.sql()}")
            outputs += [Output(c, wide_name(refs[0], c)) for c in refs[0].columns]
            continue
        if _is_column(node):
            ref, name = resolver.resolve(node)
            outputs.append(Output(alias or name, wide_name(ref, name)))
            aliases[(alias or name).lower()] = wide_name(ref, name)
            continue
        distance, scale = _scaled(node)
        call = _function(distance)
        if call and call[0] == "DISTANCE":
            if not _measures(distance, measured, resolver):
                raise TapError(f"{distance.sql()} is not answered: the answer carries the "
                               "DISTANCE between the points of the query's positional "
                               "constraint only")
            outputs.append(Output(alias or "distance", distance=True, scale=scale))
            aliases[(alias or "distance").lower()] = "distance"
            continue
        raise TapError(f"the SELECT item {node.sql()} is not supported: select columns, *, "
                       "or the DISTANCE of the positional constraint")
    return _unique(outputs, resolver), aliases


def _scaled(node) -> tuple[object, float]:
    """``node`` as (expression, constant factor): ``DISTANCE(...) * 3600.0`` (what STILTS's
    tapskymatch asks for) is the DISTANCE times 3600; anything else is itself times 1."""
    from sqlglot import exp

    if isinstance(node, exp.Paren):
        return _scaled(node.this)
    if isinstance(node, (exp.Mul, exp.Div)):
        for inner, factor in ((node.this, node.expression), (node.expression, node.this)):
            if isinstance(node, exp.Div) and inner is node.expression:
                continue  # constant / DISTANCE is no distance
            try:
                value = float(_number(factor))
            except TapError:
                continue
            if isinstance(node, exp.Div):
                if value == 0:
                    raise TapError(f"division by zero in {node.sql()}")
                value = 1.0 / value
            expression, scale = _scaled(inner)
            return expression, scale * value
    return node, 1.0


def _measures(node, measured: tuple | None, resolver: Resolver) -> bool:
    """Whether ``node`` is DISTANCE between the two points the positional constraint
    compares (``measured``: their coordinate pairs), in either order."""
    call = _function(node)
    if measured is None or call is None or call[0] != "DISTANCE":
        return False

    def key(pair: tuple) -> tuple:
        return tuple(resolver.resolve(c) if _is_column(c) else _constant(c) for c in pair)

    try:
        a, b = _distance_points(call[1])
        return {key(a), key(b)} == {key(measured[0]), key(measured[1])}
    except TapError:
        return False


def _unique(outputs: list[Output], resolver: Resolver) -> list[Output]:
    """Names two outputs share get their table's alias in front (``u_ra``, ``g_ra``)."""
    counts: dict[str, int] = {}
    for output in outputs:
        counts[output.name.lower()] = counts.get(output.name.lower(), 0) + 1
    aliases = {wide_name(r, c): r.alias for r in resolver.refs for c in r.columns}
    renamed = []
    for output in outputs:
        if counts[output.name.lower()] > 1 and output.source in aliases:
            output = Output(f"{aliases[output.source]}_{output.name}", output.source)
        renamed.append(output)
    names = [o.name.lower() for o in renamed]
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise TapError(f"the answer would have two columns named {twice[0]!r}: rename one "
                       "with AS")
    return renamed


def _order(tree, resolver: Resolver, aliases: dict, outputs: list[Output],
           measured: tuple | None) -> list[tuple[object, bool]]:
    """ORDER BY keys: a wide column name or "distance", with descending."""
    order = tree.args.get("order")
    keys = []
    for ordered in (order.expressions if order else []):
        node, descending = ordered.this, bool(ordered.args.get("desc"))
        constant = None
        try:
            constant = _constant(node)
        except TapError:
            pass
        if isinstance(constant, int):
            if not 1 <= constant <= len(outputs):
                raise TapError(f"ORDER BY {constant}: the answer has {len(outputs)} columns")
            chosen = outputs[constant - 1]
            keys.append(("distance" if chosen.distance else chosen.source, descending))
        elif _is_column(node) and not node.table and node.name.lower() in aliases:
            keys.append((aliases[node.name.lower()], descending))
        elif _is_column(node):
            keys.append((resolver.wide(node), descending))
        elif _measures(node, measured, resolver):
            keys.append(("distance", descending))
        else:
            raise TapError(f"ORDER BY {node.sql()} is not supported: order by columns or by "
                           "the DISTANCE of the positional constraint")
    return keys


def _columns_used(node, resolver: Resolver) -> list[tuple[TableRef, str]]:
    from sqlglot import exp

    return [resolver.resolve(c) for c in (node.find_all(exp.Column) if node is not None
                                          else []) if _is_column(c)]


# ------------------------------------------------------------------------------ plans


def _catalog_query(tree, ref: TableRef, catalog: tuple, top: int | None) -> CatalogQuery:
    columns, ra_column, dec_column = catalog
    resolver = Resolver([ref])
    constraints, rest = _split_where(tree)
    if len(constraints) > 1:
        raise TapError("the query has more than one positional constraint; give one "
                       "CONTAINS or DISTANCE")
    region, measured = None, None
    if constraints:
        constraint = constraints[0]
        if not (_same_column(resolver, constraint.point[0], ref, ra_column)
                and _same_column(resolver, constraint.point[1], ref, dec_column)):
            raise TapError(f"the positional constraint must test the table's position "
                           f"POINT('ICRS', {ra_column}, {dec_column}), not "
                           f"({constraint.point[0].sql()}, {constraint.point[1].sql()})")
        region = _region(constraint)
        if isinstance(region, Circle):
            measured = (constraint.point, constraint.shape[1])
    outputs, aliases = _outputs(tree, resolver, measured)
    order = _order(tree, resolver, aliases, outputs, measured)
    if region is None and rest is not None:
        raise TapError("a WHERE clause on a catalog needs a positional constraint "
                       "(CONTAINS(POINT, CIRCLE|POLYGON) = 1 or DISTANCE(...) < r): whole "
                       "catalogs are not scanned")
    if region is None and order:
        raise TapError("ORDER BY on a whole catalog is not answered: add a positional "
                       "constraint")
    used = [o.source for o in outputs if o.source] + [k for k, _ in order if k != "distance"]
    used += [wide_name(r, c) for r, c in _columns_used(rest, resolver)]
    needed = list(dict.fromkeys(name.split("\x1f", 1)[1] for name in used))
    return CatalogQuery(catalog=ref.name, table=ref, region=region, outputs=outputs,
                        needed=needed, where=rest, order=order, top=top)




def _region(constraint: Constraint) -> Circle | PolygonShape:
    kind = constraint.shape[0]
    if kind == "circle":
        (ra, dec), radius = constraint.shape[1], constraint.shape[2]
        circle = Circle(_coordinate(ra, "centre RA"), _coordinate(dec, "centre Dec"),
                        _number(radius))
        _check_position(circle.ra_deg, circle.dec_deg, "the circle's centre")
        if not (math.isfinite(circle.radius_deg) and circle.radius_deg > 0):
            hint = (" (1/3600 is integer division in ADQL: write 1/3600.0)"
                    if circle.radius_deg == 0 else "")
            raise TapError(f"the circle's radius {radius.sql()} = {circle.radius_deg!r} "
                           f"must be > 0 degrees{hint}")
        return circle
    vertices = [(_coordinate(a, "vertex RA"), _coordinate(b, "vertex Dec"))
                for a, b in constraint.shape[1]]
    for ra, dec in vertices:
        _check_position(ra, dec, "a polygon vertex")
    return PolygonShape([v[0] for v in vertices], [v[1] for v in vertices])


def _coordinate(node, what: str) -> float:
    try:
        return float(_number(node))
    except TapError:
        raise TapError(f"the {what} {node.sql()} must be a number here") from None


def _check_position(ra: float, dec: float, what: str) -> None:
    if not (math.isfinite(ra) and math.isfinite(dec) and -90 <= dec <= 90):
        raise TapError(f"{what} ({ra!r}, {dec!r}) is not a position: Dec must be within "
                       "[-90, 90] degrees")


def _upload_join(tree, refs: list[TableRef], catalogs: dict, top: int | None) -> UploadJoin:
    catalog_ref = next(r for r in refs if r.kind == "catalog")
    upload_ref = next(r for r in refs if r.kind == "upload")
    _, ra_column, dec_column = catalogs[catalog_ref.name]
    resolver = Resolver(refs)
    joins = tree.args.get("joins") or []
    outer = False
    join = joins[0]
    side, kind = (join.args.get("side") or "").upper(), (join.args.get("kind") or "").upper()
    on = join.args.get("on")
    first_is_upload = refs[0].kind == "upload"
    if side in ("LEFT", "RIGHT"):
        kept_is_upload = first_is_upload if side == "LEFT" else not first_is_upload
        if not kept_is_upload:
            raise TapError(f"a {side} OUTER JOIN that keeps the catalog's rows is not "
                           "answered: keep the upload's rows (upload LEFT JOIN catalog)")
        outer = True
    elif side == "FULL" or kind in ("CROSS", "NATURAL") or join.args.get("using"):
        raise TapError(f"{(side or kind)} JOIN / USING is not supported: join ON a "
                       "positional constraint")
    constraints, rest = _split_where(tree)
    if on is not None:
        on_constraints = [c for c in (_constraint(n) for n in _conjuncts(on)) if c]
        others = [n for n in _conjuncts(on) if _constraint(n) is None]
        if others:
            raise TapError(f"the join condition may hold only the positional constraint; "
                           f"move {others[0].sql()} to WHERE")
        constraints = on_constraints + constraints
    elif outer:
        raise TapError("an OUTER JOIN needs its positional constraint in ON")
    if len(constraints) != 1:
        raise TapError("an upload join needs exactly one positional constraint between the "
                       "two tables' positions (ON CONTAINS(POINT, CIRCLE) = 1 or "
                       f"DISTANCE(POINT, POINT) < r); found {len(constraints)}")
    constraint = constraints[0]
    if constraint.shape[0] != "circle":
        raise TapError("an upload is joined within a CIRCLE (or DISTANCE), not a POLYGON")
    point, centre = constraint.point, constraint.shape[1]
    if _columns_of(point, resolver) == [upload_ref, upload_ref]:
        point, centre = centre, point  # CONTAINS(POINT(upload), CIRCLE(catalog, r)): same
    if not (_same_column(resolver, point[0], catalog_ref, ra_column)
            and _same_column(resolver, point[1], catalog_ref, dec_column)):
        raise TapError(f"the join must test the catalog's position POINT('ICRS', "
                       f"{catalog_ref.alias}.{ra_column}, {catalog_ref.alias}.{dec_column}) "
                       f"against the upload's; not ({point[0].sql()}, {point[1].sql()})")
    if not (all(_is_column(c) for c in centre)
            and _columns_of(centre, resolver) == [upload_ref, upload_ref]):
        raise TapError(f"the join's other point must be the upload's position columns, not "
                       f"({centre[0].sql()}, {centre[1].sql()})")
    radius = constraint.shape[2]
    radius_deg = radius_column = None
    if _is_column(radius):
        ref, radius_column = resolver.resolve(radius)
        if ref is not upload_ref:
            raise TapError(f"a per-row radius must be a column of the upload, not "
                           f"{radius.sql()}")
    else:
        radius_deg = _number(radius)
        if not (math.isfinite(radius_deg) and radius_deg > 0):
            hint = (" (1/3600 is integer division in ADQL: write 1/3600.0)"
                    if radius_deg == 0 else "")
            raise TapError(f"the join radius {radius.sql()} = {radius_deg!r} must be > 0 "
                           f"degrees{hint}")
    outputs, aliases = _outputs(tree, resolver, (point, centre))
    order = _order(tree, resolver, aliases, outputs, (point, centre))
    used = [o.source for o in outputs if o.source] + [k for k, _ in order if k != "distance"]
    used += [wide_name(r, c) for r, c in _columns_used(rest, resolver)]
    prefix = wide_name(catalog_ref, "")
    needed = list(dict.fromkeys(n[len(prefix):] for n in used if n.startswith(prefix)))
    upload_ra = resolver.resolve(centre[0])[1]
    upload_dec = resolver.resolve(centre[1])[1]
    return UploadJoin(catalog=catalog_ref.name, upload=upload_ref.name, refs=refs,
                      catalog_table=catalog_ref, upload_table=upload_ref,
                      upload_ra=upload_ra, upload_dec=upload_dec, radius_deg=radius_deg,
                      radius_column=radius_column, outer=outer, outputs=outputs,
                      needed=needed, where=rest, order=order, top=top)


def _columns_of(pair: tuple, resolver: Resolver) -> list:
    return [resolver.resolve(c)[0] if _is_column(c) else None for c in pair]




def _schema_sql(tree) -> str:
    """The query as SQLite SQL on the TAP_SCHEMA tables (named ``tap_schema_<table>``)."""
    from sqlglot import exp

    tree = tree.copy()
    for table in tree.find_all(exp.Table):
        if _schema_of(table) == METADATA_SCHEMA:
            alias = table.alias or table.name
            table.replace(exp.Table(this=exp.to_identifier(f"tap_schema_{table.name.lower()}"),
                                    alias=exp.TableAlias(this=exp.to_identifier(alias))))
    for column in tree.find_all(exp.Column):
        db = column.args.get("db")
        if db is not None and db.name.lower() == METADATA_SCHEMA:
            column.set("db", None)
    return tree.sql(dialect="sqlite")


# ------------------------------------------------------------------------------ evaluation


def evaluate(node, table: pa.Table, resolver_columns: dict):
    """The value of a WHERE expression over ``table`` (a boolean array for a predicate).
    ``resolver_columns`` maps each sqlglot Column node's SQL text to a column of ``table``
    (filled in by :func:`bind`)."""
    from sqlglot import exp

    if isinstance(node, exp.Paren):
        return evaluate(node.this, table, resolver_columns)
    if _is_column(node):
        return table[resolver_columns[id(node)]]
    if isinstance(node, (exp.Literal, exp.Neg)) and not _is_column(node.this if isinstance(
            node, exp.Neg) else None):
        try:
            return _constant(node)
        except TapError:
            pass
    if isinstance(node, exp.Null):
        return pa.scalar(None)
    if isinstance(node, exp.Boolean):
        return bool(node.this)
    binary = {exp.EQ: pc.equal, exp.NEQ: pc.not_equal, exp.LT: pc.less,
              exp.LTE: pc.less_equal, exp.GT: pc.greater, exp.GTE: pc.greater_equal,
              exp.Add: pc.add, exp.Sub: pc.subtract, exp.Mul: pc.multiply,
              exp.Div: pc.divide, exp.And: pc.and_kleene, exp.Or: pc.or_kleene}
    for kind, function in binary.items():
        if type(node) is kind:
            a = evaluate(node.this, table, resolver_columns)
            b = evaluate(node.expression, table, resolver_columns)
            if kind is exp.Div:
                a, b = _as_double(a), _as_double(b)
            return _call(function, a, b, node)
    if isinstance(node, exp.Neg):
        return pc.negate(evaluate(node.this, table, resolver_columns))
    if isinstance(node, exp.Not):
        return pc.invert(evaluate(node.this, table, resolver_columns))
    if isinstance(node, exp.Is):
        value = evaluate(node.this, table, resolver_columns)
        if not isinstance(node.expression, exp.Null):
            raise TapError(f"IS takes NULL: {node.sql()}")
        return pc.is_null(value)
    if isinstance(node, exp.Between):
        value = evaluate(node.this, table, resolver_columns)
        low = evaluate(node.args["low"], table, resolver_columns)
        high = evaluate(node.args["high"], table, resolver_columns)
        return pc.and_kleene(_call(pc.greater_equal, value, low, node),
                             _call(pc.less_equal, value, high, node))
    if isinstance(node, exp.In):
        value = evaluate(node.this, table, resolver_columns)
        choices = [_constant(e) for e in node.expressions]
        if node.args.get("query"):
            raise TapError("IN (SELECT ...) is not supported")
        return _call(lambda v, c: pc.is_in(v, value_set=pa.array(c)), value, choices, node)
    if isinstance(node, (exp.Like, exp.ILike)):
        value = evaluate(node.this, table, resolver_columns)
        pattern = _constant(node.expression)
        if not isinstance(pattern, str):
            raise TapError(f"LIKE takes a string pattern: {node.sql()}")
        return _call(lambda v, p: pc.match_like(v, p, ignore_case=isinstance(node, exp.ILike)),
                     value, pattern, node)
    raise TapError(f"{node.sql()} is not supported in WHERE: use comparisons, BETWEEN, IN, "
                   "LIKE, IS NULL, AND, OR, NOT and arithmetic on columns")


def _as_double(value):
    if isinstance(value, (pa.Array, pa.ChunkedArray)):
        return pc.cast(value, pa.float64()) if pa.types.is_integer(value.type) else value
    return float(value) if isinstance(value, int) else value


def _call(function, a, b, node):
    import pyarrow.lib

    try:
        return function(a, b)
    except (pyarrow.lib.ArrowNotImplementedError, pyarrow.lib.ArrowInvalid,
            pyarrow.lib.ArrowTypeError) as error:
        raise TapError(f"cannot evaluate {node.sql()}: {str(error).splitlines()[0]}") from None


def bind(where, resolver: Resolver) -> dict:
    """Each Column node of ``where`` -> its wide column name."""
    from sqlglot import exp

    return {id(c): resolver.wide(c) for c in where.find_all(exp.Column) if _is_column(c)}


def keep(table: pa.Table, where, resolver: Resolver) -> pa.Table:
    """The rows of the wide ``table`` for which ``where`` is true (NULL counts as false)."""
    if where is None or table.num_rows == 0:
        return table
    mask = evaluate(where, table, bind(where, resolver))
    if not isinstance(mask, (pa.Array, pa.ChunkedArray)):
        mask = pa.array(np.full(table.num_rows, bool(mask)))
    if not pa.types.is_boolean(mask.type):
        raise TapError(f"WHERE {where.sql()} is not a condition (it gives {mask.type})")
    return table.filter(pc.fill_null(mask, False))
