"""How nights are named (``xmatch.sso.nightly``): by the local date at their start, by the
UTC date of their local midnight (ZTF's archive) or by Rubin's dayObs. Checked on the real
alerts bundled with xmatch (100 ZTF alerts of one exposure, 3 Rubin alerts of one visit), at
the exact bounds of each convention, in the error that names the night to build (in process
and through the servers), and through ``xmatch sso build`` in process."""

from __future__ import annotations

import gzip
import io
import re
from types import SimpleNamespace

import astropy.units as u
import fastavro
import grpc
import numpy as np
import pytest
from astropy.time import Time

from conftest import shared_file
from sso.conftest import MPC_CACHE, NEA_CACHE
from xmatch import DataDirectory, open_catalog
from xmatch.alerts import Schemas, decode, read_packets
from xmatch.alerts.samples import HERE as SAMPLES
from xmatch.cli import main
from xmatch.errors import InputError
from xmatch.sso.nightly import (
    LOADER_NAME,
    NIGHT_CONVENTIONS,
    SURVEY_NIGHTS,
    Night,
    build_night,
    default_night_convention,
    find_cache,
    night_date,
    night_of,
    night_window,
)
from xmatch.sso.observers import observatory
from xmatch.timescales import tdb_mjd, utc_iso
from xmatch.v1 import xmatch_pb2, xmatch_pb2_grpc

#: 100 real ZTF alerts of one exposure: jd 2459415.8825347, 2021-07-20 09:10:51 UTC, 02:10
#: local mean time at Palomar on 20 July, so in the local night that began on the 19th.
ZTF_ALERTS = SAMPLES / "alerts_2021720_programid1.tar.gz"
#: 3 real Rubin alerts of visit 2025090500225 (dayObs 2025-09-05), 2025-09-06 07:55 UTC.
RUBIN_ALERTS = SAMPLES / "rubin_lsstcam_20250905_3.tar.gz"
SECOND = 1.0 / 86400.0
MILLISECOND = SECOND / 1000.0
#: Sites for the properties that hold everywhere: Palomar (116.9 deg W), Cerro Pachon
#: (70.7 deg W), Haleakala (156.3 deg W), Siding Spring (149.1 deg E), the geocentre (0 deg).
SITES = ("I41", "X05", "F51", "E12", "500")


def alert_times_tdb(path) -> np.ndarray:
    """TDB MJDs of the alerts of a file, from their ``mjd_tai`` as xmatch reads them."""
    schemas = Schemas()
    alerts = decode([packet.data for packet in read_packets([path], schemas)], schemas)
    assert alerts.column("error").null_count == alerts.num_rows
    return np.atleast_1d(tdb_mjd(alerts.column("mjd_tai").to_numpy(), "tai"))


def assert_covers(night: Night, t_tdb) -> None:
    t = np.atleast_1d(t_tdb)
    assert ((t >= night.start_tdb) & (t <= night.end_tdb)).all(), night.describe()
    night.check(t)


def assert_does_not_cover(night: Night, t_tdb) -> None:
    t = np.atleast_1d(t_tdb)
    assert ((t < night.start_tdb) | (t > night.end_tdb)).all(), night.describe()
    convention = re.escape(NIGHT_CONVENTIONS[night.convention])
    with pytest.raises(InputError, match=f"outside the night {night.date} \\({convention}\\) "
                                         f"at {night.observatory}"):
        night.check(t)


def nea_lines(n: int) -> list[str]:
    with gzip.open(shared_file("sso/NEA.txt.gz"), "rt") as f:
        return [next(f) for _ in range(n)]


# ---------------------------------------------------------------- 1. the real alerts


def test_ztf_alerts_are_in_the_night_of_their_utc_date():
    """ZTF names nights by the UTC date (ztf_public_20210720 holds this exposure): at I41 the
    night "2021-07-20" covers the alerts, "2021-07-19" does not; by the local date the same
    night is "2021-07-19"."""
    t = alert_times_tdb(ZTF_ALERTS)
    assert len(t) == 100 and utc_iso(t.min()).startswith("2021-07-20T09:10:5")
    palomar = observatory("I41")
    assert default_night_convention("I41") == "utc"
    by_utc_date = night_window("2021-07-20", palomar, "utc")
    assert night_window("2021-07-20", palomar) == by_utc_date  # utc is I41's default
    assert_covers(by_utc_date, t)
    assert_does_not_cover(night_window("2021-07-19", palomar, "utc"), t)
    assert_does_not_cover(night_window("2021-07-21", palomar, "utc"), t)
    by_local_date = night_window("2021-07-19", palomar, "local")
    assert_covers(by_local_date, t)
    assert_does_not_cover(night_window("2021-07-20", palomar, "local"), t)
    # One night, two names.
    assert (by_local_date.start_tdb, by_local_date.end_tdb) == (by_utc_date.start_tdb,
                                                                by_utc_date.end_tdb)
    assert night_date(t[0], palomar, "utc") == "2021-07-20"
    assert night_date(t[0], palomar, "local") == "2021-07-19"


