"""The server side of context (the ``Context`` RPC, and the ``context`` option of
``Annotate``), shared by the embedded server and the router: the server's context
configuration over its catalogs (:class:`xmatch.context.engine.ContextEngine`).

Context layers need their catalogs whole (a galaxy's ellipse or a star's halo may reach
far beyond its partition). The embedded server has them; a router reads the catalogs of
its layers from the store on first use (the layers' catalogs are the small ones: bright
stars, galaxies, variables, error regions); a shard server, which holds slices, answers
no context and says so.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pyarrow as pa

from xmatch.context.config import ContextConfig, read_context_config
from xmatch.context.engine import ContextCatalog, ContextEngine
from xmatch.errors import InputError
from xmatch.service.codec import table_to_ipc
from xmatch.timescales import MJD_RANGE, jyear_of_tai_mjd
from xmatch.v1 import xmatch_pb2

#: Prefix of the context columns of an annotation table.
CONTEXT_PREFIX = "context_"


class ContextService:
    """Context over a server's catalogs (mixed into :class:`xmatch.service.server.Boundary`,
    whose subclasses give ``_context_catalog``)."""

    context_config: ContextConfig | None = None
    _context_engine: ContextEngine | None = None

    def _context_catalog(self, name: str) -> ContextCatalog:
        raise NotImplementedError

    @property
    def context_engine(self) -> ContextEngine:
        if self._context_engine is None:
            self._context_engine = ContextEngine(self.context_config or read_context_config(),
                                                 self._context_catalog)
        return self._context_engine

    async def Context(self, request, context):
        ra = np.asarray(request.ra_deg, np.float64)
        dec = np.asarray(request.dec_deg, np.float64)
        if len(ra) != len(dec):
            raise InputError(f"{len(ra)} ra_deg but {len(dec)} dec_deg values; they must "
                             "pair up")
        self.limits.count(len(ra), "positions")
        epoch = context_epoch(np.asarray(request.mjd_tai, np.float64), len(ra))
        table = await asyncio.to_thread(self.context_engine.context, ra, dec, epoch)
        return xmatch_pb2.ContextResponse(arrow_ipc=table_to_ipc(table), positions=len(ra))

    async def _context_columns(self, ra, dec, mjd_tai) -> pa.Table:
        """The context of usable alerts, for the annotation (``context_`` columns)."""
        times = np.asarray(mjd_tai, np.float64)
        timed = times[np.isfinite(times)]
        epoch = float(jyear_of_tai_mjd(np.mean(timed))) if len(timed) else None
        table = await asyncio.to_thread(self.context_engine.context, ra, dec, epoch)
        return table.rename_columns([CONTEXT_PREFIX + name for name in table.column_names])


def context_epoch(mjd_tai: np.ndarray, n: int) -> float | None:
    """The epoch (Julian year) bright stars are moved to for a request: the mean of its
    times (stars move far less than a halo's width within a batch's span)."""
    if len(mjd_tai) == 0:
        return None
    if len(mjd_tai) not in (1, n):
        raise InputError(f"give one mjd_tai for all positions or one per position ({n}), not "
                         f"{len(mjd_tai)}")
    bad = ~((mjd_tai >= MJD_RANGE[0]) & (mjd_tai <= MJD_RANGE[1]))
    if bad.any():
        raise InputError(f"mjd_tai {mjd_tai[np.flatnonzero(bad)[0]]!r} is not a TAI MJD within "
                         f"{MJD_RANGE[0]:g}..{MJD_RANGE[1]:g}")
    return float(jyear_of_tai_mjd(float(np.mean(mjd_tai))))
