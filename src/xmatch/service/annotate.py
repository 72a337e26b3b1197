"""The server side of the ``Annotate`` RPC, shared by the embedded server, the shard servers
and the router: the stream's options (catalogs, radii, schemas), and each batch of alerts
decoded, matched with every catalog (``sso``: with the nightly cache of each alert's site
and night) and turned into the annotation table (:mod:`xmatch.alerts.annotation`).
"""

from __future__ import annotations

import asyncio
import functools

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from xmatch.alerts.annotation import (
    SSO_CATALOG,
    SSO_KEY_COLUMNS,
    SURVEY_OBSERVATORIES,
    Target,
    annotation_table,
)
from xmatch.alerts.avro import Schemas
from xmatch.alerts.fields import compact_alerts, decode
from xmatch.errors import CatalogNotFoundError, InputError
from xmatch.history.store import HISTORY_CATALOGS
from xmatch.index.results import QUERY_COLUMN
from xmatch.service.codec import ipc_to_table, table_to_ipc
from xmatch.store.paths import ROW_ID_COLUMN
from xmatch.timescales import MJD_RANGE, jyear_of_tai_mjd, tdb_mjd
from xmatch.v1 import xmatch_pb2


class AnnotateService:
    """Annotation over a server's ``_catalog``, ``_crossmatch_options`` and
    ``_match_table`` (mixed into :class:`xmatch.service.server.Boundary`)."""

    def _annotate_options(self, options) -> dict:
        # By default every sky catalog, less the history's own (alerts are not their own
        # counterparts; ask for them by name).
        names = list(options.catalogs) or sorted(
            name for name, c in self.catalogs.items()
            if c.night is None and name not in HISTORY_CATALOGS) + (
            [SSO_CATALOG] if self._night_caches() else [])
        if len(set(names)) != len(names):
            raise InputError(f"catalogs {names} name a catalog twice")
        unknown = sorted(set(options.radius_arcsec) - set(names))
        if unknown:
            raise InputError(f"radius_arcsec names {', '.join(unknown)}, which "
                             f"{'is' if len(unknown) == 1 else 'are'} not among the catalogs "
                             f"asked for ({', '.join(names)})")
        if options.observatory.strip() and SSO_CATALOG not in names:
            raise InputError("observatory is the site of alerts for the sso catalog, which "
                             "is not among the catalogs asked for")
        targets, matching = [], []
        for name in names:
            if name == SSO_CATALOG:
                target, match = self._sso_target(options)
                targets.append(target)
                matching.append(match)
                continue
            served = self._catalog(name)
            radius = options.radius_arcsec.get(name) or served.summary.default_radius_arcsec
            self.limits.radius(float(radius), f"{name}: ")
            description = served.description
            target = Target(name, float(radius), description.id_column or ROW_ID_COLUMN,
                            list(description.key_columns))
            targets.append(target)
            match = self._crossmatch_options(xmatch_pb2.CrossmatchOptions(
                catalog=name, radius_arcsec=radius, mode=xmatch_pb2.MATCH_MODE_ALL,
                columns=target.columns))
            match["coverage"] = coverage_of(description.coverage_moc)
            matching.append(match)
        if (options.history or options.watches) and self.memory is None:
            raise InputError("this server keeps no alert history or watches; start it with "
                             "--history (xmatch serve --history) to record alerts and "
                             "match watches")
        if options.history and self.memory.history is None:
            raise InputError("this server keeps watches but no alert history; start it with "
                             "--history to record alerts")
        return {"targets": targets, "matching": matching, "all_matches": options.all_matches,
                "schemas": Schemas(dict(options.avro_schemas)), "context": options.context,
                "history": options.history, "watches": options.watches}

    async def _annotate_batch(self, options: dict, batch, context) -> xmatch_pb2.AnnotateResponse:
        # Batches are answered a few at a time, but reach the alert history in the order
        # they came: each waits for the one before (set up before the first await).
        previous = options.get("memory_turn")
        turn = options["memory_turn"] = asyncio.get_running_loop().create_future()
        try:
            return await self._annotate_batch_in_turn(options, batch, context, previous)
        finally:
            turn.set_result(None)

    async def _annotate_batch_in_turn(self, options: dict, batch, context, previous
                                      ) -> xmatch_pb2.AnnotateResponse:
        kind = batch.WhichOneof("alerts")
        if kind == "packets":
            packets = list(batch.packets.packets)
            self.limits.count(len(packets), "alerts")
            # Avro decoding is Python work: off the event loop, which keeps serving.
            alerts = await asyncio.to_thread(decode, packets, options["schemas"])
        elif kind == "compact_ipc":
            try:
                table = ipc_to_table(batch.compact_ipc)
            except (pa.ArrowInvalid, OSError) as error:
                raise InputError(f"batch {batch.batch_id}: compact_ipc is not an Arrow IPC "
                                 f"stream: {error}") from None
            try:
                alerts = compact_alerts(table)
            except InputError as error:
                raise InputError(f"batch {batch.batch_id}: compact_ipc: {error}") from None
            self.limits.count(alerts.num_rows, "alerts")
        else:
            alerts = compact_alerts(pa.table({"ra_deg": pa.array([], pa.float64()),
                                              "dec_deg": pa.array([], pa.float64())}))
        usable = pc.is_null(alerts.column("error"))
        found = alerts.filter(usable)
        ra = found.column("ra_deg").to_numpy()
        dec = found.column("dec_deg").to_numpy()
        times = found.column("mjd_tai")
        epoch = (jyear_of_tai_mjd(times.to_numpy(zero_copy_only=False))
                 if found.num_rows and times.null_count == 0 else None)

        async def catalog_table(match):
            """A catalog's left join, and why it could not answer each alert (None: it
            answered them all)."""
            if match.get("sites"):
                return await self._sso_table(match, batch.batch_id, found, context)
            return await self._match_table(match, batch.batch_id, ra, dec, match["radius"],
                                           epoch, context), None

        async def no_context():
            return None

        async def remembered():
            if not (options["history"] or options["watches"]):
                return None, None
            if previous is not None:
                await previous
            # In arrival order: one batch at a time reaches the history (its own lock).
            return await asyncio.to_thread(self.memory.annotate, alerts,
                                           history=options["history"],
                                           watches=options["watches"])

        context_of = (self._context_columns(ra, dec, times.to_numpy(zero_copy_only=False))
                      if options["context"] else no_context())
        results, context_columns, (history, watch_hits) = await asyncio.gather(
            asyncio.gather(*(catalog_table(m) for m in options["matching"])), context_of,
            remembered())
        failures = {target.name: reasons for target, (_, reasons) in
                    zip(options["targets"], results, strict=True) if reasons is not None}
        outside = {target.name: ~match["coverage"].contains(ra, dec)
                   for target, match in zip(options["targets"], options["matching"],
                                            strict=True) if match.get("coverage")}
        layers = [(layer.name, layer.kind, layer.catalog)
                  for layer in self.context_engine.config.layers] if options["context"] else None
        table = annotation_table(alerts, options["targets"], [t for t, _ in results],
                                 options["all_matches"], failures, outside, context_columns,
                                 layers, history, watch_hits)
        if self.observer is not None:  # a falling share of "matched" shows on a dashboard
            self.observer.annotation_states(table, [t.name for t in options["targets"]])
        return xmatch_pb2.AnnotateResponse(
            batch_id=batch.batch_id, arrow_ipc=table_to_ipc(table), alerts=alerts.num_rows,
            errors=alerts.num_rows - found.num_rows)

    def _sso_target(self, options) -> tuple[Target, dict]:
        """The ``sso`` catalog of an annotation: each alert is matched with the nightly cache
        of its site whose night holds the alert's time."""
        from xmatch.sso.observers import observatory

        caches = self._night_caches()
        if not caches:
            raise CatalogNotFoundError(
                "no solar-system ephemeris cache is served here, so alerts cannot be annotated "
                "with sso; build one per night and site with `xmatch sso build --orbits FILE "
                "--night DATE --observatory CODE`")
        radius = options.radius_arcsec.get(SSO_CATALOG) or max(
            self.catalogs[name].summary.default_radius_arcsec for name in caches)
        self.limits.radius(float(radius), f"{SSO_CATALOG}: ")
        sites = dict(SURVEY_OBSERVATORIES)
        if options.observatory.strip():
            sites[None] = observatory(options.observatory).code
        target = Target(SSO_CATALOG, float(radius), "designation", list(SSO_KEY_COLUMNS))
        return target, {"radius": float(radius), "sites": sites, "columns": target.columns}

    async def _sso_table(self, match: dict, batch_id: int, alerts: pa.Table, context
                         ) -> tuple[pa.Table, np.ndarray | None]:
        """The ``sso`` left join of usable alerts, and why a cache could not answer an alert
        (it needs a known site, a time, and a cache of that site for its night)."""
        n = alerts.num_rows
        survey = alerts.column("survey")
        site = np.full(n, match["sites"].get(None, ""), dtype=object)
        for name, code in match["sites"].items():
            if name is not None:
                site[pc.fill_null(pc.equal(survey, name), False).to_numpy(
                    zero_copy_only=False)] = code
        mjd_tai = alerts.column("mjd_tai").to_numpy(zero_copy_only=False).astype(np.float64)
        timed = (mjd_tai >= MJD_RANGE[0]) & (mjd_tai <= MJD_RANGE[1])  # NaN (no time): False
        t_tdb = np.full(n, np.nan)
        if timed.any():
            t_tdb[timed] = tdb_mjd(mjd_tai[timed], "tai")
        ra = alerts.column("ra_deg").to_numpy(zero_copy_only=False)
        dec = alerts.column("dec_deg").to_numpy(zero_copy_only=False)
        answered = np.zeros(n, bool)
        groups = []  # (cache, the alerts it answers)
        for name in self._night_caches():
            night = self.catalogs[name].night
            rows = np.flatnonzero((site == night.observatory) & timed & ~answered
                                  & (t_tdb >= night.start_tdb) & (t_tdb <= night.end_tdb))
            answered[rows] = True
            if len(rows):
                groups.append((name, rows))
        # No alert in any cache: one cache answers an empty join, for the columns.
        pieces = []
        for name, rows in groups or [(self._night_caches()[0], np.empty(0, np.int64))]:
            options = self._crossmatch_options(xmatch_pb2.CrossmatchOptions(
                catalog=name, radius_arcsec=match["radius"], mode=xmatch_pb2.MATCH_MODE_ALL,
                columns=match["columns"], time_scale="tdb"))
            table = await self._match_table(options, batch_id, ra[rows], dec[rows],
                                            match["radius"], None, context, t_tdb=t_tdb[rows])
            query = pa.array(rows[table.column(QUERY_COLUMN).to_numpy()], pa.int64())
            pieces.append(table.set_column(0, QUERY_COLUMN, query))
        reasons = None
        if not answered.all():
            reasons = np.full(n, None, dtype=object)
            for row in np.flatnonzero(~answered):
                # Rounded to ~1 minute: one message per site and minute (nights change
                # at day time, when no alert is taken).
                reasons[row] = no_cache_reason(site[row], round(float(t_tdb[row]), 3)
                                               if timed[row] else None)
        return pa.concat_tables(pieces), reasons


@functools.lru_cache(maxsize=1024)
def no_cache_reason(site: str, t_tdb: float | None) -> str:
    """Why ``sso`` cannot answer an alert: no site, no time, or no cache of its night."""
    from xmatch.sso.nightly import default_night_convention, night_date
    from xmatch.sso.observers import observatory

    if not site:
        return ("the alert's survey has no known site for sso; give its MPC observatory "
                "code (the observatory option, --observatory)")
    if t_tdb is None:
        return "the alert has no usable time, which sso needs"
    night = night_date(t_tdb, observatory(site), default_night_convention(site))
    return (f"no solar-system ephemeris cache is served for the night {night} at {site}; "
            f"build it with `xmatch sso build --night {night} --observatory {site}`")


@functools.lru_cache(maxsize=64)
def coverage_of(moc_ascii: str):
    """A catalog's coverage MOC as a region (None for a catalog without one)."""
    from xmatch.sky.regions import Moc

    return Moc.of(moc_ascii, name="coverage") if moc_ascii else None
