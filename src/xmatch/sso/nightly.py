"""Nightly ephemeris caches: every object's state at the night's reference instant (carried
there by n-body integration) and the HEALPix pixels its track crosses, from one site,
stored as a catalog of the store and served by the same servers.

A night lasts a day: from local noon to local noon at the site (local mean time from the MPC
longitude), or from 12:00 to 12:00 UTC for Rubin's dayObs. Its date is named in one of
:data:`NIGHT_CONVENTIONS`, by default the one of the site's survey (:data:`SURVEY_NIGHTS`),
so that ``--night`` takes the date a survey's archive uses. Within the night,
positions are exact two-body positions from the reference state (light time iterated,
topocentric); the observer's and the Sun's barycentric vectors are Chebyshev series fitted
over the night, so a query needs no ephemeris file and no Earth-rotation call.

On disk, a row is one object in one HEALPix pixel at :data:`ROW_ORDER` that its track
crosses, with the list of finer :data:`TRACK_ORDER` pixels crossed there; the row's
``ra_deg``/``dec_deg`` are that pixel's centre, so the store's partitioning puts each row
in the partition its track runs through and a router finds it like any other row.
"""

from __future__ import annotations

import datetime
import functools
import logging
import re
import time
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from xmatch.errors import InputError, UnknownColumnError, unknown_columns
from xmatch.index.results import (
    POSITION_ANGLE_COLUMN,
    QUERY_COLUMN,
    SEPARATION_COLUMN,
    left_join_of_matches,
)
from xmatch.kernels.ephemeris import sample_tracks, sso_cone_one, sso_cones, track_pixels
from xmatch.kernels.orbits import APPARENT_SIZE, GM_SUN
from xmatch.loaders import inline_chunks
from xmatch.sky.healpix import pixel_centres_deg
from xmatch.specs import CatalogSpec
from xmatch.sso.ephemeris import PLACE_SCHEMA, orbit_states, place_table
from xmatch.sso.observers import Observatory, observatory, observer_posvel, sun_posvel
from xmatch.sso.propagate import propagate_states
from xmatch.store.data_dir import DataDirectory
from xmatch.store.writer import LoadOptions, build_catalog
from xmatch.timescales import tdb_mjd, utc_datetime, utc_iso

log = logging.getLogger(__name__)

LOADER_NAME = "sso_night"
#: Pixels of the track index (0.23 deg): a 0.4 deg cone touches a few dozen.
TRACK_ORDER = 8
#: Pixels that decide a row's partition; partitions never go finer than this.
ROW_ORDER = 5
#: Track samples per night (interval ends and midpoints): every 15 minutes.
TRACK_INTERVALS = 48
#: Chebyshev degree of the observer's and the Sun's vectors over a night (exact to ~1e-14 AU).
OBSERVER_DEGREE = 24
OBSERVER_SAMPLES = 97

STATE_COLUMNS = ("x_au", "y_au", "z_au", "vx_au_d", "vy_au_d", "vz_au_d")
OBJECT_COLUMNS = ("designation", "name", "kind", "h_mag", "g_slope", "comet_k", "synthetic")
#: Default radius of SSO cones and of the ``sso`` annotation: orbits of numbered objects
#: predict to well under 1 arcsec, short-arc ones (new NEOs) to several.
DEFAULT_RADIUS_ARCSEC = 5.0
#: What a match of a nightly cache can return: the predicted place, then the object.
PAYLOAD_COLUMNS = (*PLACE_SCHEMA.names, "kind", "close_approach")
DATE_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2}$")

#: How a night's date is named, and how messages and titles say so. ``local``: the local
#: date at the night's start (local noon to local noon). ``utc``: the UTC date on which the
#: night's local midnight falls (still local noon to local noon). ``dayobs``: Rubin's dayObs,
#: the date in the UTC-12h time zone (12:00 UTC on the date to 12:00 UTC the next day).
NIGHT_CONVENTIONS = {"local": "local date at its start", "utc": "UTC date", "dayobs": "dayObs"}
#: The survey of a site and how its archive names nights, by MPC code: ZTF by the UTC date
#: (``ztf_public_20231012`` holds the local evening of 11 October at Palomar), Rubin by
#: dayObs. A site not listed names its nights by the local date.
SURVEY_NIGHTS = {"I41": ("ZTF", "utc"), "X05": ("Rubin", "dayobs")}


