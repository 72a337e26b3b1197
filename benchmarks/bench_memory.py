"""Memory benchmark: what a shard holds per row of a positions-only catalog, and sizing.

Positions-only catalogs (``objID``, ``raMean``, ``decMean``; the store adds ``_healpix_29``)
made with the synthetic PS1 generator are loaded into the store once (cached under
``benchmarks/_work/``), then each size is served the way ``xmatch cluster shard`` does,
``ServedCatalog.from_catalog``, in a fresh process of its own:

* resident memory (psutil) before and after, and ``ServedCatalog.memory_bytes()`` split into
  index overhead (everything beyond the payload columns: order-29 pixels, unit vectors, cell
  table, row permutation) and payload (the Arrow columns served);
* start-up time: open the catalog and build the index (numba kernels already compiled, as
  on any start after the first: their code is cached on disk);
* the peer a user would otherwise hold in memory for the same positions, in the same run:
  astropy ``SkyCoord`` plus the KD-tree ``match_coordinates_sky`` builds and caches on it
  (resident memory growth, and the bytes of its arrays), and the ratio to ours;
* a Gaia-DR3-like catalog (the columns a user would serve, proper motions held), the same
  way;
* whether unit vectors pay for the 24 bytes a row they would cost: the same searches with
  positions read in place and with unit vectors held, answers checked equal.

Then the measured bytes per row are extrapolated to Gaia DR3 (1.8 B rows) and PS1 DR2
MeanObject (2.9 B rows): hosts of 24 GiB, memory, start-up time (see ``docs/sizing.md``).
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

HERE = Path(__file__).resolve().parent
SEED = 42
CHUNK_ROWS = 1_000_000
COLUMNS = ("objID", "raMean", "decMean")  # id, ra, dec: a positions-only catalog
THRESHOLD_ROWS = 1_000_000
HIGHEST_ORDER = 10


# ---------------------------------------------------------------- catalogs


def _write_part(path: str, n_total: int, first_chunk: int, n_chunks: int) -> None:
    import pyarrow.parquet as pq

    from xmatch.loaders import ps1

    writer = None
    for index in range(first_chunk, first_chunk + n_chunks):
        rows = min(CHUNK_ROWS, n_total - index * CHUNK_ROWS)
        table = ps1.synthetic_chunk(n_total, index, rows, SEED).select(list(COLUMNS))
        if writer is None:
            writer = pq.ParquetWriter(path + ".tmp", table.schema)
        writer.write_table(table, row_group_size=CHUNK_ROWS)
    writer.close()
    os.replace(path + ".tmp", path)


def positions_catalog(work: Path, n_rows: int, workers: int = 2):
    """The positions-only synthetic PS1 catalog of ``n_rows`` rows in ``work/catalogs``
    (made once: its Parquet input and the catalog are reused when present)."""
    from xmatch import LoadOptions, bundled_spec, load_catalog, open_catalog

    data = work / "catalogs"
    name = f"ps1_positions_{n_rows}"
    if (data / name).exists():
        return open_catalog(name, data)
    directory = work / f"ps1_positions_{n_rows}"
    directory.mkdir(parents=True, exist_ok=True)
    n_chunks = -(-n_rows // CHUNK_ROWS)
    per_file = 10
    jobs, paths = [], []
    for part, first in enumerate(range(0, n_chunks, per_file)):
        path = directory / f"part-{part:04d}.parquet"
        paths.append(str(path))
        if not path.exists():
            jobs.append((str(path), n_rows, first, min(per_file, n_chunks - first)))
    started = time.perf_counter()
    if jobs:
        with ProcessPoolExecutor(workers) as pool:
            list(pool.map(_write_part, *zip(*jobs, strict=True)))
    spec = bundled_spec("ps1_dr2").with_overrides(
        name=name, keep=COLUMNS, key=(), threshold_rows=THRESHOLD_ROWS,
        highest_order=HIGHEST_ORDER)
    catalog = load_catalog(spec=spec, sources=paths, data=data,
                           options=LoadOptions(workers=workers, progress=False))
    print(f"  made {name}: {n_rows:,} rows ({time.perf_counter() - started:.0f} s)",
          flush=True)
    return catalog


def gaia_like_catalog(work: Path, n_rows: int, workers: int = 2):
    """A Gaia-DR3-like catalog of ``n_rows`` rows with the payload a user would serve
    (source_id, ra, dec, pmra, pmdec, parallax, phot_g_mean_mag; proper motions at
    J2016.0, null for 19 % of rows as for Gaia DR3's two-parameter sources), on the
    synthetic PS1 positions (made once)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from xmatch import CatalogSpec, LoadOptions, load_catalog, open_catalog

    data = work / "catalogs"
    name = f"gaia_like_{n_rows}"
    if (data / name).exists():
        return open_catalog(name, data)
    started = time.perf_counter()
    positions = positions_catalog(work, n_rows, workers)
    directory = work / name
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    paths = []
    for number, partition in enumerate(positions.partitions):
        piece = positions.read_partition(partition, list(COLUMNS))
        n = piece.num_rows
        missing = rng.random(n) < GAIA_TWO_PARAMETER_FRACTION

        def nullable(values, missing=missing):
            return pa.array(values, mask=missing)

        table = pa.table({
            "source_id": piece["objID"], "ra": piece["raMean"], "dec": piece["decMean"],
            "pmra": nullable(rng.normal(0, 6, n)), "pmdec": nullable(rng.normal(-3, 6, n)),
            "parallax": nullable(rng.exponential(0.7, n)),
            "phot_g_mean_mag": pa.array(rng.uniform(12, 21, n).astype(np.float32))})
        path = directory / f"part-{number:05d}.parquet"
        pq.write_table(table, path)
        paths.append(str(path))
    spec = CatalogSpec(name=name, id="source_id", ra="ra", dec="dec", epoch_jyear=2016.0,
                       pmra="pmra", pmdec="pmdec", parallax="parallax",
                       threshold_rows=THRESHOLD_ROWS, highest_order=HIGHEST_ORDER,
                       synthetic=True)
    catalog = load_catalog(spec=spec, sources=paths, data=data,
                           options=LoadOptions(workers=workers, progress=False))
    print(f"  made {name}: {n_rows:,} rows ({time.perf_counter() - started:.0f} s)",
          flush=True)
    return catalog


#: Gaia DR3: 1,811,709,771 sources, 1,467,744,818 of them with parallaxes and proper
#: motions (Gaia Collaboration, Vallenari et al. 2023, A&A 674, A1).
GAIA_DR3_ROWS = 1_811_709_771
GAIA_TWO_PARAMETER_FRACTION = 1 - 1_467_744_818 / 1_811_709_771
#: PS1 DR2 MeanObject: ~2.9 B objects (the figure the memory issue gives; not checked
#: here). ObjectThin, every object including those seen only on stacks, has 10,723,304,629
#: rows (Gaia archive documentation, section 14.4.4, panstarrs1_original_valid).
PS1_DR2_MEAN_OBJECT_ROWS = 2_900_000_000
PS1_DR2_OBJECT_THIN_ROWS = 10_723_304_629
#: Five float32 PSF magnitudes (g, r, i, z, y), nullable: what a user adds to positions.
PS1_PSF_MAG_BYTES = 5 * 4 + 5 / 8

HOST_GIB = 24
STEADY_FRACTION = 0.75  # of a host's memory for the shard at rest: the rest for queries,
#                         the OS and its page cache (Parquet files read at start-up)
PEAK_FRACTION = 0.90    # of a host's memory the start-up peak may reach


# ---------------------------------------------------------------- measurements (children)


def _rss() -> int:
    import psutil

    return psutil.Process().memory_info().rss


def _peak_rss() -> int:
    """VmHWM: this process's peak resident memory since the last reset."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def _reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")  # Linux: VmHWM starts again from now


def _release() -> None:
    import pyarrow as pa

    gc.collect()
    pa.default_memory_pool().release_unused()


def _breakdown(index) -> dict:
    """Bytes of each array the index holds, and whether it is a view of a payload column
    (then it costs nothing beyond the payload)."""
    import numpy as np

    out = {}
    payload = {name: index.table.column(name).chunks for name in index.table.column_names}
    arrays = {"h29": index.h29, "ra_deg": index.ra_deg, "dec_deg": index.dec_deg,
              "xyz": index.xyz, "cell_start": index.cell_start,
              "permutation": index.permutation}
    if index.motion is not None:
        arrays.update(motion_vectors=index.motion.vectors, motion_epoch0=index.motion.epoch0)
    for name, array in arrays.items():
        if array is None:
            continue
        view_of = [column for column, chunks in payload.items()
                   if any(np.shares_memory(array, chunk.to_numpy(zero_copy_only=False))
                          for chunk in chunks if chunk.null_count == 0
                          and chunk.type.bit_width == 8 * array.itemsize)]
        out[name] = {"bytes": int(array.nbytes), "dtype": str(array.dtype),
                     "view_of_payload": view_of[0] if view_of else None}
    return out


def measure_shard(data: str, name: str, returned: list, conn) -> None:
    """Child process: serve catalog ``name`` as ``xmatch cluster shard`` does and report
    what it holds."""
    started = time.perf_counter()
    import numpy as np

    from xmatch import open_catalog
    from xmatch.index.sky_index import held_bytes
    from xmatch.service.catalogs import ServedCatalog

    imports_s = time.perf_counter() - started
    catalog = open_catalog(name, data)
    started = time.perf_counter()  # first use: the rest of the imports, cached kernels
    warm = ServedCatalog.from_catalog(catalog, {"": catalog.partitions[:1]})
    warm.index.cone_search(10.0, 10.0, 5.0)
    warm.index.crossmatch(np.array([10.0, 20.0]), np.array([10.0, 20.0]), radius_arcsec=1.0)
    first_use_s = time.perf_counter() - started
    del warm
    _release()
    rss_before = _rss()
    _reset_peak()
    started = time.perf_counter()
    catalog = open_catalog(name, data)
    served = ServedCatalog.from_catalog(catalog)
    startup_s = time.perf_counter() - started
    rss_after = _rss()
    peak = _peak_rss()
    index = served.index
    rng = np.random.default_rng(SEED)
    q_ra, q_dec = rng.uniform(0, 360, 100_000), rng.uniform(-30, 90, 100_000)
    index.crossmatch(q_ra, q_dec, radius_arcsec=1.0)  # the shard answers
    _release()
    n = len(index)
    memory = served.memory_bytes()
    payload = index.payload_bytes()
    conn.send({
        "catalog": name, "rows": n, "imports_s": imports_s, "first_use_s": first_use_s,
        "startup_s": startup_s, "rss_base_bytes": rss_before,
        "rss_growth_bytes": rss_after - rss_before, "peak_growth_bytes": peak - rss_before,
        "rss_after_queries_growth_bytes": _rss() - rss_before,
        "memory_bytes": memory, "payload_bytes": payload,
        "returned_payload_bytes": held_bytes([index.table.select(returned)]),
        "payload_columns": {c: held_bytes([index.table.column(c)])
                            for c in index.table.column_names},
        "arrays": _breakdown(index), "cell_order": index.cell_order})


def measure_astropy(data: str, name: str, conn) -> None:
    """Child process: the peer. The same positions (and ids) as an astropy ``SkyCoord``
    with the KD-tree ``match_coordinates_sky`` builds and caches on it."""
    import numpy as np
    from astropy.coordinates import SkyCoord, match_coordinates_sky

    from xmatch import open_catalog

    catalog = open_catalog(name, data)
    spec = catalog.spec
    tiny = SkyCoord([1.0, 2.0], [3.0, 4.0], unit="deg")
    match_coordinates_sky(tiny[:1], tiny)  # imports, scipy
    _release()
    rss_before = _rss()
    _reset_peak()
    started = time.perf_counter()
    table = catalog.read([spec.id, spec.ra, spec.dec])
    ids = np.ascontiguousarray(table[spec.id].to_numpy())
    ra, dec = table[spec.ra].to_numpy(), table[spec.dec].to_numpy()
    del table
    coords = SkyCoord(ra, dec, unit="deg", copy=True)
    del ra, dec
    _release()
    match_coordinates_sky(coords[:1], coords)  # builds the KD-tree and caches it on coords
    startup_s = time.perf_counter() - started
    _release()
    rss_after = _rss()
    tree = coords.cache["kdtree_sky"]
    held = ids.nbytes + sum(getattr(coords.data, c).nbytes for c in ("lon", "lat")) + \
        tree.data.nbytes + tree.indices.nbytes
    conn.send({"rows": len(ids), "startup_s": startup_s,
               "rss_growth_bytes": rss_after - rss_before,
               "peak_growth_bytes": _peak_rss() - rss_before,
               "arrays_bytes": held, "tree_nodes": int(tree.size)})


def in_child(target, *args) -> dict:
    """Run one measurement in a fresh process (its memory is its own)."""
    parent, child = get_context("spawn").Pipe()
    process = get_context("spawn").Process(target=target, args=(*args, child))
    process.start()
    while not parent.poll(1):
        if not process.is_alive():
            raise RuntimeError(f"the measuring process died (exit code {process.exitcode}): "
                               "see its traceback above, or out of memory")
    result = parent.recv()
    process.join()
    return result


def measure_speed(data: str, name: str, repeat: int, conn) -> None:
    """Child process: do unit vectors pay for the 24 bytes a row they cost? The same
    searches on the index as built (positions read in place, a row's unit vector computed
    when it is tested) and on a copy holding unit vectors (the layout before), interleaved,
    best of ``repeat`` (wall time, one numba thread); every answer checked equal."""
    from dataclasses import replace

    import numba
    import numpy as np

    from xmatch import SkyIndex, open_catalog

    numba.set_num_threads(1)
    index = SkyIndex.from_catalog(open_catalog(name, data))
    held = replace(index, xyz=index.vectors(np.arange(len(index))), ra_deg=None,
                   dec_deg=None, _empty_results={})
    rng = np.random.default_rng(SEED)
    ra = index.table[COLUMNS[1]].to_numpy()
    dec = index.table[COLUMNS[2]].to_numpy()
    near = rng.choice(len(ra), 500_000, replace=False)
    jitter = rng.normal(0, 0.3 / 3600, (2, len(near)))
    q_ra = np.concatenate([(ra[near] + jitter[0] / np.cos(np.radians(dec[near]))) % 360,
                           rng.uniform(0, 360, 500_000)])
    q_dec = np.concatenate([np.clip(dec[near] + jitter[1], -90, 90),
                            np.degrees(np.arcsin(rng.uniform(-0.5, 1, 500_000)))])
    cases = {
        "crossmatch nearest 1\" x 1 M": lambda ix: ix.crossmatch(q_ra, q_dec, radius_arcsec=1),
        "crossmatch k=5 5\" x 200 k": lambda ix: ix.crossmatch(
            q_ra[:200_000], q_dec[:200_000], radius_arcsec=5, mode="k", k=5),
        "cones 5\" x 200 k (batch)": lambda ix: ix.crossmatch(
            q_ra[:200_000], q_dec[:200_000], radius_arcsec=5, mode="all"),
        "cones 1' x 20 k (batch)": lambda ix: ix.crossmatch(
            q_ra[:20_000], q_dec[:20_000], radius_arcsec=60, mode="all"),
        "cones 1 deg x 100 (batch)": lambda ix: ix.crossmatch(
            q_ra[:100], q_dec[:100], radius_arcsec=3600, mode="all"),
        "cone_search 5\" x 2,000 calls": lambda ix: [
            ix.cone_search(q_ra[i], q_dec[i], 5.0) for i in range(2000)],
        "polygon 4 x 4 deg x 20 calls": lambda ix: [
            ix.polygon_search([10, 14, 14, 10], [10, 10, 14, 14]) for _ in range(20)],
    }
    best = {}
    for case, call in cases.items():
        ours, theirs = call(index), call(held)
        ours = ours if isinstance(ours, list) else [ours]
        theirs = theirs if isinstance(theirs, list) else [theirs]
        if not all(a.equals(b) for a, b in zip(ours, theirs, strict=True)):
            raise AssertionError(f"{case}: positions in place and unit vectors differ")
    for _ in range(repeat):
        for case, call in cases.items():
            for label, which in (("in_place", index), ("unit_vectors", held)):
                started = time.perf_counter()
                call(which)
                elapsed = time.perf_counter() - started
                best[case, label] = min(best.get((case, label), math.inf), elapsed)
    conn.send({"rows": len(index), "repeat": repeat,
               "cases": {case: {"in_place_s": best[case, "in_place"],
                                "unit_vectors_s": best[case, "unit_vectors"]}
                         for case in cases}})


# ---------------------------------------------------------------- sizing


def per_row(line: dict) -> dict:
    n = line["rows"]
    returned = line["returned_payload_bytes"] / n
    return {"rows": n, "memory": line["memory_bytes"] / n, "payload": line["payload_bytes"] / n,
            "returned_payload": returned,
            "index_overhead": line["memory_bytes"] / n - returned,
            "rss": line["rss_growth_bytes"] / n, "peak": line["peak_growth_bytes"] / n,
            "startup_s_per_row": line["startup_s"] / n}


def linear_model(lines: list[dict]) -> dict:
    """Per-row cost and fixed cost of a shard, from the two largest positions-only sizes
    (their difference cancels what does not grow with rows: the catalog's description,
    allocator arenas); from one size, everything is counted per row."""
    ordered = sorted(lines, key=lambda x: x["rows"])
    b = ordered[-1]
    a = ordered[-2] if len(ordered) > 1 else None
    model = {"from_rows": [x["rows"] for x in ([a] if a else []) + [b]]}
    for key in ("rss_growth_bytes", "peak_growth_bytes", "startup_s"):
        if a is None:
            slope, fixed = b[key] / b["rows"], 0.0
        else:
            slope = (b[key] - a[key]) / (b["rows"] - a["rows"])
            fixed = max(b[key] - slope * b["rows"], 0.0)
        model[key] = {"per_row": slope, "fixed": fixed}
    model["base_bytes"] = b["rss_base_bytes"]  # the process before it reads the catalog
    model["ready_s"] = b["imports_s"] + b["first_use_s"]  # imports, cached kernels
    return model


def size(rows: int, rss_row: float, peak_row: float, model: dict,
         startup_row: float) -> dict:
    """Hosts of HOST_GIB for ``rows`` rows of ``rss_row`` bytes at rest and ``peak_row``
    bytes while starting, one shard process per host."""
    host = HOST_GIB * 2**30
    rest = model["base_bytes"] + model["rss_growth_bytes"]["fixed"]
    peak = model["base_bytes"] + model["peak_growth_bytes"]["fixed"]
    per_host = int(min((STEADY_FRACTION * host - rest) / rss_row,
                       (PEAK_FRACTION * host - peak) / peak_row))
    hosts = math.ceil(rows / per_host)
    rows_per_host = math.ceil(rows / hosts)
    return {"rows": rows, "hosts": hosts, "rows_per_host": rows_per_host,
            "memory_per_host_gib": (rest + rows_per_host * rss_row) / 2**30,
            "peak_per_host_gib": (peak + rows_per_host * peak_row) / 2**30,
            "total_memory_gib": hosts * (rest + rows_per_host * rss_row) / 2**30,
            "startup_s": model["ready_s"] + model["startup_s"]["fixed"]
            + rows_per_host * startup_row}


def sizing(lines: list[dict], gaia: dict | None) -> tuple[dict, list[dict]]:
    """The extrapolated table: PS1 DR2 from the positions-only measurements, Gaia DR3
    from the Gaia-like one less the fixed costs the positions-only sizes show."""
    model = linear_model(lines)
    rss, peak, startup = (model[k]["per_row"] for k in
                          ("rss_growth_bytes", "peak_growth_bytes", "startup_s"))
    out = []
    for label, rows, extra in (
            ("PS1 DR2 MeanObject, positions only (objID, raMean, decMean)",
             PS1_DR2_MEAN_OBJECT_ROWS, 0.0),
            ("PS1 DR2 MeanObject, positions + grizy PSF magnitudes",
             PS1_DR2_MEAN_OBJECT_ROWS, PS1_PSF_MAG_BYTES),
            ("PS1 DR2 ObjectThin (every object), positions only",
             PS1_DR2_OBJECT_THIN_ROWS, 0.0)):
        out.append({"catalog": label, "bytes_per_row": rss + extra,
                    **size(rows, rss + extra, peak + extra, model, startup)})
    if gaia is not None:
        n = gaia["rows"]
        per_row_of = {k: max(gaia[k] - model[k]["fixed"], 0.0) / n
                      for k in ("rss_growth_bytes", "peak_growth_bytes", "startup_s")}
        out.append({"catalog": "Gaia DR3 (source_id, ra, dec, pmra, pmdec, parallax, "
                               "phot_g_mean_mag; proper motions held)",
                    "bytes_per_row": per_row_of["rss_growth_bytes"],
                    **size(GAIA_DR3_ROWS, per_row_of["rss_growth_bytes"],
                           per_row_of["peak_growth_bytes"], model,
                           per_row_of["startup_s"])})
    return model, out


# ---------------------------------------------------------------- report


def report(lines: list[dict], gaia: dict | None, peers: list[dict], model: dict,
           table: list[dict], speed: dict | None):
    print(f"\n{'catalog':<28}{'rows':>13}{'index B/row':>13}{'payload B/row':>15}"
          f"{'memory_bytes':>14}{'RSS B/row':>11}{'peak B/row':>12}{'start-up s':>12}")
    for line in [*lines, *([gaia] if gaia else [])]:
        p = per_row(line)
        print(f"{line['catalog']:<28}{p['rows']:>13,}{p['index_overhead']:>13.1f}"
              f"{p['returned_payload']:>15.1f}{p['memory']:>14.1f}{p['rss']:>11.1f}"
              f"{p['peak']:>12.1f}{line['startup_s']:>12.2f}")
    for line in [*lines, *([gaia] if gaia else [])]:
        arrays = ", ".join(f"{k} {v['bytes'] / line['rows']:.2f}"
                           + (f" (view of {v['view_of_payload']})" if v["view_of_payload"]
                              else "") for k, v in line["arrays"].items())
        print(f"  {line['catalog']}: {arrays}; payload columns "
              + ", ".join(f"{k} {v / line['rows']:.2f}"
                          for k, v in line["payload_columns"].items()))
    for peer in peers:
        ours = next(x for x in lines if x["rows"] == peer["rows"])
        ratio = peer["rss_growth_bytes"] / ours["rss_growth_bytes"]
        print(f"\nastropy SkyCoord + KD-tree, {peer['rows']:,} rows (ids, positions, tree): "
              f"{peer['rss_growth_bytes'] / peer['rows']:.1f} B/row resident "
              f"({peer['arrays_bytes'] / peer['rows']:.1f} B/row in its arrays), peak "
              f"{peer['peak_growth_bytes'] / peer['rows']:.1f} B/row, ready in "
              f"{peer['startup_s']:.1f} s; xmatch {ours['rss_growth_bytes'] / ours['rows']:.1f}"
              f" B/row, ready in {ours['startup_s']:.1f} s: astropy holds {ratio:.2f} x more")
    if speed is not None:
        print(f"\npositions read in place vs unit vectors held, {speed['rows']:,} rows, one "
              f"thread, best of {speed['repeat']}; every answer equal:")
        for case, times in speed["cases"].items():
            print(f"  {case:<32}{times['in_place_s']:>9.4f} s{times['unit_vectors_s']:>9.4f} s"
                  f"   in place / held {times['in_place_s'] / times['unit_vectors_s']:.2f}")
    print(f"\nper-row model from {' and '.join(f'{n:,}' for n in model['from_rows'])} rows: "
          f"{model['rss_growth_bytes']['per_row']:.1f} B/row resident + "
          f"{model['rss_growth_bytes']['fixed'] / 2**20:.0f} MiB, start-up peak "
          f"{model['peak_growth_bytes']['per_row']:.1f} B/row + "
          f"{model['peak_growth_bytes']['fixed'] / 2**20:.0f} MiB, open + index "
          f"{model['startup_s']['per_row'] * 1e9:.1f} s per 1e9 rows + "
          f"{model['startup_s']['fixed']:.1f} s; process before the catalog "
          f"{model['base_bytes'] / 2**20:.0f} MiB, imports and kernels {model['ready_s']:.1f} s")
    print(f"\nsizing on {HOST_GIB} GiB hosts ({STEADY_FRACTION:.0%} for the shard at rest, "
          f"start-up peak under {PEAK_FRACTION:.0%}), one shard process per host:")
    print(f"  {'catalog':<100}{'rows':>15}{'B/row':>8}{'hosts':>7}{'GiB/host':>10}"
          f"{'peak GiB':>10}{'start-up s':>12}")
    for line in table:
        print(f"  {line['catalog']:<100}{line['rows']:>15,}{line['bytes_per_row']:>8.1f}"
              f"{line['hosts']:>7}{line['memory_per_host_gib']:>10.1f}"
              f"{line['peak_per_host_gib']:>10.1f}{line['startup_s']:>12.0f}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000],
                        help="positions-only catalog sizes (default 1 M and 10 M: a few "
                             "minutes; add 100000000 for the sizing run, ~10 min the first "
                             "time)")
    parser.add_argument("--gaia-rows", type=int, default=10_000_000,
                        help="Gaia-like catalog size (0: skip)")
    parser.add_argument("--peer-rows", type=int, nargs="*", default=None,
                        help="sizes at which astropy is measured too (default: the sizes up "
                             "to 10 M)")
    parser.add_argument("--speed-rows", type=int, default=10_000_000,
                        help="size at which positions in place and unit vectors held are "
                             "timed (0: skip)")
    parser.add_argument("--speed-repeat", type=int, default=7)
    parser.add_argument("--work-dir", type=Path, default=HERE / "_work")
    parser.add_argument("--json", type=Path, help="append results as JSON lines here")
    args = parser.parse_args(argv)
    data = str(args.work_dir / "catalogs")
    peer_rows = ([n for n in args.rows if n <= 10_000_000] if args.peer_rows is None
                 else args.peer_rows)
    lines, peers = [], []
    for n in sorted(set(args.rows) | set(peer_rows)):
        catalog = positions_catalog(args.work_dir, n)
        if n in args.rows:
            lines.append(in_child(measure_shard, data, catalog.name, list(COLUMNS)))
            print(f"  {catalog.name}: {json.dumps(per_row(lines[-1]))}", flush=True)
        if n in peer_rows:
            peers.append(in_child(measure_astropy, data, catalog.name))
    gaia = None
    if args.gaia_rows:
        catalog = gaia_like_catalog(args.work_dir, args.gaia_rows)
        gaia = in_child(measure_shard, data, catalog.name,
                        ["source_id", "ra", "dec", "pmra", "pmdec", "parallax",
                         "phot_g_mean_mag"])
    speed = None
    if args.speed_rows:
        catalog = positions_catalog(args.work_dir, args.speed_rows)
        speed = in_child(measure_speed, data, catalog.name, args.speed_repeat)
    model, table = sizing(lines, gaia)
    report(lines, gaia, peers, model, table, speed)
    if args.json:
        with open(args.json, "a") as handle:
            for line in [*lines, *([gaia] if gaia else [])]:
                handle.write(json.dumps({"benchmark": "memory", "method": "xmatch_shard",
                                         **line, "per_row": per_row(line)}) + "\n")
            for peer in peers:
                handle.write(json.dumps({"benchmark": "memory",
                                         "method": "astropy_skycoord_kdtree", **peer}) + "\n")
            if speed is not None:
                handle.write(json.dumps({"benchmark": "memory", "method": "speed", **speed})
                             + "\n")
            handle.write(json.dumps({"benchmark": "memory", "method": "model", **model})
                         + "\n")
            for line in table:
                handle.write(json.dumps({"benchmark": "memory", "method": "sizing",
                                         "host_gib": HOST_GIB, **line}) + "\n")
    return lines, gaia, peers, model, table, speed


if __name__ == "__main__":
    main()
