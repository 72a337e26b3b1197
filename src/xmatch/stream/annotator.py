"""The annotation step of a stream: compact alerts to an xmatch server (the embedded one
serving the data directory in process, a shard server or a router) and back."""

from __future__ import annotations

import pyarrow as pa

from xmatch.alerts.fields import ALERT_SCHEMA
from xmatch.service.client import Client


class ServerAnnotator:
    """``annotator(alerts) -> annotation table`` through the ``Annotate`` RPC of the server
    at ``address`` (``credentials``: the TLS and token it is called with). Failures are
    raised (:class:`~xmatch.errors.ServiceError`), never retried here: the stream decides
    (it backs off and retries the whole batch)."""

    def __init__(self, address: str, *, catalogs=None, radius_arcsec=None,
                 all_matches: bool = False, observatory: str | None = None,
                 context: bool = False, history: bool = False, watches: bool = False,
                 deadline: float = 30.0, credentials=None):
        self.client = Client(address, timeout=deadline,
                             tls=credentials.tls if credentials else None,
                             token=credentials.token if credentials else None)
        self.options = {"catalogs": catalogs, "radius_arcsec": radius_arcsec,
                        "all_matches": all_matches, "observatory": observatory,
                        "context": context, "history": history, "watches": watches}

    def __call__(self, alerts: pa.Table) -> pa.Table:
        batches = self.client.annotate(alerts, batch_size=max(alerts.num_rows, 1), retries=0,
                                       **self.options)
        return pa.concat_tables([batch.table for batch in batches])

    def check(self) -> None:
        """Annotate no alert: bad options (an unknown catalog, a radius for a catalog not
        asked for) are refused before the first alert is read."""
        empty = ALERT_SCHEMA.empty_table().select(["alert_id", "object_id", "survey", "ra_deg",
                                                   "dec_deg", "mjd_tai"])
        self(empty)

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> ServerAnnotator:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
