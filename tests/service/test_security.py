"""TLS, tokens, permissions and limits, against real servers on loopback ports, with
certificates made here (``cryptography``) and checked by gRPC's own TLS (BoringSSL): each
refusal with its status and message, and the server answering the next good call."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import grpc
import pyarrow as pa
import pytest

from tests.conftest import LIMITS, running_cluster
from xmatch.errors import ServiceError, XmatchError
from xmatch.service.client import Client
from xmatch.service.embedded import running_server
from xmatch.service.pki import Authority
from xmatch.service.security import Credentials, Exposure, Tls, TokenFile, read_token
from xmatch.service.server import ServedCatalog
from xmatch.store.catalog import open_catalog

CONE = ("gaia_dr3", 56.75, 24.12, 3600.0)  # the Pleiades: tens of Gaia G < 10 stars


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    root = tmp_path_factory.mktemp("pki")
    ca = Authority(root)
    other = Authority(root / "other", "other CA")
    return {"root": root, "ca": ca, "other": other,
            "server": ca.issue("server", ["127.0.0.1", "localhost"]),
            "client": ca.issue("client", client=True),
            "expired": ca.issue("expired", client=True, valid_from_days=-10, days=5),
            "stranger": other.issue("stranger", client=True),
            "elsewhere": ca.issue("elsewhere", ["10.9.8.7"])}


@pytest.fixture(scope="module")
def tokens(pki):
    path = pki["root"] / "tokens.json"
    file = TokenFile(path)
    return {"path": path, "file": file,
            "reader": file.add("reader", ["query"]),
            "annotator": file.add("annotator", ["annotate"]),
            "limited": file.add("limited", ["query"], rps=5, rows=10),
            "one-stream": file.add("one-stream", ["stream"], streams=1),
            "flooder": file.add("flooder", ["query"], rps=20),
            "everything": file.add("everything", ["query", "stream", "annotate", "admin"])}


@pytest.fixture(scope="module")
def catalogs(service_data):
    return {name: ServedCatalog.from_catalog(open_catalog(name, service_data))
            for name in ("gaia_dr3", "random")}


@pytest.fixture(scope="module")
def secure(pki, tokens, catalogs):
    """An embedded server with TLS, client certificates required (mutual TLS) and tokens."""
    exposure = Exposure(Tls.from_files(pki["server"].cert, pki["server"].key,
                                       client_ca=pki["ca"].cert), tokens["path"])
    with running_server(catalogs, limits=LIMITS, exposure=exposure) as address:
        yield address


def good_tls(pki) -> Tls:
    return Tls.from_files(pki["client"].cert, pki["client"].key, ca=pki["ca"].cert)


def cone(address, **client) -> int:
    with Client(address, timeout=10, **client) as c:
        return len(c.cone_search(*CONE))


def test_tls_with_tokens_answers_as_plain_text(secure, embedded, pki, tokens):
    with Client(embedded) as plain, Client(secure, tls=good_tls(pki),
                                           token=tokens["everything"]) as guarded:
        expected = plain.cone_search(*CONE, arrow=True)
        assert expected.num_rows > 10
        assert guarded.cone_search(*CONE, arrow=True).equals(expected)
        positions = pa.table({"ra": [56.75, 0.0, 359.99], "dec": [24.12, -89.99, 0.0]})
        assert (guarded.crossmatch("gaia_dr3", positions["ra"], positions["dec"],
                                   radius_arcsec=3600, mode="all", arrow=True).to_pylist()
                == plain.crossmatch("gaia_dr3", positions["ra"], positions["dec"],
                                    radius_arcsec=3600, mode="all", arrow=True).to_pylist())


REFUSALS = {
    "plain-text client": (lambda p, t: {"token": t["reader"]}, "UNAVAILABLE",
                          "closed the connection while it was being set up"),
    "wrong CA": (lambda p, t: {"tls": Tls.from_files(p["client"].cert, p["client"].key,
                                                     ca=p["other"].cert),
                               "token": t["reader"]}, "UNAVAILABLE", "is not trusted"),
    "no client certificate": (lambda p, t: {"tls": Tls.from_files(ca=p["ca"].cert),
                                            "token": t["reader"]}, "UNAVAILABLE",
                              "require a client certificate"),
    "client certificate of another CA": (
        lambda p, t: {"tls": Tls(cert=p["stranger"].cert.read_bytes(),
                                 key=p["stranger"].key.read_bytes(),
                                 ca=p["ca"].cert.read_bytes()),
                      "token": t["reader"]}, "UNAVAILABLE", "require a client certificate"),
    "expired client certificate": (
        lambda p, t: {"tls": Tls(cert=p["expired"].cert.read_bytes(),
                                 key=p["expired"].key.read_bytes(),
                                 ca=p["ca"].cert.read_bytes()),
                      "token": t["reader"]}, "UNAVAILABLE", "refuse an expired one"),
    "missing token": (lambda p, t: {"tls": good_tls(p)}, "UNAUTHENTICATED",
                      "this server requires a token"),
    "wrong token": (lambda p, t: {"tls": good_tls(p), "token": "xmt_" + "A" * 43},
                    "UNAUTHENTICATED", "unknown token"),
    "token without the permission": (lambda p, t: {"tls": good_tls(p),
                                                   "token": t["annotator"]},
                                     "PERMISSION_DENIED",
                                     "token 'annotator' may annotate; Cone needs the query"),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_each_refusal_has_its_status_and_the_server_goes_on(case, secure, pki, tokens,
                                                            monkeypatch):
    monkeypatch.delenv("XMATCH_TOKEN", raising=False)
    client, code, phrase = REFUSALS[case]
    with pytest.raises(ServiceError) as caught:
        cone(secure, **client(pki, tokens))
    assert caught.value.code.name == code and phrase in caught.value.details, caught.value
    assert cone(secure, tls=good_tls(pki), token=tokens["reader"]) > 10


def test_a_certificate_not_issued_for_the_host_is_refused(pki, catalogs, tokens):
    exposure = Exposure(Tls.from_files(pki["elsewhere"].cert, pki["elsewhere"].key))
    with running_server(catalogs, exposure=exposure) as address:
        with pytest.raises(ServiceError, match="is not trusted"):
            cone(address, tls=Tls.from_files(ca=pki["ca"].cert))


def test_bad_certificate_files_are_refused_before_serving(pki, tmp_path):
    with pytest.raises(XmatchError, match="valid from .* UTC, not now"):
        Tls.from_files(pki["expired"].cert, pki["expired"].key)
    with pytest.raises(XmatchError, match="is not the key of the certificate"):
        Tls.from_files(pki["server"].cert, pki["client"].key)
    with pytest.raises(XmatchError, match="give both --tls-cert and --tls-key"):
        Tls.from_files(pki["server"].cert)
    (tmp_path / "junk.pem").write_text("not a certificate")
    with pytest.raises(XmatchError, match="junk.pem: not a PEM certificate"):
        Tls.from_files(tmp_path / "junk.pem", pki["server"].key)
    with pytest.raises(XmatchError, match="junk.pem: not a PEM CA certificate"):
        Tls.from_files(ca=tmp_path / "junk.pem")
    with pytest.raises(XmatchError, match="TLS certificate .*missing.pem: No such file"):
        Tls.from_files(tmp_path / "missing.pem", pki["server"].key)


def test_a_revoked_token_is_refused_within_a_second_or_two(pki, catalogs, tmp_path):
    file = TokenFile(tmp_path / "tokens.json")
    token = file.add("soon-gone", ["query"])
    exposure = Exposure(Tls.from_files(pki["server"].cert, pki["server"].key),
                        file.path)
    tls = Tls.from_files(ca=pki["ca"].cert)
    with running_server(catalogs, exposure=exposure) as address:
        assert cone(address, tls=tls, token=token) > 10
        file.revoke("soon-gone")
        deadline = time.monotonic() + 10
        while True:
            try:
                cone(address, tls=tls, token=token)
            except ServiceError as error:
                assert error.code.name == "UNAUTHENTICATED"
                assert "token 'soon-gone' was revoked on" in error.details
                break
            assert time.monotonic() < deadline, "the revocation was never seen"
            time.sleep(0.1)


def test_limits_name_the_limit(secure, pki, tokens):
    with Client(secure, tls=good_tls(pki), token=tokens["limited"], timeout=10) as client:
        with pytest.raises(ServiceError) as caught:
            client.cone_search(*CONE)  # tens of rows; this token may receive 10
        assert caught.value.code.name == "RESOURCE_EXHAUSTED"
        assert "token 'limited' may receive at most 10 per answer" in caught.value.details
        assert len(client.cone_search(*CONE, limit=10)) == 10
        refused = 0
        for _ in range(12):  # a bucket of 5 requests, refilled at 5 per second
            try:
                client.cone_search(*CONE, limit=1)
            except ServiceError as error:
                assert error.code.name == "RESOURCE_EXHAUSTED"
                assert "over its limit of 5 requests per second; retry in" in error.details
                refused += 1
        assert refused > 0
    # One stream at a time: a second cross-match stream is refused while one is open.
    channel = grpc.secure_channel(secure, good_tls(pki).channel_credentials())
    from xmatch.v1 import xmatch_pb2, xmatch_pb2_grpc

    stub = xmatch_pb2_grpc.XmatchStub(channel)
    metadata = (("authorization", f"Bearer {tokens['one-stream']}"),)
    hold = threading.Event()

    def requests():
        yield xmatch_pb2.CrossmatchRequest(options=xmatch_pb2.CrossmatchOptions(
            catalog="gaia_dr3", radius_arcsec=1.0))
        yield xmatch_pb2.CrossmatchRequest(batch=xmatch_pb2.PositionBatch(
            batch_id=0, ra_deg=[56.75], dec_deg=[24.12]))
        hold.wait(60)

    first = stub.Crossmatch(requests(), metadata=metadata, timeout=90)
    try:
        assert next(first).queries == 1  # answered: the first stream is open
        second = stub.Crossmatch(iter([xmatch_pb2.CrossmatchRequest(
            options=xmatch_pb2.CrossmatchOptions(catalog="gaia_dr3", radius_arcsec=1.0))]),
            metadata=metadata, timeout=10)
        with pytest.raises(grpc.RpcError) as refused:
            list(second)
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert ("token 'one-stream' has 1 streams open, its limit"
                in refused.value.details()), refused.value.details()
    finally:
        hold.set()
        first.cancel()
        channel.close()


def test_one_clients_flood_does_not_starve_another(secure, pki, tokens):
    """Eight threads flood with one token (20 requests/s allowed): they are refused alone;
    another token's requests, made meanwhile, are all answered."""
    stop = threading.Event()
    answered, refused, other_errors = [0], [0], []

    def flood():
        with Client(secure, tls=good_tls(pki), token=tokens["flooder"], timeout=10) as c:
            while not stop.is_set():
                try:
                    c.cone_search(*CONE, limit=5)
                    answered[0] += 1
                except ServiceError as error:
                    if error.code.name != "RESOURCE_EXHAUSTED":
                        other_errors.append(error)
                    refused[0] += 1

    threads = [threading.Thread(target=flood) for _ in range(8)]
    for thread in threads:
        thread.start()
    started = time.monotonic()
    try:
        with Client(secure, tls=good_tls(pki), token=tokens["reader"], timeout=10) as c:
            rows = [len(c.cone_search(*CONE, limit=5)) for _ in range(100)]
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    seconds = time.monotonic() - started
    assert rows == [5] * 100 and not other_errors
    assert refused[0] > answered[0] > 0
    # The bucket holds 20 requests and refills at 20 per second.
    assert answered[0] <= 20 + 20 * (seconds + 1)


