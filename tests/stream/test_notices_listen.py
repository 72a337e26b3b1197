"""``xmatch notices listen`` against a real Kafka-protocol broker: notices in order, bad ones
refused and skipped, candidates published once per notice (a restarted listener resumes
after what it committed), files written."""

from __future__ import annotations

import json
import threading

import pytest

from stream.conftest import committed, new_topic, publish, read_topic, wait_until
from xmatch.history.memory import AlertMemory
from xmatch.notices import build_notice, notice_json
from xmatch.notices.follow import NoticeFollower
from xmatch.notices.listener import NoticeListener
from xmatch.sky.skymap import SkyMap
from xmatch.specs import bundled_resource

EVENT_TIME = "2017-08-17T12:41:04.4Z"


def _follower(memory):
    from xmatch.notices import read_notice

    follower = NoticeFollower(memory)
    return lambda value, where: follower.follow(read_notice(value, where))


def test_notices_from_a_topic_are_followed_once(kafka, tmp_path):
    fits = SkyMap.read(bundled_resource("data/GW170817_skymap.fits.gz")).multiorder_fits(
        EVENT_TIME.rstrip("Z"))
    notices = [notice_json(build_notice("MS1", "PRELIMINARY", skymap=fits,
                                        event_time_iso=EVENT_TIME)),
               b'{"superevent_id": "MS2"}',
               notice_json(build_notice("MS9", "RETRACTION")),
               notice_json(build_notice("MS1", "UPDATE", skymap=fits,
                                        event_time_iso=EVENT_TIME)),
               notice_json(build_notice("MS1", "RETRACTION"))]
    source, candidates = new_topic(kafka, 1, "igwn"), new_topic(kafka, 1, "cand")
    publish(kafka, source, notices)
    group = f"g-{source}"
    seen = []

    def run(memory, count):
        listener = NoticeListener(kafka, source, group, _follower(memory),
                                  candidates_topic=candidates, out_dir=tmp_path / "gw")
        stop = threading.Event()

        def said(follow_up, where, error):
            seen.append((follow_up and follow_up.summary["alert_type"], where, error))
            if len(seen) >= count:
                stop.set()

        thread = threading.Thread(target=listener.run, args=(stop, said))
        thread.start()
        return listener, stop, thread

    with AlertMemory(tmp_path / "data", history=False) as memory:
        listener, stop, thread = run(memory, 5)
        thread.join(120)
        assert not thread.is_alive()
        assert listener.followed == 3 and listener.refused == 2
        refusals = [error for _, _, error in seen if error]
        assert "/alert_type: missing" in refusals[0] or "missing" in refusals[0]
        assert "RETRACTION of a superevent no notice announced here" in refusals[1]
        assert [kind for kind, _, _ in seen] == ["PRELIMINARY", None, None, "UPDATE",
                                                 "RETRACTION"]
        assert memory.watches.names() == []
        messages = [json.loads(r.value) for r in read_topic(kafka, candidates)]
        assert [(m["superevent_id"], m["alert_type"]) for m in messages] == [
            ("MS1", "PRELIMINARY"), ("MS1", "UPDATE"), ("MS1", "RETRACTION")]
        assert committed(kafka, group, source) == len(notices)
        # A restart finds nothing left to do: nothing is published again.
        publish(kafka, source, [notice_json(build_notice("MS3", "PRELIMINARY", skymap=fits,
                                                         event_time_iso=EVENT_TIME))])
        seen.clear()
        listener, stop, thread = run(memory, 1)
        wait_until(lambda: committed(kafka, group, source) == len(notices) + 1, 60,
                   "the new notice")
        stop.set()
        thread.join(60)
        assert [kind for kind, _, _ in seen] == ["PRELIMINARY"]
        messages = [json.loads(r.value) for r in read_topic(kafka, candidates)]
        assert [m["superevent_id"] for m in messages] == ["MS1", "MS1", "MS1", "MS3"]
        assert (tmp_path / "gw" / "MS3.json").is_file()


def test_a_missing_notice_topic_is_one_line(kafka, tmp_path):
    from xmatch.errors import InputError

    with AlertMemory(tmp_path, history=False) as memory:
        listener = NoticeListener(kafka, "no-such-topic-here", "g", _follower(memory))
        with pytest.raises(InputError, match="the notices' topic no-such-topic-here does not "
                                             "exist"):
            listener.run(threading.Event())
