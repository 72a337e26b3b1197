"""A private certificate authority for trying TLS and for tests: a CA, server certificates
for the hosts a cluster runs on, client certificates for mutual TLS (``cryptography``).

For production, use certificates from your own PKI; these are for rehearsals, tests and
benchmarks (the keys are written unencrypted, readable by their owner only).
"""

from __future__ import annotations

import datetime as _dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Authority", "Issued"]


@dataclass(frozen=True)
class Issued:
    """Paths of a certificate and its key (PEM)."""

    cert: Path
    key: Path


def _key():
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def _write_key(key, path: Path) -> None:
    from cryptography.hazmat.primitives import serialization

    data = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _name(common_name: str):
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "xmatch"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


class Authority:
    """A CA in ``directory`` (``ca.pem``, ``ca.key``) that issues certificates there."""

    def __init__(self, directory, name: str = "xmatch test CA", days: float = 30):
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes

        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._key = _key()
        now = _dt.datetime.now(_dt.UTC)
        self._cert = (x509.CertificateBuilder()
                      .subject_name(_name(name)).issuer_name(_name(name))
                      .public_key(self._key.public_key())
                      .serial_number(x509.random_serial_number())
                      .not_valid_before(now - _dt.timedelta(hours=1))
                      .not_valid_after(now + _dt.timedelta(days=days))
                      .add_extension(x509.BasicConstraints(ca=True, path_length=None),
                                     critical=True)
                      .add_extension(x509.KeyUsage(
                          digital_signature=True, content_commitment=False,
                          key_encipherment=False, data_encipherment=False, key_agreement=False,
                          key_cert_sign=True, crl_sign=True, encipher_only=False,
                          decipher_only=False), critical=True)
                      .sign(self._key, hashes.SHA256()))
        self.cert = self.directory / f"{_slug(name)}.pem"
        self.cert.write_bytes(self._pem(self._cert))
        _write_key(self._key, self.directory / f"{_slug(name)}.key")

    @staticmethod
    def _pem(certificate) -> bytes:
        from cryptography.hazmat.primitives import serialization

        return certificate.public_bytes(serialization.Encoding.PEM)

    def issue(self, name: str, hosts=(), client: bool = False, days: float = 30,
              valid_from_days: float = 0) -> Issued:
        """A certificate for a server reached at ``hosts`` (names or IP addresses), or with
        ``client`` for a client of mutual TLS; valid from ``valid_from_days`` (negative:
        in the past, e.g. for an expired certificate) for ``days``."""
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes
        from cryptography.x509.oid import ExtendedKeyUsageOID

        key = _key()
        start = _dt.datetime.now(_dt.UTC) + _dt.timedelta(days=valid_from_days)
        start -= _dt.timedelta(minutes=5)
        names = []
        for host in hosts:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                names.append(x509.DNSName(host))
        builder = (x509.CertificateBuilder()
                   .subject_name(_name(name)).issuer_name(self._cert.subject)
                   .public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(start)
                   .not_valid_after(start + _dt.timedelta(days=days))
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None),
                                  critical=True)
                   .add_extension(x509.ExtendedKeyUsage(
                       [ExtendedKeyUsageOID.CLIENT_AUTH] if client
                       else [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                       critical=False))
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        certificate = builder.sign(self._key, hashes.SHA256())
        issued = Issued(self.directory / f"{_slug(name)}.pem",
                        self.directory / f"{_slug(name)}.key")
        issued.cert.write_bytes(self._pem(certificate))
        _write_key(key, issued.key)
        return issued


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in name)
