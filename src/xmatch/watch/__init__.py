"""Watches: what users ask the broker to look out for, checked against every alert.

:class:`Watchlist` (named positions, each with its own radius and optional name),
:class:`Watchmap` (a named region: a MOC, or the credible region of an LVK sky map) and
:class:`WatchStore` (the watches of a deployment, on disk, answered together by
:meth:`WatchStore.hits`).
"""

from __future__ import annotations

from xmatch.watch.lists import (
    ENTRY_COLUMN,
    MAX_WATCH_RADIUS_ARCSEC,
    Watchlist,
    check_watch_name,
)
from xmatch.watch.maps import Watchmap
from xmatch.watch.store import HITS_SCHEMA, WatchStore

__all__ = ["ENTRY_COLUMN", "HITS_SCHEMA", "MAX_WATCH_RADIUS_ARCSEC", "WatchStore", "Watchlist",
           "Watchmap", "check_watch_name"]
