"""Around every call of every service: its request id, access control, metrics and log line,
and the one abort path (:func:`xmatch.service.codec.abort`).

Servicers stay thin: they raise, and never build statuses, check tokens or time themselves.
"""

from __future__ import annotations

import asyncio
import time

import grpc

from xmatch.service.codec import abort, status_of
from xmatch.service.observe import REQUEST_ID, REQUEST_ID_KEY, Observer, new_request_id
from xmatch.service.security import OPEN_SERVICES, Access, check_rows


def _catalog_of(message) -> str:
    """The catalog a request names (a stream: its options), for the metrics' label."""
    kind = message.WhichOneof("item") if hasattr(message, "options") else None
    if kind == "options":
        options = message.options
        return getattr(options, "catalog", "") or "+".join(sorted(getattr(options, "catalogs",
                                                                           ())))
    if type(message).__name__ == "DescribeCatalogRequest":
        return message.name
    return getattr(message, "catalog", "")


def _rows_of(answer) -> int:
    """The rows of one answer message, as limits and metrics count them."""
    for field in ("rows", "matches", "alerts"):
        value = getattr(answer, field, None)
        if value is not None:
            return int(value)
    return 0


class _Call:
    """One call's bookkeeping: who, what, how it ended."""

    __slots__ = ("allowance", "catalog", "code", "metadata", "method", "peer", "request_id",
                 "rows", "started")

    def __init__(self, method: str, context):
        self.metadata = metadata = context.invocation_metadata()
        # Read now: a context may not be touched once its call is cancelled.
        self.peer = context.peer()
        self.method = method
        self.started = time.perf_counter()
        self.request_id = ""
        for key, value in metadata or ():
            if key == REQUEST_ID_KEY:
                self.request_id = value[:64]
                break
        self.request_id = self.request_id or new_request_id()
        self.catalog = ""
        self.code = "OK"
        self.rows = 0
        self.allowance = None


class CallInterceptor(grpc.aio.ServerInterceptor):
    """Request ids, access (``access``: a :class:`~xmatch.service.security.Access`, or None
    for a server without tokens), metrics and logs (``observer``), and every failure turned
    into its status."""

    def __init__(self, observer: Observer, access: Access | None = None):
        self.observer = observer
        self.access = access

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        full = handler_call_details.method
        method = full.rsplit("/", 1)[-1]
        gated = self.access is not None and not full.startswith(OPEN_SERVICES)
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._unary(handler.unary_unary, method, gated), handler.request_deserializer,
                handler.response_serializer)
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._streaming(handler.unary_stream, method, gated, False),
                handler.request_deserializer, handler.response_serializer)
        if handler.stream_unary is not None:
            return grpc.stream_unary_rpc_method_handler(
                self._unary(handler.stream_unary, method, gated), handler.request_deserializer,
                handler.response_serializer)
        return grpc.stream_stream_rpc_method_handler(
            self._streaming(handler.stream_stream, method, gated, True),
            handler.request_deserializer, handler.response_serializer)

    def _begin(self, call: _Call, gated: bool):
        self.observer.began(call.method)
        if gated:
            call.allowance = self.access.admit(call.method, call.metadata)

    def _end(self, call: _Call) -> None:
        if call.allowance is not None:
            self.access.release(call.allowance, call.method)
        self.observer.ended(call.method, call.catalog, call.code,
                            time.perf_counter() - call.started, call.rows, call.peer,
                            call.allowance.entry.name if call.allowance else "",
                            call.request_id)

    async def _failed(self, call: _Call, context, error: BaseException) -> None:
        call.code = status_of(error).name
        await abort(context, error, call.method, call.request_id)

    def _unary(self, behaviour, method: str, gated: bool):
        async def answer(request, context):
            call = _Call(method, context)
            reset = REQUEST_ID.set(call.request_id)
            try:
                if not hasattr(request, "__aiter__"):
                    call.catalog = _catalog_of(request)
                self._begin(call, gated)
                result = await behaviour(request, context)
                call.rows = _rows_of(result)
                check_rows(call.allowance, call.rows, f"this {method} answer")
                return result
            except grpc.aio.AbortError:
                call.code = _aborted_code(context)
                raise
            except asyncio.CancelledError:
                call.code = "CANCELLED"
                raise
            except Exception as error:  # noqa: BLE001 (every failure becomes a status)
                await self._failed(call, context, error)
            finally:
                self._end(call)
                REQUEST_ID.reset(reset)

        return answer

    def _streaming(self, behaviour, method: str, gated: bool, streamed_requests: bool):
        # A region search's rows count as one answer across its batches; a cross-match or
        # annotation stream answers each batch on its own.
        cumulative = method == "RegionSearch"

        async def answer(request, context):
            call = _Call(method, context)
            reset = REQUEST_ID.set(call.request_id)
            try:
                if streamed_requests:
                    request = _labelled(request, call)
                else:
                    call.catalog = _catalog_of(request)
                self._begin(call, gated)
                async for item in behaviour(request, context):
                    rows = _rows_of(item)
                    call.rows += rows
                    check_rows(call.allowance, call.rows if cumulative else rows,
                               f"this {method} answer")
                    yield item
            except grpc.aio.AbortError:
                call.code = _aborted_code(context)
                raise
            except asyncio.CancelledError:
                call.code = "CANCELLED"
                raise
            except Exception as error:  # noqa: BLE001 (every failure becomes a status)
                await self._failed(call, context, error)
            finally:
                self._end(call)
                REQUEST_ID.reset(reset)

        return answer


async def _labelled(requests, call: _Call):
    """The request stream, noting the catalog of its first message (the options)."""
    first = True
    async for message in requests:
        if first:
            call.catalog = _catalog_of(message)
            first = False
        yield message


def _aborted_code(context) -> str:
    code = context.code() if hasattr(context, "code") else None
    return code.name if isinstance(code, grpc.StatusCode) else "UNKNOWN"
