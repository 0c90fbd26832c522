"""The sandbox's own trust: a local CA, the server certificate, the token signing key, the app.

Everything is generated on first start into the data directory and reused afterwards, so a
client that trusted the CA bundle once keeps working across restarts. Private keys and the
app's secret are written with mode 0600. A server certificate that does not cover the host the
sandbox listens on (or is about to expire) is issued again from the same CA.
"""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_FILE = "ca.pem"
CA_KEY_FILE = "ca-key.pem"
SERVER_CERT_FILE = "server.pem"
SERVER_KEY_FILE = "server-key.pem"
SIGNING_KEY_FILE = "token-signing-key.pem"
APP_FILE = "app.json"

CA_LIFETIME = timedelta(days=3650)
SERVER_CERT_LIFETIME = timedelta(days=397)
RENEW_SERVER_CERT_BEFORE = timedelta(days=30)
LOOPBACK_NAMES = ("127.0.0.1", "::1", "localhost")


@dataclass(frozen=True)
class AppRegistration:
    """The one multi-tenant application every sandbox tenant has consented to."""

    client_id: str
    client_secret: str
    admin_token: str
    #: key for the HMAC that protects delta and skip tokens
    state_key: str


@dataclass(frozen=True)
class Trust:
    """Paths and keys the server needs."""

    ca_path: Path
    server_cert_path: Path
    server_key_path: Path
    signing_key: rsa.RSAPrivateKey
    signing_key_id: str
    app: AppRegistration


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _pem_key(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _load_key(path: Path) -> ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey)
    return key


def _ensure_ca(data_dir: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    ca_path, key_path = data_dir / CA_FILE, data_dir / CA_KEY_FILE
    if ca_path.is_file() and key_path.is_file():
        key = _load_key(key_path)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return x509.load_pem_x509_certificate(ca_path.read_bytes()), key
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Skolsynk sandbox"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"Skolsynk sandbox CA {uuid.uuid4().hex[:8]}"),
        ]
    )
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + CA_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_private(key_path, _pem_key(key))
    ca_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert, key


def _san_entries(hosts: set[str]) -> list[x509.GeneralName]:
    entries: list[x509.GeneralName] = []
    for host in sorted(hosts):
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            entries.append(x509.DNSName(host))
    return entries


def _server_cert_covers(path: Path, hosts: set[str]) -> bool:
    if not path.is_file():
        return False
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    if cert.not_valid_after_utc - datetime.now(UTC) < RENEW_SERVER_CERT_BEFORE:
        return False
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    names = {str(ip) for ip in san.get_values_for_type(x509.IPAddress)}
    names |= set(san.get_values_for_type(x509.DNSName))
    return hosts <= names


def _ensure_server_cert(
    data_dir: Path, ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, host: str
) -> None:
    hosts = set(LOOPBACK_NAMES)
    if host not in ("0.0.0.0", "::", ""):  # noqa: S104 (a name to leave out, not a bind)
        hosts.add(host)
    cert_path, key_path = data_dir / SERVER_CERT_FILE, data_dir / SERVER_KEY_FILE
    if key_path.is_file() and _server_cert_covers(cert_path, hosts):
        return
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + SERVER_CERT_LIFETIME)
        .add_extension(x509.SubjectAlternativeName(_san_entries(hosts)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    _write_private(key_path, _pem_key(key))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _ensure_signing_key(data_dir: Path) -> rsa.RSAPrivateKey:
    path = data_dir / SIGNING_KEY_FILE
    if path.is_file():
        key = _load_key(path)
        assert isinstance(key, rsa.RSAPrivateKey)
        return key
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    _write_private(path, _pem_key(key))
    return key


def _ensure_app(data_dir: Path) -> AppRegistration:
    path = data_dir / APP_FILE
    if path.is_file():
        return AppRegistration(**json.loads(path.read_text()))
    app = AppRegistration(
        client_id=str(uuid.uuid4()),
        client_secret=secrets.token_urlsafe(30),
        admin_token=secrets.token_urlsafe(30),
        state_key=secrets.token_hex(32),
    )
    _write_private(path, json.dumps(app.__dict__, indent=2).encode())
    return app


def key_id(key: rsa.RSAPrivateKey) -> str:
    """A stable ``kid`` for the signing key: a digest of its public numbers."""
    digest = hashes.Hash(hashes.SHA256())
    digest.update(str(key.public_key().public_numbers().n).encode())
    return digest.finalize().hex()[:27]


def ensure_trust(data_dir: Path, host: str) -> Trust:
    """The CA, server certificate, signing key and app of ``data_dir``; makes what's missing."""
    data_dir.mkdir(parents=True, exist_ok=True)
    ca, ca_key = _ensure_ca(data_dir)
    _ensure_server_cert(data_dir, ca, ca_key, host)
    signing_key = _ensure_signing_key(data_dir)
    return Trust(
        ca_path=(data_dir / CA_FILE).resolve(),
        server_cert_path=data_dir / SERVER_CERT_FILE,
        server_key_path=data_dir / SERVER_KEY_FILE,
        signing_key=signing_key,
        signing_key_id=key_id(signing_key),
        app=_ensure_app(data_dir),
    )
