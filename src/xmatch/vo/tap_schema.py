"""The service's own description: TAP_SCHEMA (queried in ADQL like any table, answered by
SQLite on its few rows) and the VOSI documents (tables, capabilities, availability)."""

from __future__ import annotations

import sqlite3
from html import escape

import pyarrow as pa

from xmatch.vo.adql import CATALOG_SCHEMA, TapError
from xmatch.vo.votable import datatype_of

#: TAP_SCHEMA's tables and columns, as TAP 1.1 §4 lists them (name, VOTable type, arraysize,
#: description).
TAP_SCHEMA_TABLES = {
    "schemas": [("schema_name", "char", "*", "schema name"),
                ("utype", "char", "*", "utype of the schema"),
                ("description", "char", "*", "description of the schema"),
                ("schema_index", "int", None, "recommended order of schemas")],
    "tables": [("schema_name", "char", "*", "the schema the table belongs to"),
               ("table_name", "char", "*", "table name as it is used in queries"),
               ("table_type", "char", "*", "table or view"),
               ("utype", "char", "*", "utype of the table"),
               ("description", "char", "*", "description of the table"),
               ("table_index", "int", None, "recommended order of tables")],
    "columns": [("table_name", "char", "*", "the table the column belongs to"),
                ("column_name", "char", "*", "column name"),
                ("utype", "char", "*", "utype of the column"),
                ("ucd", "char", "*", "UCD of the column"),
                ("unit", "char", "*", "unit (VOUnit)"),
                ("description", "char", "*", "description of the column"),
                ("datatype", "char", "*", "VOTable datatype"),
                ("arraysize", "char", "*", "VOTable arraysize"),
                ("xtype", "char", "*", "VOTable xtype"),
                ("size", "int", None, "deprecated: use arraysize"),
                ("principal", "int", None, "1: a column of interest to most users"),
                ("indexed", "int", None, "1: searches on it are fast (the positions)"),
                ("std", "int", None, "1: defined by a standard"),
                ("column_index", "int", None, "recommended order of columns")],
    "keys": [("key_id", "char", "*", "unique key identifier"),
             ("from_table", "char", "*", "table with the foreign key"),
             ("target_table", "char", "*", "table with the primary key"),
             ("utype", "char", "*", "utype of the key"),
             ("description", "char", "*", "description of the key")],
    "key_columns": [("key_id", "char", "*", "the key"),
                    ("from_column", "char", "*", "column in the from_table"),
                    ("target_column", "char", "*", "column in the target_table")],
}


#: TAP_SCHEMA's own foreign keys (TAP 1.1 §4.4, 4.5): key id, from table, target table,
#: and the (from, target) column pairs.
TAP_SCHEMA_KEYS = [
    ("schema_of_table", "tables", "schemas", [("schema_name", "schema_name")]),
    ("table_of_column", "columns", "tables", [("table_name", "table_name")]),
    ("from_table_of_key", "keys", "tables", [("from_table", "table_name")]),
    ("target_table_of_key", "keys", "tables", [("target_table", "table_name")]),
    ("key_of_key_column", "key_columns", "keys", [("key_id", "key_id")]),
]

