"""What a gravitational-wave notice sets going: a watchmap of its credible region, and the
ranked candidates of its event.

For each notice of a superevent (:class:`~xmatch.notices.igwn.Notice`):

* PRELIMINARY, INITIAL, UPDATE (and EARLYWARNING with a map): the watchmap
  ``gw.<superevent_id>`` of the map's credible region at ``level`` (0.9 by default)
  replaces the superevent's earlier one, so alerts annotated from then on report it in
  their watch hits; the detections of the alert history inside the region since the event
  time are the *alert candidates*, by 2-D probability density (highest first); the galaxies
  of a chosen catalog inside the region are the *galaxy candidates*, by 3-D probability
  density (``probdensity_vol``, as ``ligo.skymap.postprocess.crossmatch`` computes it). An
  update re-ranks both.
* RETRACTION: the watchmap is removed; a retraction of a superevent that has none (no notice
  of it was followed) is refused.

:func:`write_follow_up` writes the candidates to files and :func:`candidates_message` is what
``xmatch notices listen`` publishes on its candidates topic.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from xmatch.errors import InputError
from xmatch.notices.igwn import RETRACTION, Notice
from xmatch.sky.skymap import check_level

#: The watchmap of a superevent is named ``gw.<superevent_id>``.
GW_WATCH_PREFIX = "gw."
DEFAULT_LEVEL = 0.9
#: The columns of the alert candidates: the detection, then the map's values there.
ALERT_CANDIDATE_COLUMNS = ("detection_id", "object_id", "alert_id", "survey", "mjd_tai",
                           "ra_deg", "dec_deg")
SQUARE_DEGREES = 4 * np.pi * (180 / np.pi) ** 2


def watch_name(superevent_id: str) -> str:
    """The name of the watchmap that follows ``superevent_id``."""
    return GW_WATCH_PREFIX + superevent_id


@dataclass(frozen=True, eq=False)
class FollowUp:
    """What one notice gave: ``summary`` (a JSON-ready dict: ``superevent_id``,
    ``alert_type``, ``watch``, counts...), the alert candidates and the galaxy candidates
    (None when no galaxy catalog is followed; both empty for a retraction)."""

    summary: dict
    alerts: pa.Table
    galaxies: pa.Table | None

    @property
    def superevent_id(self) -> str:
        return self.summary["superevent_id"]

    @property
    def is_retraction(self) -> bool:
        return self.summary["alert_type"] == RETRACTION


class NoticeFollower:
    """Follows notices into an :class:`~xmatch.history.memory.AlertMemory`.

    Parameters
    ----------
    memory : AlertMemory
        Its watches receive the watchmaps; its history (if kept) gives the alert candidates.
    galaxies : Catalog or SkyIndex, optional
        The galaxy catalog to rank (its ``skymap_search``); it needs a distance column.
    galaxy_catalog : str, optional
        Its name, for the summaries.
    level : float
        The credible level of the watchmaps, in (0, 1].
    """

    def __init__(self, memory, *, galaxies=None, galaxy_catalog: str | None = None,
                 level: float = DEFAULT_LEVEL):
        if galaxies is not None and galaxies.distance_column is None:
            raise InputError(f"the galaxy catalog {galaxy_catalog or ''} has no distance "
                             "column (columns.distance in its spec): its galaxies are ranked "
                             "by 3-D probability, which needs their distances")
        self.memory = memory
        self.galaxies = galaxies
        self.galaxy_catalog = galaxy_catalog
        self.level = check_level(level)

    def follow(self, notice: Notice) -> FollowUp:
        """Act on ``notice`` (see the module's description)."""
        from xmatch.watch import Watchmap

        name = watch_name(notice.superevent_id)
        summary = {"superevent_id": notice.superevent_id, "alert_type": notice.alert_type,
                   "time_created": notice.time_created, "event_time": notice.event_time_iso,
                   "watch": name}
        if notice.is_retraction:
            if name not in self.memory.watches.names():
                raise InputError(f"notice {notice.superevent_id}: a RETRACTION of a "
                                 "superevent no notice announced here (no watchmap "
                                 f"{name}); nothing to retract")
            self.memory.remove_watch(name)
            summary["removed"] = True
            return FollowUp(summary, _empty_alert_candidates(),
                            None if self.galaxies is None else pa.table({}))
        skymap = notice.skymap
        if skymap is None:
            raise InputError(f"notice {notice.superevent_id} ({notice.alert_type}) carries "
                             "no sky map (event.skymap is null): there is no region to "
                             "watch")
        watchmap = Watchmap.from_skymap(
            name, skymap, self.level,
            source=f"{notice.alert_type} notice of {notice.superevent_id} "
                   f"({notice.time_created}), {self.level:g} credible region")
        galaxies = None
        if self.galaxies is not None:  # first: a catalog it cannot rank changes nothing
            galaxies = self.galaxies.skymap_search(skymap, self.level,
                                                   rank_by="probdensity_vol")
        described, found = self.memory.add_watch(watchmap, replace=True)
        alerts = self._alert_candidates(found, notice)
        summary.update({
            "level": self.level, "area_deg2": described["sky_fraction"] * SQUARE_DEGREES,
            "history": self.memory.history is not None, "alerts": alerts.num_rows,
            "galaxy_catalog": self.galaxy_catalog,
            "galaxies": None if galaxies is None else galaxies.num_rows})
        return FollowUp(summary, alerts, galaxies)

    @staticmethod
    def _alert_candidates(found: pa.Table, notice: Notice) -> pa.Table:
        """The back-matched detections since the event, with the map's values, by 2-D
        probability density (highest first)."""
        from xmatch.sky.healpix import radec_to_healpix29

        since = pc.greater_equal(found.column("mjd_tai"), notice.event_mjd_tai)
        table = found.filter(since).select(list(ALERT_CANDIDATE_COLUMNS))
        ra = table.column("ra_deg").to_numpy()
        dec = table.column("dec_deg").to_numpy()
        values = notice.skymap.values_at(radec_to_healpix29(ra, dec))
        table = table.append_column(
            pa.field("days_after_event", pa.float64(), metadata={"unit": "d"}),
            pa.array(table.column("mjd_tai").to_numpy() - notice.event_mjd_tai))
        table = _with_map_values(table, values)
        order = np.argsort(-values["probdensity"], kind="stable")
        return table.take(pa.array(order, pa.int64()))


def _with_map_values(table: pa.Table, values: dict) -> pa.Table:
    from xmatch.sky.skymap import with_skymap_values

    return with_skymap_values(table, {k: values[k] for k in ("probdensity", "searched_prob")})


def _empty_alert_candidates() -> pa.Table:
    from xmatch.history.store import DETECTION_SCHEMA

    fields = [DETECTION_SCHEMA.field(c) for c in ALERT_CANDIDATE_COLUMNS]
    empty = pa.schema(fields).empty_table().append_column(
        pa.field("days_after_event", pa.float64(), metadata={"unit": "d"}),
        pa.array([], pa.float64()))
    return _with_map_values(empty, {"probdensity": np.empty(0), "searched_prob": np.empty(0)})


# ---------------------------------------------------------------------- outputs

def write_follow_up(follow_up: FollowUp, directory, fmt: str = "ecsv") -> list[Path]:
    """Write ``<superevent>.json`` (the summary) and, unless it is a retraction,
    ``<superevent>.alerts.<fmt>`` and ``<superevent>.galaxies.<fmt>`` into ``directory``,
    each replacing the superevent's earlier files whole (written aside, then renamed); a
    retraction removes the candidate files. The paths written."""
    from xmatch.io.tables import described, write_table

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    event = follow_up.superevent_id
    candidates = {"alerts": follow_up.alerts, "galaxies": follow_up.galaxies}
    written = []
    for kind, table in candidates.items():
        path = directory / f"{event}.{kind}.{fmt}"
        if follow_up.is_retraction or table is None:
            path.unlink(missing_ok=True)
            continue
        if kind == "alerts":
            table = described(table, ra="ra_deg", dec="dec_deg", identifier="detection_id")
        write_table(table, fmt, path)
        written.append(path)
    path = directory / f"{event}.json"
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(follow_up.summary, indent=2) + "\n")
    temporary.replace(path)
    written.append(path)
    return written


def candidates_message(follow_up: FollowUp, limit: int) -> bytes:
    """The JSON message published for a notice: its summary, and the first ``limit`` alert
    and galaxy candidates (their count is in the summary)."""
    message = dict(follow_up.summary)
    message["alert_candidates"] = _rows(follow_up.alerts, limit)
    message["galaxy_candidates"] = (None if follow_up.galaxies is None
                                    else _rows(follow_up.galaxies, limit))
    return json.dumps(message, allow_nan=False).encode()


def _rows(table: pa.Table, limit: int) -> list[dict]:
    from xmatch.io.tables import json_ready

    return [json_ready(row) for row in table.slice(0, limit).to_pylist()]
