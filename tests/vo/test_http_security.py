"""The HTTP face faces the network as the gRPC one does: HTTPS with the server's certificate
(client certificates required with a client CA), bearer tokens with their permissions and
limits, each refusal with its HTTP status and a VOTable error document."""

from __future__ import annotations

import gc
import io
import ssl
import urllib.error
import urllib.request

import pytest
from astropy.io import votable

from tests.conftest import LIMITS
from xmatch import open_catalog
from xmatch.service.embedded import running_servicer
from xmatch.service.pki import Authority
from xmatch.service.security import Exposure, Tls, TokenFile
from xmatch.service.server import ServedCatalog, XmatchServicer

pyvo = pytest.importorskip("pyvo")
requests = pytest.importorskip("requests")

#: asyncio (3.11) leaves the socket of a failed TLS handshake to the garbage collector,
#: which warns about it in the server's thread; the refusal itself is what is tested.
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

CONE = "/scs/gaia_dr3?RA=56.75&DEC=24.12&SR=1"  # the Pleiades: tens of G < 10 stars


@pytest.fixture(scope="module")
def secured(tmp_path_factory, service_data):
    """(HTTPS base URL, certificates, tokens) of an embedded server with mutual TLS and
    tokens, and its HTTP face."""
    root = tmp_path_factory.mktemp("vo-pki")
    ca = Authority(root)
    certificates = {"ca": ca, "server": ca.issue("server", ["127.0.0.1", "localhost"]),
                    "client": ca.issue("client", client=True),
                    "stranger": Authority(root / "other", "other CA").issue("stranger",
                                                                            client=True)}
    file = TokenFile(root / "tokens.json")
    tokens = {"reader": file.add("reader", ["query"]),
              "annotator": file.add("annotator", ["annotate"]),
              "limited": file.add("limited", ["query"], rows=10)}
    catalogs = {"gaia_dr3": ServedCatalog.from_catalog(open_catalog("gaia_dr3", service_data))}
    exposure = Exposure(Tls.from_files(certificates["server"].cert, certificates["server"].key,
                                       client_ca=ca.cert), root / "tokens.json",
                        http=("127.0.0.1", 0))
    with running_servicer(lambda: XmatchServicer(catalogs, LIMITS),
                          exposure=exposure) as (_, servicer):
        yield f"https://{servicer.http_address}", certificates, tokens
    gc.collect()  # the stopped face's refused handshakes, while this module's filter holds


def context(certificates, client: str | None = "client") -> ssl.SSLContext:
    ssl_context = ssl.create_default_context(cafile=str(certificates["ca"].cert))
    if client:
        ssl_context.load_cert_chain(str(certificates[client].cert),
                                    str(certificates[client].key))
    return ssl_context


def fetch(url: str, ssl_context, token: str | None = None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers),
                                    context=ssl_context, timeout=30) as answer:
            return answer.status, answer.read(), dict(answer.headers)
    except urllib.error.HTTPError as error:
        with error:  # its socket closed now, not by the garbage collector
            return error.code, error.read(), dict(error.headers)


def message(document: bytes) -> str:
    parsed = votable.parse(io.BytesIO(document), verify="exception")
    return next(i.content for i in parsed.resources[0].infos if i.name == "QUERY_STATUS")


def test_token_and_client_certificate_answer(secured):
    base, certificates, tokens = secured
    status, document, _ = fetch(base + CONE, context(certificates), tokens["reader"])
    assert status == 200
    table = votable.parse(io.BytesIO(document), verify="exception").get_first_table()
    assert len(table.array) > 10


@pytest.mark.parametrize("token, status, words", [
    (None, 401, "UNAUTHENTICATED"),
    ("not-a-token", 401, "UNAUTHENTICATED"),
    ("annotator", 403, "PERMISSION_DENIED"),
    ("limited", 429, "at most 10 per answer"),
])
def test_refusals_name_the_reason(secured, token, status, words):
    base, certificates, tokens = secured
    got, document, headers = fetch(base + CONE, context(certificates),
                                   tokens.get(token, token))
    assert got == status and words in message(document)
    if status == 401:
        assert headers["WWW-Authenticate"].startswith("Bearer")
    assert fetch(base + CONE, context(certificates), tokens["reader"])[0] == 200


def test_tls_refusals_leave_the_face_serving(secured):
    base, certificates, tokens = secured
    for ssl_context in (context(certificates, None), context(certificates, "stranger")):
        with pytest.raises((ssl.SSLError, urllib.error.URLError, ConnectionError)):
            urllib.request.urlopen(base + CONE, context=ssl_context, timeout=30).read()
    with pytest.raises((urllib.error.URLError, ConnectionError)):
        urllib.request.urlopen(base.replace("https", "http") + CONE, timeout=30).read()
    assert fetch(base + CONE, context(certificates), tokens["reader"])[0] == 200
    gc.collect()  # the refused handshakes' sockets, while this module's filter holds


def test_pyvo_with_a_token_session(secured):
    base, certificates, tokens = secured
    session = requests.Session()
    session.trust_env = False  # REQUESTS_CA_BUNDLE would override session.verify
    session.headers["Authorization"] = f"Bearer {tokens['reader']}"
    session.verify = str(certificates["ca"].cert)
    session.cert = (str(certificates["client"].cert), str(certificates["client"].key))
    service = pyvo.dal.TAPService(f"{base}/tap", session=session)
    result = service.run_sync("SELECT TOP 3 source_id FROM gaia_dr3 WHERE "
                              "1=CONTAINS(POINT(ra, dec), CIRCLE(56.75, 24.12, 1))")
    assert len(result) == 3
    session.headers["Authorization"] = "Bearer wrong"
    with pytest.raises(pyvo.dal.DALQueryError, match="UNAUTHENTICATED"):
        service.run_sync("SELECT TOP 3 source_id FROM gaia_dr3 WHERE "
                         "1=CONTAINS(POINT(ra, dec), CIRCLE(56.75, 24.12, 1))")