def default_night_convention(site_code: str) -> str:
    """How the nights of a site are named unless told otherwise: its survey's convention
    (:data:`SURVEY_NIGHTS`), else ``local``."""
    return SURVEY_NIGHTS.get(site_code, (None, "local"))[1]


def check_night_convention(convention) -> str:
    """A night convention named by a user, checked (``InputError`` otherwise)."""
    if convention not in NIGHT_CONVENTIONS:
        raise InputError(f"night convention {convention!r} is not allowed; use local (the "
                         "local date at the night's start), utc (the UTC date of its local "
                         "midnight) or dayobs (Rubin's dayObs: 12:00 to 12:00 UTC)")
    return convention


def _survey_of(site_code: str, convention: str) -> str | None:
    """The survey whose nights these are: the site's, if it names nights this way."""
    survey, survey_convention = SURVEY_NIGHTS.get(site_code, (None, None))
    return survey if convention == survey_convention else None


def night_start_after_midnight(site: Observatory, convention: str) -> datetime.timedelta:
    """When the night named D starts, after 00:00 UTC on D, to the whole second (floored:
    the night's bounds are whole UTC seconds, as its ``start_utc`` and ``end_utc`` say)."""
    east = datetime.timedelta(hours=((site.longitude_deg + 180.0) % 360.0 - 180.0) / 15.0)
    noon = datetime.timedelta(hours=12)
    if convention == "dayobs":
        start = noon
    elif convention == "local":
        start = noon - east
    else:  # utc: the local noon before the one local midnight that falls on UTC date D
        start = -east % datetime.timedelta(days=1) - noon
    return start - datetime.timedelta(microseconds=start.microseconds)


def night_date(t_tdb: float, site: Observatory, convention: str) -> str:
    """The date (YYYY-MM-DD) of the night of ``site`` in ``convention`` that holds a TDB
    instant (either night for an instant on the bound two nights share)."""
    start = utc_datetime(t_tdb) - night_start_after_midnight(site, convention)
    return start.date().isoformat()


@dataclass(frozen=True)
class Night:
    """One night at one site, a day long: its date in its naming convention, its bounds
    (TDB MJD and whole UTC seconds) and its reference instant, the middle."""

    date: str
    observatory: str
    start_tdb: float
    end_tdb: float
    start_utc: str
    end_utc: str
    # Caches built before there were conventions named their nights by the local date.
    convention: str = "local"

    @property
    def reference_tdb(self) -> float:
        return 0.5 * (self.start_tdb + self.end_tdb)

    def to_dict(self) -> dict:
        return {"date": self.date, "observatory": self.observatory,
                "start_tdb": self.start_tdb, "end_tdb": self.end_tdb,
                "start_utc": self.start_utc, "end_utc": self.end_utc,
                "convention": self.convention}

    def describe(self) -> str:
        """The night in its convention and its UTC window, to the minute: "ZTF night
        2023-10-12 (UTC date) at I41: 2023-10-11T19:47 to 2023-10-12T19:47 UTC"."""
        survey = _survey_of(self.observatory, self.convention)
        return (f"{survey + ' ' if survey else ''}night {self.date} "
                f"({NIGHT_CONVENTIONS[self.convention]}) at {self.observatory}: "
                f"{self.start_utc[:16]} to {self.end_utc[:16]} UTC")

    def check(self, t_tdb, name: str = "") -> None:
        """Raise ``InputError`` if any TDB instant lies outside the night."""
        t = np.atleast_1d(np.asarray(t_tdb, np.float64))
        outside = np.flatnonzero(~((t >= self.start_tdb) & (t <= self.end_tdb)))
        if len(outside):
            i = int(outside[0])
            when = utc_iso(t[i])
            where = f" (position {i})" if t.size > 1 else ""
            raise InputError(
                f"time {when} UTC{where} is outside the night {self.date} "
                f"({NIGHT_CONVENTIONS[self.convention]}) at {self.observatory}"
                f"{' of ' + name if name else ''}, which runs from {self.start_utc} to "
                f"{self.end_utc} UTC; build the cache of that night")


