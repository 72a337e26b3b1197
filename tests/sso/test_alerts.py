"""Orbits and observations from Rubin alert packets: real v9 alerts (against skyfield's
two-body motion) and v11 packets made from the simulated one."""

from __future__ import annotations

import io
import json

import fastavro
import numpy as np
import pytest

from conftest import shared_file
from xmatch.alerts.avro import Schemas, container
from xmatch.sso.alerts import (
    C_AU_PER_DAY,
    KM_S_TO_AU_DAY,
    OBSERVATION_SCHEMA,
    alert_sso_observations,
    orbits_from_alerts,
)
from xmatch.sso.mpc.readers import GM_SUN, ORBIT_SCHEMA, read_orbits

RUBIN_ALERTS = "alerts/lsst/rubin_lsstcam_20250905_via_fink.tar.gz"


@pytest.fixture(scope="module")
def two_body():
    return pytest.importorskip("xmatch.kernels.orbits",
                               reason="xmatch.kernels.orbits (state_to_elements) not there yet")


def alert_records(path):
    from xmatch.alerts import read_packets

    schemas = Schemas()
    for packet in read_packets([path]):
        for schema, body in schemas.split(packet.data):
            record = fastavro.schemaless_reader(io.BytesIO(body), schema.parsed, None)
            if record.get("ssSource"):
                yield packet.origin, record


def heliocentric_state(orbit: dict, epoch_mjd: float):
    """Skyfield's two-body state (ICRS, AU, AU/day) of ``orbit`` at ``epoch_mjd`` (TT)."""
    keplerlib = pytest.importorskip("skyfield.keplerlib")
    spice = pytest.importorskip("skyfield.data.spice")
    api = pytest.importorskip("skyfield.api")
    ts = api.load.timescale(builtin=True)
    e, q = orbit["e"], orbit["q_au"]
    kepler = keplerlib._KeplerOrbit._from_periapsis(
        q * (1 + e), e, orbit["inc_deg"], orbit["node_deg"], orbit["argperi_deg"],
        ts.tt_jd(orbit["tp_mjd_tt"] + 2400000.5), GM_SUN * 149597870.7**3 / 86400.0**2, 10)
    kepler._rotation = spice.inertial_frames["ECLIPJ2000"].T
    position, velocity, _, _ = kepler._at(ts.tt_jd(epoch_mjd + 2400000.5))
    return np.concatenate([position, velocity])


def test_real_rubin_alerts_give_orbits(two_body):
    path = shared_file(RUBIN_ALERTS)
    table = orbits_from_alerts([path])
    assert table.schema == ORBIT_SCHEMA
    orbits = table.to_pylist()
    assert [o["designation"] for o in orbits] == ["K13L24L", "K12J69D", "K14K03A"]
    assert [o["name"] for o in orbits] == ["2013 LL24", "2012 JD69", "2014 KA3"]
    records = list(alert_records(path))
    assert len(records) == 4
    first = {}
    for origin, record in records:
        first.setdefault(record["MPCORB"]["mpcDesignation"], (origin, record))
    for orbit in orbits:
        origin, record = first[orbit["designation"]]
        source = record["ssSource"]
        assert orbit["source"] == origin
        # The MPCORB record's elements are all null: the orbit is ssSource's state at the
        # emission time (TAI -> TT, less the light time over the topocentric distance).
        assert record["MPCORB"]["e"] is None
        emitted = (record["diaSource"]["midpointMjdTai"] + 32.184 / 86400
                   - source["topocentricDist"] / C_AU_PER_DAY)
        assert orbit["epoch_mjd_tt"] == pytest.approx(emitted, abs=1e-9)
        state = [source[f"heliocentric{axis}"] for axis in ("X", "Y", "Z", "VX", "VY", "VZ")]
        back = heliocentric_state(orbit, orbit["epoch_mjd_tt"])
        np.testing.assert_allclose(back[:3], state[:3], rtol=0, atol=1e-9)
        np.testing.assert_allclose(back[3:], state[3:], rtol=0, atol=1e-12)
        assert 0 <= orbit["e"] < 0.5 and 1.5 < orbit["q_au"] / (1 - orbit["e"]) < 3.5
        assert (orbit["kind"], orbit["g_slope"], orbit["synthetic"]) == ("asteroid", 0.15, False)
        assert np.isnan(orbit["h_mag"])


