"""The history and the watches through a server: Annotate with history and watches,
AddWatch (back-matching), ListWatches, RemoveWatch, ObjectHistory; refusals."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from xmatch.errors import ServiceError
from xmatch.history.memory import AlertMemory
from xmatch.service.embedded import running_server


def _compact(ra, dec, ids, mjd):
    n = len(ra)
    return pa.table({"alert_id": pa.array(ids, pa.int64()), "survey": ["ZTF"] * n,
                     "ra_deg": np.asarray(ra, float), "dec_deg": np.asarray(dec, float),
                     "mjd_tai": np.full(n, mjd), "band": ["r"] * n,
                     "mag": np.full(n, 18.5)})


def test_annotate_records_history_and_back_matches_new_watches(tmp_path):
    from xmatch.service.client import Client

    ra = np.array([359.99999, 0.00001, 120.0, 45.0])
    dec = np.array([-10.0, -10.0, 89.99999, 0.0])
    with AlertMemory(tmp_path) as memory, running_server({}, memory=memory) as address, \
            Client(address) as client:
        first = pa.concat_tables([b.table for b in client.annotate(
            _compact(ra, dec, [1, 2, 3, 4], 60000.0), catalogs=[], history=True,
            watches=True)])
        # Across RA 0/360 the two alerts are 0.07" apart: one object.
        assert first.column("history_object_id").to_pylist() == [1, 1, 2, 3]
        assert first.column("watch_hits").to_pylist() == [[], [], [], []]
        watchlist = pa.table({"ra_deg": [0.0, 300.0], "dec_deg": [-10.0, 10.0],
                              "radius_arcsec": [2.0, 10.0], "name": ["zero", "none"]})
        described, found = client.add_watch("targets", watchlist=watchlist,
                                            name_column="name", arrow=True)
        assert described["entries"] == 2
        assert sorted(found.column("alert_id").to_pylist()) == [1, 2]
        assert set(found.column("entry_name").to_pylist()) == {"zero"}
        _, found = client.add_watch("north", moc="0/0-3", arrow=True)  # northern base pixels
        inside = found.column("alert_id").to_pylist()
        assert 3 in inside and 1 not in inside and 2 not in inside
        second = pa.concat_tables([b.table for b in client.annotate(
            _compact(ra[:1], dec[:1], [5], 60001.0), catalogs=[], history=True,
            watches=True)])
        hits = second.column("watch_hits").to_pylist()[0]
        assert [h["watch"] for h in hits] == ["targets"]
        assert second.column("history_detections").to_pylist() == [3]
        assert [w["name"] for w in client.list_watches()] == ["north", "targets"]
        summary, detections = client.object_history(1, arrow=True)
        assert summary.column("detections").to_pylist() == [3]
        assert detections.column("alert_id").to_pylist() == [1, 2, 5]
        client.remove_watch("north")
        with pytest.raises(ServiceError, match="INVALID_ARGUMENT.*radius"):
            client.add_watch("bad", watchlist=watchlist.set_column(
                2, "radius_arcsec", pa.array([-1.0, 2.0])))
        with pytest.raises(ServiceError, match="exists"):
            client.add_watch("targets", watchlist=watchlist)
        with pytest.raises(ServiceError, match="not in the history"):
            client.object_history(99)


def test_a_server_without_history_says_how_to_get_one(tmp_path):
    from xmatch.service.client import Client

    with running_server({}) as address, Client(address) as client:
        with pytest.raises(ServiceError, match="INVALID_ARGUMENT.*--history"):
            list(client.annotate(_compact([1.0], [2.0], [1], 60000.0), catalogs=[],
                                 history=True))
        with pytest.raises(ServiceError, match="--history"):
            client.object_history(1)


def test_a_compaction_makes_the_history_searchable_through_the_server(tmp_path):
    """Once compacted, history_objects and history_detections are served: cone, region and
    cross-match searches over them, refreshed at every compaction."""
    from xmatch.service.client import Client

    with AlertMemory(tmp_path, history_options={"compact_every": 0}) as memory, \
            running_server({}, memory=memory) as address, Client(address) as client:
        for mjd, ids in ((60000.0, [1, 2]), (60001.0, [3, 4])):
            list(client.annotate(_compact([150.0, 359.99999], [2.0, -89.9999], ids, mjd),
                                 catalogs=[], history=True))
            memory.history.compact()
        names = [c["name"] for c in client.catalogs()]
        assert {"history_objects", "history_detections"} <= set(names)
        objects = client.cone_search("history_objects", 150.0, 2.0, 1.0, arrow=True)
        assert objects.column("detections").to_pylist() == [2]  # the second compaction's
        near_pole = client.cone_search("history_detections", 0.0, -90.0, 1.0, arrow=True)
        assert sorted(near_pole.column("alert_id").to_pylist()) == [2, 4]
        matched = client.crossmatch("history_objects", [150.0, 10.0], [2.0, 10.0],
                                    radius_arcsec=1.0, arrow=True)
        assert matched.column("object_id").to_pylist() == [1, None]