def night_window(date: str, site: Observatory, convention: str | None = None) -> Night:
    """The night named ``date`` at ``site``.

    Parameters
    ----------
    date : str
        YYYY-MM-DD, in ``convention``.
    site : Observatory
    convention : {None, 'local', 'utc', 'dayobs'}
        How ``date`` names the night (:data:`NIGHT_CONVENTIONS`); None: the site's default
        (:func:`default_night_convention`).

    Returns
    -------
    Night

    Raises
    ------
    InputError
        For a date that is not a valid YYYY-MM-DD or an unknown convention.
    """
    if convention is None:
        convention = default_night_convention(site.code)
    check_night_convention(convention)
    if not DATE_PATTERN.match(str(date)):
        raise InputError(f"night {date!r} is not a date YYYY-MM-DD")
    try:
        day = datetime.date.fromisoformat(date)
    except ValueError as exc:
        raise InputError(f"night {date!r} is not a valid date: {exc}") from None
    start = datetime.datetime(day.year, day.month, day.day) + night_start_after_midnight(
        site, convention)
    end = start + datetime.timedelta(days=1)
    start_iso, end_iso = start.isoformat(timespec="seconds"), end.isoformat(timespec="seconds")
    bounds = tdb_mjd([start_iso, end_iso], "utc")
    return Night(date, site.code, float(bounds[0]), float(bounds[1]), start_iso, end_iso,
                 convention)


class ObserverTrack:
    """Chebyshev series of the observer's and the Sun's barycentric position and velocity
    over a night, fitted at Chebyshev points (12 series of degree ``OBSERVER_DEGREE``)."""

    def __init__(self, night: Night):
        self.night = night
        site = observatory(night.observatory)
        nodes = np.cos(np.pi * (np.arange(OBSERVER_SAMPLES) + 0.5) / OBSERVER_SAMPLES)
        times = self._time(nodes)
        observer, observer_velocity = observer_posvel(site, times)
        sun, sun_velocity = sun_posvel(times)
        values = np.concatenate([observer, observer_velocity, sun, sun_velocity], axis=1)
        self.coefficients = np.polynomial.chebyshev.chebfit(nodes, values, OBSERVER_DEGREE)

    def _time(self, x):
        half = 0.5 * (self.night.end_tdb - self.night.start_tdb)
        return self.night.reference_tdb + half * x

    def at(self, t_tdb) -> tuple[np.ndarray, ...]:
        """Observer position, velocity, Sun position, velocity at TDB instants, each (n, 3)."""
        t = np.atleast_1d(np.asarray(t_tdb, np.float64))
        half = 0.5 * (self.night.end_tdb - self.night.start_tdb)
        values = np.polynomial.chebyshev.chebval((t - self.night.reference_tdb) / half,
                                                 self.coefficients).T
        return tuple(np.ascontiguousarray(values[:, 3 * i:3 * i + 3]) for i in range(4))


@functools.lru_cache(maxsize=32)
def observer_track(night: Night) -> ObserverTrack:
    """The observer series of a night, fitted once per process (every slice of a cache and
    the build share it)."""
    return ObserverTrack(night)


# ------------------------------------------------------------------------------ build


class NightRowsLoader:
    """Feeds the rows of a computed night to the store's writer."""

    name = LOADER_NAME
    description = "nightly solar-system ephemeris cache (computed by xmatch sso build)"

    def __init__(self, table: pa.Table, synthetic: bool):
        self.table = table
        self.synthetic = synthetic

    def chunks(self, source, spec, chunk_rows):
        return inline_chunks(self.table, source, chunk_rows)


def _column(table: pa.Table, name: str) -> np.ndarray:
    return table.column(name).to_numpy(zero_copy_only=False)