#: ADQL 2.1's reserved words (§2.1.2: SQL's and ADQL's own) that columns here may be
#: named: such a name, or one that is not a regular identifier, is published delimited.
ADQL_RESERVED = frozenset("""
ABS ACOS AREA ASIN ATAN ATAN2 BOX CEILING CENTROID CIRCLE CONTAINS COORD1 COORD2 COORDSYS
COS COT DEGREES DISTANCE EXP FLOOR INTERSECTS LOG LOG10 MOD PI POINT POLYGON POWER RADIANS
REGION RAND ROUND SIN SQRT TAN TOP TRUNCATE ABSOLUTE ACTION ADD ALL ALLOCATE ALTER AND ANY
ARE AS ASC ASSERTION AT AUTHORIZATION AVG BEGIN BETWEEN BIT BIT_LENGTH BOTH BY CASCADE
CASCADED CASE CAST CATALOG CHAR CHARACTER CHAR_LENGTH CHARACTER_LENGTH CHECK CLOSE COALESCE
COLLATE COLLATION COLUMN COMMIT CONNECT CONNECTION CONSTRAINT CONSTRAINTS CONTINUE CONVERT
CORRESPONDING COUNT CREATE CROSS CURRENT CURRENT_DATE CURRENT_TIME CURRENT_TIMESTAMP
CURRENT_USER CURSOR DATE DAY DEALLOCATE DECIMAL DECLARE DEFAULT DEFERRABLE DEFERRED DELETE
DESC DESCRIBE DESCRIPTOR DIAGNOSTICS DISCONNECT DISTINCT DOMAIN DOUBLE DROP ELSE END
END-EXEC ESCAPE EXCEPT EXCEPTION EXEC EXECUTE EXISTS EXTERNAL EXTRACT FALSE FETCH FIRST
FLOAT FOR FOREIGN FOUND FROM FULL GET GLOBAL GO GOTO GRANT GROUP HAVING HOUR IDENTITY
IMMEDIATE IN INDICATOR INITIALLY INNER INPUT INSENSITIVE INSERT INT INTEGER INTERSECT
INTERVAL INTO IS ISOLATION JOIN KEY LANGUAGE LAST LEADING LEFT LEVEL LIKE LOCAL LOWER MATCH
MAX MIN MINUTE MODULE MONTH NAMES NATIONAL NATURAL NCHAR NEXT NO NOT NULL NULLIF NUMERIC
OCTET_LENGTH OF ON ONLY OPEN OPTION OR ORDER OUTER OUTPUT OVERLAPS PAD PARTIAL POSITION
PRECISION PREPARE PRESERVE PRIMARY PRIOR PRIVILEGES PROCEDURE PUBLIC READ REAL REFERENCES
RELATIVE RESTRICT REVOKE RIGHT ROLLBACK ROWS SCHEMA SCROLL SECOND SECTION SELECT SESSION
SESSION_USER SET SIZE SMALLINT SOME SPACE SQL SQLCODE SQLERROR SQLSTATE SUBSTRING SUM
SYSTEM_USER TABLE TEMPORARY THEN TIME TIMESTAMP TIMEZONE_HOUR TIMEZONE_MINUTE TO TRAILING
TRANSACTION TRANSLATE TRANSLATION TRIM TRUE UNION UNIQUE UNKNOWN UPDATE UPPER USAGE USER
USING VALUE VALUES VARCHAR VARYING VIEW WHEN WHENEVER WHERE WITH WORK WRITE YEAR ZONE
""".split())


def adql_name(name: str) -> str:
    """``name`` as ADQL queries must write it: delimited ("size", "_healpix_29") when it is
    reserved or not a regular identifier."""
    import re

    if re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", name) and name.upper() not in ADQL_RESERVED:
        return name
    return '"' + name.replace('"', '""') + '"'


def _meta(f: pa.Field, key: bytes) -> str:
    return (f.metadata or {}).get(key, b"").decode()


