"""A cluster across hosts, for real on one machine: the router and three shard servers each
on a host of its own (a network namespace, joined to the others by veth pairs and a bridge:
tests/service/netns.py), started as an operator would start them on real hosts
(`xmatch cluster shard --plan P --name shard-i`, `xmatch cluster router --plan P`) from a
plan naming every host's address, replicas 2. Cones and a cross-match stream through the
router equal the answers of an embedded server over the same data; with a shard host's link
cut mid-stream they still do (the router fails over to the replicas); once the link is back
the shard serves again (cutting another host's link leaves it the only replica of some
partitions). Plans naming each host's address are checked where they are written and read.
"""

import subprocess
import sys
import time

import grpc
import healpy
import numpy as np
import pytest
from netns import hosts, namespaces_of_this_process, netns_available

from xmatch.cli import main
from xmatch.errors import ServiceError, XmatchError
from xmatch.service.client import Client, CrossmatchStream
from xmatch.service.cluster import wait_serving
from xmatch.service.codec import client_error
from xmatch.service.plan import Plan, make_plan
from xmatch.store.catalog import open_catalog
from xmatch.v1 import xmatch_pb2_grpc

SHARDS = ["shard-0", "shard-1", "shard-2"]
PORT = 50051  # every host has its own address: they can all use the same port
CATALOGS = ["gaia_dr3", "random"]
#: The deadline of a stream during which a link is cut. A dead link is silent (no reset, no
#: ICMP): the router notices it only by its own means. Measured: the stream took 1.3 s
#: with keepalive pings every 1 s on the router's shard channels, and never ended without.
CHAOS_TIMEOUT_SECONDS = 10.0
#: How long a restored link may take to carry calls again (reconnect backoff <= 1 s).
RECOVERY_SECONDS = 60.0


@pytest.fixture(scope="session")
def namespaces():
    """Skips the test where this process cannot make network namespaces, saying why
    (session-scoped and first in the arguments: before the session's data is loaded)."""
    reason = netns_available()
    if reason is not None:
        pytest.skip(f"network namespaces unavailable: {reason}")


def server_command(step: str, plan: str, name: str | None = None,
                   extra: tuple[str, ...] = ()) -> list[str]:
    """The command line of `xmatch cluster shard` (``name``) or `router` over ``plan``."""
    return [sys.executable, "-m", "xmatch", "cluster", step, "--plan", plan,
            *(["--name", name] if name else []), "--plaintext", *extra]


def plan_command(data, out, *options) -> list[str]:
    return ["cluster", "plan", "--shards", "3", "--replicas", "2", "--data", str(data.root),
            "--catalogs", "gcvs", "--out", str(out), *options]


def test_plan_names_each_hosts_address(service_data, tmp_path, capsys):
    out = tmp_path / "plan.json"
    addresses = "10.0.0.2:50051, 10.0.0.3:50051,[fd00::4]:50051"
    assert main(plan_command(service_data, out, "--router", "10.0.0.1:50051",
                             "--shard-addresses", addresses)) == 0
    plan = Plan.read(out)
    assert plan.router == "10.0.0.1:50051"
    assert [(s.name, s.address) for s in plan.shards] == [
        ("shard-0", "10.0.0.2:50051"), ("shard-1", "10.0.0.3:50051"),
        ("shard-2", "[fd00::4]:50051")]
    assert "shard-2 at [fd00::4]:50051" in capsys.readouterr().out
    # The one-host form, unchanged.
    assert main(plan_command(service_data, out)) == 0
    plan = Plan.read(out)
    assert plan.router == "127.0.0.1:50051"
    assert [s.address for s in plan.shards] == [f"127.0.0.1:{50052 + i}" for i in range(3)]
    assert main(plan_command(service_data, out, "--host", "::1", "--port", "7000")) == 0
    assert Plan.read(out).shards[2].address == "[::1]:7003"


