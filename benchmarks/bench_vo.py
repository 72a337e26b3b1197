"""Virtual Observatory face benchmark: Simple Cone Search latency and a TAP upload
cross-match through pyvo, against what a pyvo user does without an upload join, in one run.

One ``xmatch serve --http`` process serves the bundled Gaia DR3 subset (482,176 stars,
G < 10) on loopback, plain text, no tokens (``--max-radius 90deg`` so that the peer may
download a large region).

* 5" cones at Gaia stars over HTTP, one keep-alive connection, sequential: p50 and p99 of
  the raw Simple Cone Search request (send, receive the VOTable); the same cones through
  ``pyvo.dal.SCSService`` (with astropy parsing the VOTable), and through the gRPC
  ``Client.cone_search`` (Arrow), for scale.
* TAP upload cross-match: N positions (default 100,000) in a cap of 60 degrees, 70 % at
  Gaia stars (moved by up to 0.5"), 30 % anywhere in the cap, joined to ``gaia_dr3``
  within 1": ``pyvo.dal.TAPService.run_sync`` with the upload (a) as an astropy Table,
  which pyvo writes as a VOTable with astropy, and (b) as a VOTable written by xmatch's
  own writer; against the peer: (c) pyvo downloads the catalog's rows in the cap (TAP,
  ``CONTAINS``) and astropy joins them on the client (``search_around_sky``). The three
  give the same pairs (checked).

    python benchmarks/bench_vo.py [--positions 100000] [--cones 2000]
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CAP_CENTRE = (100.0, 10.0)
CAP_RADIUS_DEG = 60.0


def start_server(data: Path):
    """An ``xmatch serve`` process with its HTTP face; (process, gRPC address, HTTP base)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "xmatch", "serve", "--data", str(data), "--plaintext",
         "--port", "0", "--http", "0", "--max-radius", "90deg", "--max-batch", "1000000"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    grpc_address = http_base = None
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline and not (grpc_address and http_base):
        line = process.stdout.readline()
        if not line:
            raise RuntimeError("the server stopped before serving")
        print("  server:", line.rstrip(), flush=True)
        if m := re.search(r"on (\S+:\d+) \(", line):
            grpc_address = m.group(1)
        if m := re.search(r"at (https?://\S+)/$", line.strip()):
            http_base = m.group(1)
    return process, grpc_address, http_base


def percentiles(seconds: list[float]) -> dict:
    ms = np.asarray(seconds) * 1e3
    return {"p50_ms": round(float(np.percentile(ms, 50)), 3),
            "p99_ms": round(float(np.percentile(ms, 99)), 3), "calls": len(ms)}


