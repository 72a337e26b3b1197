"""Catalog × catalog joins on a real Dask cluster (a scheduler and two worker processes
started here), against the in-memory cross-match, astropy and LSDB; a worker killed
mid-join; loads on the same cluster."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import warnings

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import random_sky_table
from xmatch import CatalogSpec, LoadOptions, crossmatch, load_catalog, open_catalog
from xmatch.cli import main as cli_main
from xmatch.errors import XmatchError
from xmatch.join import crossmatch_catalogs

#: One test process runs this module (``--dist loadgroup``): one Dask cluster, not two.
pytestmark = pytest.mark.xdist_group("dask")

RADIUS_ARCSEC = 2.0


# ---------------------------------------------------------------- a real Dask cluster


class DaskCluster:
    """``dask scheduler`` and two ``dask worker`` processes (each a nanny and its worker
    process, one thread) on loopback."""

    def __init__(self, root):
        self.scheduler_file = root / "scheduler.json"
        self.processes = [subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
             "--port", "0", "--no-dashboard", "--scheduler-file", str(self.scheduler_file)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
        for _ in range(2):
            self.processes.append(subprocess.Popen(
                [sys.executable, "-m", "distributed.cli.dask_worker", "--nthreads", "1",
                 "--nworkers", "1", "--no-dashboard", "--memory-limit", "3GiB",
                 "--scheduler-file", str(self.scheduler_file)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        from distributed import Client

        deadline = time.monotonic() + 60
        while not self.scheduler_file.exists():
            assert time.monotonic() < deadline, "the Dask scheduler did not start"
            time.sleep(0.1)
        self.client = Client(scheduler_file=str(self.scheduler_file), timeout=30,
                             set_as_default=False)
        self.client.wait_for_workers(2, timeout=60)
        self.address = self.client.scheduler.address

    def worker_pids(self) -> dict[str, int]:
        return self.client.run(os.getpid)

    def close(self):
        self.client.close()
        for process in reversed(self.processes):
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture(scope="module")
def dask_cluster(tmp_path_factory):
    cluster = DaskCluster(tmp_path_factory.mktemp("dask"))
    yield cluster
    cluster.close()


# ---------------------------------------------------------------- catalogs


def _offset(ra, dec, angle_deg, separation_arcsec):
    """astropy's offset: positions ``separation`` away from (ra, dec) towards ``angle``."""
    import astropy.units as u
    from astropy.coordinates import SkyCoord

    moved = SkyCoord(ra, dec, unit="deg").directional_offset_by(
        angle_deg * u.deg, separation_arcsec * u.arcsec)
    return moved.ra.deg, moved.dec.deg