class Metadata:
    """TAP_SCHEMA and the VOSI table set of the served catalogs."""

    def __init__(self, catalogs: dict):
        self.catalogs = catalogs
        self._db = sqlite3.connect(":memory:", check_same_thread=False)
        for table, columns in TAP_SCHEMA_TABLES.items():
            names = ", ".join(f'"{c[0]}"' for c in columns)
            self._db.execute(f"CREATE TABLE tap_schema_{table} ({names})")
        rows = self._rows()
        for table, values in rows.items():
            if values:
                marks = ", ".join("?" * len(values[0]))
                self._db.executemany(f"INSERT INTO tap_schema_{table} VALUES ({marks})",
                                     values)

    def _rows(self) -> dict[str, list[tuple]]:
        rows = {name: [] for name in TAP_SCHEMA_TABLES}
        rows["schemas"] = [
            (CATALOG_SCHEMA, None, "the catalogs this service serves", 0),
            ("TAP_SCHEMA", None, "this service's description (TAP 1.1)", 1)]
        for index, (name, info) in enumerate(sorted(self.catalogs.items())):
            qualified = f"{CATALOG_SCHEMA}.{name}"
            rows["tables"].append((CATALOG_SCHEMA, qualified, "table", None,
                                   f"{info.title} ({info.rows:,} rows)", index))
            for number, f in enumerate(info.schema):
                datatype, arraysize = datatype_of(f.type)
                position = f.name in (info.ra_column, info.dec_column)
                ucd = _meta(f, b"ucd") or {
                    info.id_column: "meta.id;meta.main", info.ra_column: "pos.eq.ra;meta.main",
                    info.dec_column: "pos.eq.dec;meta.main"}.get(f.name)
                rows["columns"].append((
                    qualified, adql_name(f.name), None, ucd, _meta(f, b"unit") or None,
                    _meta(f, b"description") or None, datatype, arraysize, None, None,
                    int(position or f.name == info.id_column), int(position), 0, number))
        for index, (table, columns) in enumerate(TAP_SCHEMA_TABLES.items()):
            rows["tables"].append(("TAP_SCHEMA", f"TAP_SCHEMA.{table}", "table", None,
                                   f"TAP_SCHEMA {table}", 100 + index))
            for number, (column, datatype, arraysize, description) in enumerate(columns):
                rows["columns"].append((f"TAP_SCHEMA.{table}", adql_name(column), None, None,
                                        None, description, datatype, arraysize, None, None,
                                        1, 0, 1, number))
        for key, source, target, pairs in TAP_SCHEMA_KEYS:
            rows["keys"].append((key, f"TAP_SCHEMA.{source}", f"TAP_SCHEMA.{target}", None,
                                 f"TAP_SCHEMA.{source} refers to TAP_SCHEMA.{target}"))
            rows["key_columns"] += [(key, a, b) for a, b in pairs]
        return rows

    def query(self, sql: str, limit: int) -> tuple[pa.Table, bool]:
        """The rows of a TAP_SCHEMA query (SQLite SQL), at most ``limit``; and whether
        there were more."""
        try:
            cursor = self._db.execute(sql)
        except sqlite3.Error as error:
            raise TapError(f"cannot answer this TAP_SCHEMA query: {error}") from None
        names = [d[0] for d in cursor.description]
        rows = cursor.fetchmany(limit + 1)
        overflow = len(rows) > limit
        rows = rows[:limit]
        columns = list(zip(*rows, strict=True)) if rows else [[] for _ in names]
        declared = {c[0]: c[1] for table in TAP_SCHEMA_TABLES.values() for c in table}
        arrays = [_column_array(values, declared.get(name))
                  for name, values in zip(names, columns, strict=True)]
        return pa.Table.from_arrays(arrays, names=names), overflow

    def tableset(self) -> bytes:
        """The VOSI tables document."""
        lines = ['<?xml version="1.0" encoding="UTF-8"?>',
                 '<vosi:tableset xmlns:vosi="http://www.ivoa.net/xml/VOSITables/v1.0" '
                 'xmlns:vs="http://www.ivoa.net/xml/VODataService/v1.1" '
                 'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">']
        tables = self._db.execute("SELECT schema_name, table_name, description FROM "
                                  "tap_schema_tables ORDER BY table_index").fetchall()
        for schema in (CATALOG_SCHEMA, "TAP_SCHEMA"):
            lines.append(f"<schema><name>{escape(schema)}</name>")
            for schema_name, table, description in tables:
                if schema_name != schema:
                    continue
                lines.append(f'<table type="table"><name>{escape(table)}</name>'
                             f"<description>{escape(description or '')}</description>")
                for name, ucd, unit, text, datatype, arraysize, indexed in self._db.execute(
                        "SELECT column_name, ucd, unit, description, datatype, arraysize, "
                        "indexed FROM tap_schema_columns WHERE table_name = ? ORDER BY "
                        "column_index", (table,)):
                    size = f' arraysize="{arraysize}"' if arraysize else ""
                    lines.append(
                        f"<column><name>{escape(name)}</name>"
                        + (f"<description>{escape(text)}</description>" if text else "")
                        + (f"<unit>{escape(unit)}</unit>" if unit else "")
                        + (f"<ucd>{escape(ucd)}</ucd>" if ucd else "")
                        + f'<dataType xsi:type="vs:VOTableType"{size}>{datatype}</dataType>'
                        + ("<flag>indexed</flag>" if indexed else "") + "</column>")
                for key, target in self._db.execute(
                        "SELECT key_id, target_table FROM tap_schema_keys WHERE from_table = ?",
                        (table,)).fetchall():
                    pairs = self._db.execute("SELECT from_column, target_column FROM "
                                             "tap_schema_key_columns WHERE key_id = ?", (key,))
                    lines.append(f"<foreignKey><targetTable>{escape(target)}</targetTable>"
                                 + "".join(f"<fkColumn><fromColumn>{escape(a)}</fromColumn>"
                                           f"<targetColumn>{escape(b)}</targetColumn>"
                                           "</fkColumn>" for a, b in pairs) + "</foreignKey>")
                lines.append("</table>")
            lines.append("</schema>")
        lines.append("</vosi:tableset>")
        return "\n".join(lines).encode()