def test_orbit_from_one_alert_predicts_the_next(two_body):
    """2013 LL24 is in two alerts 3.3 minutes apart: the orbit from the first, carried to
    the second, puts the object where the second was observed (to a fraction of an arcsec,
    Rubin's own residuals being 0.1-0.2 arcsec)."""
    path = shared_file(RUBIN_ALERTS)
    orbit = orbits_from_alerts([path]).to_pylist()[0]
    (_, later), = [(o, r) for o, r in alert_records(path)
                   if r["MPCORB"]["mpcDesignation"] == "K13L24L"][1:]
    source = later["ssSource"]
    emitted = (later["diaSource"]["midpointMjdTai"] + 32.184 / 86400
               - source["topocentricDist"] / C_AU_PER_DAY)
    assert emitted - orbit["epoch_mjd_tt"] == pytest.approx(3.3 / 1440, abs=2e-4)
    helio = np.array([source[f"heliocentric{axis}"] for axis in "XYZ"])
    observer = helio - np.array([source[f"topocentric{axis}"] for axis in "XYZ"])
    seen = heliocentric_state(orbit, emitted)[:3] - observer
    ra, dec = np.radians(later["diaSource"]["ra"]), np.radians(later["diaSource"]["dec"])
    observed = np.array([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)])
    angle = np.degrees(np.arccos(seen @ observed / np.linalg.norm(seen))) * 3600
    assert angle < 0.5


def test_real_rubin_alert_observations():
    path = shared_file(RUBIN_ALERTS)
    table = alert_sso_observations([path])
    assert table.schema == OBSERVATION_SCHEMA
    rows = table.to_pylist()
    records = [record for _, record in alert_records(path)]
    assert len(rows) == len(records) == 4
    for row, record in zip(rows, records, strict=True):
        assert row["alert_id"] == record["diaSourceId"]
        assert row["designation"] == record["MPCORB"]["mpcDesignation"]
        assert row["ss_object_id"] == record["ssSource"]["ssObjectId"]
        assert (row["ra_deg"], row["dec_deg"], row["mjd_tai"]) == (
            record["diaSource"]["ra"], record["diaSource"]["dec"],
            record["diaSource"]["midpointMjdTai"])
        assert row["residual_ra_arcsec"] == record["ssSource"]["residualRa"] * 3600
        assert row["residual_dec_arcsec"] == record["ssSource"]["residualDec"] * 3600
    assert [r["designation"] for r in rows].count("K13L24L") == 2


def v11_packet(ss_source: dict | None, mpc_orbits: dict | None, dia: dict) -> bytes:
    """A v11.1 alert (the simulated packet's schema and content) carrying an SSO."""
    data = shared_file("alerts/lsst/fakeAlert.avro").read_bytes()
    ((schema, body),) = Schemas().split(data)
    record = fastavro.schemaless_reader(io.BytesIO(body), schema.parsed, None)
    layout = {field["name"]: field["type"] for field in json.loads(schema.text)["fields"]}

    def filled(kind: str, values: dict | None):
        if values is None:
            return None
        (definition,) = [t for t in layout[kind] if isinstance(t, dict)]
        out = {}
        for field in definition["fields"]:
            kind_ = field["type"]
            if isinstance(kind_, list):
                out[field["name"]] = None
            else:
                out[field["name"]] = {"long": 0, "int": 0, "double": 0.0, "float": 0.0,
                                      "string": "", "boolean": False}[kind_]
        out.update(values)
        return out

    record["ssSource"] = filled("ssSource", ss_source)
    record["mpc_orbits"] = filled("mpc_orbits", mpc_orbits)
    record["diaSource"].update(dia)
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, schema.parsed, record)
    return container(schema.text, [buffer.getvalue()])


@pytest.fixture(scope="module")
def ceres():
    return read_orbits(shared_file("sso/MPCORB.excerpt.DAT")).to_pylist()[0]


