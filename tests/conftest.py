"""Shared fixtures: temporary data directories, small real and random catalogs."""

from __future__ import annotations

import functools
import os
import socket
import subprocess
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from xmatch import CatalogSpec, DataDirectory, LoadOptions, SkyIndex, load_catalog, open_catalog
from xmatch.service.cluster import start_shard, wait_serving
from xmatch.service.embedded import running_servicer
from xmatch.service.plan import Plan, make_plan
from xmatch.service.router import Router
from xmatch.service.security import Exposure
from xmatch.service.server import Limits, ServedCatalog, XmatchServicer
from xmatch.sky.skymap import SkyMap
from xmatch.v1 import xmatch_pb2_grpc

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("XMATCH_SHARED_DATA", REPO.parent / "shared" / "data"))


def shared_file(relative: str) -> Path:
    """A file of the project's shared real-data set; skips the test where it is absent."""
    path = SHARED_DATA / relative
    if not path.exists():
        pytest.skip(f"shared real data not available here ({path}); set XMATCH_SHARED_DATA")
    return path


def skymap_file(name: str) -> Path:
    """A real LVK sky map of the shared data set by file name. GW170817's is also bundled
    with xmatch (the same bytes): that copy is used, so tests on it run without the shared
    data and every module shares one read of it."""
    if name == "GW170817_skymap.fits.gz":
        from xmatch.specs import bundled_resource

        return Path(bundled_resource(f"data/{name}"))
    return shared_file(f"skymaps/{name}")


def random_sky_table(n: int, seed: int = 0, with_edges: bool = True) -> pa.Table:
    """Random sky positions (uniform plus one dense cluster) and the awkward places:
    poles, RA 0/360, duplicates, and the corners of base pixels."""
    rng = np.random.default_rng(seed)
    ra = rng.uniform(0, 360, n)
    dec = np.degrees(np.arcsin(rng.uniform(-1, 1, n)))
    # A dense cluster, so adaptive partitioning has something to adapt to.
    cluster = rng.random(n) < 0.3
    ra[cluster] = 150 + rng.normal(0, 2, cluster.sum())
    dec[cluster] = 30 + rng.normal(0, 2, cluster.sum())
    if with_edges:
        edges_ra = np.array([0.0, 360.0, 359.9999999999, 0.0, 180.0, 45.0, 45.0, 0.0, 90.0,
                             12.5, 12.5])
        edges_dec = np.array([0.0, 0.0, 0.0, 90.0, -90.0, 41.8103149, -41.8103149,
                              89.9999999, -89.9999999, 10.0, 10.0])  # last two: duplicates
        ra = np.concatenate([edges_ra, ra])[:n] if n >= len(edges_ra) else ra
        dec = np.concatenate([edges_dec, dec])[:n] if n >= len(edges_dec) else dec
    return pa.table({"id": np.arange(n, dtype=np.int64), "ra": ra, "dec": dec,
                     "mag": rng.normal(15, 2, n).astype(np.float32),
                     "name": pa.array([f"src{i}" for i in range(n)])})


@functools.cache
def read_skymap(path) -> SkyMap:
    """A sky map as xmatch reads it, read once per session (the flat GW170817 map takes
    seconds to gunzip and merge)."""
    return SkyMap.read(path)


@functools.cache
def ligo_sky_map(path):
    """The map as ligo.skymap reads it (multi-order), read once per session."""
    from ligo.skymap.io import read_sky_map

    return read_sky_map(str(path), moc=True)


def ligo_values(path, ra, dec, dist) -> dict[str, np.ndarray]:
    """ligo.skymap's crossmatch of positions (degrees) and distances (Mpc) on the map at
    ``path``: the oracle of per-row sky-map values. Each call takes seconds on a real map
    (its 3-D grid is pixels x 1000 distances), so tests make as few as they can."""
    import astropy.units as u
    from astropy.coordinates import SkyCoord
    from ligo.skymap.postprocess.crossmatch import crossmatch

    coords = SkyCoord(ra * u.deg, dec * u.deg, dist * u.Mpc)
    result = crossmatch(ligo_sky_map(path), coords)
    return {"probdensity": result.probdensity, "searched_prob": result.searched_prob,
            "searched_area": result.searched_area, "probdensity_vol": result.probdensity_vol}