def _column_array(values, declared: str | None) -> pa.Array:
    """A result column of a TAP_SCHEMA query: of its declared type when it is one of
    TAP_SCHEMA's columns (all null or no rows included), else of its values' type."""
    present = [v for v in values if v is not None]
    if declared == "int" or (declared is None and present
                             and all(isinstance(v, int) for v in present)):
        return pa.array(values, pa.int32())
    if declared is None and present and all(isinstance(v, (int, float)) for v in present):
        return pa.array(values, pa.float64())
    return pa.array([None if v is None else str(v) for v in values], pa.string())


def capabilities(base: str, maxrec: int, upload_rows: int) -> bytes:
    """The VOSI capabilities of the TAP service at ``base`` (TAPRegExt)."""
    tap = escape(base)
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<vosi:capabilities xmlns:vosi="http://www.ivoa.net/xml/VOSICapabilities/v1.0"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
    xmlns:vs="http://www.ivoa.net/xml/VODataService/v1.1"
    xmlns:tr="http://www.ivoa.net/xml/TAPRegExt/v1.0">
  <capability standardID="ivo://ivoa.net/std/TAP" xsi:type="tr:TableAccess">
    <interface xsi:type="vs:ParamHTTP" role="std" version="1.1">
      <accessURL use="base">{tap}</accessURL>
    </interface>
    <language>
      <name>ADQL</name>
      <version ivo-id="ivo://ivoa.net/std/ADQL#v2.0">2.0</version>
      <version ivo-id="ivo://ivoa.net/std/ADQL#v2.1">2.1</version>
      <description>ADQL answered by the xmatch kernels: one catalog with a CONTAINS or
        DISTANCE constraint, or an upload joined to a catalog by one</description>
      <languageFeatures type="ivo://ivoa.net/std/TAPRegExt#features-adqlgeo">
        <feature><form>POINT</form></feature>
        <feature><form>CIRCLE</form></feature>
        <feature><form>POLYGON</form></feature>
        <feature><form>CONTAINS</form></feature>
        <feature><form>INTERSECTS</form></feature>
        <feature><form>DISTANCE</form></feature>
      </languageFeatures>
    </language>
    <outputFormat ivo-id="ivo://ivoa.net/std/TAPRegExt#output-votable-td">
      <mime>application/x-votable+xml</mime><alias>votable</alias>
    </outputFormat>
    <outputFormat><mime>text/csv</mime><alias>csv</alias></outputFormat>
    <outputFormat><mime>application/fits</mime><alias>fits</alias></outputFormat>
    <uploadMethod ivo-id="ivo://ivoa.net/std/TAPRegExt#upload-inline"/>
    <outputLimit>
      <default unit="row">{maxrec}</default><hard unit="row">{maxrec}</hard>
    </outputLimit>
    <uploadLimit><hard unit="row">{upload_rows}</hard></uploadLimit>
  </capability>
  <capability standardID="ivo://ivoa.net/std/VOSI#capabilities">
    <interface xsi:type="vs:ParamHTTP">
      <accessURL use="full">{tap}/capabilities</accessURL>
    </interface>
  </capability>
  <capability standardID="ivo://ivoa.net/std/VOSI#availability">
    <interface xsi:type="vs:ParamHTTP">
      <accessURL use="full">{tap}/availability</accessURL>
    </interface>
  </capability>
  <capability standardID="ivo://ivoa.net/std/VOSI#tables-1.1">
    <interface xsi:type="vs:ParamHTTP" version="1.1">
      <accessURL use="full">{tap}/tables</accessURL>
    </interface>
  </capability>
</vosi:capabilities>
""".encode()


def availability(available: bool, note: str) -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<vosi:availability '
            f'xmlns:vosi="http://www.ivoa.net/xml/VOSIAvailability/v1.0">'
            f"<vosi:available>{'true' if available else 'false'}</vosi:available>"
            f"<vosi:note>{escape(note)}</vosi:note></vosi:availability>\n").encode()
