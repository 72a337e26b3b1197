"""The Virtual Observatory face over HTTP: Simple Cone Search 1.1 per catalog, TAP 1.1
(synchronous, ADQL, inline uploads, TAP_SCHEMA, VOSI) and catalog coverage MOCs, answered
by the process's own gRPC server (embedded or router) through :class:`Backend`, so that
tokens, permissions, limits and metrics are those of the gRPC face.

Endpoints (``PREFIX`` is empty):

* ``/scs/CATALOG?RA=..&DEC=..&SR=..[&VERB=1|2|3]`` Simple Cone Search;
* ``/tap`` with ``/sync``, ``/capabilities``, ``/availability``, ``/tables``;
* ``/moc/CATALOG?order=N&format=fits|ascii|json`` the cells holding the catalog's rows;
* ``/`` a plain-text index of the above.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

import grpc
import pyarrow as pa

from xmatch.errors import InputError
from xmatch.index.results import rows_found
from xmatch.io.tables import described
from xmatch.service.observe import REQUEST_ID_KEY, new_request_id
from xmatch.vo.adql import CatalogQuery, SchemaQuery, TapError, UploadJoin, plan
from xmatch.vo.backend import Backend, BackendError
from xmatch.vo.tap import run
from xmatch.vo.tap_schema import Metadata, availability, capabilities
from xmatch.vo.votable import error_votable, votable_bytes

log = logging.getLogger("xmatch.http")

VOTABLE_TYPE = "application/x-votable+xml"
#: RESPONSEFORMAT / FORMAT values -> output format (TAP 1.1 §2.7.1, DALI §3.1.6).
FORMATS = {"votable": "votable", "application/x-votable+xml": "votable", "text/xml": "votable",
           "application/x-votable+xml;serialization=tabledata": "votable",
           "csv": "csv", "text/csv": "csv", "text/csv;header=present": "csv",
           "fits": "fits", "application/fits": "fits"}
CONTENT_TYPES = {"votable": VOTABLE_TYPE, "csv": "text/csv;header=present",
                 "fits": "application/fits"}
#: HTTP statuses of the gRPC codes the backend answers with (DALI: errors are VOTable
#: documents with an HTTP error status; 401 lets a client ask for credentials).
HTTP_STATUS = {grpc.StatusCode.INVALID_ARGUMENT: 400, grpc.StatusCode.NOT_FOUND: 404,
               grpc.StatusCode.FAILED_PRECONDITION: 400, grpc.StatusCode.OUT_OF_RANGE: 400,
               grpc.StatusCode.UNAUTHENTICATED: 401, grpc.StatusCode.PERMISSION_DENIED: 403,
               grpc.StatusCode.RESOURCE_EXHAUSTED: 429, grpc.StatusCode.UNAVAILABLE: 503,
               grpc.StatusCode.DEADLINE_EXCEEDED: 504}
SCS_PARAMETERS = {"RA", "DEC", "SR", "VERB", "RESPONSEFORMAT", "MAXREC", "RUNID"}
TAP_PARAMETERS = {"REQUEST", "LANG", "QUERY", "MAXREC", "FORMAT", "RESPONSEFORMAT", "UPLOAD",
                  "RUNID", "VERSION"}
MOC_PARAMETERS = {"ORDER", "FORMAT"}


@dataclass(frozen=True)
class FaceLimits:
    """What one HTTP request may ask for."""

    maxrec: int = 1_000_000          # rows of one answer (TAP's hard and default MAXREC)
    upload_rows: int = 1_000_000     # rows of one uploaded table
    body_bytes: int = 64 * 2**20     # one request body (uploads)


class VoError(Exception):
    """A request refused: the HTTP status and the one-line message of the error document."""

    def __init__(self, status: int, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


class VoFace:
    """The aiohttp application of the VO face, answering with ``backend``."""

    def __init__(self, backend: Backend, limits: FaceLimits = FaceLimits(), observer=None):
        self.backend, self.limits, self.observer = backend, limits, observer
        self._metadata: tuple[dict, Metadata] | None = None
        self._scs_schemas: dict[tuple, pa.Schema] = {}

    def application(self):
        from aiohttp import web

        app = web.Application(client_max_size=self.limits.body_bytes)
        app.router.add_get("/", self._answering("index", self._index))
        app.router.add_get("/scs/{catalog}", self._answering("scs", self._scs))
        for method in ("GET", "POST"):
            app.router.add_route(method, "/tap/sync", self._answering("tap_sync", self._sync))
        app.router.add_route("*", "/tap/async", self._answering("tap_async", self._async))
        app.router.add_get("/tap/capabilities", self._answering("capabilities",
                                                                self._capabilities))
        app.router.add_get("/tap/availability", self._answering("availability",
                                                                self._availability))
        app.router.add_get("/tap/tables", self._answering("tables", self._tables))
        app.router.add_get("/tap", self._answering("tap", self._tap_root))
        app.router.add_get("/moc/{catalog}", self._answering("moc", self._moc))
        return app

    # ------------------------------------------------------------------ plumbing

    def _answering(self, endpoint: str, handler):
        """``handler`` with the error documents, the request id and the metrics."""
        from aiohttp import web

        async def answer(request):
            started = time.perf_counter()
            request_id = new_request_id()
            metadata = [(REQUEST_ID_KEY, request_id)]
            authorization = request.headers.get("Authorization")
            if authorization:
                metadata.append(("authorization", authorization))
            try:
                body, content_type, headers = await handler(request, tuple(metadata))
                response = web.Response(body=body, content_type=None, headers=headers)
                response.headers["Content-Type"] = content_type
            except VoError as error:
                response = self._error(error.status, error.message, error.headers)
            except BackendError as error:
                status = HTTP_STATUS.get(error.code, 500)
                message = f"{error.code.name}: {error.detail}"
                headers = ({"WWW-Authenticate": 'Bearer realm="xmatch"'} if status == 401
                           else {})
                response = self._error(status, message, headers)
            except TapError as error:
                response = self._error(400, str(error))
            except InputError as error:
                response = self._error(400, str(error))
            except Exception:  # a bug: said as such, logged with its traceback
                log.exception("HTTP %s %s failed (request %s)", request.method,
                              request.path, request_id)
                response = self._error(500, f"internal error (request {request_id}); the "
                                       "server's log has the details")
            response.headers["X-Request-Id"] = request_id
            if self.observer is not None:
                self.observer.http_answered(endpoint, response.status,
                                            time.perf_counter() - started)
            return response

        return answer

    @staticmethod
    def _error(status: int, message: str, headers: dict | None = None):
        from aiohttp import web

        response = web.Response(status=status, body=error_votable(message), headers=headers)
        response.headers["Content-Type"] = VOTABLE_TYPE
        return response

    async def _catalogs(self, metadata) -> tuple[dict, Metadata]:
        catalogs = await self.backend.catalogs(metadata)
        if self._metadata is None or self._metadata[0] is not catalogs:
            self._metadata = (catalogs, Metadata(catalogs))
        return self._metadata

    # ------------------------------------------------------------------ index

    async def _index(self, request, metadata):
        catalogs, _ = await self._catalogs(metadata)
        base = _base(request)
        lines = ["xmatch: Virtual Observatory face", "",
                 f"TAP 1.1 (synchronous):  {base}/tap",
                 "Simple Cone Search 1.1 and coverage MOC of each catalog:"]
        for name in sorted(catalogs):
            lines.append(f"  {name:<20} {base}/scs/{name}?   {base}/moc/{name}")
        return ("\n".join(lines) + "\n").encode(), "text/plain; charset=utf-8", {}

    # ------------------------------------------------------------------ SCS

    async def _scs(self, request, metadata):
        from xmatch.sky.regions import Cone

        params = await _parameters(request)
        notices = _ignored(params, SCS_PARAMETERS, "Simple Cone Search")
        name = request.match_info["catalog"]
        catalogs, _ = await self._catalogs(metadata)
        if name not in catalogs:
            raise VoError(404, f"unknown catalog {name!r}; this service has "
                               f"{', '.join(sorted(catalogs))}")
        info = catalogs[name]
        ra = _number(params, "RA", 0.0, 360.0, "degrees in [0, 360]")
        dec = _number(params, "DEC", -90.0, 90.0, "degrees in [-90, 90]")
        sr = _number(params, "SR", 0.0, 180.0, "degrees > 0", exclusive_low=True)
        verb = params.get("VERB", "2")
        if verb not in ("1", "2", "3"):
            raise VoError(400, f"VERB={verb!r} is not allowed: 1 (identifier and position), "
                               "2 (the catalog's columns) or 3 (all, with position angle and "
                               "HEALPix index)")
        _votable_only(params)
        maxrec = _maxrec(params, self.limits.maxrec)
        columns = ([info.id_column, info.ra_column, info.dec_column] if verb == "1" else
                   [c for c in info.columns if c != "_healpix_29" or verb == "3"])
        table = await self.backend.cone(name, Cone.of(ra % 360.0, dec, sr * 3600.0), columns,
                                        maxrec or 1, metadata)
        found = rows_found(table)
        keep = [c for c in table.column_names
                if c in columns or (verb != "1" and c == "separation_arcsec")
                or (verb == "3" and c == "position_angle_deg")]
        table = table.select(keep).slice(0, maxrec)
        schema_key = (name, table.schema)
        schema = self._scs_schemas.get(schema_key)
        if schema is None:  # described once per catalog and columns: it costs 0.2 ms
            schema = self._scs_schemas[schema_key] = described(
                table.slice(0, 0), ra=info.ra_column, dec=info.dec_column,
                identifier=info.id_column).schema
        table = pa.Table.from_arrays(table.columns, schema=schema)
        return (votable_bytes(table, overflow=found > maxrec, name=name,
                              resource_infos=notices), VOTABLE_TYPE, {})

    # ------------------------------------------------------------------ TAP

    async def _tap_root(self, request, metadata):
        base = _base(request)
        text = (f"TAP 1.1 service: {base}/tap/sync (ADQL, synchronous), {base}/tap/tables, "
                f"{base}/tap/capabilities, {base}/tap/availability\n")
        return text.encode(), "text/plain; charset=utf-8", {}

    async def _capabilities(self, request, metadata):
        return (capabilities(f"{_base(request)}/tap", self.limits.maxrec,
                             self.limits.upload_rows), "text/xml", {})

    async def _availability(self, request, metadata):
        try:
            await self.backend.catalogs(metadata)
            up, note = True, "serving"
        except BackendError as error:
            up = error.code in (grpc.StatusCode.UNAUTHENTICATED,
                                grpc.StatusCode.PERMISSION_DENIED)
            note = "serving (the catalogs need a token)" if up else error.detail
        return availability(up, note), "text/xml", {}

    async def _tables(self, request, metadata):
        _, description = await self._catalogs(metadata)
        return description.tableset(), "text/xml", {}

    async def _async(self, request, metadata):
        raise VoError(404, "asynchronous TAP (UWS) is not offered by this service: send the "
                           "query to /tap/sync (TOPCAT: tick 'Synchronous'; pyvo: run_sync)")

    async def _sync(self, request, metadata):
        params, parts = await _form(request, self.limits.body_bytes)
        notices = _ignored(params, TAP_PARAMETERS, "TAP")
        if params.get("REQUEST", "doQuery").lower() != "doquery":
            raise VoError(400, f"REQUEST={params['REQUEST']!r} is not answered: use "
                               "REQUEST=doQuery")
        lang = params.get("LANG")
        if lang is None:
            raise VoError(400, "LANG is missing: give LANG=ADQL")
        if lang.upper() not in ("ADQL", "ADQL-2.0", "ADQL-2.1"):
            raise VoError(400, f"LANG={lang!r} is not answered: give LANG=ADQL")
        if "QUERY" not in params:
            raise VoError(400, "QUERY is missing: give an ADQL query")
        fmt = _format(params)
        maxrec = _maxrec(params, self.limits.maxrec)
        uploads = _uploads(params.get("UPLOAD"), parts, self.limits.upload_rows)
        catalogs, description = await self._catalogs(metadata)
        columns = {name: (info.columns, info.ra_column, info.dec_column)
                   for name, info in catalogs.items()}
        planned = plan(params["QUERY"], columns,
                       {name: list(t.column_names) for name, t in uploads.items()})
        if isinstance(planned, SchemaQuery):
            limit = maxrec if planned.top is None else min(planned.top, maxrec)
            table, overflow = description.query(planned.sql, limit)
            overflow = overflow and (planned.top is None or planned.top > maxrec)
        else:
            assert isinstance(planned, (CatalogQuery, UploadJoin))
            table, overflow = await run(planned, self.backend, catalogs, uploads, maxrec,
                                        metadata)
        headers = {"X-Xmatch-Ignored": notices[0][2]} if notices else {}
        return _encoded(table, fmt, overflow, notices), CONTENT_TYPES[fmt], headers

    # ------------------------------------------------------------------ MOC

    async def _moc(self, request, metadata):
        from xmatch.sky.moc import (
            COVERAGE_DEFAULT_ORDER,
            COVERAGE_ORDERS,
            MOC_CONTENT_TYPES,
            check_coverage_order,
            moc_bytes,
        )

        params = await _parameters(request)
        unknown = sorted(set(params) - MOC_PARAMETERS)
        if unknown:  # not a DAL protocol: its parameters are ours alone
            raise VoError(400, f"unknown coverage MOC parameter(s) {', '.join(unknown)}; "
                               "the parameters are order and format")
        name = request.match_info["catalog"]
        text = params.get("ORDER", str(COVERAGE_DEFAULT_ORDER))
        if not text.isdigit():
            raise VoError(400, f"order={text!r} is not allowed: {COVERAGE_ORDERS}")
        order = check_coverage_order(int(text))
        fmt = params.get("FORMAT", "fits").lower()
        if fmt not in MOC_CONTENT_TYPES:
            raise VoError(400, f"format={fmt!r} is not allowed: fits, ascii or json")
        moc = await self.backend.coverage(name, order, metadata)
        keywords = {"MOCTOOL": "xmatch", "MOCTYPE": "CATALOG", "MOCID": name} \
            if fmt == "fits" else None
        return moc_bytes(moc, fmt, keywords), MOC_CONTENT_TYPES[fmt], {}


# ---------------------------------------------------------------------- parameters


def _base(request) -> str:
    return f"{request.scheme}://{request.host}"


def _ignored(params: dict, allowed: set, what: str) -> list[tuple[str, str, str]]:
    """DALI 1.1 §3 has services ignore the parameters they do not know (clients may send
    their own): they are ignored, but said so, in an INFO of the answer and in the log."""
    unknown = sorted(set(params) - allowed)
    if not unknown:
        return []
    text = (f"{what} parameter(s) {', '.join(unknown)} not known to this service: ignored "
            f"(it knows {', '.join(sorted(allowed))})")
    log.info(text)
    return [("warning", "ignored parameters", text)]


async def _parameters(request) -> dict[str, str]:
    """The query parameters of a GET, names upper-cased (DALI: names are case-blind);
    repeated ones refused."""
    params: dict[str, str] = {}
    for key, value in request.query.items():
        name = key.upper()
        if name in params:
            raise VoError(400, f"{name} is given twice; give it once")
        params[name] = value
    return params


async def _form(request, body_bytes: int) -> tuple[dict[str, str], dict[str, bytes]]:
    """A TAP request's parameters (query string and form, names upper-cased) and its file
    parts (multipart/form-data, by part name)."""
    from aiohttp import web

    params: dict[str, str] = {}
    parts: dict[str, bytes] = {}

    def add(key: str, value: str) -> None:
        name = key.upper()
        if name in params:
            raise VoError(400, f"{name} is given twice; give it once")
        params[name] = value

    for key, value in request.query.items():
        add(key, value)
    if request.method == "POST":
        try:
            if request.content_type.startswith("multipart/"):
                reader = await request.multipart()
                while (part := await reader.next()) is not None:
                    data = await part.read()
                    if part.filename is not None:
                        parts[part.name] = bytes(data)
                    else:
                        add(part.name, bytes(data).decode("utf-8"))
            else:
                for key, value in (await request.post()).items():
                    if isinstance(value, str):
                        add(key, value)
                    else:
                        parts[key] = value.file.read()
        except web.HTTPRequestEntityTooLarge:
            raise VoError(413, f"the request is over this service's limit of "
                               f"{body_bytes:,} bytes") from None
        except UnicodeDecodeError:
            raise VoError(400, "a parameter of the request is not UTF-8 text") from None
    return params, parts


def _number(params: dict, name: str, low: float, high: float, allowed: str,
            exclusive_low: bool = False) -> float:
    text = params.get(name)
    if text is None:
        raise VoError(400, f"{name} is missing: give {name} in {allowed}")
    try:
        value = float(text)
    except ValueError:
        raise VoError(400, f"{name}={text!r} is not a number: give {allowed}") from None
    if not math.isfinite(value) or value < low or value > high or (
            exclusive_low and value == low):
        raise VoError(400, f"{name}={text} is not allowed: give {allowed}")
    return value


def _maxrec(params: dict, hard: int) -> int:
    text = params.get("MAXREC")
    if text is None:
        return hard
    if not text.isdigit():
        raise VoError(400, f"MAXREC={text!r} is not allowed: a whole number from 0 to {hard}")
    value = int(text)
    if value > hard:
        raise VoError(400, f"MAXREC={value} is over this service's limit of {hard} rows")
    return value


def _format(params: dict) -> str:
    given = [params[k] for k in ("RESPONSEFORMAT", "FORMAT") if k in params]
    if len(given) == 2 and given[0] != given[1]:
        raise VoError(400, "RESPONSEFORMAT and FORMAT disagree; give one")
    text = (given[0] if given else "votable").strip().lower().replace(" ", "")
    if text not in FORMATS:
        raise VoError(400, f"RESPONSEFORMAT={text!r} is not offered: votable, csv or fits")
    return FORMATS[text]


def _votable_only(params: dict) -> None:
    text = params.get("RESPONSEFORMAT", "votable").strip().lower()
    if FORMATS.get(text) != "votable":
        raise VoError(400, f"RESPONSEFORMAT={text!r} is not offered by Simple Cone Search: "
                           "votable")


def _uploads(spec: str | None, parts: dict[str, bytes], max_rows: int) -> dict:
    """The uploaded tables (lower-case name -> Arrow table) that ``UPLOAD`` names."""
    from xmatch.errors import LoadError
    from xmatch.vo.votable import read_votable

    if spec is None:
        if parts:
            raise VoError(400, f"the request carries file part(s) "
                               f"{', '.join(sorted(parts))} but no UPLOAD parameter names "
                               "them: give UPLOAD=name,param:part")
        return {}
    tables = {}
    for item in spec.split(";"):
        name, _, uri = item.partition(",")
        name, uri = name.strip(), uri.strip()
        if not name or not uri:
            raise VoError(400, f"UPLOAD={spec!r}: each upload is name,param:part (several "
                               "joined by ';')")
        if not uri.startswith("param:"):
            raise VoError(400, f"UPLOAD {name}: {uri!r} is not answered: only inline uploads "
                               "(param:part, the table sent in the request) are")
        part = uri[len("param:"):]
        if part not in parts:
            raise VoError(400, f"UPLOAD {name}: the request has no file part {part!r} "
                               f"(parts: {', '.join(sorted(parts)) or 'none'})")
        if name.lower() in tables:
            raise VoError(400, f"UPLOAD names {name!r} twice")
        try:
            table = read_votable(parts[part], f"UPLOAD {name}")
        except LoadError as error:
            raise VoError(400, str(error)) from None
        if table.num_rows > max_rows:
            raise VoError(400, f"UPLOAD {name} has {table.num_rows:,} rows, over this "
                               f"service's limit of {max_rows:,}")
        tables[name.lower()] = table
    return tables


def _encoded(table, fmt: str, overflow: bool, notices) -> bytes:
    from xmatch.io.tables import encoded

    if fmt == "votable":
        return votable_bytes(table, overflow=overflow, resource_infos=notices)
    return encoded(table, fmt)


# ---------------------------------------------------------------------- serving


class HttpFace:
    """The running face: an aiohttp site on ``host:port`` (TLS when ``tls`` has a
    certificate; client certificates required when it has a client CA)."""

    def __init__(self, backend: Backend, host: str, port: int, tls=None,
                 limits: FaceLimits = FaceLimits(), observer=None):
        self.face = VoFace(backend, limits, observer)
        self.host, self.port, self.tls = host, port, tls
        self._runner = None

    async def start(self) -> int:
        from aiohttp import web

        self._runner = web.AppRunner(self.face.application(), access_log=None,
                                     handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port,
                           ssl_context=ssl_context(self.tls) if self.tls else None,
                           reuse_address=False)
        try:
            await site.start()
        except OSError as error:
            await self._runner.cleanup()
            raise InputError(f"cannot serve HTTP on {self.host}:{self.port}: "
                             f"{error.strerror or error}; choose another --http port") from None
        self.port = site._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        await self.face.backend.close()


def ssl_context(tls):
    """The server TLS context of ``tls`` (its certificate and key; its client CA)."""
    import os
    import ssl
    import tempfile

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # load_cert_chain reads files only: the PEMs go through a private directory, at once
    # removed.
    with tempfile.TemporaryDirectory() as private:
        os.chmod(private, 0o700)
        cert, key = os.path.join(private, "cert.pem"), os.path.join(private, "key.pem")
        for path, data in ((cert, tls.cert), (key, tls.key)):
            with open(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600), "wb") as out:
                out.write(data)
        context.load_cert_chain(cert, key)
    if tls.client_ca:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cadata=tls.client_ca.decode())
    return context