def test_rubin_alerts_are_in_the_night_of_their_dayobs():
    t = alert_times_tdb(RUBIN_ALERTS)
    assert len(t) == 3
    schemas = Schemas()
    visits = set()
    for packet in read_packets([RUBIN_ALERTS], schemas):
        for schema, body in schemas.split(packet.data):
            record = fastavro.schemaless_reader(io.BytesIO(body), schema.parsed, None)
            visits.add(record["diaSource"]["visit"])
    assert visits == {2025090500225}  # Rubin's visit ids begin with their dayObs
    pachon = observatory("X05")
    assert default_night_convention("X05") == "dayobs"
    dayobs = night_window("2025-09-05", pachon)
    assert dayobs.convention == "dayobs"
    assert_covers(dayobs, t)
    assert_does_not_cover(night_window("2025-09-04", pachon), t)
    assert_does_not_cover(night_window("2025-09-06", pachon), t)
    assert night_date(t[0], pachon, "dayobs") == "2025-09-05"


# -------------------------------------------------------------------- 2. the bounds


def assert_exact_bounds(night: Night, start_utc: str) -> None:
    """The night starts at ``start_utc`` and lasts a day, both ends inside, a millisecond
    beyond either outside."""
    start = Time(start_utc, scale="utc")
    end = start + 1 * u.day  # no leap second on these dates
    assert (night.start_utc, night.end_utc) == (start.isot[:19], end.isot[:19])
    assert night.start_tdb == pytest.approx(start.tdb.mjd, abs=1e-3 * MILLISECOND)
    assert night.end_tdb == pytest.approx(end.tdb.mjd, abs=1e-3 * MILLISECOND)
    assert_covers(night, [night.start_tdb, night.reference_tdb, night.end_tdb])
    assert_does_not_cover(night, night.start_tdb - MILLISECOND)
    assert_does_not_cover(night, night.end_tdb + MILLISECOND)


def test_a_dayobs_runs_from_noon_to_noon_utc():
    pachon = observatory("X05")
    night = night_window("2025-09-05", pachon, "dayobs")
    assert_exact_bounds(night, "2025-09-05T12:00:00")
    # Consecutive dayObs nights meet at 12:00 UTC exactly.
    assert night_window("2025-09-04", pachon, "dayobs").end_tdb == night.start_tdb
    assert night_date(night.start_tdb + MILLISECOND, pachon, "dayobs") == "2025-09-05"
    assert night_date(night.start_tdb - MILLISECOND, pachon, "dayobs") == "2025-09-04"
    # The convention, not the site, sets the bounds.
    assert night_window("2025-09-05", observatory("I41"), "dayobs").start_utc == \
        "2025-09-05T12:00:00"


@pytest.mark.parametrize("site, date, convention, local_noon_utc", [
    # Palomar, 243.14022 deg E = -7.790652 h: local mean noon is 19:47:26.35 UTC, and the
    # local midnight after it (07:47 UTC) falls on the next UTC date.
    ("I41", "2021-07-19", "local", "2021-07-19T19:47:26"),
    ("I41", "2021-07-20", "utc", "2021-07-19T19:47:26"),
    # Cerro Pachon, 289.25058 deg E = -4.716628 h: local mean noon at 16:42:59.86 UTC.
    ("X05", "2025-09-05", "local", "2025-09-05T16:42:59"),
    ("X05", "2025-09-06", "utc", "2025-09-05T16:42:59"),
    # Siding Spring, 149.0642 deg E = +9.937613 h: local noon at 02:03:44.7 UTC, local
    # midnight at 14:03 UTC on the same date, so both conventions give the same name.
    ("E12", "2025-09-05", "local", "2025-09-05T02:03:44"),
    ("E12", "2025-09-05", "utc", "2025-09-05T02:03:44"),
])
def test_local_and_utc_nights_run_from_local_noon_to_local_noon(site, date, convention,
                                                                local_noon_utc):
    place = observatory(site)
    east_hours = ((place.longitude_deg + 180.0) % 360.0 - 180.0) / 15.0
    # Local mean noon from the longitude (on the local date, which at these sites is the
    # UTC date of the noon too); the night starts at it, floored to the second.
    noon = Time(f"{local_noon_utc[:10]}T12:00:00", scale="utc") - east_hours * u.hour
    assert 0.0 <= (noon - Time(local_noon_utc, scale="utc")).sec < 1.0
    night = night_window(date, place, convention)
    assert (night.date, night.observatory, night.convention) == (date, site, convention)
    assert_exact_bounds(night, local_noon_utc)
    if convention == "utc":  # the local midnight falls on the UTC date of the name
        midnight = Time(night.start_utc, scale="utc") + 12 * u.hour
        assert midnight.isot[:10] == date