def _pairs():
    """Left and right positions that awkward places put to the test: straddling the
    edges of the twelve base pixels (so the edge of every partition of either catalog,
    whatever its order), around both poles and across RA 0/360, and scattered."""
    import cdshealpix.nested as cds

    rng = np.random.default_rng(7)
    lon, lat = cds.vertices(np.arange(12, dtype=np.uint64), 0, step=40)
    edge_ra, edge_dec = lon.deg.ravel(), lat.deg.ravel()
    keep = np.abs(edge_dec) < 89.99
    edge_ra, edge_dec = edge_ra[keep], edge_dec[keep]
    angle = rng.uniform(0, 360, len(edge_ra))
    half = rng.uniform(0.1, 0.9, len(edge_ra))  # separations 0.2-1.8 arcsec
    left_ra, left_dec = _offset(edge_ra, edge_dec, angle, half)
    right_ra, right_dec = _offset(edge_ra, edge_dec, angle + 180, half)
    n_pole = 200
    pole_ra = rng.uniform(0, 360, n_pole)
    pole_dec = np.repeat([89.9995, -89.9995], n_pole // 2)
    wrap_ra = np.r_[rng.uniform(359.9995, 360, 100), rng.uniform(0, 0.0005, 100)]
    wrap_dec = rng.uniform(-60, 60, 200)
    n_scatter = 4000
    scatter_ra = rng.uniform(0, 360, n_scatter)
    scatter_dec = np.degrees(np.arcsin(rng.uniform(-1, 1, n_scatter)))
    extra_ra = np.r_[pole_ra, wrap_ra % 360, scatter_ra]
    extra_dec = np.r_[pole_dec, wrap_dec, scatter_dec]
    moved_ra, moved_dec = _offset(extra_ra, extra_dec, rng.uniform(0, 360, len(extra_ra)),
                                  rng.uniform(0, 2.5, len(extra_ra)))
    left_ra, left_dec = np.r_[left_ra, extra_ra], np.r_[left_dec, extra_dec]
    right_ra, right_dec = np.r_[right_ra, moved_ra], np.r_[right_dec, moved_dec]
    # Right rows with no left row near (and left rows whose match is missing).
    lonely = rng.random(len(right_ra)) < 0.2
    return left_ra, left_dec, right_ra[~lonely], right_dec[~lonely]


@pytest.fixture(scope="module")
def catalogs(tmp_path_factory):
    """Left (no epoch) and right catalogs, partitioned differently (many partitions of
    mixed orders on each side); a left catalog at J2000.0 and a right one with proper
    motions at J2016.0, whose rows astropy moved."""
    import astropy.units as u
    from astropy.coordinates import SkyCoord
    from astropy.time import Time

    root = tmp_path_factory.mktemp("join")
    data = root / "data"
    left_ra, left_dec, right_ra, right_dec = _pairs()
    options = LoadOptions(workers=1, progress=False)

    def load(name, table, **spec):
        path = root / f"{name}.parquet"
        pq.write_table(table, path)
        load_catalog(spec=CatalogSpec(name=name, ra="ra", dec="dec", **spec),
                     sources=[str(path)], data=data, options=options)

    n_left, n_right = len(left_ra), len(right_ra)
    load("left", pa.table({"id": np.arange(n_left), "ra": left_ra, "dec": left_dec,
                           "mag": np.linspace(10, 20, n_left)}),
         id="id", threshold_rows=400, highest_order=7)
    load("right", pa.table({"sid": np.arange(n_right) + 10**9, "ra": right_ra,
                            "dec": right_dec}), id="sid", threshold_rows=250, highest_order=7)
    load("left_j2000", pa.table({"id": np.arange(n_left), "ra": left_ra, "dec": left_dec}),
         id="id", epoch_jyear=2000.0, threshold_rows=400, highest_order=7)
    rng = np.random.default_rng(8)
    pmra = rng.normal(0, 20, n_right)
    pmdec = rng.normal(0, 20, n_right)
    fast = rng.random(n_right) < 0.1  # up to 2"/yr: 32" in 16 years, 16 radii
    pmra[fast] = rng.uniform(-2000, 2000, fast.sum())
    pmdec[fast] = rng.uniform(-2000, 2000, fast.sum())
    then = SkyCoord(right_ra * u.deg, right_dec * u.deg, pm_ra_cosdec=pmra * u.mas / u.yr,
                    pm_dec=pmdec * u.mas / u.yr, obstime=Time(2000.0, format="jyear"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ERFA's distance-overridden warning
        now = then.apply_space_motion(new_obstime=Time(2016.0, format="jyear"))
    load("moving", pa.table({"sid": np.arange(n_right) + 10**9, "ra": now.ra.deg,
                             "dec": now.dec.deg, "pmra": pmra, "pmdec": pmdec}),
         id="sid", epoch_jyear=2016.0, pmra="pmra", pmdec="pmdec", threshold_rows=250,
         highest_order=7)
    return data


def _pairs_of(table: pa.Table) -> dict[tuple[int, int], float]:
    matched = table.filter(table.column("separation_arcsec").is_valid())
    return dict(zip(zip(matched["id"].to_pylist(), matched["sid"].to_pylist(), strict=True),
                    matched["separation_arcsec"].to_pylist(), strict=True))


def _base_cell(ra, dec):
    from xmatch.sky import healpix

    return healpix.radec_to_pixels(0, np.asarray(ra), np.asarray(dec))


# ---------------------------------------------------------------- oracles


def test_all_pairs_equal_in_memory_and_astropy(catalogs, dask_cluster):
    """Every pair within the radius, none missed across partition boundaries: equal to
    the in-memory cross-match and to astropy's search_around_sky."""
    import astropy.units as u
    from astropy.coordinates import SkyCoord, search_around_sky

    out = crossmatch_catalogs("left", "right", "all_pairs", radius_arcsec=RADIUS_ARCSEC,
                              mode="all", scheduler=dask_cluster.address, data=catalogs,
                              progress=False)
    left, right = open_catalog("left", catalogs), open_catalog("right", catalogs)
    assert [p for p in out.partitions] == [p for p in left.partitions]
    joined = out.read()
    assert set(joined["id"].to_pylist()) == set(range(left.num_rows))  # a left join
    got = _pairs_of(joined)
    memory = _pairs_of(crossmatch(left, right, radius_arcsec=RADIUS_ARCSEC, mode="all"))
    assert got.keys() == memory.keys()
    np.testing.assert_allclose([got[k] for k in memory], list(memory.values()), atol=1e-9)

    lt, rt = left.read(["id", "ra", "dec"]), right.read(["sid", "ra", "dec"])
    first, second, separation, _ = search_around_sky(
        SkyCoord(lt["ra"].to_numpy(), lt["dec"].to_numpy(), unit="deg"),
        SkyCoord(rt["ra"].to_numpy(), rt["dec"].to_numpy(), unit="deg"),
        RADIUS_ARCSEC * u.arcsec)
    astropy_pairs = dict(zip(zip(lt["id"].to_numpy()[first].tolist(),
                                 rt["sid"].to_numpy()[second].tolist(), strict=True),
                             separation.arcsec.tolist(), strict=True))
    assert got.keys() == astropy_pairs.keys()
    np.testing.assert_allclose([got[k] for k in astropy_pairs], list(astropy_pairs.values()),
                               atol=1e-6)
    # The awkward places were there to be missed: pairs across base-pixel edges (so
    # across partition boundaries of both catalogs), at the poles, across RA 0.
    by_id = {i: (ra, dec) for i, ra, dec in zip(*(lt[c].to_pylist() for c in lt.column_names),
                                                strict=True)}
    by_sid = {i: (ra, dec) for i, ra, dec in zip(*(rt[c].to_pylist() for c in rt.column_names),
                                                 strict=True)}
    pairs = list(got)
    left_pos = np.array([by_id[i] for i, _ in pairs])
    right_pos = np.array([by_sid[s] for _, s in pairs])
    across = _base_cell(*left_pos.T) != _base_cell(*right_pos.T)
    assert across.sum() > 100
    assert (np.abs(left_pos[:, 1]) > 89.999).sum() > 50
    wraps = np.abs(left_pos[:, 0] - right_pos[:, 0]) > 359
    assert wraps.sum() > 10


def test_nearest_with_proper_motions_equals_in_memory(catalogs, dask_cluster):
    """Right rows moved to the left epoch (J2000 from J2016, up to 32"): the nearest match
    of each left row equals the in-memory cross-match's, including matches that only the
    motion brings within the radius."""
    out = crossmatch_catalogs("left_j2000", "moving", "moved", radius_arcsec=RADIUS_ARCSEC,
                              scheduler=dask_cluster.address, data=catalogs, progress=False)
    left, right = open_catalog("left_j2000", catalogs), open_catalog("moving", catalogs)
    joined = out.read().sort_by("id")
    memory = crossmatch(left, right, radius_arcsec=RADIUS_ARCSEC).sort_by("id")
    assert joined.num_rows == left.num_rows
    for column in ("id", "sid", "separation_arcsec", "position_angle_deg", "ra_at_epoch"):
        assert joined[column].to_pylist() == memory[column].to_pylist(), column
    # Matches the catalogs' own positions would not make: the motion brought them in.
    matched = joined.filter(joined["separation_arcsec"].is_valid())
    from astropy.coordinates import SkyCoord

    rt = right.read(["sid", "ra", "dec"])
    where = {s: i for i, s in enumerate(rt["sid"].to_pylist())}
    rows = [where[s] for s in matched["sid"].to_pylist()]
    as_loaded = SkyCoord(matched["ra"].to_numpy(), matched["dec"].to_numpy(), unit="deg") \
        .separation(SkyCoord(rt["ra"].to_numpy()[rows], rt["dec"].to_numpy()[rows],
                             unit="deg")).arcsec
    assert (as_loaded > 10 * RADIUS_ARCSEC).sum() > 50
    assert matched.num_rows > 0.7 * left.num_rows


def test_k_nearest_equals_in_memory(catalogs, dask_cluster):
    out = crossmatch_catalogs("left", "right", "k_nearest", radius_arcsec=60.0, mode="k", k=3,
                              left_columns=["id"], right_columns=["sid"],
                              scheduler=dask_cluster.address, data=catalogs, progress=False)
    joined = out.read()
    assert joined.column_names == ["id", "ra", "dec", "_healpix_29", "match_rank", "sid",
                                   "separation_arcsec", "position_angle_deg"]
    memory = crossmatch(open_catalog("left", catalogs), open_catalog("right", catalogs),
                        radius_arcsec=60.0, mode="k", k=3, left_columns=["id"],
                        right_columns=["sid"])
    key = [("id", "ascending"), ("match_rank", "ascending")]
    for column in ("id", "match_rank", "sid", "separation_arcsec"):
        assert joined.sort_by(key)[column].to_pylist() == memory.sort_by(key)[column] \
            .to_pylist()


def test_equal_to_lsdb_given_margin_caches(catalogs, dask_cluster):
    """LSDB's crossmatch of the same catalogs, the right one with a margin cache: the same
    nearest pairs (LSDB keeps matched rows only)."""
    import dask
    import lsdb

    out = crossmatch_catalogs("left", "right", "for_lsdb", radius_arcsec=RADIUS_ARCSEC,
                              scheduler=dask_cluster.address, data=catalogs, progress=False)
    right = open_catalog("right", catalogs).read(["sid", "ra", "dec"]).to_pandas()
    with warnings.catch_warnings(), dask.config.set(scheduler="synchronous"):
        warnings.simplefilter("ignore")
        left_lsdb = lsdb.open_catalog(open_catalog("left", catalogs).root.resolve())
        right_lsdb = lsdb.from_dataframe(right, ra_column="ra", dec_column="dec",
                                         margin_threshold=3 * RADIUS_ARCSEC,
                                         partition_rows=2000)
        assert right_lsdb.margin is not None
        result = left_lsdb.crossmatch(right_lsdb, radius_arcsec=RADIUS_ARCSEC, n_neighbors=1,
                                      suffixes=("_l", "_r")).compute()
    lsdb_pairs = dict(zip(zip(result["id_l"].tolist(), result["sid_r"].tolist(), strict=True),
                          result["_dist_arcsec"].tolist(), strict=True))
    ours = _pairs_of(out.read())
    assert ours.keys() == lsdb_pairs.keys()
    np.testing.assert_allclose([ours[k] for k in lsdb_pairs], list(lsdb_pairs.values()),
                               atol=1e-6)


def test_output_opens_with_hats_and_lsdb(catalogs, dask_cluster):
    import hats
    import lsdb

    out = crossmatch_catalogs("left", "right", "opened", radius_arcsec=RADIUS_ARCSEC,
                              scheduler=dask_cluster.address, data=catalogs, progress=False)
    root = out.root.resolve()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        read = hats.read_hats(root)
        frame = lsdb.open_catalog(root).compute()
    assert read.catalog_info.total_rows == out.num_rows
    assert sorted((p.order, p.pixel) for p in read.get_healpix_pixels()) == sorted(
        (p.order, p.pixel) for p in out.partitions)
    assert len(frame) == out.num_rows
    assert sorted(frame["id"]) == sorted(out.read(["id"])["id"].to_pylist())
    assert out.verify() == []
    join = out.provenance["join"]
    assert (join["left"], join["right"], join["radius_arcsec"]) == ("left", "right", 2.0)


def test_worker_killed_mid_join(catalogs, dask_cluster):
    """A worker process killed (SIGKILL, by PID) while it runs a join task: its nanny
    starts another, the scheduler runs the task again, and the output equals a clean
    run's."""
    clean = crossmatch_catalogs("left", "right", "clean", radius_arcsec=RADIUS_ARCSEC,
                                mode="all", scheduler=dask_cluster.address, data=catalogs,
                                progress=False).read()
    pids = dask_cluster.worker_pids()
    outcome = {}

    def join():
        try:
            outcome["table"] = crossmatch_catalogs(
                "left", "right", "survived", radius_arcsec=RADIUS_ARCSEC, mode="all",
                scheduler=dask_cluster.address, data=catalogs, progress=False).read()
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            outcome["error"] = exc

    thread = threading.Thread(target=join)
    thread.start()
    killed = None
    deadline = time.monotonic() + 60
    while killed is None and thread.is_alive() and time.monotonic() < deadline:
        for worker, tasks in dask_cluster.client.processing().items():
            if any("xmatch-join" in str(key) for key in tasks) and worker in pids:
                os.kill(pids[worker], signal.SIGKILL)
                killed = worker
                break
        time.sleep(0.005)
    thread.join(timeout=300)
    assert killed is not None, "no join task was seen running"
    assert "error" not in outcome, outcome.get("error")
    assert outcome["table"].equals(clean)
    dask_cluster.client.wait_for_workers(2, timeout=60)  # the nanny restarted it
    assert killed not in dask_cluster.worker_pids()


def test_load_on_the_dask_cluster(tmp_path, dask_cluster):
    """`xmatch load --scheduler`: the map and reduce tasks run on the cluster's workers,
    and the catalog equals a local load's."""
    source = tmp_path / "random.parquet"
    pq.write_table(random_sky_table(5_000, seed=4), source)
    arguments = ["load", "stars", "--from", str(source), "--chunk-rows", "700",
                 "--threshold-rows", "300", "--no-progress"]
    assert cli_main([*arguments, "--scheduler", dask_cluster.address,
                     "--data", str(tmp_path / "dask")]) == 0
    assert cli_main([*arguments, "--workers", "1", "--data", str(tmp_path / "local")]) == 0
    on_dask, local = (open_catalog("stars", tmp_path / d) for d in ("dask", "local"))
    assert on_dask.partitions == local.partitions
    assert on_dask.read().equals(local.read())
    assert on_dask.verify() == []


# ---------------------------------------------------------------- the boundary


def test_join_refuses_bad_requests(catalogs):
    def refused(message, **request):
        arguments = {"left": "left", "right": "right", "out": "x", "data": catalogs,
                     "workers": 1, **request}
        with pytest.raises(XmatchError, match=message):
            crossmatch_catalogs(arguments.pop("left"), arguments.pop("right"),
                                arguments.pop("out"), **arguments)

    refused("would replace an input", out="left")
    refused("must start with a letter", out="1x")
    refused("mode must be one of", mode="closest")
    refused("k = 3 applies to mode 'k' only", k=3)
    refused("radius", radius_arcsec=-1.0)
    refused("has proper motions and left has no epoch", right="moving")
    refused("epoch moves the rows of the right catalog", epoch=2016.0)
    refused("has the epochs of its positions", left="left_j2000", right="moving",
            epoch=2000.0)
    refused("unknown column|no column|not in", left_columns=["nope"])
    refused("not both", workers=2, scheduler="tcp://127.0.0.1:1")
    refused("whole number", workers=0)
    assert not (catalogs / "x").exists()


def test_join_command(catalogs, dask_cluster, capsys):
    assert cli_main(["join", "left", "right", "--out", "by_cli", "--radius", "2arcsec",
                     "--columns", "id,mag,sid,right.ra", "--scheduler", dask_cluster.address,
                     "--no-progress", "--data", str(catalogs)]) == 0
    line = capsys.readouterr().out
    assert "by_cli:" in line and "left rows" in line and "matched in right" in line
    out = open_catalog("by_cli", catalogs)
    assert out.schema.names[:5] == ["id", "mag", "ra", "dec", "_healpix_29"]
    assert {"sid", "ra_right", "separation_arcsec"} <= set(out.schema.names)


@pytest.mark.parametrize(("arguments", "message"), [
    (["--k", "3"], "--k applies to --mode k"),
    (["--mode", "k"], "--mode k needs --k"),
    (["--columns", "ra"], "both left and right have it; write left.ra or right.ra"),
    (["--columns", "nope"], "neither left nor right has it"),
    (["--columns", "other.ra"], "'other' is neither left nor right"),
    (["--workers", "2", "--scheduler", "tcp://127.0.0.1:1"], "not allowed with"),
    (["--radius", "2"], "unit"),
])
def test_join_command_refuses(catalogs, capsys, arguments, message):
    assert cli_main(["join", "left", "right", "--out", "x", "--no-progress",
                     "--data", str(catalogs), *arguments]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("xmatch join: error:") and message in error, error
    assert len(error.splitlines()) == 1


def test_join_on_a_local_cluster(catalogs):
    """Without a scheduler: a LocalCluster of worker processes, started and stopped."""
    out = crossmatch_catalogs("left", "right", "local", radius_arcsec=RADIUS_ARCSEC,
                              workers=1, data=catalogs, progress=False)
    assert out.provenance["join"]["cluster"] == {"scheduler": "local", "workers": 1,
                                                 "threads": 1}
    memory = crossmatch(open_catalog("left", catalogs), open_catalog("right", catalogs),
                        radius_arcsec=RADIUS_ARCSEC)
    assert _pairs_of(out.read()) == pytest.approx(_pairs_of(memory))