def cones(grpc_address: str, http_base: str, stars, n: int) -> dict:
    import pyvo

    from xmatch import Client

    rng = np.random.default_rng(1)
    chosen = rng.choice(len(stars[0]), n, replace=False)
    positions = list(zip(stars[0][chosen].tolist(), stars[1][chosen].tolist(), strict=True))
    host, port = http_base.split("://")[1].split(":")
    connection = http.client.HTTPConnection(host, int(port))
    raw, rows = [], 0
    for ra, dec in positions:
        started = time.perf_counter()
        connection.request("GET", f"/scs/gaia_dr3?RA={ra!r}&DEC={dec!r}&SR={5 / 3600!r}")
        answer = connection.getresponse()
        body = answer.read()
        raw.append(time.perf_counter() - started)
        assert answer.status == 200
        rows += body.count(b"<TR>")
    service = pyvo.dal.SCSService(f"{http_base}/scs/gaia_dr3")
    with_pyvo = []
    for ra, dec in positions[: n // 4]:
        started = time.perf_counter()
        service.search(pos=(ra, dec), radius=5 / 3600).to_table()
        with_pyvo.append(time.perf_counter() - started)
    through_grpc = []
    with Client(grpc_address) as client:
        for ra, dec in positions:
            started = time.perf_counter()
            client.cone_search("gaia_dr3", ra, dec, 5.0, arrow=True)
            through_grpc.append(time.perf_counter() - started)
    return {"scs_http": percentiles(raw), "rows_per_cone": round(rows / n, 2),
            "scs_pyvo_astropy": percentiles(with_pyvo), "grpc_client": percentiles(through_grpc)}


def upload_positions(stars, n: int):
    """n positions in the cap: 70 % at Gaia stars (moved by < 0.5"), 30 % anywhere."""
    import astropy.units as u
    from astropy.coordinates import SkyCoord

    rng = np.random.default_rng(2)
    centre = SkyCoord(*CAP_CENTRE, unit="deg")
    in_cap = centre.separation(SkyCoord(stars[0], stars[1], unit="deg")).deg < CAP_RADIUS_DEG
    ra_in, dec_in = stars[0][in_cap], stars[1][in_cap]
    near = int(n * 0.7)
    picked = rng.choice(len(ra_in), near, replace=len(ra_in) < near)
    offset = rng.uniform(0, 0.5, near) / 3600.0
    angle = rng.uniform(0, 2 * np.pi, near)
    moved = SkyCoord(ra_in[picked], dec_in[picked], unit="deg").directional_offset_by(
        angle * u.rad, offset * u.deg)
    # anywhere in the cap: uniform on the sphere, kept when inside
    far_ra, far_dec = [], []
    while sum(len(a) for a in far_ra) < n - near:
        ra = rng.uniform(0, 360, 4 * n)
        dec = np.degrees(np.arcsin(rng.uniform(-1, 1, 4 * n)))
        inside = centre.separation(SkyCoord(ra, dec, unit="deg")).deg < CAP_RADIUS_DEG - 0.01
        far_ra.append(ra[inside])
        far_dec.append(dec[inside])
    ra = np.concatenate([moved.ra.deg, *far_ra])[:n]
    dec = np.concatenate([moved.dec.deg, *far_dec])[:n]
    return ra, dec


def tap_upload(http_base: str, stars, n: int) -> dict:
    import astropy.units as u
    import pyarrow as pa
    import pyvo
    from astropy.coordinates import SkyCoord, search_around_sky
    from astropy.table import Table

    from xmatch.vo.votable import votable_bytes

    ra, dec = upload_positions(stars, n)
    ids = np.arange(n, dtype=np.int64)
    service = pyvo.dal.TAPService(f"{http_base}/tap")
    query = ("SELECT u.id, g.source_id, DISTANCE(POINT('ICRS', u.ra, u.dec), "
             "POINT('ICRS', g.ra, g.dec)) AS d FROM TAP_UPLOAD.pos AS u JOIN "
             "xmatch.gaia_dr3 AS g ON 1 = CONTAINS(POINT('ICRS', g.ra, g.dec), "
             "CIRCLE('ICRS', u.ra, u.dec, 1/3600.0))")
    results = {"positions": n}

    started = time.perf_counter()
    table = service.run_sync(query, uploads={"pos": Table({"id": ids, "ra": ra, "dec": dec})}
                             ).to_table()
    results["a_pyvo_upload_astropy_table_s"] = round(time.perf_counter() - started, 3)
    pairs_a = set(zip(table["id"].tolist(), table["source_id"].tolist(), strict=True))

    started = time.perf_counter()
    document = votable_bytes(pa.table({"id": ids, "ra": ra, "dec": dec}))
    written = time.perf_counter() - started
    table = service.run_sync(query, uploads={"pos": io.BytesIO(document)}).to_table()
    results["b_pyvo_upload_xmatch_votable_s"] = round(time.perf_counter() - started, 3)
    results["b_of_which_writing_the_upload_s"] = round(written, 3)
    pairs_b = set(zip(table["id"].tolist(), table["source_id"].tolist(), strict=True))

    started = time.perf_counter()
    region = service.run_sync(
        f"SELECT source_id, ra, dec FROM xmatch.gaia_dr3 WHERE 1 = CONTAINS(POINT('ICRS', "
        f"ra, dec), CIRCLE('ICRS', {CAP_CENTRE[0]}, {CAP_CENTRE[1]}, "
        f"{CAP_RADIUS_DEG + 1 / 3600}))").to_table()
    downloaded = time.perf_counter() - started
    mine = SkyCoord(ra, dec, unit="deg")
    theirs = SkyCoord(np.asarray(region["ra"]), np.asarray(region["dec"]), unit="deg")
    left, right, _, _ = search_around_sky(mine, theirs, 1 * u.arcsec)
    results["c_peer_download_and_astropy_join_s"] = round(time.perf_counter() - started, 3)
    results["c_of_which_download_s"] = round(downloaded, 3)
    results["c_catalog_rows_downloaded"] = len(region)
    pairs_c = set(zip(ids[left].tolist(), np.asarray(region["source_id"])[right].tolist(),
                      strict=True))
    results["pairs"] = len(pairs_a)
    results["same_pairs"] = pairs_a == pairs_b == pairs_c
    results["ratio_peer_over_a"] = round(results["c_peer_download_and_astropy_join_s"]
                                         / results["a_pyvo_upload_astropy_table_s"], 2)
    results["ratio_peer_over_b"] = round(results["c_peer_download_and_astropy_join_s"]
                                         / results["b_pyvo_upload_xmatch_votable_s"], 2)
    return results


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--positions", type=int, default=100_000)
    parser.add_argument("--cones", type=int, default=2000)
    parser.add_argument("--data", help="data directory (default: a new one, with the "
                                       "bundled catalogs)")
    parser.add_argument("--json", help="append the results to this JSON-lines file")
    args = parser.parse_args(argv)

    from xmatch import DataDirectory, open_catalog

    with tempfile.TemporaryDirectory() as scratch:
        data = Path(args.data or scratch)
        process, grpc_address, http_base = start_server(data)
        try:
            gaia = open_catalog("gaia_dr3", DataDirectory(data)).read(columns=["ra", "dec"])
            stars = (gaia["ra"].to_numpy(), gaia["dec"].to_numpy())
            print("== Simple Cone Search, 5\" cones at Gaia stars ==", flush=True)
            cone_results = cones(grpc_address, http_base, stars, args.cones)
            print(json.dumps(cone_results, indent=1), flush=True)
            print(f"== TAP upload cross-match, {args.positions:,} positions within 1\" ==",
                  flush=True)
            upload_results = tap_upload(http_base, stars, args.positions)
            print(json.dumps(upload_results, indent=1), flush=True)
        finally:
            process.terminate()
            process.wait(60)
    if args.json:
        with open(args.json, "a") as out:
            out.write(json.dumps({"benchmark": "vo", "cones": cone_results,
                                  "tap_upload": upload_results}) + "\n")


if __name__ == "__main__":
    main()