@pytest.mark.parametrize("convention", list(NIGHT_CONVENTIONS))
def test_every_instant_is_in_the_night_named_by_night_date(convention):
    """Random instants over two years, at five sites: the night ``night_date`` names covers
    the instant, and the nights before and after do not (except at their shared bound)."""
    rng = np.random.default_rng(41)
    for site in SITES:
        place = observatory(site)
        for t in rng.uniform(59215.0, 59945.0, 12):
            date = night_date(t, place, convention)
            night = night_window(date, place, convention)
            assert_covers(night, t)
            day = np.datetime64(date)
            for other in (day - 1, day + 1):
                assert_does_not_cover(night_window(str(other), place, convention), t)


def test_a_bad_convention_is_refused_in_one_line(nea_orbits, tmp_path):
    message = ("night convention 'ztf' is not allowed; use local (the local date at the "
               "night's start), utc (the UTC date of its local midnight) or dayobs (Rubin's "
               "dayObs: 12:00 to 12:00 UTC)")
    with pytest.raises(InputError) as error:
        night_window("2021-07-20", observatory("I41"), "ztf")
    assert str(error.value) == message
    assert isinstance(error.value, ValueError)
    with pytest.raises(InputError, match="night convention 'UTC' is not allowed"):
        build_night(nea_orbits.slice(0, 3), "2021-07-20", "I41", data=tmp_path,
                    night_convention="UTC")
    assert DataDirectory(tmp_path).names() == []


def test_caches_built_before_conventions_read_as_local():
    night = night_window("2019-07-05", observatory("I41"), "local")
    stored = night.to_dict()
    assert stored["convention"] == "local"
    del stored["convention"]
    old_cache = SimpleNamespace(spec=SimpleNamespace(loader=LOADER_NAME,
                                                     loader_options={"night": stored}))
    assert night_of(old_cache) == night
    assert night_of(old_cache).describe() == ("night 2019-07-05 (local date at its start) at "
                                              "I41: 2019-07-05T19:47 to 2019-07-06T19:47 UTC")


# ------------------------------------------------------------ 3. the night to build


def missing_cache(site: str, t_tdb: float, caches: str, date: str, naming: str) -> str:
    return (f"no ephemeris cache of observatory {site} covers {utc_iso(t_tdb)} UTC (caches of "
            f"{site}: {caches}); build night {date} ({naming}) with `xmatch sso build "
            f"--orbits FILE --night {date} --observatory {site}`")


def test_no_cache_names_the_night_to_build_in_the_sites_convention(tmp_path):
    nothing = DataDirectory(tmp_path / "nothing")
    ztf = alert_times_tdb(ZTF_ALERTS)[0]
    rubin = alert_times_tdb(RUBIN_ALERTS)[0]
    for site, t, date, naming in [
        ("I41", ztf, "2021-07-20", "ZTF's UTC date"),
        ("X05", rubin, "2025-09-05", "Rubin's dayObs"),
        # Haleakala: 09:10 UTC is 22:46 local mean time on the 19th.
        ("F51", ztf, "2021-07-19", "local date at its start"),
    ]:
        with pytest.raises(InputError) as error:
            find_cache(nothing, t, site)
        assert str(error.value) == missing_cache(site, t, "none", date, naming)


@pytest.fixture(params=["embedded", "router"])
def stub(request):
    address = (request.getfixturevalue("sso_embedded") if request.param == "embedded"
               else request.getfixturevalue("sso_cluster").address)
    with grpc.insecure_channel(address) as channel:
        yield xmatch_pb2_grpc.XmatchStub(channel)


def test_servers_name_the_night_to_build(stub):
    for site, path, cache, date, naming in [
        ("I41", ZTF_ALERTS, NEA_CACHE, "2021-07-20", "ZTF's UTC date"),
        ("X05", RUBIN_ALERTS, MPC_CACHE, "2025-09-05", "Rubin's dayObs"),
    ]:
        t = alert_times_tdb(path)[0]
        with pytest.raises(grpc.RpcError) as caught:
            stub.SsoCone(xmatch_pb2.SsoConeRequest(observatory=site, ra_deg=10.0, dec_deg=1.0,
                                                   radius_arcsec=30.0, mjd=t,
                                                   time_scale="tdb"))
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
        assert caught.value.details() == missing_cache(site, t, cache, date, naming)