def night_rows(orbits: pa.Table, night: Night, *, step_days: float | None = None,
               chunk_objects: int = 100_000, progress: bool = False) -> pa.Table:
    """The cache's rows for ``orbits``: states at the night's reference epoch (n-body from
    the element epochs) and, per object and :data:`ROW_ORDER` pixel, the track pixels."""
    states, epochs = orbit_states(orbits)
    options = {} if step_days is None else {"step_days": step_days}
    reference = night.reference_tdb
    at_reference, close = propagate_states(states, epochs, reference, progress=progress,
                                           **options)
    samples = night.start_tdb + (night.end_tdb - night.start_tdb) * np.arange(
        2 * TRACK_INTERVALS + 1) / (2 * TRACK_INTERVALS)
    observer, observer_velocity, sun, sun_velocity = observer_track(night).at(samples)
    dt = samples - reference
    offsets_parts, pixel_parts = [np.zeros(1, np.int64)], []
    total = 0
    for start in range(0, len(at_reference), chunk_objects):
        tracks = sample_tracks(at_reference[start:start + chunk_objects], dt, observer,
                               observer_velocity, sun, sun_velocity, GM_SUN)
        offsets, pixels = track_pixels(tracks, TRACK_ORDER)
        offsets_parts.append(offsets[1:] + total)
        pixel_parts.append(pixels)
        total += len(pixels)
    offsets = np.concatenate(offsets_parts)
    pixels = np.concatenate(pixel_parts) if pixel_parts else np.empty(0, np.int64)
    owner = np.repeat(np.arange(len(at_reference)), np.diff(offsets))
    # One row per (object, ROW_ORDER pixel): pixels of an object are sorted, so its
    # coarse groups are consecutive runs.
    coarse = pixels >> (2 * (TRACK_ORDER - ROW_ORDER))
    new_group = np.ones(len(pixels), bool)
    new_group[1:] = (owner[1:] != owner[:-1]) | (coarse[1:] != coarse[:-1])
    group_start = np.flatnonzero(new_group)
    row_object = owner[group_start]
    row_pixel = coarse[group_start]
    list_offsets = np.append(group_start, len(pixels)).astype(np.int32)
    ra_centre, dec_centre = pixel_centres_deg(ROW_ORDER, row_pixel)
    columns = {
        "ra_deg": ra_centre, "dec_deg": dec_centre,
        "track_pixels": pa.ListArray.from_arrays(pa.array(list_offsets), pa.array(pixels)),
    }
    for name in OBJECT_COLUMNS:
        columns[name] = orbits.column(name).take(pa.array(row_object))
    for i, name in enumerate(STATE_COLUMNS):
        columns[name] = at_reference[row_object, i]
    columns["close_approach"] = close[row_object]
    return pa.table(columns)


