"""Who may reach a server, and how much they may ask: TLS, bearer tokens, permissions and
per-token limits.

* :class:`Tls` holds a process's certificate and key (what it serves, and shows a server
  that asks for a client certificate), the CA whose clients it accepts (mutual TLS) and the
  CA it trusts for the servers it calls. Files are read and checked once, at start-up, so a
  wrong path or a key that does not belong to its certificate is said before serving.
* :class:`TokenFile` is the operator's list of tokens (``xmatch token add/list/revoke``):
  each token is kept as its SHA-256 only, with a name, permissions (query, stream,
  annotate, admin) and limits (requests per second, concurrent streams, rows per answer).
  A server re-reads the file when it changes, so a revocation takes effect within a second.
* :class:`Access` admits or refuses each call (UNAUTHENTICATED, PERMISSION_DENIED,
  RESOURCE_EXHAUSTED naming the limit); every token has its own request bucket and stream
  count, so one client's flood is refused alone and never queues another's requests.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import ipaddress
import json
import os
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from xmatch.errors import InputError, LimitExceededError, XmatchError

#: What a token may do, and the calls each permission opens.
PERMISSIONS = {
    "query": ("ListCatalogs", "DescribeCatalog", "Coverage", "Cone", "SsoCone",
              "RegionSearch", "Context", "ObjectHistory", "ListWatches"),
    "stream": ("Crossmatch",),
    "annotate": ("Annotate",),
    "admin": ("AddWatch", "RemoveWatch", "Notice"),
}
PERMISSION_OF = {method: permission for permission, methods in PERMISSIONS.items()
                 for method in methods}
#: Calls that answer without a token: health checks (load balancers, `cluster up`) and
#: server reflection (grpcurl), which carry no catalog data.
OPEN_SERVICES = ("/grpc.health.v1.Health/", "/grpc.reflection.")
#: Calls that hold a stream open, counted against a token's concurrent-stream limit.
STREAMING_METHODS = ("Crossmatch", "Annotate", "RegionSearch")
TOKEN_PREFIX = "xmt_"
TOKEN_FILE_VERSION = 1
#: The environment variable a client reads its token from.
TOKEN_ENV_VAR = "XMATCH_TOKEN"
#: How often (s) a server looks whether its token file changed.
RELOAD_SECONDS = 1.0


class UnauthenticatedError(XmatchError):
    """A call without a valid token to a server that requires one."""

    status = "UNAUTHENTICATED"


class PermissionDeniedError(XmatchError):
    """A valid token without the permission the call needs."""

    status = "PERMISSION_DENIED"


# ------------------------------------------------------------------------------- TLS


def _read(path, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as error:
        raise XmatchError(f"{what} {path}: {error.strerror or error}") from None


@dataclass(frozen=True)
class Tls:
    """The TLS material of one process, read and checked.

    Parameters
    ----------
    cert, key : bytes or None
        PEM certificate chain and private key: served by a server; shown by a client to a
        server that requires client certificates.
    client_ca : bytes or None
        PEM CA certificate(s): a server with it accepts only clients whose certificate it
        signed (mutual TLS).
    ca : bytes or None
        PEM CA certificate(s) a client trusts for the servers it calls (None: the system's).
    """

    cert: bytes | None = None
    key: bytes | None = None
    client_ca: bytes | None = None
    ca: bytes | None = None

    @classmethod
    def from_files(cls, cert=None, key=None, client_ca=None, ca=None) -> Tls:
        """Read the PEM files given, checking that each parses, that the key belongs to the
        certificate and that the certificate is valid today."""
        if (cert is None) != (key is None):
            raise InputError("a TLS certificate needs its key and a key its certificate: "
                             "give both --tls-cert and --tls-key")
        tls = cls(cert=_read(cert, "TLS certificate") if cert else None,
                  key=_read(key, "TLS key") if key else None,
                  client_ca=_read(client_ca, "client CA") if client_ca else None,
                  ca=_read(ca, "CA") if ca else None)
        tls._check(cert, key, client_ca, ca)
        return tls

    def _check(self, cert_path, key_path, client_ca_path, ca_path) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization

        for data, path in ((self.client_ca, client_ca_path), (self.ca, ca_path)):
            if data is not None:
                try:
                    x509.load_pem_x509_certificates(data)
                except ValueError:
                    raise XmatchError(f"{path}: not a PEM CA certificate") from None
        if self.cert is None:
            return
        try:
            certificate = x509.load_pem_x509_certificates(self.cert)[0]
        except ValueError:
            raise XmatchError(f"{cert_path}: not a PEM certificate") from None
        try:
            key = serialization.load_pem_private_key(self.key, password=None)
        except (ValueError, TypeError) as error:
            raise XmatchError(f"{key_path}: not an unencrypted PEM private key "
                              f"({error})") from None
        public = serialization.PublicFormat.SubjectPublicKeyInfo
        encoding = serialization.Encoding.PEM
        if (key.public_key().public_bytes(encoding, public)
                != certificate.public_key().public_bytes(encoding, public)):
            raise XmatchError(f"{key_path} is not the key of the certificate {cert_path}")
        now = _dt.datetime.now(_dt.UTC)
        if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
            raise XmatchError(
                f"{cert_path}: the certificate is valid from "
                f"{certificate.not_valid_before_utc:%Y-%m-%d %H:%M} to "
                f"{certificate.not_valid_after_utc:%Y-%m-%d %H:%M} UTC, not now")

    def server_credentials(self):
        import grpc

        if self.cert is None:
            raise InputError("a TLS server needs a certificate and its key (--tls-cert, "
                             "--tls-key)")
        return grpc.ssl_server_credentials(
            [(self.key, self.cert)], root_certificates=self.client_ca,
            require_client_auth=self.client_ca is not None)

    def channel_credentials(self):
        import grpc

        return grpc.ssl_channel_credentials(root_certificates=self.ca, private_key=self.key,
                                            certificate_chain=self.cert)


def is_loopback(address: str) -> bool:
    """Whether ``host:port`` names this machine's loopback (where plain text leaks nothing)."""
    host = address.rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# ------------------------------------------------------------------------------- tokens


def token_hash(token: str) -> str:
    # Tokens are 256 random bits: a plain SHA-256 cannot be reversed or guessed, and is
    # fast enough to compute on every call (a slow password hash would cost each call).
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class TokenEntry:
    """One token of the file: its name, hash, permissions and limits (0: none)."""

    name: str
    sha256: str
    permissions: tuple[str, ...]
    rps: float = 0.0
    streams: int = 0
    rows: int = 0
    created: str = ""
    revoked: str = ""

    def limits_text(self) -> str:
        parts = [f"{self.rps:g} requests/s" if self.rps else "",
                 f"{self.streams} streams" if self.streams else "",
                 f"{self.rows:,} rows/answer" if self.rows else ""]
        return ", ".join(p for p in parts if p) or "no limits"


def check_permissions(permissions) -> tuple[str, ...]:
    chosen = tuple(dict.fromkeys(p.strip() for p in permissions))
    unknown = [p for p in chosen if p not in PERMISSIONS]
    if unknown or not chosen:
        raise InputError(f"permission(s) {', '.join(map(repr, unknown)) or '(none)'} unknown; "
                         f"choose among {', '.join(PERMISSIONS)}")
    return chosen


class TokenFile:
    """The operator's token file (JSON): hashes, names, permissions and limits; never a
    token itself. Written atomically (a temporary file renamed over it), readable only by
    its owner."""

    def __init__(self, path):
        self.path = Path(path)

    def read(self) -> list[TokenEntry]:
        try:
            raw = json.loads(self.path.read_text())
        except FileNotFoundError:
            raise XmatchError(f"{self.path}: no such token file; create it with "
                              "`xmatch token add NAME --tokens FILE`") from None
        except json.JSONDecodeError as error:
            raise XmatchError(f"{self.path}: not a token file (invalid JSON: {error})") from None
        if not isinstance(raw, dict) or raw.get("version") != TOKEN_FILE_VERSION:
            raise XmatchError(f"{self.path}: not a token file of version "
                              f"{TOKEN_FILE_VERSION} (write it with `xmatch token add`)")
        entries = []
        for i, item in enumerate(raw.get("tokens", [])):
            try:
                entries.append(TokenEntry(
                    str(item["name"]), str(item["sha256"]),
                    check_permissions(item["permissions"]), float(item.get("rps", 0)),
                    int(item.get("streams", 0)), int(item.get("rows", 0)),
                    str(item.get("created", "")), str(item.get("revoked", ""))))
            except (KeyError, TypeError, ValueError, InputError) as error:
                raise XmatchError(f"{self.path}: token {i + 1}: {error}") from None
        return entries

    def write(self, entries: list[TokenEntry]) -> None:
        text = json.dumps({"version": TOKEN_FILE_VERSION, "tokens": [
            {"name": e.name, "sha256": e.sha256, "permissions": list(e.permissions),
             "rps": e.rps, "streams": e.streams, "rows": e.rows, "created": e.created,
             "revoked": e.revoked} for e in entries]}, indent=1) + "\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(temporary, self.path)

    def add(self, name: str, permissions, rps: float = 0.0, streams: int = 0,
            rows: int = 0) -> str:
        """Add a token; returns it (the only time it is seen: the file keeps its hash)."""
        if not name or not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
            raise InputError(f"token name {name!r}: use letters, digits, '-', '_' and '.'")
        for value, what in ((rps, "rps"), (streams, "streams"), (rows, "rows")):
            if value < 0:
                raise InputError(f"{what} = {value} is not allowed; give 0 (no limit) or more")
        entries = self.read() if self.path.exists() else []
        if any(e.name == name and not e.revoked for e in entries):
            raise InputError(f"{self.path}: a token named {name!r} exists; revoke it first "
                             "or choose another name")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
        entries.append(TokenEntry(name, token_hash(token), check_permissions(permissions),
                                  float(rps), int(streams), int(rows), now))
        self.write(entries)
        return token

    def revoke(self, name: str) -> TokenEntry:
        entries = self.read()
        live = [e for e in entries if e.name == name and not e.revoked]
        if not live:
            names = sorted({e.name for e in entries if not e.revoked})
            raise InputError(f"{self.path}: no live token named {name!r}; live tokens: "
                             f"{', '.join(names) or 'none'}")
        now = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
        revoked = [TokenEntry(**{**e.__dict__, "revoked": now}) if e in live else e
                   for e in entries]
        self.write(revoked)
        return next(e for e in revoked if e.name == name and e.revoked == now)


def read_token(token: str | None = None, token_file=None) -> str | None:
    """The token a client presents: given, else read from ``token_file``, else from the
    ``XMATCH_TOKEN`` environment variable, else None."""
    if token_file is not None:
        if token:
            raise InputError("give a token or a token file, not both")
        token = _read(token_file, "token file").decode().strip()
        if not token:
            raise InputError(f"token file {token_file} is empty")
    token = token or os.environ.get(TOKEN_ENV_VAR) or None
    if token is not None and (not token.isascii() or any(c.isspace() for c in token)):
        raise InputError("a token is one word of printable ASCII (as `xmatch token add` "
                         "prints it)")
    return token


# ------------------------------------------------------------------------------- access


@dataclass
class _Allowance:
    """A token's running state: its request bucket and open streams."""

    entry: TokenEntry
    tokens: float = 0.0
    refilled: float = field(default_factory=time.monotonic)
    streams: int = 0


class Access:
    """Admits calls by their bearer token: reads the token file (and again whenever it
    changes), checks permission, request rate and open streams."""

    def __init__(self, token_file):
        self.file = TokenFile(token_file)
        self._lock = threading.Lock()
        self._checked = 0.0
        self._stamp = None
        self._by_hash: dict[str, TokenEntry] = {}
        self._allowances: dict[str, _Allowance] = {}
        self._reload(force=True)

    def _reload(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._checked < RELOAD_SECONDS:
            return
        self._checked = now
        try:
            stat = self.file.path.stat()
            stamp = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        except OSError:
            stamp = None
        if stamp == self._stamp and not force:
            return
        entries = self.file.read()  # a damaged file on start-up is refused; see below
        self._stamp = stamp
        self._by_hash = {e.sha256: e for e in entries}

    def reload_if_changed(self) -> None:
        try:
            self._reload()
        except XmatchError as error:
            # A file being edited by hand may be briefly invalid: keep the last good one.
            from xmatch.service.codec import log

            log.warning("token file not reloaded (the last good one stays): %s", error)

    def entry_of(self, metadata) -> TokenEntry:
        """The live token of a call's metadata, or UNAUTHENTICATED saying what is wrong."""
        self.reload_if_changed()
        token = None
        for key, value in metadata or ():
            if key == "authorization":
                token = value
                break
        if token is None:
            raise UnauthenticatedError(
                "this server requires a token: send `authorization: Bearer TOKEN` (the "
                f"--token option, ${TOKEN_ENV_VAR}, or Client(token=...))")
        scheme, _, secret = token.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise UnauthenticatedError("the authorization header must be `Bearer TOKEN`")
        entry = self._by_hash.get(token_hash(secret.strip()))
        if entry is None:
            raise UnauthenticatedError("unknown token: it is not in this server's token file")
        if entry.revoked:
            raise UnauthenticatedError(f"token {entry.name!r} was revoked on {entry.revoked}")
        return entry

    def admit(self, method: str, metadata) -> _Allowance:
        """Admit one call of ``method`` (its short name); returns the token's allowance (for
        :meth:`release` of a stream and the rows check)."""
        entry = self.entry_of(metadata)
        permission = PERMISSION_OF.get(method)
        if permission is None or permission not in entry.permissions:
            raise PermissionDeniedError(
                f"token {entry.name!r} may {', '.join(entry.permissions)}; {method} needs "
                f"the {permission or 'admin'} permission")
        with self._lock:
            allowance = self._allowances.get(entry.sha256)
            if allowance is None:
                allowance = self._allowances[entry.sha256] = _Allowance(entry, entry.rps)
            allowance.entry = entry  # the file's current limits (it may have been edited)
            if entry.rps:
                now = time.monotonic()
                # A bucket of one second's requests, refilled continuously.
                allowance.tokens = min(entry.rps, allowance.tokens
                                       + (now - allowance.refilled) * entry.rps)
                allowance.refilled = now
                if allowance.tokens < 1.0:
                    wait = (1.0 - allowance.tokens) / entry.rps
                    raise LimitExceededError(
                        f"token {entry.name!r} is over its limit of {entry.rps:g} requests "
                        f"per second; retry in {wait:.3f} s")
                allowance.tokens -= 1.0
            if method in STREAMING_METHODS:
                if entry.streams and allowance.streams >= entry.streams:
                    raise LimitExceededError(
                        f"token {entry.name!r} has {allowance.streams} streams open, its "
                        f"limit; close one (or finish it) first")
                allowance.streams += 1
        return allowance

    def release(self, allowance: _Allowance, method: str) -> None:
        if method in STREAMING_METHODS:
            with self._lock:
                allowance.streams -= 1


def check_rows(allowance: _Allowance | None, rows: int, what: str) -> None:
    """Refuse an answer over the token's rows limit (RESOURCE_EXHAUSTED naming it)."""
    if allowance is not None and allowance.entry.rows and rows > allowance.entry.rows:
        raise LimitExceededError(
            f"{what} has {rows:,} rows; token {allowance.entry.name!r} may receive at most "
            f"{allowance.entry.rows:,} per answer: set a limit or ask a smaller region")


def check_options(args) -> list[str]:
    """What is wrong with the TLS options of a command (one line each): for ``xmatch config
    check`` and the commands themselves. A command that serves has ``tls_plaintext``."""
    problems = []
    cert, key = getattr(args, "tls_cert", None), getattr(args, "tls_key", None)
    if (cert is None) != (key is None):
        problems.append("tls cert and key go together: give both (--tls-cert, --tls-key)")
    serves = hasattr(args, "tls_plaintext")
    plaintext = getattr(args, "tls_plaintext", False)
    if serves and plaintext and cert:
        problems.append("plaintext and a TLS certificate exclude each other: choose one")
    if serves and plaintext and getattr(args, "tls_client_ca", None):
        problems.append("a client CA (mutual TLS) needs TLS, not plaintext")
    if serves and not plaintext and not cert:
        problems.append("serving needs TLS (--tls-cert and --tls-key) or, explicitly, "
                        "--plaintext")
    return problems


# ------------------------------------------------------------------------------- bundles


@dataclass(frozen=True)
class Exposure:
    """How a server faces its network.

    Parameters
    ----------
    tls : Tls or None
        Its TLS (None: plain text, which the command line gives only when asked for).
    tokens : path or None
        Its token file (None: calls need no token).
    metrics : (host, port) or None
        Where its Prometheus metrics are served over HTTP (None: counted, not served).
    http : (host, port) or None
        Where its Virtual Observatory face (SCS, TAP, MOC) is served over HTTP, with its TLS
        (None: no HTTP face).
    """

    tls: Tls | None = None
    tokens: str | Path | None = None
    metrics: tuple[str, int] | None = None
    http: tuple[str, int] | None = None


@dataclass(frozen=True)
class Credentials:
    """What a process shows the servers it calls: TLS (None: plain text) and a token."""

    tls: Tls | None = None
    token: str | None = None

    def check(self, address: str) -> None:
        """Refuse to send a token in plain text beyond this machine."""
        if self.token and self.tls is None and not is_loopback(address):
            raise InputError(f"a token is sent to {address} only over TLS: give the "
                             "server's CA (--tls-ca, Client(tls=Tls.from_files(ca=...))) "
                             "or use a loopback address")

    def channel(self, address: str, options, aio: bool = False):
        """A gRPC channel to ``address`` (synchronous, or ``grpc.aio``)."""
        import grpc

        self.check(address)
        family = grpc.aio if aio else grpc
        if self.tls is None:
            return family.insecure_channel(address, options=options)
        return family.secure_channel(address, self.tls.channel_credentials(), options=options)

    def stub(self, channel, request_ids: bool = False):
        """The Xmatch stub of ``channel`` whose calls carry the token and, with
        ``request_ids``, the request id of the call being answered (a router's calls to its
        shards)."""
        from xmatch.service.observe import request_metadata
        from xmatch.v1 import xmatch_pb2_grpc

        token = self.token
        if request_ids:
            return _MetadataStub(xmatch_pb2_grpc.XmatchStub(channel),
                                 lambda: request_metadata(token))
        fixed = (("authorization", f"Bearer {token}"),) if token else ()
        return _MetadataStub(xmatch_pb2_grpc.XmatchStub(channel), lambda: fixed)


class _MetadataStub:
    """A stub whose every call carries ``metadata()``."""

    def __init__(self, stub, metadata):
        self._stub = stub
        self._metadata = metadata

    def __getattr__(self, name: str):
        method = getattr(self._stub, name)
        metadata = self._metadata

        def call(*args, **kwargs):
            return method(*args, metadata=metadata(), **kwargs)

        setattr(self, name, call)  # found directly from now on
        return call