# ----------------------------------------------------------------- 4. command line


def run(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_builds_the_night_a_ztf_user_names(tmp_path, capsys):
    orbits = tmp_path / "nea_small.txt"
    orbits.write_text("".join(nea_lines(12)))
    data = tmp_path / "data"
    ztf = utc_iso(alert_times_tdb(ZTF_ALERTS)[0])
    window = "2021-07-19T19:47 to 2021-07-20T19:47 UTC"
    # The site's convention by default: ZTF's UTC date.
    code, out, err = run(capsys, "sso", "build", "--orbits", orbits, "--night", "2021-07-20",
                         "--observatory", "I41", "--data", data, "--no-progress")
    assert code == 0, err
    assert out.startswith(f"sso_i41_20210720: 12 objects, ZTF night 2021-07-20 (UTC date) at "
                          f"I41: {window}; ")
    catalog = open_catalog("sso_i41_20210720", DataDirectory(data))
    assert catalog.spec.title == f"Solar-system objects, ZTF night 2021-07-20 (UTC date) at " \
                                 f"I41: {window}"
    assert catalog.spec.loader_options["night"]["convention"] == "utc"
    assert night_of(catalog) == night_window("2021-07-20", observatory("I41"), "utc")
    # The alerts' instant finds it; an instant after its end names the next night.
    code, out, err = run(capsys, "sso", "cone", "10", "1", "--radius", "30arcsec", "--time",
                         ztf, "--observatory", "I41", "--data", data, "--format", "csv")
    assert code == 0, err
    code, out, err = run(capsys, "sso", "cone", "10", "1", "--radius", "30arcsec", "--time",
                         "2021-07-20T20:00:00", "--observatory", "I41", "--data", data)
    assert code == 2
    assert ("build night 2021-07-21 (ZTF's UTC date) with `xmatch sso build --orbits FILE "
            "--night 2021-07-21 --observatory I41`") in err
    # --night-convention overrides the site's: the same night, named by its local date.
    code, out, err = run(capsys, "sso", "build", "--orbits", orbits, "--night", "2021-07-19",
                         "--observatory", "I41", "--night-convention", "local", "--name",
                         "sso_local", "--data", data, "--no-progress")
    assert code == 0, err
    assert out.startswith(f"sso_local: 12 objects, night 2021-07-19 (local date at its start) "
                          f"at I41: {window}; ")
    code, out, err = run(capsys, "sso", "cone", "10", "1", "--radius", "30arcsec", "--time",
                         ztf, "--catalog", "sso_local", "--data", data, "--format", "csv")
    assert code == 0, err
    code, out, err = run(capsys, "sso", "build", "--orbits", orbits, "--night", "2021-07-20",
                         "--observatory", "I41", "--night-convention", "ztf", "--data", data)
    assert code == 2
    assert "argument --night-convention: invalid choice: 'ztf'" in err
    assert sorted(DataDirectory(data).names()) == ["sso_i41_20210720", "sso_local"]


def test_cli_builds_a_rubin_dayobs(tmp_path, capsys):
    """Ten orbits of the MPCORB excerpt (epoch 2025-11-21), for the dayObs of the Rubin
    alerts."""
    excerpt = tmp_path / "mpcorb_10.dat"
    with gzip.open(shared_file("sso/mpcorb_excerpt_K25BL.dat.gz"), "rt") as f:
        lines = [line for line in f if line[20:25] == "K25BL"][:10]
    excerpt.write_text("".join(lines))
    data = tmp_path / "data"
    code, out, err = run(capsys, "sso", "build", "--orbits", excerpt, "--night", "2025-09-05",
                         "--observatory", "X05", "--data", data, "--no-progress")
    assert code == 0, err
    assert out.startswith("sso_x05_20250905: 10 objects, Rubin night 2025-09-05 (dayObs) at "
                          "X05: 2025-09-05T12:00 to 2025-09-06T12:00 UTC; ")
    catalog = open_catalog("sso_x05_20250905", DataDirectory(data))
    assert_covers(night_of(catalog), alert_times_tdb(RUBIN_ALERTS))


def test_cli_help_says_which_convention_each_site_takes(capsys):
    assert main(["sso", "build", "--help"]) == 0
    text = capsys.readouterr().out
    assert "--night-convention {local,utc,dayobs}" in text
    for site, (survey, convention) in SURVEY_NIGHTS.items():
        assert re.search(rf"\n  {site} \({survey}\) +{convention} ", text), (site, text)
    assert re.search(r"\n  other sites +local ", text)
    assert "--night 2023-10-12 --observatory I41" in text  # an example
    assert "2023-10-11T19:47 to 2023-10-12T19:47 UTC" in text