def designation_numbers(table: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """Each row's object number (designations numbered in order of first appearance) and
    each object's first row, ascending."""
    designation = table.column("designation").combine_chunks()
    number = pc.index_in(designation, value_set=pc.unique(designation)).to_numpy(
        zero_copy_only=False).astype(np.int64)
    _, first = np.unique(number, return_index=True)
    return number, first


def first_orbit_of_each(orbits: pa.Table) -> tuple[pa.Table, int]:
    """The orbits with each designation once (its first orbit: an object in several files
    is taken from the first given), and how many were dropped."""
    _, first = designation_numbers(orbits)
    if len(first) == orbits.num_rows:
        return orbits, 0
    return orbits.take(first), orbits.num_rows - len(first)


def cache_name(night: str, observatory_code: str) -> str:
    return f"sso_{observatory_code.lower()}_{night.replace('-', '')}"


def build_night(orbits: pa.Table, night: str, observatory_code: str, *,
                data: DataDirectory | str | None = None, name: str | None = None,
                source: str = "orbits", step_days: float | None = None,
                options: LoadOptions | None = None, progress: bool = False,
                night_convention: str | None = None):
    """Build and publish the ephemeris cache of ``orbits`` for ``night`` at an MPC site.

    ``night`` is a date in ``night_convention`` (``local``, ``utc`` or ``dayobs``, see
    :data:`NIGHT_CONVENTIONS`); None takes the site's default: ``utc`` at I41 (ZTF),
    ``dayobs`` at X05 (Rubin), ``local`` elsewhere. The cache records the convention with
    its night. Returns the opened catalog. Nothing becomes visible if anything fails.
    """
    from xmatch.store.catalog import open_catalog

    site = observatory(observatory_code)
    window = night_window(night, site, night_convention)
    if orbits.num_rows == 0:
        raise InputError(f"no orbits in {source}: nothing to build")
    orbits, repeated = first_orbit_of_each(orbits)
    if repeated:
        log.warning("%d orbit(s) repeat a designation given earlier; the first is kept",
                    repeated)
    started = time.perf_counter()
    rows = night_rows(orbits, window, step_days=step_days, progress=progress)
    seconds = time.perf_counter() - started
    data = data if isinstance(data, DataDirectory) else DataDirectory(data)
    name = name or cache_name(night, site.code)
    synthetic = bool(pc.any(orbits.column("synthetic")).as_py())
    spec = CatalogSpec(
        name=name, ra="ra_deg", dec="dec_deg", loader=LOADER_NAME,
        title=f"Solar-system objects, {window.describe()}",
        description=f"{orbits.num_rows} orbits from {source}, n-body to the night's "
                    "reference epoch; two-body within the night",
        loader_options={"night": window.to_dict(), "orbits": int(orbits.num_rows),
                        "repeated_orbits_dropped": repeated, "source": source,
                        "build_seconds": round(seconds, 3)},
        threshold_rows=500_000, highest_order=ROW_ORDER, synthetic=synthetic,
        default_radius_arcsec=DEFAULT_RADIUS_ARCSEC)
    options = options or LoadOptions(workers=1, progress=progress)
    options = LoadOptions(**{**options.__dict__, "highest_order": ROW_ORDER})
    build_catalog(spec, [source], NightRowsLoader(rows, synthetic), data, options)
    return open_catalog(name, data)


# ------------------------------------------------------------------------------ query


def is_night_cache(catalog) -> bool:
    return catalog.spec.loader == LOADER_NAME


def night_of(catalog) -> Night | None:
    """The night of a nightly cache (None for any other catalog)."""
    return Night(**catalog.spec.loader_options["night"]) if is_night_cache(catalog) else None


def cache_covering(nights: dict[str, Night], t_tdb: float, site: str
                   ) -> tuple[str | None, list[str]]:
    """Of nightly caches (name -> night), the one of observatory ``site`` whose night holds
    the TDB instant (None if none does), and the names of every cache of that site."""
    caches = sorted(name for name, night in nights.items() if night.observatory == site)
    for name in caches:
        if nights[name].start_tdb <= t_tdb <= nights[name].end_tdb:
            return name, caches
    return None, caches


def no_cache_covers(site: str, t_tdb: float, caches: list[str]) -> str:
    """The error when no cache of observatory ``site`` covers a TDB instant: it names the
    night to build, in the site's default convention, and the command that builds it."""
    convention = default_night_convention(site)
    date = night_date(t_tdb, observatory(site), convention)
    survey = _survey_of(site, convention)
    whose = f"{survey}'s " if survey else ""
    return (f"no ephemeris cache of observatory {site} covers {utc_iso(t_tdb)} UTC (caches of "
            f"{site}: {', '.join(caches) or 'none'}); build night {date} ({whose}"
            f"{NIGHT_CONVENTIONS[convention]}) with `xmatch sso build --orbits FILE --night "
            f"{date} --observatory {site}`")


def find_cache(data, t_tdb: float, observatory_code: str | None = None,
               name: str | None = None):
    """The nightly cache ``name``, or the one of ``observatory_code`` whose night holds the
    TDB instant, from a data directory (``InputError`` naming what exists otherwise)."""
    from xmatch.store.catalog import open_catalog

    data = data if isinstance(data, DataDirectory) else DataDirectory(data)
    if name:
        catalog = open_catalog(name, data)
        if not is_night_cache(catalog):
            raise InputError(f"{name} is not a solar-system ephemeris cache")
        night_of(catalog).check(t_tdb, name)
        return catalog
    if not observatory_code:
        raise InputError("give the observatory code or the cache's name")
    site = observatory(observatory_code).code
    catalogs = {candidate: open_catalog(candidate, data) for candidate in data.names()}
    nights = {n: night_of(c) for n, c in catalogs.items() if is_night_cache(c)}
    found, caches = cache_covering(nights, t_tdb, site)
    if found is None:
        raise InputError(no_cache_covers(site, t_tdb, caches))
    return catalogs[found]


class NightIndex:
    """A night cache in memory: distinct objects, their reference states, and the sorted
    (track pixel, object) pairs of the rows held here."""

    def __init__(self, rows: pa.Table, night: Night, name: str = ""):
        self.night = night
        self.name = name
        row_object, first = designation_numbers(rows)
        self.objects = rows.select(list(OBJECT_COLUMNS) + ["close_approach"]).take(first)
        self.states = np.ascontiguousarray(np.stack(
            [_column(rows, c)[first] for c in STATE_COLUMNS], axis=1).reshape(-1, 6))
        lists = rows.column("track_pixels").combine_chunks()
        pixels = lists.flatten().to_numpy(zero_copy_only=False).astype(np.int64)
        counts = pc.list_value_length(lists).to_numpy(zero_copy_only=False).astype(np.int64)
        pair_objects = np.repeat(row_object, counts)
        order = np.argsort(pixels, kind="stable")
        self.pair_pixels = np.ascontiguousarray(pixels[order], np.int64)
        self.pair_objects = np.ascontiguousarray(pair_objects[order], np.int64)

    @classmethod
    def from_catalog(cls, catalog, partitions=None) -> NightIndex:
        partitions = catalog.partitions if partitions is None else partitions
        tables = [catalog.read_partition(p) for p in partitions]
        rows = pa.concat_tables(tables) if tables else None
        night = night_of(catalog)
        if rows is None:
            rows = empty_night_rows()
        return cls(rows, night, catalog.name)

    def __len__(self) -> int:
        return self.objects.num_rows

    @property
    def observer_track(self) -> ObserverTrack:
        return observer_track(self.night)

    def _places(self, objects, separations, places, extra: dict | None = None) -> pa.Table:
        chosen = self.objects.take(pa.array(objects, pa.int64()))
        table = place_table(chosen, places)
        columns = {**(extra or {})}
        columns.update({f.name: table.column(f.name) for f in PLACE_SCHEMA})
        columns[SEPARATION_COLUMN] = np.degrees(separations) * 3600.0
        columns["kind"] = chosen.column("kind")
        columns["close_approach"] = chosen.column("close_approach")
        return pa.table(columns)

    def cone(self, ra_deg: float, dec_deg: float, radius_arcsec: float, t_tdb: float
             ) -> pa.Table:
        """Objects inside a cone at one TDB instant of the night, nearest first."""
        self.night.check(t_tdb, self.name)
        observer, observer_velocity, sun, sun_velocity = self.observer_track.at(t_tdb)
        found, separations, places = sso_cone_one(
            self.pair_pixels, self.pair_objects, TRACK_ORDER, self.states,
            float(t_tdb) - self.night.reference_tdb, observer[0], observer_velocity[0],
            sun[0], sun_velocity[0], GM_SUN, np.radians(ra_deg), np.radians(dec_deg),
            np.radians(radius_arcsec / 3600.0))
        order = np.argsort(separations, kind="stable")
        return self._places(found[order], separations[order], places[order])

    def cones(self, ra_deg, dec_deg, radius_arcsec, t_tdb) -> tuple[np.ndarray, pa.Table]:
        """Many cones, each at its own instant: CSR offsets (q+1) and the matches, with a
        ``query_index`` column, nearest first within each query."""
        ra = np.ascontiguousarray(np.radians(ra_deg), np.float64)
        t = np.ascontiguousarray(np.broadcast_to(np.asarray(t_tdb, np.float64), ra.shape))
        self.night.check(t, self.name)
        radius = np.ascontiguousarray(np.broadcast_to(
            np.radians(np.asarray(radius_arcsec, np.float64) / 3600.0), ra.shape))
        observer, observer_velocity, sun, sun_velocity = self.observer_track.at(t)
        offsets, objects, separations, places = sso_cones(
            self.pair_pixels, self.pair_objects, TRACK_ORDER, self.states,
            t - self.night.reference_tdb, observer, observer_velocity, sun, sun_velocity,
            GM_SUN, ra, np.ascontiguousarray(np.radians(dec_deg), np.float64), radius)
        query = np.repeat(np.arange(len(ra)), np.diff(offsets))
        order = np.lexsort((separations, query))
        places = places[order] if len(order) else np.empty((0, APPARENT_SIZE))
        table = self._places(objects[order], separations[order], places,
                             {QUERY_COLUMN: query[order]})
        return offsets, table

    def payload_columns(self, columns: list[str] | None) -> list[str]:
        """The columns of a matched object a request asks for (None: all of them)."""
        if columns is None:
            return list(PAYLOAD_COLUMNS)
        unknown = [c for c in columns if c not in PAYLOAD_COLUMNS]
        if unknown:
            raise UnknownColumnError(unknown_columns(unknown, self.name, PAYLOAD_COLUMNS))
        return list(columns)

    def crossmatch(self, ra_deg, dec_deg, *, radius_arcsec, t_tdb, mode: str = "all",
                   k: int = 1, columns: list[str] | None = None) -> pa.Table:
        """The objects near each position at its own TDB instant, as a left join like
        :meth:`xmatch.SkyIndex.crossmatch` (:mod:`xmatch.index.results`): ``query_index``,
        ``match_rank``, the payload columns, ``separation_arcsec`` and
        ``position_angle_deg`` (of the object's predicted place seen from the position); a
        position without a match appears once with nulls. ``mode``: ``"all"``,
        ``"nearest"`` or ``"k"`` (the ``k`` closest)."""
        from xmatch.index.sky_index import check_mode

        payload = self.payload_columns(columns)
        keep = check_mode(mode, k)
        ra = np.asarray(ra_deg, np.float64)
        dec = np.asarray(dec_deg, np.float64)
        _, table = self.cones(ra, dec, radius_arcsec, t_tdb)
        query = table.column(QUERY_COLUMN).to_numpy()
        found_ra = np.radians(table.column("ra_deg").to_numpy())
        found_dec = np.radians(table.column("dec_deg").to_numpy())
        angle = position_angle_deg(np.radians(ra[query]), np.radians(dec[query]), found_ra,
                                   found_dec)
        matches = table.select([*payload, SEPARATION_COLUMN]).append_column(
            POSITION_ANGLE_COLUMN, pa.array(angle, pa.float64()))
        return left_join_of_matches(matches, query, len(ra), keep or None)


def position_angle_deg(ra, dec, to_ra, to_dec) -> np.ndarray:
    """Position angle (degrees east of north, in [0, 360)) of (to_ra, to_dec) seen from
    (ra, dec); radians in."""
    east = np.cos(to_dec) * np.sin(to_ra - ra)
    north = np.cos(dec) * np.sin(to_dec) - np.sin(dec) * np.cos(to_dec) * np.cos(to_ra - ra)
    return np.degrees(np.arctan2(east, north)) % 360.0


def empty_night_rows() -> pa.Table:
    schema = pa.schema(
        [(c, pa.string()) for c in ("designation", "name", "kind")]
        + [(c, pa.float64()) for c in ("h_mag", "g_slope", "comet_k")]
        + [("synthetic", pa.bool_())] + [(c, pa.float64()) for c in STATE_COLUMNS]
        + [("close_approach", pa.bool_()), ("track_pixels", pa.list_(pa.int64()))])
    return schema.empty_table()
