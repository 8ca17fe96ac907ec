"""A private CA and a server certificate it signs, for serving the registry over TLS.

Clients (docker, podman, skopeo) trust the registry by holding the CA
certificate, which both sides serve at ``/ca.crt``, as the original Atomic
Registry did. Keys are written 0600 from the first byte (``os.open`` with the
mode) and nothing existing is overwritten unless asked.
"""
from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_VALIDITY = datetime.timedelta(days=3650)
#: Apple's and browsers' limit for server certificates; clients refuse longer ones.
SERVER_VALIDITY = datetime.timedelta(days=825)
#: Backdated so a client whose clock is a little behind still accepts a fresh certificate.
CLOCK_SKEW = datetime.timedelta(minutes=5)


@dataclass(frozen=True)
class CertificatePaths:
    """Where ``init_certificates`` wrote the CA and the server certificate and their keys."""

    ca_certificate: Path
    ca_key: Path
    server_certificate: Path
    server_key: Path

    @classmethod
    def in_directory(cls, directory: Path) -> "CertificatePaths":
        directory = Path(directory)
        return cls(directory / "ca.crt", directory / "ca.key", directory / "server.crt", directory / "server.key")

    def all(self) -> tuple[Path, Path, Path, Path]:
        """In the order they are written: keys before the certificates that name them."""
        return (self.ca_key, self.ca_certificate, self.server_key, self.server_certificate)


class CertificatesExist(Exception):
    """Some of the files are there already and ``force`` was not given; the message names them."""


def init_certificates(directory: Path, hosts: Sequence[str], ips: Sequence[str] = (),
                      force: bool = False) -> CertificatePaths:
    """Make a CA and a server certificate for ``hosts`` (DNS names) and ``ips`` in ``directory``.

    A host that parses as an IP address goes into the IP addresses instead
    (``--host 127.0.0.1`` is what people type). Raises ``CertificatesExist``
    when a file is already there and ``force`` is false, ``ValueError`` for an
    invalid address or when neither hosts nor ips are given.
    """
    dns_names, addresses = _split_names(hosts, ips)
    if not dns_names and not addresses:
        raise ValueError("give at least one host name or IP address for the server certificate")
    paths = CertificatePaths.in_directory(Path(directory))
    existing = [str(path) for path in paths.all() if path.exists()]
    if existing and not force:
        raise CertificatesExist(f"already there (use --force to replace): {', '.join(existing)}")
    paths.ca_certificate.parent.mkdir(parents=True, exist_ok=True)

    now = datetime.datetime.now(datetime.timezone.utc) - CLOCK_SKEW
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "pulp-registry"),
        x509.NameAttribute(NameOID.COMMON_NAME, f"pulp-registry CA {now:%Y-%m-%d %H:%M}"),
    ])
    ca_certificate = (
        x509.CertificateBuilder()
        .subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now).not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
            key_encipherment=False, data_encipherment=False, key_agreement=False,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    server_key = ec.generate_private_key(ec.SECP256R1())
    common_name = (dns_names or [str(address) for address in addresses])[0]
    alternative_names: list[x509.GeneralName] = [x509.DNSName(name) for name in dns_names]
    alternative_names += [x509.IPAddress(address) for address in addresses]
    server_certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "pulp-registry"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64]),
        ]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now).not_valid_after(now + SERVER_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, key_encipherment=False, key_cert_sign=False, crl_sign=False,
            content_commitment=False, data_encipherment=False, key_agreement=True,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(alternative_names), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(server_key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    _write_key(paths.ca_key, ca_key)
    _write_file(paths.ca_certificate, ca_certificate.public_bytes(serialization.Encoding.PEM), 0o644)
    _write_key(paths.server_key, server_key)
    _write_file(paths.server_certificate, server_certificate.public_bytes(serialization.Encoding.PEM), 0o644)
    return paths


def _split_names(hosts: Sequence[str], ips: Sequence[str]) -> tuple[list[str], list]:
    """DNS names and IP addresses, each once, in the order given."""
    dns_names: list[str] = []
    addresses: list = []
    for host in hosts:
        host = host.strip()
        if not host:
            continue
        try:
            address = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            if any(character in host for character in "/: @") or host.startswith(".") or host.endswith("."):
                raise ValueError(f"{host!r} is not a host name (give a name like registry.example.com)") from None
            if host.lower() not in dns_names:
                dns_names.append(host.lower())
        else:
            if address not in addresses:
                addresses.append(address)
    for ip in ips:
        try:
            address = ipaddress.ip_address(ip.strip().strip("[]"))
        except ValueError:
            raise ValueError(f"{ip!r} is not an IP address") from None
        if address not in addresses:
            addresses.append(address)
    return dns_names, addresses


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    _write_file(path, pem, 0o600)


def _write_file(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` through a temporary file made with ``mode`` from the start, then rename it into place."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.unlink(missing_ok=True)  # left by a run that was killed
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            os.fchmod(handle.fileno(), mode)  # the umask may have taken bits away from a certificate
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