def skymap_sources(skymaps, per_map: int, seed: int) -> pa.Table:
    """Sources around sky maps (``xmatch.regions.SkyMap``): positions drawn from each map's
    probability, so its credible regions and their edges are well populated, plus uniform
    ones and the awkward places of ``random_sky_table``; distances of 10 to 200 Mpc (inside
    ligo.skymap's distance grid of every real map, past its first step, where ligo.skymap
    wraps round to its last), a few missing."""
    import healpy

    rng = np.random.default_rng(seed)
    ra, dec = [], []
    for skymap in skymaps:
        pixels = rng.choice(len(skymap.prob), per_map, p=skymap.prob / skymap.prob.sum())
        r, d = healpy.pix2ang(2 ** skymap.order[pixels], skymap.ipix[pixels], nest=True,
                              lonlat=True)
        ra.append((r + rng.normal(0, 0.3, per_map)) % 360)
        dec.append(np.clip(d + rng.normal(0, 0.3, per_map), -90, 90))
    sky = random_sky_table(per_map, seed=seed)
    ra = np.concatenate([*ra, sky["ra"].to_numpy()])
    dec = np.concatenate([*dec, sky["dec"].to_numpy()])
    n = len(ra)
    return pa.table({"id": np.arange(n, dtype=np.int64), "ra": ra, "dec": dec,
                     "dist": pa.array(rng.uniform(10, 200, n), mask=rng.random(n) < 0.03)})


#: The real LVK sky maps of the shared data set.
REAL_SKYMAPS = ["GW170817_skymap.fits.gz", "GW190814_PublicationSamples.multiorder.fits.gz",
                "G361581_bayestar.multiorder.fits.gz"]


@functools.cache
def real_skymap_sources() -> pa.Table:
    """Sources around the three real sky maps (4,000 drawn from each map, plus the awkward
    places), with distances: the one table that modules compare with ligo.skymap."""
    return skymap_sources([read_skymap(skymap_file(name)) for name in REAL_SKYMAPS], 4000,
                          seed=21)


@functools.cache
def ligo_values_at_sources(name: str) -> tuple[pa.Table, dict[str, np.ndarray]]:
    """The rows of ``real_skymap_sources`` with a distance, and ligo.skymap's values at them
    on the real map ``name``: one call of ligo.skymap per map and session."""
    sources = real_skymap_sources()
    rows = sources.filter(np.isfinite(sources["dist"].to_numpy(zero_copy_only=False)))
    return rows, ligo_values(skymap_file(name), rows["ra"].to_numpy(), rows["dec"].to_numpy(),
                             rows["dist"].to_numpy())


@pytest.fixture
def data_dir(tmp_path):
    from xmatch import DataDirectory

    return DataDirectory(tmp_path / "data")


@pytest.fixture
def table_spec():
    from xmatch import CatalogSpec

    return CatalogSpec(name="random", id="id", ra="ra", dec="dec", key=("mag",),
                       threshold_rows=300, highest_order=6)


RANDOM_SPEC = CatalogSpec(name="random", id="id", ra="ra", dec="dec", key=("mag",),
                          threshold_rows=300, highest_order=6, default_radius_arcsec=2.0)
BUNDLED = ("gaia_dr3", "hipparcos2", "gcvs", "glade_gw170817", "fermi_4fgl", "fermi_4lac")


@pytest.fixture(scope="session")
def session_data(tmp_path_factory) -> DataDirectory:
    """The one data directory of the session, loaded once and only read by tests: the
    bundled catalogs (the real Gaia DR3 G < 10 subset, Hipparcos 2, GCVS, the GLADE galaxies
    of GW170817) and a random catalog of many mixed-order partitions. Tests that load or
    remove catalogs make directories of their own."""
    root = tmp_path_factory.mktemp("session")
    data = DataDirectory(root / "data")
    options = LoadOptions(workers=2, progress=False)
    for name in BUNDLED:
        load_catalog(name, data=data, options=options)
    source = root / "random.parquet"
    pq.write_table(random_sky_table(20_000, seed=11), source)
    load_catalog(spec=RANDOM_SPEC, sources=[str(source)], data=data, options=options)
    return data


@pytest.fixture(scope="session")
def default_catalogs(session_data):
    """The bundled Gaia DR3 subset and Hipparcos 2, opened."""
    return {name: open_catalog(name, session_data) for name in ("gaia_dr3", "hipparcos2")}


# ------------------------------------------------------------------------- service servers
# Real servers on loopback ports: an embedded server and a cluster of three shard server
# processes (every partition on two of them) behind a router, both over the same data
# directory (the bundled Gaia DR3 subset and Hipparcos 2, plus a random catalog of many
# mixed-order partitions), with the in-process indexes to compare against.

LIMITS = Limits(max_radius_arcsec=5 * 3600.0, max_rows=2_000, max_batch=200_000,
                region_batch_rows=500)


