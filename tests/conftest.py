"""Shared fixtures: temporary data directories, small real and random catalogs."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("XMATCH_SHARED_DATA", REPO.parent / "shared" / "data"))


def shared_file(relative: str) -> Path:
    """A file of the project's shared real-data set; skips the test where it is absent."""
    path = SHARED_DATA / relative
    if not path.exists():
        pytest.skip(f"shared real data not available here ({path}); set XMATCH_SHARED_DATA")
    return path


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


@pytest.fixture
def data_dir(tmp_path):
    from xmatch import DataDirectory

    return DataDirectory(tmp_path / "data")


@pytest.fixture
def table_spec():
    from xmatch import CatalogSpec

    return CatalogSpec(name="random", id="id", ra="ra", dec="dec", key=("mag",),
                       threshold_rows=300, highest_order=6)


@pytest.fixture(scope="session")
def default_catalogs(tmp_path_factory):
    """The bundled Gaia DR3 subset and Hipparcos 2, loaded once per test session."""
    from xmatch import LoadOptions, load_catalog

    data = tmp_path_factory.mktemp("default_catalogs")
    options = LoadOptions(workers=2, progress=False)
    return {name: load_catalog(name, data=data, options=options)
            for name in ("gaia_dr3", "hipparcos2")}
