"""What crosses the wire, and how errors do: Arrow IPC for rows, and the one mapping between
xmatch's errors and gRPC status codes, both ways.

On a server, :func:`abort` (called by :class:`~xmatch.service.calls.CallInterceptor`) is
the one abort path: a request's
:class:`~xmatch.errors.XmatchError` is answered with its status and message; any other
exception is a bug, answered INTERNAL and logged with its traceback, and the server keeps
serving. On a client, :func:`client_error` turns a gRPC error into a
:class:`~xmatch.errors.ServiceError` carrying the code and the server's message (or, when no
server answers at the address, saying so).
"""

from __future__ import annotations

import logging

import grpc
import pyarrow as pa

from xmatch.errors import ServiceError, XmatchError

log = logging.getLogger("xmatch.service")


def table_to_ipc(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def ipc_to_table(data: bytes) -> pa.Table:
    return pa.ipc.open_stream(pa.py_buffer(data)).read_all()


def status_of(error: BaseException) -> grpc.StatusCode:
    """The status of an answer that failed with ``error``: its own for xmatch's errors,
    INTERNAL for anything else."""
    if isinstance(error, XmatchError):
        return getattr(grpc.StatusCode, error.status, grpc.StatusCode.INVALID_ARGUMENT)
    return grpc.StatusCode.INTERNAL


def details_of(error: BaseException) -> str:
    if isinstance(error, ServiceError):
        return error.details
    if isinstance(error, XmatchError):
        return str(error)
    return (f"internal error (a bug of the server; its log has the traceback): "
            f"{type(error).__name__}: {error}")


async def abort(context, error: BaseException, method: str = "", request_id: str = "") -> None:
    """End the call with the status and message of ``error`` (logging bugs, whose message
    names the request id the log line carries)."""
    code = status_of(error)
    details = details_of(error)
    if code is grpc.StatusCode.INTERNAL:
        log.error("internal error in %s", method or "a call", exc_info=error)
        if request_id:
            details = details.replace("its log has", f"its log, request id {request_id}, has")
    await context.abort(code, details)


#: What gRPC says when a channel cannot connect at all (as opposed to a router's
#: UNAVAILABLE, which names the partitions it could not reach).
_UNREACHABLE = ("failed to connect to all addresses", "dns resolution failed")


def client_error(error: grpc.RpcError, address: str) -> XmatchError:
    """The exception a client raises for a failed call to the server at ``address``."""
    code, details = error.code(), error.details() or ""
    lowered = details.lower()
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNKNOWN) and any(
            phrase in lowered for phrase in _UNREACHABLE):
        if any(phrase in lowered for phrase in ("certificate_verify_failed",
                                                "certificate verify failed",
                                                "hostname verification")):
            return ServiceError(code, f"the TLS certificate of {address} is not trusted: it "
                                      "is not signed by the CA given (--tls-ca, Tls(ca=...)), "
                                      f"or not issued for that host (gRPC says: {details})")
        if "handshake" in lowered or "ssl" in lowered or "socket closed" in lowered:
            return ServiceError(code, f"{address} closed the connection while it was being "
                                      "set up: the server may serve TLS (connect with "
                                      "--tls-ca or --tls), require a client certificate "
                                      "(--tls-cert, --tls-key) signed by its CA, or refuse an "
                                      f"expired one (gRPC says: {details})")
        return ServiceError(code, f"cannot reach an xmatch server at {address} (is it "
                                  f"running? gRPC says: {details})")
    if code is grpc.StatusCode.DEADLINE_EXCEEDED:
        return ServiceError(code, f"no answer from {address} within the client's timeout; "
                                  "raise it (Client(timeout=...)) for long requests")
    return ServiceError(code, details)


def ellipse_message(message, ellipse) -> None:
    """Fill an ``EllipseRegion`` message from a :class:`xmatch.sky.regions.Ellipse`."""
    message.ra_deg, message.dec_deg = ellipse.ra_deg, ellipse.dec_deg
    message.semi_major_arcsec = ellipse.semi_major_arcsec
    message.semi_minor_arcsec = ellipse.semi_minor_arcsec
    message.pa_deg = ellipse.pa_deg