@pytest.mark.parametrize("options, message", [
    (["--router", "10.0.0.1:1", "--shard-addresses", "10.0.0.2:1,10.0.0.3:1"],
     "--shard-addresses gives 2 address(es) for --shards 3; give one HOST:PORT per shard"),
    (["--router", "10.0.0.1:1", "--shard-addresses", "10.0.0.2:1,10.0.0.3:1,10.0.0.2:1"],
     "10.0.0.2:1 is given to both shard-0 and shard-2; each server needs an address of its"),
    (["--router", "10.0.0.3:1", "--shard-addresses", "10.0.0.2:1,10.0.0.3:1,10.0.0.4:1"],
     "10.0.0.3:1 is given to both the router and shard-1"),
    (["--router", "10.0.0.1", "--shard-addresses", "a:1,b:1,c:1"],
     "argument --router: address '10.0.0.1' is not HOST:PORT"),
    (["--router", "a:1", "--shard-addresses", "b:1,c:70000,d:1"],
     "argument --shard-addresses: address 'c:70000': the port '70000' is not 1..65535"),
    (["--router", "a:1", "--shard-addresses", "b:1,,d:1"],
     "argument --shard-addresses: 'b:1,,d:1' has an empty item"),
    (["--router", "::1:5", "--shard-addresses", "b:1,c:1,d:1"],
     "an IPv6 address goes in brackets: [::1]:50052"),
    (["--host", "h", "--router", "a:1", "--shard-addresses", "b:1,c:1,d:1"],
     "--host and --port put every server on one host; --router and --shard-addresses give "
     "each its own address: use one form"),
    (["--router", "a:1"], "--router and --shard-addresses go together"),
])
def test_plan_addresses_are_checked(service_data, tmp_path, capsys, options, message):
    assert main(plan_command(service_data, tmp_path / "plan.json", *options)) == 2
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1, error
    assert not (tmp_path / "plan.json").exists()


def test_listen_and_plan_file_addresses_are_checked(service_data, tmp_path, capsys):
    out = tmp_path / "plan.json"
    assert main(plan_command(service_data, out)) == 0
    capsys.readouterr()
    for step in (["shard", "--name", "shard-0"], ["router"]):
        assert main(["cluster", *step, "--plan", str(out), "--listen", "0.0.0.0"]) == 2
        assert "argument --listen: address '0.0.0.0' is not HOST:PORT" in capsys.readouterr().err
    out.write_text(out.read_text().replace("127.0.0.1:50053", "127.0.0.1:50052"))
    with pytest.raises(XmatchError, match=r"plan.json: 127.0.0.1:50052 is given to both "
                                          "shard-0 and shard-1"):
        Plan.read(out)
    with pytest.raises(ValueError, match="router and shard_addresses go together"):
        make_plan(service_data, 3, 2, router="a:1")
    with pytest.raises(ValueError, match="host given with the servers' own addresses"):
        make_plan(service_data, 1, 1, host="h", router="a:1", shard_addresses=["b:1"])


def test_namespaces_and_processes_are_removed_even_on_failure(namespaces):
    with pytest.raises(RuntimeError, match="on purpose"):
        with hosts(["a", "b"]) as network:
            assert len(namespaces_of_this_process()) == 3  # a, b and the switch
            assert network["a"].address != network["b"].address
            sleeper = network.popen("a", [sys.executable, "-c", "import time; time.sleep(600)"])
            listed = network.run("b", ["ip", "-brief", "address", "show", "eth0"])
            assert network["b"].address in listed.stdout, listed
            raise RuntimeError("on purpose")
    assert sleeper.poll() is not None
    assert namespaces_of_this_process() == []


def cone_places(service_data) -> list[tuple[str, float, float, float]]:
    """(catalog, ra, dec, radius): partition corners (cones over several partitions, so
    several slices), the poles, RA 0/360, and random places."""
    rng = np.random.default_rng(5)
    places = []
    for name in CATALOGS:
        partitions = open_catalog(name, service_data).partitions
        for i in rng.choice(len(partitions), size=min(4, len(partitions)), replace=False):
            p = partitions[i]
            lon, lat = healpy.vec2ang(healpy.boundaries(2**p.order, p.pixel, nest=True).T,
                                      lonlat=True)
            places += [(name, a, d) for a, d in zip(lon, lat, strict=True)]
        places += [(name, 0.0, 90.0), (name, 0.0, -90.0), (name, 359.9995, 10.0),
                   (name, 150.0, 30.0)]
        places += [(name, a, d) for a, d in zip(rng.uniform(0, 360, 4),
                                                np.degrees(np.arcsin(rng.uniform(-1, 1, 4))),
                                                strict=True)]
    return [(name, float(a), float(d), radius) for name, a, d in places
            for radius in (30.0, 1800.0)]