def test_v11_alert_with_mpc_orbit_elements(ceres):
    a = ceres["q_au"] / (1 - ceres["e"])
    epoch = ceres["epoch_mjd_tt"]
    mean_anomaly = 162.68631
    packet = v11_packet(
        {"diaSourceId": 7, "ssObjectId": 99, "designation": "A801 AA",
         "ephOffsetRa": 0.25, "ephOffsetDec": -0.5},
        {"designation": "A801 AA", "packed_primary_provisional_designation": "00001",
         "a": a, "q": ceres["q_au"], "e": ceres["e"], "i": ceres["inc_deg"],
         "node": ceres["node_deg"], "argperi": ceres["argperi_deg"], "epoch_mjd": epoch,
         "mean_anomaly": mean_anomaly, "h": 3.4, "g": 0.12},
        {"ra": 10.0, "dec": -5.0, "midpointMjdTai": 60900.5})
    (orbit,) = orbits_from_alerts([packet]).to_pylist()
    assert orbit["designation"] == "00001" and orbit["name"] == "(1)"
    assert orbit["source"] == "<bytes #0>"
    for name in ("q_au", "e", "inc_deg", "node_deg", "argperi_deg", "epoch_mjd_tt"):
        assert orbit[name] == ceres[name]
    assert orbit["tp_mjd_tt"] == pytest.approx(ceres["tp_mjd_tt"], abs=1e-9)
    assert (orbit["h_mag"], orbit["g_slope"]) == (3.4, 0.12)
    (row,) = alert_sso_observations([packet]).to_pylist()
    assert (row["designation"], row["ss_object_id"], row["residual_ra_arcsec"],
            row["residual_dec_arcsec"]) == ("00001", 99, 0.25, -0.5)


def test_v11_alert_with_a_state_in_km_per_s(ceres, two_body):
    """Without elements, ssSource's state is used; v10+ velocities are km/s (Rubin's data
    model): read as AU/day they would give a nonsensical orbit."""
    observed_tai = 60950.25
    distance = 2.1
    emitted = observed_tai + 32.184 / 86400 - distance / C_AU_PER_DAY
    state = heliocentric_state(ceres, emitted)
    velocity_km_s = state[3:] / KM_S_TO_AU_DAY
    source = {"diaSourceId": 8, "ssObjectId": 5, "designation": "2013 LL24",
              "topoRange": distance,
              **dict(zip(("helio_x", "helio_y", "helio_z"), state[:3], strict=True)),
              **dict(zip(("helio_vx", "helio_vy", "helio_vz"), velocity_km_s, strict=True))}
    packet = v11_packet(source, None, {"midpointMjdTai": observed_tai})
    (orbit,) = orbits_from_alerts([packet]).to_pylist()
    assert orbit["designation"] == "K13L24L"           # packed from ssSource's designation
    assert orbit["epoch_mjd_tt"] == pytest.approx(emitted, abs=1e-9)
    # float32 state components limit the agreement.
    for name, tolerance in (("q_au", 1e-6), ("e", 1e-6), ("inc_deg", 1e-5),
                            ("node_deg", 1e-4), ("argperi_deg", 1e-2)):
        assert orbit[name] == pytest.approx(ceres[name], abs=tolerance)
    period = 2 * np.pi / np.sqrt(GM_SUN / (ceres["q_au"] / (1 - ceres["e"])) ** 3)
    assert (orbit["tp_mjd_tt"] - ceres["tp_mjd_tt"]) / period == pytest.approx(
        round((orbit["tp_mjd_tt"] - ceres["tp_mjd_tt"]) / period), abs=1e-4)


def test_alerts_without_sso_give_empty_tables():
    packet = shared_file("alerts/lsst/fakeAlert.avro").read_bytes()
    assert orbits_from_alerts([packet]).equals(ORBIT_SCHEMA.empty_table())
    assert alert_sso_observations([packet]).num_rows == 0


def test_gm_matches_the_kernels(two_body):
    assert GM_SUN == two_body.GM_SUN
    assert C_AU_PER_DAY == pytest.approx(two_body.C_AU_PER_DAY, rel=1e-15)