def test_plain_text_tokens_only_to_loopback():
    with pytest.raises(XmatchError, match="only over TLS"):
        Credentials(None, "xmt_x").check("10.1.2.3:50051")
    Credentials(None, "xmt_x").check("127.0.0.1:50051")
    Credentials(None, "xmt_x").check("localhost:50051")
    with pytest.raises(XmatchError, match="one word of printable ASCII"):
        read_token("two words")


def test_token_file_keeps_only_hashes(tokens):
    text = tokens["path"].read_text()
    assert tokens["reader"] not in text and tokens["reader"].startswith("xmt_")
    assert tokens["path"].stat().st_mode & 0o077 == 0
    names = [e.name for e in tokens["file"].read()]
    assert names[:6] == ["reader", "annotator", "limited", "one-stream", "flooder",
                         "everything"]


def test_a_secured_cluster_carries_request_ids_from_router_to_shards(service_data, pki,
                                                                     tokens, tmp_path,
                                                                     caplog):
    """Shards with TLS, client certificates and tokens; a router with TLS and tokens that
    shows the shards its certificate and its own token: answers as the plain cluster, and
    each shard's JSON log carries the router's request id."""
    logs = tmp_path / "logs"
    logs.mkdir()
    router_token = TokenFile(tokens["path"]).add("router", ["query", "stream", "annotate"])
    shard_arguments = ["--tls-cert", str(pki["server"].cert), "--tls-key",
                       str(pki["server"].key), "--tls-client-ca", str(pki["ca"].cert),
                       "--tokens", str(tokens["path"]), "--log-format", "json",
                       "--log-level", "debug", "--log-file", str(logs / "shard.jsonl")]
    exposure = Exposure(Tls.from_files(pki["server"].cert, pki["server"].key),
                        tokens["path"])
    credentials = Credentials(good_tls(pki), router_token)
    caplog.set_level("DEBUG", logger="xmatch.access")
    with running_cluster(service_data, tmp_path, LIMITS, shard_arguments, exposure,
                         credentials, catalogs=["gaia_dr3"]) as cluster:
        with Client(cluster.address, tls=Tls.from_files(ca=pki["ca"].cert),
                    token=tokens["reader"]) as client:
            table = client.cone_search(*CONE, arrow=True)
        router_lines = [r.call for r in caplog.records
                        if getattr(r, "call", {}).get("method") == "Cone"]
        # An unknown token at a shard: the router's own token is what shards admit.
        with pytest.raises(grpc.RpcError) as caught, grpc.secure_channel(
                cluster.plan.shards[0].address, good_tls(pki).channel_credentials()) as chan:
            from xmatch.v1 import xmatch_pb2, xmatch_pb2_grpc

            xmatch_pb2_grpc.XmatchStub(chan).ListCatalogs(xmatch_pb2.ListCatalogsRequest(),
                                                         timeout=10)
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert table.num_rows > 10
    assert len(router_lines) == 1 and router_lines[0]["code"] == "OK"
    request_id = router_lines[0]["request_id"]
    shard_lines = [json.loads(line) for line in
                   (logs / "shard.jsonl").read_text().splitlines()]
    cones = [line for line in shard_lines if line.get("method") == "Cone"]
    assert cones and {line["request_id"] for line in cones} == {request_id}
    assert {line["token"] for line in cones} == {"router"}


def test_serve_refuses_to_start_without_tls_or_plaintext(session_data, tmp_path):
    run = subprocess.run([sys.executable, "-m", "xmatch", "serve", "--port", "0",
                          "--data", str(session_data.root)], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 2
    assert run.stderr == ("xmatch serve: error: serving needs TLS (--tls-cert and --tls-key) "
                          "or, explicitly, --plaintext\n")
    run = subprocess.run([sys.executable, "-m", "xmatch", "serve", "--port", "0", "--host",
                          "0.0.0.0", "--plaintext", "--tokens", str(tmp_path / "t.json"),
                          "--data", str(session_data.root)], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 2 and "no such token file" in run.stderr
