"""Proper-motion bounds: three numbers per partition, computed by the load and kept in the
catalog's metadata, so a cone at another epoch and the router never read every row (the
router kept a 7-column array per row before)."""

from __future__ import annotations

import json

import numpy as np

from xmatch import open_catalog
from xmatch.index import MotionBounds
from xmatch.kernels.motion import MAS_TO_RAD
from xmatch.service.routing import RoutedCatalog


def test_bounds_are_stored_per_partition_and_bound_the_rows(session_data):
    catalog = open_catalog("hipparcos2", session_data)
    stored = catalog.sidecar["motion_bounds"]
    assert set(stored) == {f"{p.order}/{p.pixel}" for p in catalog.partitions}
    for partition in catalog.partitions[:4]:
        rows = catalog.read_partition(partition, ["pmra", "pmdec"])
        mu = np.hypot(rows["pmra"].to_numpy(zero_copy_only=False),
                      rows["pmdec"].to_numpy(zero_copy_only=False)) * MAS_TO_RAD
        bounds = MotionBounds.from_dict(stored[f"{partition.order}/{partition.pixel}"])
        assert bounds.mu_max == np.nanmax(mu) and bounds.epoch0_range == (1991.25, 1991.25)
    whole = catalog.motion_bounds()
    assert whole.mu_max == max(MotionBounds.from_dict(b).mu_max for b in stored.values())
    assert "motion_bounds" not in open_catalog("gaia_dr3", session_data).sidecar
    assert open_catalog("gaia_dr3", session_data).motion_bounds() is None


def test_a_cone_at_another_epoch_reads_only_the_partitions_it_needs(session_data):
    catalog = open_catalog("hipparcos2", session_data)
    read = []
    original = catalog.read_partition

    def counting(partition, columns=None):
        read.append(partition)
        return original(partition, columns)

    catalog.read_partition = counting
    found = catalog.cone_search(269.448503, 4.739420, 5.0, epoch=2016.0)
    assert found["hip"].to_pylist() == [87937]  # Barnard's star, 4' from its 1991.25 place
    assert 0 < len(read) <= 4 < len(catalog.partitions)


def test_catalogs_loaded_without_bounds_work_them_out_once(session_data, tmp_path):
    """A catalog published before the bounds were stored (or registered from elsewhere)
    works them out partition by partition; the same numbers."""
    catalog = open_catalog("hipparcos2", session_data)
    stored = catalog.sidecar.pop("motion_bounds")
    assert catalog._computed_bounds() == stored
    assert catalog.motion_bounds() == MotionBounds.union(
        MotionBounds.from_dict(b) for b in stored.values())
    json.dumps(stored)  # plain numbers, as the sidecar holds them


def test_the_router_holds_bounds_not_rows(cluster):
    from xmatch.service.plan import Plan
    from xmatch.service.routing import ShardLink  # noqa: F401  (what the router holds)

    plan = Plan.read(cluster.plan_path)
    for name, slices in plan.catalogs.items():
        catalog = open_catalog(name, plan.data)
        routed = RoutedCatalog.from_plan(catalog, slices, [None] * len(plan.shards))
        arrays = [v for v in vars(routed).values() if isinstance(v, np.ndarray)]
        assert all(len(a) == len(catalog.partitions) for a in arrays), name
        assert routed.motion == catalog.motion_bounds()