@pytest.fixture(scope="session")
def service_data(session_data) -> DataDirectory:
    return session_data


@pytest.fixture(scope="session")
def reference(service_data) -> dict[str, SkyIndex]:
    """Each catalog indexed whole, in this process: the answers to compare with."""
    return {name: SkyIndex.from_catalog(open_catalog(name, service_data))
            for name in service_data.names()}


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@dataclass
class Cluster:
    plan: Plan
    plan_path: str
    address: str
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    shard_arguments: tuple = ("--plaintext",)
    credentials: object = None  # what the router shows its shards (TLS, token)
    router: object = None       # the in-process Router (its metrics: router.observer)

    def start(self, name: str) -> None:
        self.processes[name] = start_shard(self.plan_path, name, self.shard_arguments)
        shard = self.plan.shards[self.plan.shard_index(name)]
        wait_serving(shard.address, 120, self.processes[name], self.credentials)

    def kill(self, name: str) -> None:
        self.processes[name].kill()
        self.processes[name].wait()

    def ensure_all_running(self) -> None:
        for shard in self.plan.shards:
            if self.processes[shard.name].poll() is not None:
                self.start(shard.name)


@contextmanager
def running_cluster(data, root: Path, limits: Limits, shard_arguments=("--plaintext",),
                    exposure=None, credentials=None, catalogs=None):
    """Three shard processes over ``data`` (replicas 2; started with ``shard_arguments``)
    and an in-process router on a loopback port (its ``exposure``, and the ``credentials``
    it shows the shards), for the duration of a ``with`` block."""
    plan = make_plan(data, shards=3, replicas=2, shard_ports=free_ports(3), catalogs=catalogs)
    plan_path = str(root / "plan.json")
    plan.write(plan_path)
    cluster = Cluster(plan, plan_path, "", shard_arguments=tuple(shard_arguments),
                      credentials=credentials)
    try:
        for shard in plan.shards:  # start all, then wait: they load at the same time
            cluster.processes[shard.name] = start_shard(plan_path, shard.name,
                                                        cluster.shard_arguments)
        for shard in plan.shards:
            wait_serving(shard.address, 180, cluster.processes[shard.name], credentials)
        with running_servicer(lambda: Router(plan, limits, credentials=credentials),
                              exposure=exposure, role="router") as (address, router):
            cluster.address, cluster.router = address, router
            yield cluster
    finally:
        for process in cluster.processes.values():
            process.kill()
            process.wait()


#: The session's servers serve their Virtual Observatory face too (HTTP, any free port).
WITH_HTTP = Exposure(http=("127.0.0.1", 0))


@pytest.fixture(scope="session")
def cluster(service_data, tmp_path_factory):
    """Three shard processes, replicas 2, and an in-process router on a loopback port
    (with its HTTP face at ``cluster.router.http_address``)."""
    with running_cluster(service_data, tmp_path_factory.mktemp("cluster"), LIMITS,
                         exposure=WITH_HTTP) as started:
        yield started


@pytest.fixture(scope="session")
def embedded_servicer(service_data):
    """(address, servicer) of the session's embedded server (its HTTP face at
    ``servicer.http_address``)."""
    catalogs = {name: ServedCatalog.from_catalog(open_catalog(name, service_data))
                for name in service_data.names()}
    with running_servicer(lambda: XmatchServicer(catalogs, LIMITS),
                          exposure=WITH_HTTP) as started:
        yield started


@pytest.fixture(scope="session")
def embedded(embedded_servicer):
    return embedded_servicer[0]


@pytest.fixture(params=["embedded", "router"])
def served(request, reference):
    """(stub, channel, reference indexes) of the embedded server, then of the router."""
    address = (request.getfixturevalue("embedded") if request.param == "embedded"
               else request.getfixturevalue("cluster").address)
    channel = grpc.insecure_channel(address)
    yield xmatch_pb2_grpc.XmatchStub(channel), channel, reference
    channel.close()


@pytest.fixture(params=["embedded", "router"])
def faces(request) -> tuple[str, str]:
    """(gRPC address, HTTP base URL of the VO face) of the embedded server, then of the
    router."""
    if request.param == "embedded":
        address, servicer = request.getfixturevalue("embedded_servicer")
        return address, f"http://{servicer.http_address}"
    cluster = request.getfixturevalue("cluster")
    return cluster.address, f"http://{cluster.router.http_address}"


@pytest.fixture(params=["embedded", "router"])
def server_address(request) -> str:
    """The address of the embedded server, then of the router."""
    return (request.getfixturevalue("embedded") if request.param == "embedded"
            else request.getfixturevalue("cluster").address)
