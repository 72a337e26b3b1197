"""Nightly ephemeris caches kept current for a running server: what ``xmatch stream`` does
with ``sso`` among its catalogs and ``--sso-orbits`` given.

For each site, the cache of the night in progress and of the next night are built ahead of
time from the orbit files (:func:`~xmatch.sso.nightly.build_night`, published atomically in
the data directory) and served as soon as they are built; caches of nights that ended more
than a day ago stop being served. An alert is matched with the cache whose night holds its
time, so the switch at the night boundary needs nothing more. A build that fails is logged
and tried again at the next check: an alert whose night has no cache gets the state
``failed`` naming the night, never "no match".
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import date, timedelta

import pyarrow as pa

from xmatch.sso.nightly import (
    build_night,
    cache_name,
    default_night_convention,
    is_night_cache,
    night_date,
    night_of,
)
from xmatch.sso.observers import observatory
from xmatch.timescales import tdb_mjd

log = logging.getLogger("xmatch.sso")

UNIX_EPOCH_MJD = 40587.0
CHECK_SECONDS = 600.0


class CacheKeeper:
    """Keeps tonight's and the next night's caches of ``sites`` built and served.

    Parameters
    ----------
    data : DataDirectory
        Where the caches are built (and found, if an earlier run built them).
    orbits : callable
        ``orbits() -> pyarrow.Table`` of every orbit (read again for each build, so an
        updated MPCORB file is taken up).
    sites : list of str
        MPC codes (ZTF: I41, Rubin: X05).
    serve : callable
        ``serve(added: {name: ServedCatalog}, removed: [name])``: what the server serves.
    clock : callable
        Seconds since 1970 (UTC); the tests move it.
    """

    def __init__(self, data, orbits: Callable[[], pa.Table], sites: list[str],
                 serve: Callable, clock: Callable[[], float] = time.time,
                 source: str = "orbits"):
        self.data = data
        self.orbits = orbits
        self.sites = [observatory(code).code for code in sites]
        self.serve = serve
        self.clock = clock
        self.source = source
        self.served: set[str] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def now_tdb(self) -> float:
        return float(tdb_mjd(self.clock() / 86400.0 + UNIX_EPOCH_MJD, "utc"))

    def wanted(self) -> list[tuple[str, str]]:
        """``(night, site)`` of the night in progress and the next, per site."""
        now_tdb = self.now_tdb()
        out = []
        for code in self.sites:
            tonight = night_date(now_tdb, observatory(code), default_night_convention(code))
            following = (date.fromisoformat(tonight) + timedelta(days=1)).isoformat()
            out += [(tonight, code), (following, code)]
        return out

    def check(self) -> None:
        """Build what is missing, serve it, and stop serving caches of nights long over."""
        from xmatch.service.catalogs import ServedCatalog
        from xmatch.store.catalog import open_catalog

        added = {}
        for night, code in self.wanted():
            name = cache_name(night, code)
            if name in self.served:
                continue
            if name not in self.data.names():
                started = time.perf_counter()
                try:
                    build_night(self.orbits(), night, code, data=self.data, source=self.source)
                except Exception:  # a build that fails is tried again at the next check
                    log.exception("building the ephemeris cache of %s at %s failed", night, code)
                    continue
                log.info("built the ephemeris cache of the night %s at %s in %.1f s", night,
                         code, time.perf_counter() - started)
            added[name] = ServedCatalog.from_catalog(open_catalog(name, self.data))
        now_tdb = self.now_tdb()
        removed = []
        for name in self.served:
            catalog = open_catalog(name, self.data)
            if is_night_cache(catalog) and night_of(catalog).end_tdb < now_tdb - 1.0:
                removed.append(name)
        if added or removed:
            self.serve(added, removed)
            self.served = (self.served | set(added)) - set(removed)
            log.info("serving ephemeris caches %s", ", ".join(sorted(self.served)))

    def start(self, every_seconds: float = CHECK_SECONDS) -> None:
        """Check now, then every ``every_seconds`` on a daemon thread until :meth:`stop`."""
        self.check()

        def loop():
            while not self._stop.wait(every_seconds):
                self.check()

        self._thread = threading.Thread(target=loop, name="xmatch-sso-keeper", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