def test_cluster_across_hosts(namespaces, service_data, embedded, tmp_path):
    plan_path = str(tmp_path / "plan.json")
    logs = {}

    def log_tails() -> str:
        return "\n".join(f"--- {name}:\n{path.read_text()[-2000:]}" for name, path in
                         logs.items() if path.exists())

    def start(network, host, command):
        logs[host] = tmp_path / f"{host}.log"
        with open(logs[host], "w") as log:
            return network.popen(host, command, stdout=log, stderr=subprocess.STDOUT)

    with hosts(["router", *SHARDS]) as network:
        plan = make_plan(service_data, shards=3, replicas=2, catalogs=CATALOGS,
                         router=f"{network['router'].address}:{PORT}",
                         shard_addresses=[f"{network[s].address}:{PORT}" for s in SHARDS])
        plan.write(plan_path)
        processes = {}
        for i, shard in enumerate(SHARDS):
            # shard-2 listens on every interface of its host, reached at its plan address.
            extra = ("--listen", f"0.0.0.0:{PORT}") if i == 2 else ()
            processes[shard] = start(network, shard, server_command("shard", plan_path, shard,
                                                                    extra))
        processes["router"] = start(network, "router", server_command("router", plan_path))
        # The test process stays in the root namespace: it reaches each server through a
        # relay (a Unix socket) inside the server's host.
        reach = {host: network.expose(host, PORT) for host in ["router", *SHARDS]}
        try:
            for host, address in reach.items():
                wait_serving(address, 120, processes[host])
        except Exception as error:
            pytest.fail(f"{error}\n{log_tails()}")
        router = reach["router"]

        # -------------------------------------------------- every link up: equal answers
        places = cone_places(service_data)
        rng = np.random.default_rng(6)
        random_rows = open_catalog("random", service_data).read(columns=["ra", "dec"])
        ra = np.concatenate([random_rows["ra"].to_numpy()[:2000] + 1e-4,
                             rng.uniform(0, 360, 2000), [0.0, 180.0, 359.99999]]) % 360
        dec = np.concatenate([random_rows["dec"].to_numpy()[:2000],
                              np.degrees(np.arcsin(rng.uniform(-1, 1, 2000))),
                              [90.0, -90.0, 0.0]])
        with Client(embedded) as reference:
            expected_cones = [reference.cone_search(name, a, d, radius_arcsec=r, arrow=True)
                              for name, a, d, r in places]
            expected_match = reference.crossmatch("random", ra, dec, radius_arcsec=600.0,
                                                  batch_size=250, arrow=True)
            expected_gaia = reference.crossmatch("gaia_dr3", ra, dec, radius_arcsec=1800.0,
                                                 mode="k", k=3, batch_size=500, arrow=True)

        def cones_equal(client) -> None:
            for (name, a, d, r), want in zip(places, expected_cones, strict=True):
                got = client.cone_search(name, a, d, radius_arcsec=r, arrow=True)
                assert got.equals(want), (name, a, d, r)

        def stream(cut: str | None = None, at_batch: int = 5):
            """The random cross-match through the router, one stream of batches of 250;
            ``cut``: the host whose link is cut when batch ``at_batch`` is sent."""
            positions = CrossmatchStream("random", ra, dec, 600.0, "nearest", 1, None, None,
                                         250)

            def requests():
                for i, request in enumerate(positions.requests()):
                    if cut is not None and i == at_batch:
                        network.cut(cut)
                    yield request

            with grpc.insecure_channel(router) as channel:
                try:
                    for answer in xmatch_pb2_grpc.XmatchStub(channel).Crossmatch(
                            requests(), timeout=CHAOS_TIMEOUT_SECONDS):
                        positions.add(answer)
                except grpc.RpcError as error:
                    raise client_error(error, router) from None
            return positions.result(True)

        with Client(router) as client:
            cones_equal(client)
            assert client.crossmatch("random", ra, dec, radius_arcsec=600.0, batch_size=250,
                                     arrow=True).equals(expected_match)
            assert client.crossmatch("gaia_dr3", ra, dec, radius_arcsec=1800.0, mode="k",
                                     k=3, batch_size=500, arrow=True).equals(expected_gaia)
            assert stream().equals(expected_match)

            # ------------------------------------ shard-1's link cut in the middle of a stream
            started = time.perf_counter()
            got = stream(cut="shard-1")  # keepalive pings find the dead link; no deadline
            first_after_cut = time.perf_counter() - started
            print(f"the stream cut in the middle took {first_after_cut:.2f} s")
            assert got.equals(expected_match)
            cones_equal(client)
            assert stream().equals(expected_match)

            # ------------- shard-1 back, shard-0 cut: partitions only shard-1 holds now answer
            network.restore("shard-1")
            network.cut("shard-0")
            deadline = time.monotonic() + RECOVERY_SECONDS
            while True:
                try:
                    got = stream()
                    break
                except ServiceError as error:  # shard-1 reconnecting: said, not guessed
                    assert error.code == grpc.StatusCode.UNAVAILABLE, error
                    assert time.monotonic() < deadline, f"shard-1 not used again: {error}"
                    time.sleep(0.5)
            assert got.equals(expected_match)
            cones_equal(client)
            network.restore("shard-0")
            assert stream().equals(expected_match)
        for host, process in processes.items():
            assert process.poll() is None, f"{host} exited\n{log_tails()}"
    assert namespaces_of_this_process() == []
